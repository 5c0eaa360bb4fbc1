//! Registering the relay as a bot's webhook (`switchboard telegram set-webhook <bot_id>`)
//! and checking it (`switchboard telegram webhook-info <bot_id>`).
//!
//! [`set_webhook`] makes a fresh random `secret_token`, stores it Fernet-encrypted with
//! the channel, then calls `setWebhook` with it, the relay's URL
//! (`server.public_url` + `/webhooks/telegram/<bot_id>`) and [`ALLOWED_UPDATES`].
//!
//! The order leaves no moment where Telegram sends a secret the relay refuses: before
//! the new secret replaces the old one in the channel record, the old one (still a
//! Fernet token) is copied to `{prefix}telegram:previous_secret:<bot_id>` for
//! [`PREVIOUS_SECRET_TTL`]; the webhook handler accepts either while that key lives.
//! So requests Telegram sends before it applies the new secret still pass, and so do
//! those after. If `setWebhook` fails, the channel record is put back as it was.

use std::time::Duration;

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::outbound::{TelegramClient, TelegramEndpoint};
use crate::channels::outbound::SendError;
use crate::channels::{ChannelKind, ChannelRef};
use crate::config::TelegramSettings;
use crate::store::{ChannelRecord, Keys, Store, StoreBackend, StoreError};
use crate::vault::{AccessToken, Keyring, VaultError};

/// The updates asked for: every kind the relay normalizes, from the one list the
/// inbound dispatch reads.
pub use super::inbound::UPDATE_KINDS as ALLOWED_UPDATES;

/// How long the previous secret stays accepted after a change.
pub const PREVIOUS_SECRET_TTL: Duration = Duration::from_secs(15 * 60);

/// Length of a generated secret (Telegram allows 1–256 of `A-Z a-z 0-9 _ -`).
const SECRET_LEN: usize = 64;
const SECRET_CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// The key holding a bot's previous webhook secret (a Fernet token) while it is still
/// accepted.
pub fn previous_secret_key(keys: &Keys, bot_id: &str) -> String {
    keys.telegram_previous_secret(bot_id)
}

/// A fresh random secret of Telegram's allowed characters (384 bits).
pub fn generate_secret() -> SecretString {
    let mut bytes = [0u8; SECRET_LEN];
    rand::rng().fill_bytes(&mut bytes);
    // 64 characters: each byte's low 6 bits pick one uniformly.
    let s: String = bytes
        .iter()
        .map(|b| SECRET_CHARS[usize::from(b & 63)] as char)
        .collect();
    SecretString::from(s)
}

/// Whether `s` is a valid `secret_token`: 1–256 characters of `A-Z a-z 0-9 _ -`.
pub fn is_valid_secret(s: &str) -> bool {
    (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What was registered.
#[derive(Debug, Clone)]
pub struct Registration {
    pub url: String,
    pub allowed_updates: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SetWebhookError {
    #[error("no telegram channel `{0}` in the store (add it with its bot token first)")]
    ChannelNotFound(String),
    #[error("the stored token belongs to another bot than `{0}` (its id is the part before ':')")]
    TokenMismatch(String),
    #[error("the channel record changed while the webhook was being set; run the command again")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the channel's token cannot be opened: {0}")]
    Vault(#[from] VaultError),
    #[error("Telegram refused: {code} {description}")]
    Telegram { code: i64, description: String },
    #[error("Telegram could not be reached: {0}")]
    Unreachable(String),
}

/// The bot's channel record and its opened token (which must be that bot's).
async fn load_bot(
    store: &Store,
    keyring: &Keyring,
    bot_id: &str,
) -> Result<(ChannelRef, ChannelRecord, AccessToken), SetWebhookError> {
    let channel = ChannelRef::parse(ChannelKind::Telegram, bot_id)
        .map_err(|_| SetWebhookError::ChannelNotFound(bot_id.to_owned()))?;
    let record = store
        .get_channel(&channel)
        .await?
        .ok_or_else(|| SetWebhookError::ChannelNotFound(bot_id.to_owned()))?;
    let token = keyring.decrypt_token(record.token.expose_secret())?;
    if token.expose().split(':').next() != Some(bot_id) {
        return Err(SetWebhookError::TokenMismatch(bot_id.to_owned()));
    }
    Ok((channel, record, token))
}

/// What Telegram says about a bot's webhook (`getWebhookInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookInfo {
    /// The URL Telegram posts to (empty: no webhook).
    pub url: String,
    /// The URL this relay expects: `server.public_url` + `/webhooks/telegram/<bot_id>`.
    pub expected_url: String,
    pub pending_update_count: i64,
    /// The last delivery error Telegram saw, when there was one: Unix time and message.
    pub last_error: Option<(i64, String)>,
    /// Empty when Telegram uses its default (which leaves out `message_reaction`).
    pub allowed_updates: Vec<String>,
}

impl WebhookInfo {
    /// Points at this relay and asks for every update kind the relay normalizes.
    pub fn is_complete(&self) -> bool {
        self.url == self.expected_url
            && ALLOWED_UPDATES
                .iter()
                .all(|u| self.allowed_updates.iter().any(|a| a == u))
    }
}

/// Reads `getWebhookInfo` for bot `bot_id` with the channel's token; `public_url` is
/// `server.public_url` without a trailing slash.
pub async fn webhook_info(
    store: &Store,
    keyring: &Keyring,
    telegram: &TelegramSettings,
    public_url: &str,
    bot_id: &str,
) -> Result<WebhookInfo, SetWebhookError> {
    let (_, _, token) = load_bot(store, keyring, bot_id).await?;
    let client = TelegramClient::new()
        .map_err(|e| SetWebhookError::Unreachable(e.without_url().to_string()))?;
    let result = client
        .call(
            &TelegramEndpoint::from_settings(telegram),
            &token,
            "getWebhookInfo",
            b"{}".to_vec(),
        )
        .await
        .map_err(api_error)?;
    let str_of = |k: &str| result.get(k).and_then(Value::as_str).unwrap_or_default();
    Ok(WebhookInfo {
        url: str_of("url").to_owned(),
        expected_url: format!("{public_url}/webhooks/telegram/{bot_id}"),
        pending_update_count: result
            .get("pending_update_count")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        last_error: result
            .get("last_error_date")
            .and_then(Value::as_i64)
            .map(|d| {
                let m = str_of("last_error_message");
                (
                    d,
                    crate::redact::redact_then_truncate(m, &[token.expose()], 512),
                )
            }),
        allowed_updates: result
            .get("allowed_updates")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Sets bot `bot_id`'s webhook to this relay with a new secret (see the module doc for
/// the order of writes); `public_url` is `server.public_url` without a trailing slash.
pub async fn set_webhook(
    store: &Store,
    keyring: &Keyring,
    telegram: &TelegramSettings,
    public_url: &str,
    bot_id: &str,
) -> Result<Registration, SetWebhookError> {
    let (channel, current, token) = load_bot(store, keyring, bot_id).await?;

    let secret = generate_secret();
    if let Some(old) = &current.webhook_secret {
        store
            .set_ex(
                &previous_secret_key(store.keys(), bot_id),
                old.expose_secret(),
                PREVIOUS_SECRET_TTL,
            )
            .await?;
    }
    let updated = ChannelRecord {
        webhook_secret: Some(SecretString::from(
            keyring.encrypt(secret.expose_secret().as_bytes()),
        )),
        ..current.clone()
    };
    if !store
        .replace_channel_secrets(&channel, &current, &updated)
        .await?
    {
        return Err(SetWebhookError::Conflict);
    }

    let registration = Registration {
        url: format!("{public_url}/webhooks/telegram/{bot_id}"),
        allowed_updates: ALLOWED_UPDATES.iter().map(|s| (*s).to_owned()).collect(),
    };
    let result = call_set_webhook(telegram, &token, &registration, &secret).await;
    if let Err(e) = result {
        // Put the record back so the secret Telegram still uses stays the current one.
        if let Err(restore) = store
            .replace_channel_secrets(&channel, &updated, &current)
            .await
        {
            tracing::error!(error = %restore, channel = %channel, "The previous webhook secret could not be restored.");
        }
        return Err(e);
    }
    tracing::info!(channel = %channel, "Telegram webhook set.");
    Ok(registration)
}

async fn call_set_webhook(
    telegram: &TelegramSettings,
    token: &AccessToken,
    registration: &Registration,
    secret: &SecretString,
) -> Result<(), SetWebhookError> {
    let client = TelegramClient::new()
        .map_err(|e| SetWebhookError::Unreachable(e.without_url().to_string()))?;
    let body = json!({
        "url": registration.url,
        "secret_token": secret.expose_secret(),
        "allowed_updates": registration.allowed_updates,
        "drop_pending_updates": false,
    });
    // The shared Bot API client keeps the token (in the URL path) out of its errors.
    client
        .call(
            &TelegramEndpoint::from_settings(telegram),
            token,
            "setWebhook",
            body.to_string().into_bytes(),
        )
        .await
        .map(|_| ())
        .map_err(api_error)
}

/// The Bot API's own code and description, for the operator.
fn api_error(e: SendError) -> SetWebhookError {
    match e {
        SendError::TokenInvalid(d)
        | SendError::RecipientUnavailable(d)
        | SendError::Provider(d)
        | SendError::OutsideWindow(d)
        | SendError::RateLimited { detail: d, .. } => SetWebhookError::Telegram {
            code: d.code.unwrap_or(i64::from(d.http_status)),
            description: d.message,
        },
        other => SetWebhookError::Unreachable(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_valid_and_fresh() {
        let a = generate_secret();
        let b = generate_secret();
        assert!(is_valid_secret(a.expose_secret()));
        assert_eq!(a.expose_secret().len(), SECRET_LEN);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn secret_rules_match_telegram_fixture_cases() {
        assert!(is_valid_secret("cRm-Relay_7f3a9c2e1b4d"));
        assert!(is_valid_secret("a"));
        assert!(is_valid_secret(&"x".repeat(256)));
        assert!(!is_valid_secret(&"x".repeat(257)));
        assert!(!is_valid_secret(""));
        assert!(!is_valid_secret("bad.token"));
        assert!(!is_valid_secret("bad token"));
        assert!(!is_valid_secret("ключ"));
    }
}
