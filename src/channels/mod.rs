//! Channel adapters: one per channel, behind one shape.
//!
//! Inbound is pure: a provider's webhook body, once verified (a [`Verified`] can only be
//! made by a signature check), is turned into normalized [`crate::event::Event`]s without
//! any I/O, so every adapter is unit-tested over the fixtures. Outbound (replies) is async
//! and lives beside each adapter.
//!
//! - [`meta`]: what WhatsApp, Instagram and Messenger share: the `X-Hub-Signature-256`
//!   check, the `{object, entry}` envelope walk, the Graph API client and its errors.
//! - [`whatsapp`], [`instagram`], [`messenger`], [`telegram`]: one module per channel.

pub mod instagram;
pub mod messenger;
pub mod meta;
pub mod outbound;
pub mod telegram;
pub mod whatsapp;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The four channels Switchboard speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Whatsapp,
    Instagram,
    Messenger,
    Telegram,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 4] = [
        ChannelKind::Whatsapp,
        ChannelKind::Instagram,
        ChannelKind::Messenger,
        ChannelKind::Telegram,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Whatsapp => "whatsapp",
            ChannelKind::Instagram => "instagram",
            ChannelKind::Messenger => "messenger",
            ChannelKind::Telegram => "telegram",
        }
    }

    /// Whether the Graph API (Meta) serves this channel.
    pub fn is_meta(self) -> bool {
        !matches!(self, ChannelKind::Telegram)
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel kind that is not one of the four.
#[derive(Debug, thiserror::Error)]
#[error("unknown channel kind `{0}` (expected whatsapp, instagram, messenger or telegram)")]
pub struct UnknownChannelKind(pub String);

impl FromStr for ChannelKind {
    type Err = UnknownChannelKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "whatsapp" => Ok(ChannelKind::Whatsapp),
            "instagram" => Ok(ChannelKind::Instagram),
            "messenger" => Ok(ChannelKind::Messenger),
            "telegram" => Ok(ChannelKind::Telegram),
            other => Err(UnknownChannelKind(other.to_owned())),
        }
    }
}

/// One connected account: `{"kind": "whatsapp", "id": "106540352242922"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChannelRef {
    pub kind: ChannelKind,
    pub id: String,
}

impl ChannelRef {
    pub fn new(kind: ChannelKind, id: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
        }
    }

    /// Whether `id` is a syntactically acceptable channel id (digits for every channel
    /// today; kept loose: no whitespace, no ':' or '/').
    pub fn valid_id(id: &str) -> bool {
        !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    }
}

impl fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.id)
    }
}

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

/// A body that passed verification but is not a webhook this relay can read.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("the body is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the body is not a {expected} webhook")]
    Shape { expected: &'static str },
}
