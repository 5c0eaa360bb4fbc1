//! Replies: what `POST /v1/messages` and `GET /v1/media/…` do behind the routes.
//!
//! 1. [`authenticate`]: the tenant of an API key (compared in constant time,
//!    [`crate::live::Live::tenant_for_api_key`]).
//! 2. [`open_channel`]: the channel from the store; another tenant's → 403, none → 404;
//!    its token opened from the vault on every call (no cache: a rotation, a token change
//!    or a delete takes effect at once on every replica).
//! 3. [`send`]: through the channel's [`Outbound`] sender, retrying only what cannot have
//!    been delivered ([`SendError::is_retryable`]: a 5xx, a refused connection) with
//!    exponential backoff and jitter until `replies.retry_deadline_ms`. A timeout after the
//!    request left is never retried.
//! 4. On `token_invalid`, the tenant gets `channel.reauth_required`, at most once an hour
//!    per channel ([`crate::store::Keys::reauth_notice`], `SET NX EX`, so across replicas).
//!
//! [`idempotency`] keeps `Idempotency-Key` answers; [`media`] streams inbound media.

pub mod idempotency;
pub mod media;

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;

use crate::app::AppState;
use crate::channels::instagram::outbound::Instagram;
use crate::channels::messenger::outbound::Messenger;
use crate::channels::meta::graph::{GraphClient, GraphEndpoint};
use crate::channels::outbound::{
    Outbound, OutboundMessage, ParseError, ProviderDetail, Receipt, SendError,
};
use crate::channels::telegram::outbound::{Telegram, TelegramClient, TelegramEndpoint};
use crate::channels::whatsapp::outbound::WhatsApp;
use crate::channels::{ChannelKind, ChannelRef};
use crate::delivery::Tenant;
use crate::event::{DataBuilder, Event, EventId, EventType};
use crate::live::Live;
use crate::store::{StoreBackend, StoreError};
use crate::vault::{AccessToken, VaultError};

/// The provider clients, built once (pooled), shared by every request.
#[derive(Clone)]
pub struct Providers {
    pub graph: GraphClient,
    pub telegram: TelegramClient,
}

impl Providers {
    pub fn new() -> Result<Self, reqwest::Error> {
        Ok(Self {
            graph: GraphClient::new()?,
            telegram: TelegramClient::new()?,
        })
    }
}

/// Why a reply (or a media fetch) was not done.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("missing or unknown API key")]
    Unauthorized,
    #[error("invalid request: {0}")]
    Invalid(#[from] ParseError),
    #[error("no channel {0}")]
    ChannelNotFound(ChannelRef),
    #[error("channel {0} belongs to another tenant")]
    NotYourChannel(ChannelRef),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the channel's token cannot be opened: {0}")]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Send(#[from] SendError),
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyInFlight,
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyMismatch,
    /// Media: the file is larger than `media.max_bytes`.
    #[error("the media file is larger than media.max_bytes ({0} bytes)")]
    MediaTooLarge(u64),
}

/// The tenant whose API key this is (the route reads it from `Authorization: Bearer`).
pub fn authenticate(live: &Live, api_key: Option<&str>) -> Result<Arc<Tenant>, ReplyError> {
    api_key
        .and_then(|k| live.tenant_for_api_key(k))
        .ok_or(ReplyError::Unauthorized)
}

/// Looks the channel up, checks it is the tenant's, and opens its token.
pub async fn open_channel(
    state: &AppState,
    live: &Live,
    tenant: &Tenant,
    channel: &ChannelRef,
) -> Result<AccessToken, ReplyError> {
    let record = state
        .store
        .get_channel(channel)
        .await?
        .ok_or_else(|| ReplyError::ChannelNotFound(channel.clone()))?;
    if record.tenant != tenant.id {
        return Err(ReplyError::NotYourChannel(channel.clone()));
    }
    Ok(live.keyring.decrypt_token(record.token.expose_secret())?)
}

/// One send through the channel's adapter (no retry).
pub async fn send_once(
    providers: &Providers,
    live: &Live,
    msg: &OutboundMessage,
    token: &AccessToken,
) -> Result<Receipt, SendError> {
    let graph = || GraphEndpoint::from_settings(&live.settings.meta);
    match msg.channel.kind {
        ChannelKind::Whatsapp => {
            WhatsApp {
                graph: &providers.graph,
                endpoint: graph(),
            }
            .send(msg, token)
            .await
        }
        ChannelKind::Messenger => {
            Messenger {
                graph: &providers.graph,
                endpoint: graph(),
            }
            .send(msg, token)
            .await
        }
        ChannelKind::Instagram => {
            Instagram {
                graph: &providers.graph,
                endpoint: graph(),
            }
            .send(msg, token)
            .await
        }
        ChannelKind::Telegram => {
            Telegram {
                client: &providers.telegram,
                endpoint: TelegramEndpoint::from_settings(&live.settings.telegram),
            }
            .send(msg, token)
            .await
        }
    }
}

/// Sends with retries of what cannot have been delivered, until the deadline.
pub async fn send(
    providers: &Providers,
    live: &Live,
    msg: &OutboundMessage,
    token: &AccessToken,
) -> Result<Receipt, SendError> {
    let deadline = Instant::now() + Duration::from_millis(live.settings.replies.retry_deadline_ms);
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1u32;
    loop {
        let result = send_once(providers, live, msg, token).await;
        match result {
            Err(e) if e.is_retryable() => {
                // ±20 % jitter, so replicas do not retry in step.
                let factor = 0.8 + rand::random::<f64>() * 0.4;
                let wait = delay.mul_f64(factor);
                if Instant::now() + wait >= deadline {
                    return Err(e);
                }
                tracing::warn!(
                    channel = %msg.channel,
                    attempt,
                    error = %e,
                    stage = "sending",
                    "Reply failed before reaching the provider; retrying."
                );
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(Duration::from_secs(2));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Sends the tenant `channel.reauth_required`, unless it got one for this channel in the
/// last hour (on any replica). Runs in the background through the dispatcher (delivered
/// now, or buffered for retry); if neither works the marker is freed, so the next
/// refusal tries again.
pub fn notify_reauth(
    state: &actix_web::web::Data<AppState>,
    live: Arc<Live>,
    channel: ChannelRef,
    detail: &ProviderDetail,
) {
    let reason = format!(
        "the provider says the access token is invalid or expired ({} code {}{})",
        detail.provider,
        detail.code.map_or_else(|| "none".into(), |c| c.to_string()),
        detail
            .subcode
            .map_or_else(String::new, |s| format!(", subcode {s}"))
    );
    let state = state.clone();
    tokio::spawn(async move {
        let key = state.store.keys().reauth_notice(&channel);
        match state
            .store
            .set_nx_ex(&key, "1", Duration::from_secs(3600))
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(channel = %channel, error = %e, stage = "sending", "Reauth notice not sent: the store is unavailable.");
                return;
            }
        }
        let now = crate::time::now_ms();
        let event = Event {
            id: EventId::derive(&[
                "channel.reauth_required",
                channel.kind.as_str(),
                &channel.id,
                &now.to_string(),
            ]),
            event_type: EventType::ChannelReauthRequired,
            timestamp_ms: now,
            channel: channel.clone(),
            conversation: None,
            data: DataBuilder::new().set("reason", reason).build(),
            raw: None,
        };
        let settled = match state.dispatcher.dispatch(&live, vec![event]).await {
            Ok(report) => report.all_settled() && report.unroutable == 0,
            Err(_) => false,
        };
        if !settled {
            tracing::warn!(channel = %channel, stage = "sending", "Reauth notice could not be delivered; the next refusal retries it.");
            let _ = state.store.del(&key).await;
        }
    });
}
