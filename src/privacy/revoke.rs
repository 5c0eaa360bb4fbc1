//! Withdrawing the app's access at the provider, before a channel's token is removed
//! (`DELETE /admin/v1/channels/{kind}/{id}?revoke=true`, `switchboard channels delete
//! --revoke`):
//!
//! - Meta channels: Graph `DELETE /{version}/{user-id}/permissions` with the channel's
//!   token (`Authorization: Bearer`), which de-authorizes the app for the user who
//!   connected the channel. Needs the channel's `user_id`.
//! - Telegram: `deleteWebhook` with `drop_pending_updates=true`: no more updates come,
//!   and the updates Telegram still holds for the bot are dropped. (A bot token itself
//!   can only be revoked with @BotFather.)
//!
//! A provider that says the token is already invalid counts as revoked: the access is
//! gone either way. Telegram puts the token in the URL path, so errors are stripped of
//! their URL before they are shown or logged.

use std::time::Duration;

use serde_json::Value;

use crate::channels::{build_url, ChannelKind, ChannelRef};
use crate::live::Live;
use crate::store::{ChannelRecord, Store, StoreBackend, StoreError};

/// Largest provider answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why access could not be revoked. Never carries a token or a URL.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("the channel has no user_id: Graph needs the user whose permissions to revoke (store it with the channel, or delete without revoking)")]
    NoUserId,
    #[error("the channel's token cannot be opened with the vault keys")]
    Undecryptable,
    #[error("the provider refused the revocation (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
}

impl RevokeError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            RevokeError::Unreachable(_) => true,
            RevokeError::Refused { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// Why `revoke=true` deletion stopped: nothing was deleted.
#[derive(Debug, thiserror::Error)]
pub enum RevokeDeleteError {
    #[error("channel {0} is not in the store")]
    NotFound(ChannelRef),
    #[error(transparent)]
    Revoke(#[from] RevokeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Revokes the app's access at the provider, then removes the channel (its token with
/// it). When the provider cannot be asked, nothing is removed: the operator may try
/// again, or delete without revoking.
pub async fn revoke_then_delete(
    store: &Store,
    live: &Live,
    revoker: &Revoker,
    channel: &ChannelRef,
) -> Result<(), RevokeDeleteError> {
    let record = store
        .get_channel(channel)
        .await?
        .ok_or_else(|| RevokeDeleteError::NotFound(channel.clone()))?;
    revoker.revoke(live, channel, &record).await?;
    if super::remove_channels(store, std::slice::from_ref(channel)).await? == 0 {
        return Err(RevokeDeleteError::NotFound(channel.clone()));
    }
    tracing::info!(channel = %channel, "Channel revoked and deleted.");
    Ok(())
}

/// Revokes access at the provider. Build once and clone (it holds the HTTP pool).
#[derive(Clone)]
pub struct Revoker {
    http: reqwest::Client,
}

impl Revoker {
    /// A pooled client that follows no redirects; each call gets the deadline of its
    /// provider (`meta.timeout_ms`, `telegram.timeout_ms`) from the live settings.
    pub fn new() -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http })
    }

    /// Revokes the app's access to `channel` (bases and version from the live config).
    pub async fn revoke(
        &self,
        live: &Live,
        channel: &ChannelRef,
        record: &ChannelRecord,
    ) -> Result<(), RevokeError> {
        let token = live
            .keyring
            .decrypt_token(secrecy::ExposeSecret::expose_secret(&record.token))
            .map_err(|_| RevokeError::Undecryptable)?;
        let result = match channel.kind() {
            ChannelKind::Telegram => {
                let bot = format!("bot{}", token.expose());
                let url = build_url(
                    &live.settings.telegram.api_base,
                    &[&bot, "deleteWebhook"],
                    &[],
                )
                .map_err(url_refused)?;
                let req = self
                    .http
                    .post(url)
                    .timeout(Duration::from_millis(live.settings.telegram.timeout_ms))
                    .json(&serde_json::json!({"drop_pending_updates": true}));
                self.send(req, &token).await.map(|_| ())
            }
            _ => {
                let user = record.user_id.as_deref().ok_or(RevokeError::NoUserId)?;
                let url = build_url(
                    &live.settings.meta.graph_api_base,
                    &[&live.settings.meta.graph_api_version, user, "permissions"],
                    &[],
                )
                .map_err(url_refused)?;
                let req = self
                    .http
                    .delete(url)
                    .timeout(Duration::from_millis(live.settings.meta.timeout_ms))
                    .bearer_auth(token.expose());
                self.send(req, &token).await.map(|_| ())
            }
        };
        match result {
            Err(RevokeError::Refused { status, message }) if token_already_invalid(status) => {
                tracing::info!(channel = %channel, status, %message, stage = "sending", "Token already invalid at the provider; access counts as revoked.");
                Ok(())
            }
            Ok(()) => {
                tracing::info!(channel = %channel, stage = "sending", "Access revoked at the provider.");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(channel = %channel, error = %e, stage = "sending", "Access could not be revoked at the provider.");
                Err(e)
            }
        }
    }

    /// Sends and reads a bounded answer; a non-success answer becomes `Refused` with the
    /// provider's message (Graph `error.message`, Telegram `description`).
    /// A provider may echo a malformed token in its message: it is redacted before the
    /// message is cut to length, so no piece of it is passed on.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        token: &crate::vault::AccessToken,
    ) -> Result<Value, RevokeError> {
        let mut resp = req
            .send()
            .await
            .map_err(|e| RevokeError::Unreachable(e.without_url().to_string()))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| RevokeError::Unreachable(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                break;
            }
            body.extend_from_slice(&chunk);
        }
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let refused_in_body = json.get("ok") == Some(&Value::Bool(false))
            || json.get("success") == Some(&Value::Bool(false));
        if status.is_success() && !refused_in_body {
            return Ok(json);
        }
        let message = crate::redact::redact_then_truncate(
            json.pointer("/error/message")
                .or_else(|| json.get("description"))
                .and_then(Value::as_str)
                .unwrap_or("no message"),
            &[token.expose()],
            200,
        );
        let code = json.pointer("/error/code").and_then(Value::as_u64);
        Err(RevokeError::Refused {
            // Graph answers an invalid token with code 190 (HTTP 400 or 401).
            status: if code == Some(190) {
                401
            } else {
                status.as_u16()
            },
            message,
        })
    }
}

/// A URL that cannot be built (a stored `user_id` of `..`, say) is refused, nothing sent.
fn url_refused(e: crate::channels::UrlError) -> RevokeError {
    RevokeError::Refused {
        status: 400,
        message: e.to_string(),
    }
}

/// Graph 190 (mapped to 401 above) and Telegram 401/404 ("Unauthorized", "Not Found"
/// for a revoked bot token) mean there is no access left to revoke.
fn token_already_invalid(status: u16) -> bool {
    status == 401 || status == 404
}
