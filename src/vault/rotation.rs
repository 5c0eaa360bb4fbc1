//! `vault rotate`: re-encrypt every stored token, webhook secret and PIN under the primary
//! key, so the older keys can then be dropped.
//!
//! Safe while other replicas serve and other services write:
//! - each record is rewritten with a compare-and-set on its ciphertexts
//!   ([`StoreBackend::replace_channel_secrets`]): a record changed since it was read is
//!   read again, never overwritten;
//! - a record's token, webhook secret and PIN change together, in one atomic write, and the
//!   new ciphertext is checked to open with the primary key before it is written, so a
//!   reader always finds secrets it can open (given every replica already has the
//!   primary key: add a key everywhere first, then rotate);
//! - a secret already under the primary key is left as it is, so running it again
//!   changes nothing (idempotent), and the plaintext and timestamp never change.

use futures_util::stream::{self, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::{KeyMatch, Keyring, VaultError};
use crate::channel::ChannelRef;
use crate::config::Settings;
use crate::store::{ChannelRecord, Store, StoreBackend, StoreError};

/// How often a record that keeps changing under the rotation is read again.
const ATTEMPTS: usize = 5;
/// Records rotated at once.
const CONCURRENCY: usize = 8;

/// What a rotation did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RotationReport {
    /// The fingerprint of the key everything now opens with ([`Keyring::primary_id`]).
    pub primary_key_id: String,
    /// Channel records looked at.
    pub checked: usize,
    /// Records re-encrypted under the primary key (the count the contract asks for).
    pub rotated: usize,
    /// Records whose secrets were already under the primary key.
    pub already_current: usize,
    /// Records that could not be rotated, and why (they are left as they were).
    pub failed: Vec<RotationFailure>,
    /// `[[channels]]` in the config whose Fernet tokens open only with an older key: the
    /// config file still needs them re-encrypted (`switchboard vault encrypt`) before
    /// the older key is dropped.
    pub config_channels_on_older_key: Vec<String>,
}

/// One record rotation left alone.
#[derive(Debug, Clone, Serialize)]
pub struct RotationFailure {
    pub channel: String,
    pub reason: String,
}

enum Outcome {
    Rotated,
    Current,
    Gone,
    Failed(String),
}

/// Rotates every channel record in the store.
pub async fn rotate_all(
    store: &Store,
    keyring: &Keyring,
    settings: &Settings,
) -> Result<RotationReport, StoreError> {
    let keys = store.scan(&store.keys().channel_pattern()).await?;
    let channels: Vec<ChannelRef> = keys
        .iter()
        .filter_map(|k| store.keys().parse_channel(k))
        .collect();
    let mut report = RotationReport {
        primary_key_id: keyring.primary_id().to_owned(),
        ..RotationReport::default()
    };
    let mut results = stream::iter(channels)
        .map(|c| async move {
            let outcome = rotate_one(store, keyring, &c).await;
            (c, outcome)
        })
        .buffer_unordered(CONCURRENCY);
    while let Some((channel, outcome)) = results.next().await {
        match outcome? {
            Outcome::Rotated => {
                report.checked += 1;
                report.rotated += 1;
            }
            Outcome::Current => {
                report.checked += 1;
                report.already_current += 1;
            }
            Outcome::Gone => {}
            Outcome::Failed(reason) => {
                report.checked += 1;
                tracing::warn!(channel = %channel, %reason, "Channel secrets not rotated.");
                report.failed.push(RotationFailure {
                    channel: channel.to_string(),
                    reason,
                });
            }
        }
    }
    report.failed.sort_by(|a, b| a.channel.cmp(&b.channel));
    for c in &settings.channels {
        let on_older = std::iter::once(&c.token)
            .chain(c.webhook_secret.as_ref())
            .chain(c.pin.as_ref())
            .any(|s| keyring.key_match(s.expose_secret()) == KeyMatch::Older);
        if on_older {
            report
                .config_channels_on_older_key
                .push(format!("{}:{}", c.kind, c.id));
        }
    }
    tracing::info!(
        checked = report.checked,
        rotated = report.rotated,
        failed = report.failed.len(),
        "Vault rotation finished."
    );
    Ok(report)
}

/// Re-encrypts one record's secrets, if any is under an older key.
async fn rotate_one(
    store: &Store,
    keyring: &Keyring,
    channel: &ChannelRef,
) -> Result<Outcome, StoreError> {
    for _ in 0..ATTEMPTS {
        let current = match store.get_channel(channel).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(Outcome::Gone),
            Err(StoreError::Malformed { reason, .. }) => {
                return Ok(Outcome::Failed(format!("malformed record: {reason}")))
            }
            Err(e) => return Err(e),
        };
        let token = match rotate_secret(keyring, &current.token) {
            Ok(t) => t,
            Err(_) => {
                return Ok(Outcome::Failed(
                    "the token opens with no configured vault key".into(),
                ))
            }
        };
        let webhook_secret = match current
            .webhook_secret
            .as_ref()
            .map(|s| rotate_secret(keyring, s))
            .transpose()
        {
            Ok(w) => w,
            Err(_) => {
                return Ok(Outcome::Failed(
                    "the webhook secret opens with no configured vault key".into(),
                ))
            }
        };
        let pin = match current
            .pin
            .as_ref()
            .map(|s| rotate_secret(keyring, s))
            .transpose()
        {
            Ok(p) => p,
            Err(_) => {
                return Ok(Outcome::Failed(
                    "the PIN opens with no configured vault key".into(),
                ))
            }
        };
        if token.is_none()
            && webhook_secret.as_ref().and_then(Option::as_ref).is_none()
            && pin.as_ref().and_then(Option::as_ref).is_none()
        {
            return Ok(Outcome::Current);
        }
        let updated = ChannelRecord {
            token: token.unwrap_or_else(|| current.token.clone()),
            webhook_secret: match webhook_secret {
                Some(Some(new)) => Some(new),
                _ => current.webhook_secret.clone(),
            },
            pin: match pin {
                Some(Some(new)) => Some(new),
                _ => current.pin.clone(),
            },
            ..current.clone()
        };
        if store
            .replace_channel_secrets(channel, &current, &updated)
            .await?
        {
            tracing::debug!(channel = %channel, "Channel secrets re-encrypted under the primary key.");
            return Ok(Outcome::Rotated);
        }
        // Written by someone else since it was read: read it again.
    }
    Ok(Outcome::Failed(format!(
        "the record changed during each of {ATTEMPTS} attempts; run the rotation again"
    )))
}

/// The secret re-encrypted under the primary key, or `None` when it already is.
fn rotate_secret(
    keyring: &Keyring,
    secret: &SecretString,
) -> Result<Option<SecretString>, VaultError> {
    match keyring.rotate(secret.expose_secret())? {
        None => Ok(None),
        Some(new) => {
            // Never write what the primary key cannot open.
            if keyring.key_match(&new) != KeyMatch::Primary {
                return Err(VaultError::Undecryptable);
            }
            Ok(Some(SecretString::from(new)))
        }
    }
}
