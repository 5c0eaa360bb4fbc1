//! Meta's `signed_request`: `<base64url signature>.<base64url payload>`, where the
//! signature is HMAC-SHA256, keyed with the app secret, over the encoded payload string
//! exactly as received, and the payload is JSON with `algorithm` (`HMAC-SHA256`),
//! `issued_at`, and `user_id` (app-scoped) or, for a Page-level uninstall, `profile_id`.
//!
//! The signature is checked (constant time, against every configured app secret) before
//! the payload is decoded or parsed. Base64url comes without padding; padding is
//! tolerated. Neither `expires` nor the age of `issued_at` is enforced: Meta's reference
//! defines `issued_at` only as when the request was signed, and documents neither a
//! freshness window nor when it retries a callback that failed (with the request it
//! signed then), so a cut-off could refuse Meta's own retry. A replayed request can
//! only ask again for what its user already asked, and gets the same answer: the
//! confirmation code is derived from the request ([`crate::privacy::deletion`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use crate::channels::meta::{AppSecrets, SignatureError};

/// Why a `signed_request` was refused. Never carries the request itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedRequestError {
    #[error("signed_request is malformed: {0}")]
    Malformed(&'static str),
    #[error("signed_request signature matches no configured app secret")]
    BadSignature,
    #[error("signed_request algorithm must be HMAC-SHA256")]
    UnsupportedAlgorithm,
    #[error("no app secret is configured (meta.app_secrets)")]
    NoSecrets,
}

impl SignedRequestError {
    /// Whether the caller failed to prove it is Meta (401) rather than sent a bad
    /// request (400).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Self::BadSignature | Self::NoSecrets)
    }
}

/// A verified `signed_request` payload: only the fields the relay uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The app-scoped id of the user (absent in some Page-level callbacks).
    pub user_id: Option<String>,
    /// A Page id, for a Page-level uninstall.
    pub profile_id: Option<String>,
    /// When Meta issued the request, Unix seconds.
    pub issued_at: Option<i64>,
    /// The encoded payload exactly as signed: what makes this request this one (a
    /// retry of it carries the same), for the data-deletion confirmation code.
    pub payload: String,
}

#[derive(Deserialize)]
struct Payload {
    algorithm: Option<String>,
    #[serde(default)]
    user_id: Option<Value>,
    #[serde(default)]
    profile_id: Option<Value>,
    #[serde(default)]
    issued_at: Option<Value>,
}

/// Base64url, with or without padding.
fn decode_b64url(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// An id given as a JSON string or number (ids are strings, but be lenient).
fn id_of(v: Option<Value>) -> Result<Option<String>, SignedRequestError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() <= 64 && s.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Some(s))
        }
        Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(SignedRequestError::Malformed("an id is not a number")),
    }
}

/// Verifies `raw` with the configured app secrets and returns its payload.
pub fn verify(raw: &str, secrets: &AppSecrets) -> Result<SignedRequest, SignedRequestError> {
    let raw = raw.trim();
    let (sig_b64, payload_b64) = raw.split_once('.').ok_or(SignedRequestError::Malformed(
        "expected <signature>.<payload>",
    ))?;
    if sig_b64.is_empty() || payload_b64.is_empty() {
        return Err(SignedRequestError::Malformed(
            "expected <signature>.<payload>",
        ));
    }
    let tag = decode_b64url(sig_b64).ok_or(SignedRequestError::Malformed(
        "the signature is not base64url",
    ))?;
    let matched = secrets
        .matches(payload_b64.as_bytes(), &tag)
        .map_err(|e| match e {
            SignatureError::NoSecrets => SignedRequestError::NoSecrets,
            _ => SignedRequestError::BadSignature,
        })?;
    if !matched {
        return Err(SignedRequestError::BadSignature);
    }
    let json = decode_b64url(payload_b64).ok_or(SignedRequestError::Malformed(
        "the payload is not base64url",
    ))?;
    let payload: Payload = serde_json::from_slice(&json)
        .map_err(|_| SignedRequestError::Malformed("the payload is not a JSON object"))?;
    match payload.algorithm.as_deref() {
        Some(a) if a.eq_ignore_ascii_case("HMAC-SHA256") => {}
        _ => return Err(SignedRequestError::UnsupportedAlgorithm),
    }
    let issued_at = match payload.issued_at {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_i64().ok_or(SignedRequestError::Malformed(
            "issued_at is not a whole number",
        ))?),
        Some(_) => return Err(SignedRequestError::Malformed("issued_at is not a number")),
    };
    Ok(SignedRequest {
        user_id: id_of(payload.user_id)?,
        profile_id: id_of(payload.profile_id)?,
        issued_at,
        payload: payload_b64.trim_end_matches('=').to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn secrets(s: &str) -> AppSecrets {
        AppSecrets::new(&[SecretString::from(s.to_owned())])
    }

    fn vectors() -> Vec<String> {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/meta/data_deletion_signed_request.txt"
        ))
        .unwrap();
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.contains('='))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn published_vector_verifies_without_user_id() {
        let v = vectors();
        let r = verify(&v[0], &secrets("secret")).unwrap();
        assert_eq!(r.user_id, None);
        assert_eq!(
            verify(&v[0], &secrets("other")).unwrap_err(),
            SignedRequestError::BadSignature
        );
    }

    #[test]
    fn deletion_vector_yields_user_and_issued_at() {
        let v = vectors();
        let s = secrets("test_app_secret_0123456789abcdef");
        let r = verify(&v[1], &s).unwrap();
        assert_eq!(r.user_id.as_deref(), Some("10158000000000001"));
        assert_eq!(r.issued_at, Some(1_700_000_000));
        assert_eq!(
            verify(&v[2], &s).unwrap_err(),
            SignedRequestError::BadSignature
        );
        // Padding is tolerated on both parts, and the HMAC is over the payload as sent.
        let (sig, payload) = v[1].split_once('.').unwrap();
        assert!(verify(&format!("{sig}=.{payload}"), &s).is_ok());
    }

    #[test]
    fn malformed_input_is_named() {
        let s = secrets("k");
        for bad in ["", "abc", ".abc", "abc.", "!!!.abc"] {
            assert!(
                matches!(verify(bad, &s), Err(SignedRequestError::Malformed(_))),
                "{bad}"
            );
        }
        assert_eq!(
            verify("abc.def", &AppSecrets::new(&[])).unwrap_err(),
            SignedRequestError::NoSecrets
        );
    }
}
