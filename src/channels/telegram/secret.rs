//! The Telegram webhook secret: Telegram sends back, in `X-Telegram-Bot-Api-Secret-Token`,
//! the `secret_token` given to `setWebhook`; a request whose header does not match the
//! channel's webhook secret (or, during a `set-webhook` change, the previous one, kept
//! under [`super::webhook::previous_secret_key`]) is refused before its body is read.

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::webhook;
use crate::channels::Verified;
use crate::store::{ChannelRecord, Store, StoreBackend};
use crate::vault::{Keyring, VaultError};

/// Why a webhook request's secret was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the X-Telegram-Bot-Api-Secret-Token header is missing")]
    Missing,
    #[error(
        "the X-Telegram-Bot-Api-Secret-Token header does not match the channel's webhook secret"
    )]
    Mismatch,
}

/// Proof that a request's secret header was accepted; it turns the request's body into
/// a [`Verified`] (the header is checked before the body is read).
#[derive(Debug)]
pub struct SecretAccepted(());

impl SecretAccepted {
    pub fn verified(self, body: &[u8]) -> Verified<'_> {
        Verified::new(body)
    }
}

/// Checks the `X-Telegram-Bot-Api-Secret-Token` header against the channel's accepted
/// secrets (the current one, and during a `set-webhook` change the previous one), in
/// constant time: digests are compared, so neither content nor length leaks.
pub fn verify_secret(
    header: Option<&[u8]>,
    accepted: &[&[u8]],
) -> Result<SecretAccepted, SecretError> {
    let header = header.ok_or(SecretError::Missing)?;
    let got: [u8; 32] = Sha256::digest(header).into();
    let mut ok = subtle::Choice::from(0u8);
    for secret in accepted.iter().filter(|s| !s.is_empty()) {
        let want: [u8; 32] = Sha256::digest(secret).into();
        ok |= want.ct_eq(&got);
    }
    if bool::from(ok) {
        Ok(SecretAccepted(()))
    } else {
        Err(SecretError::Mismatch)
    }
}

/// Why [`check_webhook_secret`] did not accept a request.
#[derive(Debug, thiserror::Error)]
pub enum SecretCheckError {
    /// The header is missing or matches no accepted secret (401).
    #[error(transparent)]
    Refused(#[from] SecretError),
    /// A stored secret does not open with the configured vault keys (500).
    #[error("the channel's webhook secret cannot be opened: {0}")]
    Unopenable(#[source] VaultError),
}

/// Checks a request's `X-Telegram-Bot-Api-Secret-Token` `header` against the webhook
/// secret of bot `bot_id` (its channel `record`), and, when it does not match, against
/// the previous secret a `set-webhook` change keeps for a while. A previous secret the
/// store cannot give right now counts as none.
pub async fn check_webhook_secret(
    store: &Store,
    keyring: &Keyring,
    bot_id: &str,
    record: &ChannelRecord,
    header: Option<&[u8]>,
) -> Result<SecretAccepted, SecretCheckError> {
    let open = |fernet: &str| {
        keyring
            .decrypt(fernet)
            .map_err(SecretCheckError::Unopenable)
    };
    let current: Option<Zeroizing<Vec<u8>>> = match &record.webhook_secret {
        Some(s) => Some(open(s.expose_secret())?),
        None => None,
    };
    let accepted: Vec<&[u8]> = current.iter().map(|s| s.as_slice()).collect();
    match verify_secret(header, &accepted) {
        Ok(ok) => Ok(ok),
        // During a `set-webhook` change the previous secret is still accepted.
        Err(SecretError::Mismatch) => {
            let previous = store
                .get(&webhook::previous_secret_key(store.keys(), bot_id))
                .await
                .ok()
                .flatten();
            let Some(previous) = previous else {
                return Err(SecretError::Mismatch.into());
            };
            let previous = open(&previous)?;
            Ok(verify_secret(header, &[previous.as_slice()])?)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_must_match_exactly() {
        assert!(verify_secret(Some(b"abc"), &[b"abc"]).is_ok());
        assert!(verify_secret(Some(b"abc"), &[b"old", b"abc"]).is_ok());
        assert_eq!(
            verify_secret(Some(b"abc "), &[b"abc"]).unwrap_err(),
            SecretError::Mismatch
        );
        assert_eq!(
            verify_secret(Some(b"Abc"), &[b"abc"]).unwrap_err(),
            SecretError::Mismatch
        );
        assert_eq!(
            verify_secret(None, &[b"abc"]).unwrap_err(),
            SecretError::Missing
        );
        assert_eq!(
            verify_secret(Some(b""), &[b""]).unwrap_err(),
            SecretError::Mismatch
        );
        assert_eq!(
            verify_secret(Some(b"abc"), &[]).unwrap_err(),
            SecretError::Mismatch
        );
    }
}
