//! `X-Hub-Signature-256: sha256=<hex>`: HMAC-SHA256 with the app secret over the raw body,
//! exactly as received (never re-serialized), compared in constant time, against every
//! configured app secret (rotation, several apps).

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::channels::Verified;

type HmacSha256 = Hmac<Sha256>;

/// Why a Meta signature was refused. The message never says which secret was tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not `sha256=<64 hex digits>`")]
    Malformed,
    #[error("the X-Hub-Signature-256 signature matches no configured app secret")]
    Mismatch,
    #[error("no app secret is configured (meta.app_secrets)")]
    NoSecrets,
}

/// The configured app secrets, keyed once at load (the HMAC key schedule is done here;
/// each check clones a keyed state).
#[derive(Clone)]
pub struct AppSecrets {
    keyed: Vec<HmacSha256>,
}

impl std::fmt::Debug for AppSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppSecrets([{} redacted])", self.keyed.len())
    }
}

impl AppSecrets {
    pub fn new(secrets: &[SecretString]) -> Self {
        let keyed = secrets
            .iter()
            .filter(|s| !s.expose_secret().is_empty())
            .filter_map(|s| HmacSha256::new_from_slice(s.expose_secret().as_bytes()).ok())
            .collect();
        Self { keyed }
    }

    pub fn is_empty(&self) -> bool {
        self.keyed.is_empty()
    }

    /// Checks the header value against the raw body.
    pub fn verify<'a>(
        &self,
        header: Option<&[u8]>,
        body: &'a [u8],
    ) -> Result<Verified<'a>, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let hex_sig = header
            .strip_prefix(b"sha256=")
            .ok_or(SignatureError::Malformed)?;
        let mut tag = [0u8; 32];
        hex::decode_to_slice(hex_sig, &mut tag).map_err(|_| SignatureError::Malformed)?;
        if self.matches(body, &tag)? {
            Ok(Verified::new(body))
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// Whether `tag` is the HMAC-SHA256 of `message` under any app secret (constant-time
    /// per secret). Also used for `signed_request` (deauthorize, data deletion).
    pub fn matches(&self, message: &[u8], tag: &[u8]) -> Result<bool, SignatureError> {
        if self.keyed.is_empty() {
            return Err(SignatureError::NoSecrets);
        }
        let mut ok = false;
        for keyed in &self.keyed {
            let mut mac = keyed.clone();
            mac.update(message);
            // Try every secret (no early return), so timing does not tell which matched.
            ok |= mac.verify_slice(tag).is_ok();
        }
        Ok(ok)
    }

    /// `sha256=<hex>` for `body` under the first secret: for tools that send test webhooks.
    pub fn sign(&self, body: &[u8]) -> Option<String> {
        let mut mac = self.keyed.first()?.clone();
        mac.update(body);
        Some(format!(
            "sha256={}",
            hex::encode(mac.finalize().into_bytes())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(s: &[&str]) -> AppSecrets {
        AppSecrets::new(
            &s.iter()
                .map(|s| SecretString::from(s.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/meta");

    #[test]
    fn published_vectors_verify() {
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{FIXTURES}/x_hub_signature_256_vectors.json"))
                .unwrap(),
        )
        .unwrap();
        let mut checked = 0;
        for vec in v["vectors"].as_array().unwrap() {
            let body = match (vec.get("body_file"), vec.get("body_utf8")) {
                (Some(f), _) => {
                    std::fs::read(format!("{FIXTURES}/{}", f.as_str().unwrap())).unwrap()
                }
                (_, Some(b)) => b.as_str().unwrap().as_bytes().to_vec(),
                _ => continue,
            };
            let s = secrets(&[vec["app_secret"].as_str().unwrap()]);
            if let Some(expected) = vec.get("expected_header").and_then(|h| h.as_str()) {
                let valid = vec["valid"].as_bool().unwrap_or(true);
                assert_eq!(
                    s.verify(Some(expected.as_bytes()), &body).is_ok(),
                    valid,
                    "{}",
                    vec["name"]
                );
                checked += 1;
            }
            if let Some(sig) = vec.get("signature_over_this_body").and_then(|h| h.as_str()) {
                assert!(s.verify(Some(sig.as_bytes()), &body).is_ok());
                checked += 1;
            }
        }
        assert!(checked >= 3, "checked {checked}");
    }

    #[test]
    fn any_configured_secret_is_accepted() {
        let s = secrets(&["old", "new"]);
        let sig = secrets(&["new"]).sign(b"body").unwrap();
        assert!(s.verify(Some(sig.as_bytes()), b"body").is_ok());
        assert_eq!(
            s.verify(Some(sig.as_bytes()), b"other").unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn malformed_and_missing_headers_are_refused() {
        let s = secrets(&["k"]);
        assert_eq!(s.verify(None, b"x").unwrap_err(), SignatureError::Missing);
        assert_eq!(
            s.verify(Some(b"sha1=abcd"), b"x").unwrap_err(),
            SignatureError::Malformed
        );
        assert_eq!(
            s.verify(Some(b"sha256=zz"), b"x").unwrap_err(),
            SignatureError::Malformed
        );
        assert_eq!(
            secrets(&[]).verify(Some(&[b's'; 71]), b"x").unwrap_err(),
            SignatureError::Malformed
        );
    }
}
