//! Channel adapters: one per channel, behind one shape.
//!
//! Inbound is pure: a provider's webhook body, once verified (a [`Verified`] can only be
//! made by a signature check), is turned into normalized [`crate::event::Event`]s without
//! any I/O, so every adapter is unit-tested over the fixtures. Outbound (replies) is async
//! and lives beside each adapter.
//!
//! - [`meta`]: what WhatsApp, Instagram and Messenger share: the `X-Hub-Signature-256`
//!   check, the `messaging[]` walk, the Graph API client and its errors.
//! - [`meta_webhook`]: the `{object, entry}` envelope, routed to the product's adapter.
//! - [`whatsapp`], [`instagram`], [`messenger`], [`telegram`]: one module per channel.

pub mod instagram;
pub mod messenger;
pub mod meta;
pub mod meta_webhook;
pub mod outbound;
pub mod telegram;
pub mod whatsapp;

use std::fmt;

pub use crate::channel::{ChannelKind, ChannelRef, InvalidChannelId, UnknownChannelKind};

/// A webhook body whose signature (or secret) has been checked. Only the verifying
/// functions of each provider can make one, so unverified bytes never reach `normalize`.
#[derive(Debug, Clone, Copy)]
pub struct Verified<'a> {
    body: &'a [u8],
}

impl<'a> Verified<'a> {
    /// Only for the verifiers in this module tree (and benches/tests of normalization,
    /// through [`Verified::assume_verified_for_tests`]).
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Self { body }
    }

    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// For benches and tests that exercise normalization over fixtures.
    #[doc(hidden)]
    pub fn assume_verified_for_tests(body: &'a [u8]) -> Self {
        Self { body }
    }
}

/// What a normalizer needs to know about the relay: only where media URLs point.
#[derive(Debug, Clone, Copy)]
pub struct NormalizeContext<'a> {
    /// `server.public_url`, without a trailing slash.
    pub public_url: &'a str,
}

impl NormalizeContext<'_> {
    /// The relay URL a CRM can GET for an inbound media file.
    pub fn media_url(&self, kind: ChannelKind, channel_id: &str, media_id: &str) -> String {
        format!(
            "{}/v1/media/{}/{}/{}",
            self.public_url,
            kind,
            channel_id,
            urlencode_path_segment(media_id)
        )
    }
}

/// A provider payload names a channel id that is not one of its kind (see
/// [`ChannelRef::parse`]): its events cannot be routed, so they are counted as
/// unroutable and dropped, never turned into an event or a panic. The id itself is not
/// logged (it is provider input, not an id).
pub fn unparseable_channel(kind: ChannelKind) {
    metrics::counter!("switchboard_events_unroutable_total", "channel" => kind.as_str())
        .increment(1);
    tracing::warn!(channel_kind = %kind, "Webhook names a channel id that is not one of its kind: its events are dropped as unroutable.");
}

/// Why a provider URL could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the configured base URL cannot take a path")]
    Base,
    /// `.` and `..` are resolved by every URL parser whatever their spelling, so no
    /// encoding can carry them as a segment.
    #[error("`.` and `..` cannot be a URL path segment")]
    DotSegment,
}

/// A provider URL: `base`, then each of `segments` as exactly one path segment
/// (percent-encoded: a `/`, `?`, `#` or `%` in an id can never add a segment, a query
/// or a fragment), then `query`, form-encoded. Every Graph and Bot API URL is built
/// here, never with `format!` of an id.
pub fn build_url(
    base: &str,
    segments: &[&str],
    query: &[(&str, &str)],
) -> Result<url::Url, UrlError> {
    if segments.iter().any(|s| matches!(*s, "." | "..")) {
        return Err(UrlError::DotSegment);
    }
    let mut url = url::Url::parse(base).map_err(|_| UrlError::Base)?;
    url.path_segments_mut()
        .map_err(|_| UrlError::Base)?
        .pop_if_empty()
        .extend(segments);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url)
}

/// Percent-encodes one URL path segment (media ids are usually digits, but Instagram and
/// Messenger ids are whole URLs).
pub fn urlencode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A body that passed verification but is not a webhook this relay can read. Neither
/// `Display` nor `Debug` repeats the body: serde's messages quote the offending value,
/// which may be message content (see [`describe_json_error`]).
#[derive(thiserror::Error)]
pub enum NormalizeError {
    #[error("the body is not valid JSON: {}", describe_json_error(.0))]
    Json(#[from] serde_json::Error),
    #[error("the body is not a {expected} webhook")]
    Shape { expected: &'static str },
}

impl fmt::Debug for NormalizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NormalizeError::Json(e) => write!(f, "Json({})", describe_json_error(e)),
            NormalizeError::Shape { expected } => write!(f, "Shape {{ expected: {expected} }}"),
        }
    }
}

/// A JSON error described without the input: the kind of problem, what was expected
/// (the relay's own words: types, field and variant names), and where. serde's own
/// message is not used as it is, since it quotes the offending value (`invalid type:
/// string "<a customer's text>", expected …`).
pub fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = format!("line {} column {}", e.line(), e.column());
    match e.classify() {
        Category::Io => format!("the body could not be read ({at})"),
        Category::Eof => format!("the JSON ends too early ({at})"),
        Category::Syntax => format!("malformed JSON at {at}"),
        Category::Data => {
            let msg = e.to_string();
            let msg = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m);
            let what = if let Some(field) = msg
                .strip_prefix("missing field `")
                .and_then(|r| r.strip_suffix('`'))
            {
                format!("missing field `{field}`")
            } else if let Some((_, expected)) = msg.rsplit_once(", expected ") {
                format!("a value of the wrong type or form (expected {expected})")
            } else {
                "a value of the wrong type or form".to_owned()
            };
            format!("{what} at {at}")
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[test]
    fn json_errors_never_repeat_the_input() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Hook {
            entry: Vec<u8>,
            kind: ChannelKind,
        }
        let canary = "private words, expected nothing";
        for body in [
            format!(r#"{{"entry": "{canary}", "kind": "whatsapp"}}"#),
            format!(r#"{{"entry": [], "kind": "{canary}"}}"#),
            format!(r#"{{"entry": [], "{canary}": 1}}"#),
            format!(r#"{{"entry": [1, 2, "{canary}"#),
            format!(r#"{{"entry": [{canary}]}}"#),
        ] {
            let e = NormalizeError::from(serde_json::from_str::<Hook>(&body).unwrap_err());
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("private"), "{shown}");
            assert!(shown.contains("line 1"), "{shown}");
        }
        let e = NormalizeError::from(serde_json::from_str::<Hook>(r#"{"entry": []}"#).unwrap_err());
        assert!(e.to_string().contains("missing field `kind`"), "{e}");
        let e =
            NormalizeError::from(serde_json::from_str::<Hook>(r#"{"entry": "x"}"#).unwrap_err());
        assert!(e.to_string().contains("expected a sequence"), "{e}");
    }
}
