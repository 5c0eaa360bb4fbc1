//! Standard Webhooks signing: `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `"{webhook-id}.{webhook-timestamp}.{body}"`, keyed with the decoded `whsec_…` secret.
//! Several secrets give several space-separated signatures (a rotation overlap).
//!
//! A tenant's secrets are parsed once, when the live configuration is built
//! ([`crate::live::Live::new`]), into a [`Signer`] that [`crate::delivery`] signs with.

use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum SigningSecretError {
    #[error("must start with `whsec_`")]
    Prefix,
    #[error("must be `whsec_` followed by standard base64")]
    Base64,
    #[error("must decode to 16–64 bytes (Standard Webhooks asks for 24–64)")]
    Length,
}

/// A signing secret that cannot be used: which one (0 is the primary, then the extra
/// ones in order) and why.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct BadSigningSecret {
    pub position: usize,
    pub reason: SigningSecretError,
}

/// A tenant's signing keys, keyed once.
#[derive(Clone)]
pub struct Signer {
    keyed: Vec<HmacSha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer([{} redacted])", self.keyed.len())
    }
}

impl Signer {
    /// Decodes `whsec_<base64>` into the HMAC key bytes.
    pub fn parse_secret(secret: &str) -> Result<Zeroizing<Vec<u8>>, SigningSecretError> {
        let b64 = secret
            .trim()
            .strip_prefix("whsec_")
            .ok_or(SigningSecretError::Prefix)?;
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| SigningSecretError::Base64)?,
        );
        if !(16..=64).contains(&bytes.len()) {
            return Err(SigningSecretError::Length);
        }
        Ok(bytes)
    }

    /// The primary secret first, then any extra ones.
    pub fn new(primary: &SecretString, extra: &[SecretString]) -> Result<Self, BadSigningSecret> {
        let mut keyed = Vec::with_capacity(1 + extra.len());
        for (position, s) in std::iter::once(primary).chain(extra).enumerate() {
            let bad = |reason| BadSigningSecret { position, reason };
            let key = Self::parse_secret(s.expose_secret()).map_err(bad)?;
            keyed.push(
                HmacSha256::new_from_slice(&key).map_err(|_| bad(SigningSecretError::Length))?,
            );
        }
        Ok(Self { keyed })
    }

    /// A keyed hash (HMAC under the primary signing secret, 128 bits in hex) of a
    /// conversation key: the retry buffer names conversations by it, so Redis never
    /// holds a phone number, and the hash cannot be reversed by trying every number
    /// without the tenant's secret. Changes when the primary secret changes.
    pub fn conversation_hash(&self, conversation_key: &str) -> String {
        let Some(keyed) = self.keyed.first() else {
            return String::new();
        };
        let mut mac = keyed.clone();
        mac.update(b"switchboard-conversation\0");
        mac.update(conversation_key.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// The `webhook-signature` header value.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut out = String::with_capacity(self.keyed.len() * 48);
        let ts = timestamp.to_string();
        for (i, keyed) in self.keyed.iter().enumerate() {
            let mut mac = keyed.clone();
            mac.update(msg_id.as_bytes());
            mac.update(b".");
            mac.update(ts.as_bytes());
            mac.update(b".");
            mac.update(body);
            if i > 0 {
                out.push(' ');
            }
            out.push_str("v1,");
            base64::engine::general_purpose::STANDARD
                .encode_string(mac.finalize().into_bytes(), &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_vectors_match() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vectors/standard-webhooks/sign_vectors.json"
        ))
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let vectors = v["vectors"].as_array().unwrap();
        assert!(vectors.len() >= 2);
        for vec in vectors {
            let signer = Signer::new(
                &SecretString::from(vec["secret"].as_str().unwrap().to_owned()),
                &[],
            )
            .unwrap();
            let sig = signer.sign(
                vec["msg_id"].as_str().unwrap(),
                vec["timestamp"].as_i64().unwrap(),
                vec["payload"].as_str().unwrap().as_bytes(),
            );
            assert_eq!(sig, vec["signature"].as_str().unwrap(), "{}", vec["name"]);
        }
    }

    #[test]
    fn extra_secrets_add_signatures() {
        let a = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
        let b = SecretString::from("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_owned());
        let sig = Signer::new(&a, &[b]).unwrap().sign("m", 1, b"{}");
        assert_eq!(sig.split(' ').count(), 2);
        assert!(Signer::parse_secret("nope").is_err());
        assert!(Signer::parse_secret("whsec_!!").is_err());
    }
}
