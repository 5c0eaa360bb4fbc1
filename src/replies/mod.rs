//! Replies: what `POST /v1/messages` and `GET /v1/media/…` do behind the routes. The
//! routes parse the request and answer; everything between is here, over plain parts
//! (the store, the dispatcher, the provider clients, the live config).
//!
//! 1. [`authenticate`]: the tenant of an API key (compared in constant time,
//!    [`crate::live::Live::tenant_for_api_key`]).
//! 2. [`open_channel`]: the channel from the store; another tenant's → 403, none → 404;
//!    its token opened from the vault on every call (no cache: a rotation, a token change
//!    or a delete takes effect at once on every replica).
//! 3. [`send_message`]: the `Idempotency-Key` claim (or the replay of the first answer),
//!    then [`send`] in a task of its own, metrics and the log line, and the idempotency
//!    record completed or released. [`send`] goes through the channel's
//!    [`crate::channels::outbound::Outbound`] sender, retrying only what cannot have been
//!    delivered ([`crate::channels::outbound::SendError::is_retryable`]: a 5xx, a refused
//!    connection) with exponential backoff and jitter until `replies.retry_deadline_ms`.
//!    A timeout after the request left is never retried.
//! 4. On `token_invalid`, the tenant gets `channel.reauth_required`, at most once an hour
//!    per channel ([`notify_reauth`]; [`crate::store::Keys::reauth_notice`], `SET NX EX`,
//!    so across replicas).
//!
//! [`idempotency`] keeps `Idempotency-Key` answers; [`media`] streams inbound media.

pub mod idempotency;
pub mod media;
mod reauth;
mod send;

use std::sync::Arc;

use secrecy::ExposeSecret;

use crate::channels::meta::graph::{GraphClient, GraphEndpoint};
use crate::channels::outbound::{ParseError, SendError};
use crate::channels::telegram::outbound::TelegramClient;
use crate::channels::{ChannelKind, ChannelRef};
use crate::live::Live;
use crate::store::{ChannelRecord, Store, StoreBackend, StoreError};
use crate::tenant::Tenant;
use crate::vault::{AccessToken, VaultError};

pub use reauth::{notify_reauth, send_reauth, ReauthNotice};
pub use send::{send, send_message, send_once, Answer, Reply};

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
    /// The task that sends ended without an answer (it panicked).
    #[error("the send ended without an answer")]
    Aborted,
}

/// The tenant whose API key this is (the route reads it from `Authorization: Bearer`).
pub fn authenticate(live: &Live, api_key: Option<&str>) -> Result<Arc<Tenant>, ReplyError> {
    api_key
        .and_then(|k| live.tenant_for_api_key(k))
        .ok_or(ReplyError::Unauthorized)
}

/// Which Graph API serves a Meta channel (the record's `graph` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphApi {
    /// `meta.graph_api_base` (graph.facebook.com).
    #[default]
    Facebook,
    /// `instagram.graph_base` (graph.instagram.com): Instagram Login channels.
    Instagram,
}

impl GraphApi {
    /// The API of a stored channel: `graph = "instagram"` counts only on Instagram
    /// channels (the Instagram Graph API serves nothing else).
    pub fn of(channel: &ChannelRef, record: &ChannelRecord) -> Self {
        if channel.kind() == ChannelKind::Instagram && record.uses_instagram_graph() {
            Self::Instagram
        } else {
            Self::Facebook
        }
    }

    /// Where this API's calls go, from the live settings (version and deadline are
    /// `meta.graph_api_version` and `meta.timeout_ms` for both).
    pub fn endpoint(self, live: &Live) -> GraphEndpoint {
        let facebook = GraphEndpoint::from_settings(&live.settings.meta);
        match self {
            Self::Facebook => facebook,
            Self::Instagram => facebook.with_base(&live.settings.instagram.graph_base),
        }
    }
}

/// A channel opened for a call: its token and the Graph API that serves it.
pub struct OpenChannel {
    pub token: AccessToken,
    pub api: GraphApi,
}

/// Looks the channel up, checks it is the tenant's, and opens its token.
pub async fn open_channel(
    store: &Store,
    live: &Live,
    tenant: &Tenant,
    channel: &ChannelRef,
) -> Result<OpenChannel, ReplyError> {
    let record = store
        .get_channel(channel)
        .await?
        .ok_or_else(|| ReplyError::ChannelNotFound(channel.clone()))?;
    if record.tenant != tenant.id {
        return Err(ReplyError::NotYourChannel(channel.clone()));
    }
    Ok(OpenChannel {
        token: live.keyring.decrypt_token(record.token.expose_secret())?,
        api: GraphApi::of(channel, &record),
    })
}
