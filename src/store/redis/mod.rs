//! The Redis backend: one server (a multiplexed, auto-reconnecting `ConnectionManager`)
//! or a Redis Cluster (`ClusterConnection`, which follows MOVED/ASK). The connection is
//! made lazily and retried on use, so the relay starts (and `/healthz` answers) while
//! Redis is away, and recovers without a restart when it returns.
//!
//! Each thread that uses the store (every actix worker's own runtime, and the main
//! runtime's threads) holds its own multiplexed connection, made there on first use, so
//! a command's driver task runs on the runtime of the handler that sends it: no command
//! crosses threads. A connection whose runtime has shut down is replaced on next use.
//!
//! Every command has a deadline (`store.timeout_ms`); a store that does not answer in
//! time is reported unavailable, and webhooks are answered 503 rather than lost.
//!
//! The hot path's two commands per event (the `MGET` of [`RedisStore::mget`] before
//! delivery, the dedupe marks' `PSETEX` after it) go over a lean pipe of their own on
//! one server over plain TCP (`pipe.rs`); everything else, and those on TLS, a Unix
//! socket or a Cluster, over redis-rs.
//!
//! The files: `conn.rs` (the connections), `pipe.rs` (the hot path's pipe),
//! `channels.rs` (channel records), `values.rs` (the short-lived values), `scan.rs`
//! (SCAN over one server or every master).

mod channels;
mod conn;
mod pipe;
mod scan;
mod values;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::{Cmd, FromRedisValue};
use secrecy::{ExposeSecret, SecretString};

pub use conn::RedisConn;

use super::routes::RouteCache;
use super::waba::WabaCache;
use super::{ChannelRecord, Keys, ScanCursor, StoreBackend, StoreError};
use crate::channel::ChannelRef;

#[derive(Clone)]
enum Target {
    Single(Box<redis::Client>),
    Cluster(Vec<SecretString>),
}

/// The Redis store. Clones share one identity, so one connection per thread.
#[derive(Clone)]
pub struct RedisStore {
    keys: Keys,
    target: Target,
    timeout: Duration,
    id: u64,
    /// Where the hot path's [`pipe::Pipe`] connects (one server over plain TCP).
    pipe_target: Option<Arc<pipe::PipeTarget>>,
    /// Channel → tenant for routing (off unless [`RedisStore::with_channel_cache`]).
    routes: Arc<RouteCache>,
    /// WABA → its WhatsApp channels, for account-level webhooks ([`super::waba`]).
    wabas: Arc<WabaCache>,
}

static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(0);

impl RedisStore {
    /// Prepares the client; nothing is connected until first use.
    pub fn new(
        keys: Keys,
        redis_url: &SecretString,
        cluster_nodes: &[SecretString],
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let mut pipe_target = None;
        let target = if cluster_nodes.is_empty() {
            let client = redis::Client::open(redis_url.expose_secret())
                .map_err(|e| StoreError::Unavailable(format!("store.redis_url: {e}")))?;
            pipe_target = pipe::PipeTarget::of(&client).map(Arc::new);
            Target::Single(Box::new(client))
        } else {
            Target::Cluster(cluster_nodes.to_vec())
        };
        Ok(Self {
            keys,
            target,
            timeout,
            id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
            pipe_target,
            routes: Arc::new(RouteCache::new(Duration::ZERO)),
            wabas: Arc::new(WabaCache::new(Duration::ZERO)),
        })
    }

    /// Serves [`StoreBackend::channel_tenant`] from a cache whose entries live `ttl`
    /// ([`super::routes`]; zero: no cache).
    pub fn with_channel_cache(mut self, ttl: Duration) -> Self {
        self.routes = Arc::new(RouteCache::new(ttl));
        self.wabas = Arc::new(WabaCache::new(ttl));
        self
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Whether this is a Redis Cluster (commands over keys of several slots are not
    /// possible there).
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    pub(super) fn wabas(&self) -> &WabaCache {
        &self.wabas
    }

    pub(super) async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        let mut c = self.conn().await?;
        c.query(cmd).await
    }

    /// `MGET` of keys in one slot: each value, `None` where absent. Over the hot path's
    /// [`pipe::Pipe`] where there is one.
    pub async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let Some(pipe) = self.pipe().await? else {
            let mut cmd = redis::cmd("MGET");
            for k in keys {
                cmd.arg(*k);
            }
            return self.run(&cmd).await;
        };
        let mut args: Vec<&[u8]> = Vec::with_capacity(keys.len() + 1);
        args.push(b"MGET");
        args.extend(keys.iter().map(|k| k.as_bytes()));
        match pipe.call(&args).await? {
            pipe::Reply::Array(Some(items)) if items.len() == keys.len() => items
                .into_iter()
                .map(|item| match item {
                    pipe::Reply::Bulk(v) => Ok(v),
                    other => Err(other.unexpected("MGET")),
                })
                .collect(),
            other => Err(other.unexpected("MGET")),
        }
    }
}

impl StoreBackend for RedisStore {
    async fn get_channel(&self, c: &ChannelRef) -> Result<Option<ChannelRecord>, StoreError> {
        channels::get(self, c).await
    }

    async fn put_channel(&self, c: &ChannelRef, r: &ChannelRecord) -> Result<(), StoreError> {
        channels::put(self, c, r).await
    }

    async fn delete_channel(&self, c: &ChannelRef) -> Result<bool, StoreError> {
        channels::delete(self, c).await
    }

    async fn channel_tenant(&self, c: &ChannelRef) -> Result<Option<String>, StoreError> {
        channels::tenant(self, c).await
    }

    async fn waba_channels(&self, waba_id: &str) -> Result<Vec<(ChannelRef, String)>, StoreError> {
        super::waba::redis_lookup(self, waba_id).await
    }

    async fn list_channels(&self) -> Result<Vec<(ChannelRef, ChannelRecord)>, StoreError> {
        channels::list(self).await
    }

    async fn replace_channel_secrets(
        &self,
        c: &ChannelRef,
        expected: &ChannelRecord,
        updated: &ChannelRecord,
    ) -> Result<bool, StoreError> {
        channels::replace_secrets(self, c, expected, updated).await
    }

    async fn scan_channels(
        &self,
        cursor: &ScanCursor,
        count: usize,
    ) -> Result<(Vec<ChannelRef>, Option<ScanCursor>), StoreError> {
        scan::channels_page(self, cursor, count).await
    }

    async fn replace_channel_token(
        &self,
        c: &ChannelRef,
        expected_token: &SecretString,
        token: &SecretString,
        expires_at: &str,
    ) -> Result<bool, StoreError> {
        channels::replace_token(self, c, expected_token, token, expires_at).await
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        values::exists(self, key).await
    }

    async fn set_ex(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        values::set_ex(self, key, value, ttl).await
    }

    async fn send_ex_all(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        values::send_ex_all(self, keys, value, ttl).await
    }

    async fn set_nx_ex(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, StoreError> {
        values::set_nx_ex(self, key, value, ttl).await
    }

    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        values::get(self, key).await
    }

    async fn del(&self, key: &str) -> Result<bool, StoreError> {
        values::del(self, key).await
    }

    async fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        scan::matching(self, pattern).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.run(&redis::cmd("PING")).await?;
        Ok(())
    }
}
