//! One channel's token, checked at its provider (no store writes but a refreshed
//! Instagram token):
//!
//! - Instagram Login (`graph = "instagram"`): a token past its `expires_at` is invalid;
//!   one expiring within `tokens.refresh_before_s` whose record is older than 24 h is
//!   refreshed (`GET {instagram.graph_base}/refresh_access_token?grant_type=ig_refresh_token`)
//!   and the new token (Fernet) and `expires_at` stored, compare-and-set on the old
//!   token; a refresh refused with code 190 is invalid.
//! - Other Meta tokens: `GET {graph}/{v}/debug_token?input_token=…` with the app token
//!   `{meta.app_id}|{meta.app_secrets[0]}`; `data.is_valid = false` is invalid. Without
//!   `meta.app_id` there is nothing to ask with: the channel is not checked.
//! - Telegram: `getWebhookInfo`; a `url` that is not the relay's is `webhook_replaced`, a
//!   refused bot token (401) invalid.
//!
//! Every call carries its secrets only where the provider wants them, and a refusal's
//! message has them cut out ([`crate::redact::redact_then_truncate`]).

use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::channel::fields::parse_rfc3339;
use crate::channels::outbound::SendError;
use crate::channels::telegram::outbound::{TelegramClient, TelegramEndpoint};
use crate::channels::{ChannelKind, ChannelRef};
use crate::connect::provider::{Call, OAuthClient, ProviderError};
use crate::live::Live;
use crate::redact::redact_then_truncate;
use crate::store::{ChannelRecord, Store, StoreBackend, StoreError};
use crate::vault::AccessToken;

/// The `reason` of `channel.reauth_required` when a bot's webhook points elsewhere.
pub const WEBHOOK_REPLACED: &str = "webhook_replaced";

/// An Instagram Login token younger than this cannot be refreshed (Meta's rule).
const MIN_REFRESH_AGE: Duration = Duration::from_secs(24 * 3600);

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The token works (or needs nothing yet).
    Healthy,
    /// An Instagram Login token was refreshed and stored.
    Refreshed,
    /// The tenant must reconnect: the `reason` of `channel.reauth_required`.
    Invalid(String),
    /// Nothing could be said (provider unreachable, nothing to check with); why.
    Unchecked(String),
}

/// The provider clients a check uses.
#[derive(Clone)]
pub struct Clients {
    pub oauth: OAuthClient,
    pub telegram: TelegramClient,
}

/// Checks one channel's token.
pub async fn probe(
    clients: &Clients,
    store: &Store,
    live: &Live,
    channel: &ChannelRef,
    record: &ChannelRecord,
) -> Result<Verdict, StoreError> {
    let token = match live.keyring.decrypt_token(record.token.expose_secret()) {
        Ok(t) => t,
        Err(e) => {
            return Ok(Verdict::Unchecked(format!(
                "the token cannot be opened: {e}"
            )))
        }
    };
    Ok(match channel.kind() {
        ChannelKind::Telegram => telegram(clients, live, channel, &token).await,
        ChannelKind::Instagram if record.uses_instagram_graph() => {
            return instagram_login(clients, store, live, channel, record, &token).await
        }
        _ => debug_token(clients, live, &token).await,
    })
}

fn timeout(live: &Live) -> Duration {
    Duration::from_millis(live.settings.meta.timeout_ms)
}

async fn telegram(
    clients: &Clients,
    live: &Live,
    channel: &ChannelRef,
    token: &AccessToken,
) -> Verdict {
    let endpoint = TelegramEndpoint::from_settings(&live.settings.telegram);
    match clients
        .telegram
        .call(&endpoint, token, "getWebhookInfo", b"{}".to_vec())
        .await
    {
        Ok(info) => {
            let expected = format!("{}/webhooks/telegram/{}", live.public_url, channel.id());
            let url = info.get("url").and_then(Value::as_str).unwrap_or_default();
            if url == expected {
                Verdict::Healthy
            } else {
                Verdict::Invalid(WEBHOOK_REPLACED.into())
            }
        }
        Err(SendError::TokenInvalid(_)) => {
            Verdict::Invalid("the Telegram Bot API refused the bot token (revoked?)".into())
        }
        Err(e) => Verdict::Unchecked(format!("getWebhookInfo failed: {e}")),
    }
}

async fn debug_token(clients: &Clients, live: &Live, token: &AccessToken) -> Verdict {
    let meta = &live.settings.meta;
    let Some(secret) = meta.app_secrets.first().filter(|_| !meta.app_id.is_empty()) else {
        return Verdict::Unchecked("meta.app_id is not set: debug_token cannot be asked".into());
    };
    let app_token = SecretString::from(format!("{}|{}", meta.app_id, secret.expose_secret()));
    let url = format!(
        "{}/{}/debug_token",
        meta.graph_api_base.trim_end_matches('/'),
        meta.graph_api_version
    );
    let answer = clients
        .oauth
        .send(
            Call::get(url, timeout(live))
                .secret_query("input_token", token.expose())
                .secret_query("access_token", app_token.expose_secret()),
        )
        .await;
    match answer {
        Ok(v) => {
            let data = v.get("data").cloned().unwrap_or(Value::Null);
            if data.get("is_valid").and_then(Value::as_bool) == Some(false) {
                let why = data
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(|m| {
                        redact_then_truncate(m, &[token.expose(), app_token.expose_secret()], 300)
                    })
                    .unwrap_or_else(|| "no reason given".into());
                Verdict::Invalid(format!("debug_token says the token is invalid: {why}"))
            } else if data.get("is_valid").and_then(Value::as_bool) == Some(true) {
                Verdict::Healthy
            } else {
                Verdict::Unchecked("debug_token gave no is_valid".into())
            }
        }
        // A refusal of debug_token itself is about the app token (the relay's own
        // config), not the channel's.
        Err(e) => Verdict::Unchecked(format!("debug_token failed: {e}")),
    }
}

async fn instagram_login(
    clients: &Clients,
    store: &Store,
    live: &Live,
    channel: &ChannelRef,
    record: &ChannelRecord,
    token: &AccessToken,
) -> Result<Verdict, StoreError> {
    let now = SystemTime::now();
    let Some(expires) = record.expires_at.as_deref().and_then(parse_rfc3339) else {
        // No expiry known: nothing to refresh before.
        return Ok(Verdict::Healthy);
    };
    if expires <= now {
        return Ok(Verdict::Invalid(format!(
            "the Instagram token expired at {}",
            record.expires_at.as_deref().unwrap_or_default()
        )));
    }
    let refresh_before = Duration::from_secs(live.settings.tokens.refresh_before_s);
    let due = expires.duration_since(now).unwrap_or_default() <= refresh_before;
    // The record's age stands for the token's (it is rewritten with every new token);
    // a record without `updated_at` was written by someone else, long enough ago.
    let old_enough = record
        .updated_at
        .as_deref()
        .and_then(parse_rfc3339)
        .is_none_or(|t| now.duration_since(t).unwrap_or_default() >= MIN_REFRESH_AGE);
    if !due || !old_enough {
        return Ok(Verdict::Healthy);
    }
    let url = format!(
        "{}/refresh_access_token",
        live.settings.instagram.graph_base.trim_end_matches('/')
    );
    let answer = clients
        .oauth
        .send(
            Call::get(url, timeout(live))
                .query("grant_type", "ig_refresh_token")
                .secret_query("access_token", token.expose()),
        )
        .await;
    let v = match answer {
        Ok(v) => v,
        Err(e) if e.is_token_invalid() => {
            let why = match &e {
                ProviderError::Refused { message, .. } => message.clone(),
                ProviderError::Unreachable(m) => m.clone(),
            };
            return Ok(Verdict::Invalid(format!(
                "the Instagram token refresh was refused (code 190): {why}"
            )));
        }
        Err(e) => {
            return Ok(Verdict::Unchecked(format!(
                "refresh_access_token failed: {e}"
            )))
        }
    };
    let Some(new_token) = v.get("access_token").and_then(Value::as_str) else {
        return Ok(Verdict::Unchecked(
            "refresh_access_token gave no access_token".into(),
        ));
    };
    let expires_in = v
        .get("expires_in")
        .and_then(Value::as_i64)
        .unwrap_or(5_184_000);
    let expires_at =
        crate::time::format_rfc3339(crate::time::now_ms() / 1000 * 1000 + expires_in * 1000);
    let sealed = SecretString::from(live.keyring.encrypt(new_token.as_bytes()));
    let replaced = store
        .replace_channel_token(channel, &record.token, &sealed, &expires_at)
        .await?;
    Ok(if replaced {
        Verdict::Refreshed
    } else {
        // Someone stored another token meanwhile: theirs stands.
        Verdict::Unchecked("the channel changed during the refresh; left as it is".into())
    })
}
