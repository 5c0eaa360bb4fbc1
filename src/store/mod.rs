//! The store: channel records (the contract's public Redis layout) and the relay's short
//! lived records (dedupe ids, idempotency answers, notices), behind one trait,
//! [`StoreBackend`], with two backends: [`redis::RedisStore`] (one server or a Cluster)
//! and [`memory::MemoryStore`] (one process, nothing kept: for trying the relay out).
//!
//! Key names live in [`keys`]. Nothing here holds plaintext secrets or message content:
//! channel tokens arrive already Fernet-encrypted.

pub mod expiring;
pub mod keys;
pub mod memory;
pub mod redis;
pub mod routes;
pub mod seen;
pub mod waba;

use std::future::Future;
use std::time::Duration;

use secrecy::SecretString;

use crate::channel::ChannelRef;

pub use keys::Keys;

/// A store that cannot be used right now. Never carries values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unreachable: {0}")]
    Unavailable(String),
    #[error("the store holds a malformed record at {key}: {reason}")]
    Malformed { key: String, reason: String },
}

impl From<::redis::RedisError> for StoreError {
    fn from(e: ::redis::RedisError) -> Self {
        // Redis errors carry no values, only kinds and server messages.
        StoreError::Unavailable(e.to_string())
    }
}

/// One channel as stored: `tenant`, `token` (a Fernet token), optional `webhook_secret`
/// (a Fernet token), `updated_at` (RFC 3339), and the optional fields of the contract's
/// layout (v2), each absent when unknown.
#[derive(Debug, Clone)]
pub struct ChannelRecord {
    pub tenant: String,
    pub token: SecretString,
    pub webhook_secret: Option<SecretString>,
    pub updated_at: Option<String>,
    /// The Meta (app-scoped) user who connected the channel, so that Meta's deauthorize
    /// and data-deletion callbacks, which name only that user, find it
    /// ([`crate::privacy`]).
    pub user_id: Option<String>,
    /// WhatsApp: the WhatsApp Business Account the number belongs to (account-level
    /// webhooks are routed by it).
    pub waba_id: Option<String>,
    /// Which Graph API serves the channel: [`GRAPH_INSTAGRAM`] for Instagram Login
    /// channels; absent = the Facebook Graph API.
    pub graph: Option<String>,
    /// When the token expires (RFC 3339); absent = it does not.
    pub expires_at: Option<String>,
    /// WhatsApp: a Fernet token of the two-step verification PIN the relay set.
    pub pin: Option<SecretString>,
}

/// Where a paged channel scan is ([`StoreBackend::scan_channels`]); opaque to callers.
/// Redis: the SCAN cursor (on a Cluster, the node's index and its cursor); memory: the
/// last channel returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanCursor(pub(crate) String);

/// The `graph` value of channels connected with Instagram Login.
pub use crate::channel::GRAPH_INSTAGRAM;

impl Default for ChannelRecord {
    /// An empty record: the base for `..Default::default()` in struct literals.
    fn default() -> Self {
        Self::new(String::new(), SecretString::from(String::new()))
    }
}

impl ChannelRecord {
    /// A record with only the required fields.
    pub fn new(tenant: impl Into<String>, token: SecretString) -> Self {
        Self {
            tenant: tenant.into(),
            token,
            webhook_secret: None,
            updated_at: None,
            user_id: None,
            waba_id: None,
            graph: None,
            expires_at: None,
            pin: None,
        }
    }

    /// Whether the channel is served by the Instagram Graph API (Instagram Login).
    pub fn uses_instagram_graph(&self) -> bool {
        self.graph.as_deref() == Some(GRAPH_INSTAGRAM)
    }
}

/// What every backend does. Methods are `async` and `Send`, so handlers can hold any
/// backend; [`Store`] picks one at start.
pub trait StoreBackend: Send + Sync {
    fn get_channel(
        &self,
        channel: &ChannelRef,
    ) -> impl Future<Output = Result<Option<ChannelRecord>, StoreError>> + Send;
    fn put_channel(
        &self,
        channel: &ChannelRef,
        record: &ChannelRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Whether a channel was there to delete.
    fn delete_channel(
        &self,
        channel: &ChannelRef,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn list_channels(
        &self,
    ) -> impl Future<Output = Result<Vec<(ChannelRef, ChannelRecord)>, StoreError>> + Send;
    /// The tenant a channel belongs to, for routing events: may be served from the
    /// routing cache ([`routes`]: bounded staleness), unlike [`Self::get_channel`].
    fn channel_tenant(
        &self,
        channel: &ChannelRef,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// The WhatsApp channels whose record has this `waba_id`, with their tenants,
    /// numerically smallest id first: where account-level webhooks go ([`waba`]). May be
    /// served from a cache with the routing cache's staleness bound.
    fn waba_channels(
        &self,
        waba_id: &str,
    ) -> impl Future<Output = Result<Vec<(ChannelRef, String)>, StoreError>> + Send;
    /// Replaces a channel's `token`/`webhook_secret`/`pin` only if they still equal
    /// `expected` (compare-and-set: a rotation never overwrites a newer write by someone
    /// else).
    fn replace_channel_secrets(
        &self,
        channel: &ChannelRef,
        expected: &ChannelRecord,
        updated: &ChannelRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One page of channels, in SCAN order (`COUNT` `count`, per node on a Cluster):
    /// the channels and the cursor of the next page (`None` after the last). Start with
    /// [`ScanCursor::default`]. A channel may appear twice across pages (SCAN's
    /// guarantee); one written during the scan may be missed.
    fn scan_channels(
        &self,
        cursor: &ScanCursor,
        count: usize,
    ) -> impl Future<Output = Result<(Vec<ChannelRef>, Option<ScanCursor>), StoreError>> + Send;
    /// Replaces a channel's `token` and `expires_at` (and sets `updated_at` to now) only
    /// if its token is still `expected_token` (compare-and-set: a token refresh never
    /// overwrites an operator's newer write). Whether it was replaced.
    fn replace_channel_token(
        &self,
        channel: &ChannelRef,
        expected_token: &SecretString,
        token: &SecretString,
        expires_at: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Whether `key` exists.
    fn exists(&self, key: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Sets `key` with a TTL.
    fn set_ex(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Sets every key of `keys` to `value` with a TTL, for marks whose failure is only
    /// logged (dedupe): returns once they are stored, or, where the backend can tell,
    /// once they are sent ahead of anything this thread sends later (Redis over its
    /// hot-path connection: the replies are read and a failure logged, not awaited).
    fn send_ex_all(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Sets `key` with a TTL only if absent; whether it was set.
    fn set_nx_ex(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    fn del(&self, key: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Every key matching a glob `pattern` (SCAN; for admin and privacy purges only).
    fn scan(&self, pattern: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Whether the store answers.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The configured backend.
#[derive(Clone)]
pub enum Store {
    Memory(std::sync::Arc<memory::MemoryStore>),
    Redis(Box<redis::RedisStore>),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Memory($s) => $e,
            Store::Redis($s) => $e,
        }
    };
}

impl Store {
    pub fn keys(&self) -> &Keys {
        delegate!(self, s => s.keys())
    }

    pub fn is_redis(&self) -> bool {
        matches!(self, Store::Redis(_))
    }
}

impl StoreBackend for Store {
    async fn get_channel(&self, c: &ChannelRef) -> Result<Option<ChannelRecord>, StoreError> {
        delegate!(self, s => s.get_channel(c).await)
    }
    async fn put_channel(&self, c: &ChannelRef, r: &ChannelRecord) -> Result<(), StoreError> {
        delegate!(self, s => s.put_channel(c, r).await)
    }
    async fn delete_channel(&self, c: &ChannelRef) -> Result<bool, StoreError> {
        delegate!(self, s => s.delete_channel(c).await)
    }
    async fn list_channels(&self) -> Result<Vec<(ChannelRef, ChannelRecord)>, StoreError> {
        delegate!(self, s => s.list_channels().await)
    }
    async fn channel_tenant(&self, c: &ChannelRef) -> Result<Option<String>, StoreError> {
        delegate!(self, s => s.channel_tenant(c).await)
    }
    async fn waba_channels(&self, waba_id: &str) -> Result<Vec<(ChannelRef, String)>, StoreError> {
        delegate!(self, s => s.waba_channels(waba_id).await)
    }
    async fn replace_channel_secrets(
        &self,
        c: &ChannelRef,
        expected: &ChannelRecord,
        updated: &ChannelRecord,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.replace_channel_secrets(c, expected, updated).await)
    }
    async fn scan_channels(
        &self,
        cursor: &ScanCursor,
        count: usize,
    ) -> Result<(Vec<ChannelRef>, Option<ScanCursor>), StoreError> {
        delegate!(self, s => s.scan_channels(cursor, count).await)
    }
    async fn replace_channel_token(
        &self,
        c: &ChannelRef,
        expected_token: &SecretString,
        token: &SecretString,
        expires_at: &str,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.replace_channel_token(c, expected_token, token, expires_at).await)
    }
    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        delegate!(self, s => s.exists(key).await)
    }
    async fn set_ex(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        delegate!(self, s => s.set_ex(key, value, ttl).await)
    }
    async fn send_ex_all(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.send_ex_all(keys, value, ttl).await)
    }
    async fn set_nx_ex(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, StoreError> {
        delegate!(self, s => s.set_nx_ex(key, value, ttl).await)
    }
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        delegate!(self, s => s.get(key).await)
    }
    async fn del(&self, key: &str) -> Result<bool, StoreError> {
        delegate!(self, s => s.del(key).await)
    }
    async fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        delegate!(self, s => s.scan(pattern).await)
    }
    async fn ping(&self) -> Result<(), StoreError> {
        delegate!(self, s => s.ping().await)
    }
}
