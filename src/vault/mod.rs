//! The vault: channel access tokens kept as Fernet tokens (the format Python's
//! `cryptography.fernet` makes), opened only in memory, on use.
//!
//! [`Keyring`] holds `vault.keys`: the first key encrypts, every key decrypts (the
//! semantics of `MultiFernet`). [`Keyring::rotate`] re-encrypts a token under the primary
//! key keeping its original timestamp, as Python's `MultiFernet.rotate` does.
//!
//! Stored tokens have no TTL, so decryption checks neither age nor clock skew, exactly
//! like Python's `Fernet.decrypt(token)` without a `ttl`: a token written by another
//! service whose clock runs ahead still opens (the `fernet` crate alone would refuse it
//! for up to that skew).
//!
//! - [`fingerprint`]: keyed fingerprints (HMAC under keys derived from the vault's) of
//!   what the relay must recognise again without keeping it.
//! - [`rotation`]: re-encrypting every stored secret under the primary key, record by
//!   record with compare-and-set, safely while other replicas serve.

pub mod fingerprint;
pub mod rotation;

use base64::Engine;
use fernet::Fernet;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Why the vault could not do what was asked. Never carries key or token material.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "vault.keys[{index}] is not a valid Fernet key (expected url-safe base64 of 32 bytes)"
    )]
    BadKey { index: usize },
    #[error("vault.keys is empty: at least one Fernet key is required")]
    NoKeys,
    #[error("the token cannot be opened with any configured vault key (corrupted, or encrypted under a key that is no longer configured)")]
    Undecryptable,
    #[error("the decrypted token is not valid UTF-8")]
    NotUtf8,
}

/// A decrypted channel access token. `Debug` prints `[REDACTED]`; the memory is zeroized
/// on drop.
#[derive(Clone)]
pub struct AccessToken(SecretString);

impl AccessToken {
    pub fn new(token: String) -> Self {
        Self(SecretString::from(token))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken([REDACTED])")
    }
}

/// Which configured key opens a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyMatch {
    /// The primary key (`vault.keys[0]`): nothing to rotate.
    Primary,
    /// An older key only: `vault rotate` moves it to the primary.
    Older,
    /// No configured key: corrupted, or encrypted under a key no longer configured.
    None,
}

/// The configured Fernet keys, primary first. `Fernet` zeroizes its key bytes on drop.
#[derive(Clone)]
pub struct Keyring {
    fernets: std::sync::Arc<[Fernet]>,
    /// A short fingerprint of the primary key, safe to log (see [`Keyring::primary_id`]).
    primary_id: String,
    /// HMAC keys derived from each Fernet key ([`fingerprint`]).
    fingerprints: fingerprint::Fingerprints,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring([REDACTED])")
    }
}

impl Keyring {
    /// Parses the keys; the error names the index of a bad one.
    pub fn new(keys: &[SecretString]) -> Result<Self, VaultError> {
        let mut fernets = Vec::with_capacity(keys.len());
        let mut raw = Vec::with_capacity(keys.len());
        let mut primary_id = String::new();
        for (index, key) in keys.iter().enumerate() {
            let key = key.expose_secret().trim();
            // The crate accepts unpadded keys; require the 32 bytes explicitly.
            let decoded = Zeroizing::new(
                base64::engine::general_purpose::URL_SAFE
                    .decode(key)
                    .map_err(|_| VaultError::BadKey { index })?,
            );
            if decoded.len() != 32 {
                return Err(VaultError::BadKey { index });
            }
            if index == 0 {
                let digest = Sha256::new()
                    .chain_update(b"switchboard vault key id\0")
                    .chain_update(&*decoded)
                    .finalize();
                primary_id = hex::encode(&digest[..4]);
            }
            fernets.push(Fernet::new(key).ok_or(VaultError::BadKey { index })?);
            raw.push(decoded);
        }
        if fernets.is_empty() {
            return Err(VaultError::NoKeys);
        }
        let fingerprints = fingerprint::Fingerprints::derive(raw.iter().map(|k| k.as_slice()));
        Ok(Self {
            fernets: fernets.into(),
            primary_id,
            fingerprints,
        })
    }

    /// A fingerprint of the primary key (8 hex digits of a domain-separated SHA-256):
    /// logged on reload and answered by a rotation, so an operator can tell which key
    /// each replica encrypts with. It reveals nothing about the key.
    pub fn primary_id(&self) -> &str {
        &self.primary_id
    }

    /// Keyed fingerprints under keys derived from these ([`fingerprint`]).
    pub fn fingerprints(&self) -> &fingerprint::Fingerprints {
        &self.fingerprints
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.fernets.len()
    }

    /// Always false: a keyring has at least its primary key.
    pub fn is_empty(&self) -> bool {
        self.fernets.is_empty()
    }

    /// A new random key, as `Fernet.generate_key()` makes it.
    pub fn generate_key() -> String {
        Fernet::generate_key()
    }

    fn primary(&self) -> &Fernet {
        // Non-empty by construction (`new` refuses an empty list).
        &self.fernets[0]
    }

    /// Encrypts under the primary key.
    pub fn encrypt(&self, plaintext: &[u8]) -> String {
        self.primary().encrypt(plaintext)
    }

    /// Opens a token with any configured key (no TTL, no clock-skew check).
    pub fn decrypt(&self, token: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        self.open(token)
            .map(|(_, plaintext)| plaintext)
            .ok_or(VaultError::Undecryptable)
    }

    /// Which key opens `token`, if any.
    pub fn key_match(&self, token: &str) -> KeyMatch {
        match self.open(token) {
            Some((0, _)) => KeyMatch::Primary,
            Some(_) => KeyMatch::Older,
            None => KeyMatch::None,
        }
    }

    /// The index of the first key that opens `token`, and the plaintext.
    fn open(&self, token: &str) -> Option<(usize, Zeroizing<Vec<u8>>)> {
        let token = token.trim();
        // The timestamp is read before it is authenticated, only to decrypt "at" a time
        // that disables the skew check; the HMAC is still checked over every byte.
        let at = token_timestamp(token)?.max(unix_now());
        self.fernets.iter().enumerate().find_map(|(i, f)| {
            f.decrypt_at_time(token, None, at)
                .ok()
                .map(|p| (i, Zeroizing::new(p)))
        })
    }

    /// Opens a token holding a UTF-8 secret (an access token, a webhook secret).
    pub fn decrypt_token(&self, token: &str) -> Result<AccessToken, VaultError> {
        let bytes = self.decrypt(token)?;
        let s = std::str::from_utf8(&bytes).map_err(|_| VaultError::NotUtf8)?;
        Ok(AccessToken::new(s.to_owned()))
    }

    /// Re-encrypts `token` under the primary key, keeping its timestamp. `Ok(None)` when
    /// it already opens with the primary key (nothing to do: rotation is idempotent).
    pub fn rotate(&self, token: &str) -> Result<Option<String>, VaultError> {
        let token = token.trim();
        match self.open(token) {
            None => Err(VaultError::Undecryptable),
            Some((0, _)) => Ok(None),
            Some((_, plaintext)) => {
                let timestamp = token_timestamp(token).ok_or(VaultError::Undecryptable)?;
                Ok(Some(self.primary().encrypt_at_time(&plaintext, timestamp)))
            }
        }
    }
}

fn unix_now() -> u64 {
    crate::time::now_s().max(0) as u64
}

/// The (unauthenticated) creation time written in a Fernet token.
fn token_timestamp(token: &str) -> Option<u64> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .ok()?;
    let ts: [u8; 8] = raw.get(1..9)?.try_into().ok()?;
    Some(u64::from_be_bytes(ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[&str]) -> Keyring {
        Keyring::new(
            &keys
                .iter()
                .map(|k| SecretString::from(k.to_string()))
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn bad_key_is_named_by_index() {
        let good = Keyring::generate_key();
        let err = Keyring::new(&[
            SecretString::from(good),
            SecretString::from("not-a-key".to_string()),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("vault.keys[1]"));
        assert!(matches!(Keyring::new(&[]), Err(VaultError::NoKeys)));
    }

    #[test]
    fn old_key_decrypts_and_rotation_moves_to_primary_keeping_timestamp() {
        let old = Keyring::generate_key();
        let new = Keyring::generate_key();
        let token = ring(&[&old]).encrypt(b"EAAG-secret");
        let both = ring(&[&new, &old]);
        assert_eq!(&*both.decrypt(&token).unwrap(), b"EAAG-secret");
        let rotated = both.rotate(&token).unwrap().unwrap();
        assert_eq!(token_timestamp(&rotated), token_timestamp(&token));
        assert_eq!(&*ring(&[&new]).decrypt(&rotated).unwrap(), b"EAAG-secret");
        assert!(ring(&[&old]).decrypt(&rotated).is_err());
        assert!(both.rotate(&rotated).unwrap().is_none());
    }

    #[test]
    fn primary_id_names_the_first_key_only_and_never_shows_it() {
        let (a, b) = (Keyring::generate_key(), Keyring::generate_key());
        let id = ring(&[&a]).primary_id().to_owned();
        assert_eq!(id.len(), 8);
        assert_eq!(ring(&[&a, &b]).primary_id(), id);
        assert_ne!(ring(&[&b, &a]).primary_id(), id);
        assert!(!a.contains(&id));
    }

    #[test]
    fn token_from_a_fast_clock_opens_and_key_match_names_the_key() {
        let (old, new) = (Keyring::generate_key(), Keyring::generate_key());
        let f = Fernet::new(&old).unwrap();
        let ahead = f.encrypt_at_time(b"t", unix_now() + 3600);
        let both = ring(&[&new, &old]);
        assert_eq!(&*both.decrypt(&ahead).unwrap(), b"t");
        assert_eq!(both.key_match(&ahead), KeyMatch::Older);
        assert_eq!(both.key_match(&both.encrypt(b"t")), KeyMatch::Primary);
        assert_eq!(both.key_match("gAAAAAnot-a-token"), KeyMatch::None);
        assert_eq!(both.key_match(""), KeyMatch::None);
        assert!(matches!(
            both.rotate("garbage"),
            Err(VaultError::Undecryptable)
        ));
    }

    #[test]
    fn debug_redacts() {
        let t = AccessToken::new("EAAG-secret".into());
        assert!(!format!("{t:?}").contains("EAAG"));
        assert!(!format!("{:?}", ring(&[&Keyring::generate_key()])).contains('='));
    }
}
