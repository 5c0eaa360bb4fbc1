//! Keyed fingerprints: what the relay keeps in Redis to recognise a request when it
//! comes again (an `Idempotency-Key` send's body, a data-deletion `signed_request`) is an
//! HMAC-SHA256, never a plain hash, so a copy of Redis cannot confirm a guess of the
//! content (a phone number and a text) without the vault keys.
//!
//! The HMAC key is derived (HKDF-SHA256, info `switchboard fingerprint v1`) from each
//! Fernet key of `vault.keys`; nothing else is configured. Every replica has the same
//! vault keys (they must, to open the tokens), so every replica computes the same
//! fingerprint; a restart changes nothing. New fingerprints use the primary key; a
//! fingerprint is recognised under any configured key, so a vault rotation keeps
//! matching until the old key is dropped (after that, a record fingerprinted with it
//! no longer matches: an idempotent replay of it is refused as a different body).

use hkdf::Hkdf;
use hmac::digest::generic_array::GenericArray;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// One derived HMAC key per vault key, primary first.
#[derive(Clone)]
pub struct Fingerprints {
    keys: std::sync::Arc<[Hmac<Sha256>]>,
}

impl std::fmt::Debug for Fingerprints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fingerprints([REDACTED])")
    }
}

const INFO: &[u8] = b"switchboard fingerprint v1";

impl Fingerprints {
    /// Derives the keys from the raw (decoded) Fernet keys, primary first.
    pub(super) fn derive<'a>(fernet_keys: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let keys: Vec<Hmac<Sha256>> = fernet_keys
            .into_iter()
            .map(|ikm| {
                // One SHA-256 block of key: HMAC's own key size, so `new` is infallible;
                // 64 bytes is far below HKDF-SHA256's limit, so `expand` cannot fail.
                let mut okm = zeroize::Zeroizing::new([0u8; 64]);
                let _ = Hkdf::<Sha256>::new(None, ikm).expand(INFO, okm.as_mut());
                <Hmac<Sha256> as KeyInit>::new(GenericArray::from_slice(okm.as_ref()))
            })
            .collect();
        Self { keys: keys.into() }
    }

    fn with(key: &Hmac<Sha256>, purpose: &str, data: &[u8]) -> [u8; 32] {
        let mut mac = key.clone();
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// The fingerprint of `data` for `purpose` (domain separation) under the primary
    /// key, as 64 hex digits.
    pub fn primary(&self, purpose: &str, data: &[u8]) -> String {
        self.all(purpose, data)
            .into_iter()
            .next()
            .unwrap_or_default()
    }

    /// The fingerprints of `data` under every configured key, primary first: a stored
    /// fingerprint equal to any of them is `data`'s.
    pub fn all(&self, purpose: &str, data: &[u8]) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| hex::encode(Self::with(k, purpose, data)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_per_vault_key_and_purpose() {
        let a = Fingerprints::derive([&[1u8; 32][..], &[2u8; 32][..]]);
        let same = Fingerprints::derive([&[1u8; 32][..]]);
        let other = Fingerprints::derive([&[3u8; 32][..]]);
        let fp = a.primary("body", b"hello");
        assert_eq!(fp.len(), 64);
        assert_eq!(fp, same.primary("body", b"hello"), "replicas agree");
        assert_ne!(fp, other.primary("body", b"hello"), "keyed");
        assert_ne!(fp, a.primary("other purpose", b"hello"));
        assert_ne!(fp, hex::encode(<Sha256 as sha2::Digest>::digest(b"hello")));
        // A fingerprint made under an older key is still recognised.
        let rotated = Fingerprints::derive([&[9u8; 32][..], &[1u8; 32][..]]);
        assert!(rotated.all("body", b"hello").contains(&fp));
    }
}
