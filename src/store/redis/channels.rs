//! Channel records: one hash per channel (the contract's layout), read, written and
//! compared-and-set here; every write drops this process's routes and bumps the version
//! key the other replicas watch.

use std::collections::HashMap;
use std::time::Instant;

use redis::Script;
use secrecy::{ExposeSecret, SecretString};

use super::{RedisConn, RedisStore};
use crate::channel::ChannelRef;
use crate::store::routes::Freshness;
use crate::store::{ChannelRecord, StoreBackend, StoreError};

/// The life of the channels version key (renewed by every channel write).
const CHANNELS_VERSION_TTL_MS: u64 = 86_400_000;

impl RedisStore {
    /// After a channel write: this process forgets its routes at once, and the version
    /// key tells the other replicas. The write itself is done; a failure here only
    /// leaves the others on their cache TTL, so it is logged, not returned.
    pub(super) async fn channels_changed(&self) {
        self.routes.clear();
        self.wabas.clear();
        let key = self.keys.channels_version();
        let mut pipe = redis::pipe();
        pipe.cmd("INCR")
            .arg(&key)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(CHANNELS_VERSION_TTL_MS)
            .ignore();
        let done: Result<(), StoreError> = async {
            let mut conn = self.conn().await?;
            match &mut conn {
                RedisConn::Single(m) => pipe.query_async::<()>(m).await?,
                RedisConn::Cluster(m) => pipe.query_async::<()>(m).await?,
                RedisConn::Plain(m) => pipe.query_async::<()>(m).await?,
            }
            Ok(())
        }
        .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, stage = "processing", "Channel change could not be announced to other replicas; they see it within store.channel_cache_ms.");
        }
    }
}

const CAS_SECRETS: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'token')
if cur ~= ARGV[1] then return 0 end
local ws = redis.call('HGET', KEYS[1], 'webhook_secret')
if (ws or '') ~= ARGV[2] then return 0 end
local pin = redis.call('HGET', KEYS[1], 'pin')
if (pin or '') ~= ARGV[5] then return 0 end
redis.call('HSET', KEYS[1], 'token', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'webhook_secret', ARGV[4]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'pin', ARGV[6]) end
return 1
"#;

const CAS_TOKEN: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'token')
if cur ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'token', ARGV[2], 'expires_at', ARGV[3], 'updated_at', ARGV[4])
return 1
"#;

fn record_from_hash(
    key: &str,
    mut h: HashMap<String, String>,
) -> Result<ChannelRecord, StoreError> {
    let malformed = |reason: &str| StoreError::Malformed {
        key: key.to_owned(),
        reason: reason.to_owned(),
    };
    Ok(ChannelRecord {
        tenant: h
            .remove("tenant")
            .ok_or_else(|| malformed("no `tenant` field"))?,
        token: SecretString::from(
            h.remove("token")
                .ok_or_else(|| malformed("no `token` field"))?,
        ),
        webhook_secret: h
            .remove("webhook_secret")
            .filter(|s| !s.is_empty())
            .map(SecretString::from),
        updated_at: h.remove("updated_at"),
        user_id: h.remove("user_id").filter(|s| !s.is_empty()),
        waba_id: h.remove("waba_id").filter(|s| !s.is_empty()),
        graph: h.remove("graph").filter(|s| !s.is_empty()),
        expires_at: h.remove("expires_at").filter(|s| !s.is_empty()),
        pin: h
            .remove("pin")
            .filter(|s| !s.is_empty())
            .map(SecretString::from),
    })
}

pub(super) async fn get(
    store: &RedisStore,
    c: &ChannelRef,
) -> Result<Option<ChannelRecord>, StoreError> {
    let key = store.keys.channel(c);
    let h: HashMap<String, String> = match store.run(redis::cmd("HGETALL").arg(&key)).await {
        Ok(h) => h,
        // Someone wrote another type at a channel key: that channel is broken, the
        // store is fine.
        Err(StoreError::Unavailable(m)) if m.contains("WRONGTYPE") => {
            return Err(StoreError::Malformed {
                key,
                reason: "not a hash".into(),
            })
        }
        Err(e) => return Err(e),
    };
    if h.is_empty() {
        return Ok(None);
    }
    record_from_hash(&key, h).map(Some)
}

pub(super) async fn put(
    store: &RedisStore,
    c: &ChannelRef,
    r: &ChannelRecord,
) -> Result<(), StoreError> {
    let key = store.keys.channel(c);
    let mut pipe = redis::pipe();
    pipe.atomic();
    pipe.cmd("HSET")
        .arg(&key)
        .arg("tenant")
        .arg(&r.tenant)
        .arg("token")
        .arg(r.token.expose_secret())
        .arg("updated_at")
        .arg(
            r.updated_at
                .clone()
                .unwrap_or_else(crate::time::now_rfc3339),
        )
        .ignore();
    match &r.webhook_secret {
        Some(ws) => pipe
            .cmd("HSET")
            .arg(&key)
            .arg("webhook_secret")
            .arg(ws.expose_secret())
            .ignore(),
        None => pipe.cmd("HDEL").arg(&key).arg("webhook_secret").ignore(),
    };
    let optional = [
        ("user_id", r.user_id.as_deref()),
        ("waba_id", r.waba_id.as_deref()),
        ("graph", r.graph.as_deref()),
        ("expires_at", r.expires_at.as_deref()),
        ("pin", r.pin.as_ref().map(|p| p.expose_secret())),
    ];
    for (field, value) in optional {
        match value {
            Some(v) => pipe.cmd("HSET").arg(&key).arg(field).arg(v).ignore(),
            None => pipe.cmd("HDEL").arg(&key).arg(field).ignore(),
        };
    }
    let mut conn = store.conn().await?;
    match &mut conn {
        RedisConn::Single(m) => pipe.query_async::<()>(m).await?,
        RedisConn::Cluster(m) => pipe.query_async::<()>(m).await?,
        RedisConn::Plain(m) => pipe.query_async::<()>(m).await?,
    }
    store.channels_changed().await;
    Ok(())
}

pub(super) async fn delete(store: &RedisStore, c: &ChannelRef) -> Result<bool, StoreError> {
    let n: i64 = store
        .run(redis::cmd("DEL").arg(store.keys.channel(c)))
        .await?;
    store.channels_changed().await;
    Ok(n > 0)
}

pub(super) async fn tenant(
    store: &RedisStore,
    c: &ChannelRef,
) -> Result<Option<String>, StoreError> {
    if !store.routes.enabled() {
        return Ok(store.get_channel(c).await?.map(|r| r.tenant));
    }
    let now = Instant::now();
    if store.routes.freshness(now) == Freshness::CheckVersion {
        let key = store.keys.channels_version();
        match store.run::<Option<i64>>(redis::cmd("GET").arg(&key)).await {
            Ok(v) => store.routes.observe_version(v),
            Err(_) => store.routes.version_unknown(),
        }
    }
    if let Some(tenant) = store.routes.get(c, now) {
        return Ok(Some(tenant));
    }
    let record = store.get_channel(c).await?;
    if let Some(r) = &record {
        // Aged from before the read, so a write during it is never trusted longer.
        store.routes.insert(c, &r.tenant, now);
    }
    Ok(record.map(|r| r.tenant))
}

pub(super) async fn list(
    store: &RedisStore,
) -> Result<Vec<(ChannelRef, ChannelRecord)>, StoreError> {
    let keys = store.scan(&store.keys.channel_pattern()).await?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let Some(channel) = store.keys.parse_channel(&key) else {
            continue;
        };
        // A record that vanished or is malformed is skipped here; get_channel says why.
        if let Ok(Some(r)) = store.get_channel(&channel).await {
            out.push((channel, r));
        }
    }
    out.sort_by_key(|a| a.0.to_string());
    Ok(out)
}

pub(super) async fn replace_secrets(
    store: &RedisStore,
    c: &ChannelRef,
    expected: &ChannelRecord,
    updated: &ChannelRecord,
) -> Result<bool, StoreError> {
    let key = store.keys.channel(c);
    let script = Script::new(CAS_SECRETS);
    let mut conn = store.conn().await?;
    let empty = SecretString::from(String::new());
    let n: i64 = conn
        .eval(
            &script,
            &[&key],
            &[
                expected.token.expose_secret(),
                expected
                    .webhook_secret
                    .as_ref()
                    .unwrap_or(&empty)
                    .expose_secret(),
                updated.token.expose_secret(),
                updated
                    .webhook_secret
                    .as_ref()
                    .unwrap_or(&empty)
                    .expose_secret(),
                expected.pin.as_ref().unwrap_or(&empty).expose_secret(),
                updated.pin.as_ref().unwrap_or(&empty).expose_secret(),
            ],
        )
        .await?;
    if n == 1 {
        store.channels_changed().await;
    }
    Ok(n == 1)
}

pub(super) async fn replace_token(
    store: &RedisStore,
    c: &ChannelRef,
    expected_token: &SecretString,
    token: &SecretString,
    expires_at: &str,
) -> Result<bool, StoreError> {
    let key = store.keys.channel(c);
    let script = Script::new(CAS_TOKEN);
    let mut conn = store.conn().await?;
    let now = crate::time::now_rfc3339();
    let n: i64 = conn
        .eval(
            &script,
            &[&key],
            &[
                expected_token.expose_secret(),
                token.expose_secret(),
                expires_at,
                &now,
            ],
        )
        .await?;
    Ok(n == 1)
}
