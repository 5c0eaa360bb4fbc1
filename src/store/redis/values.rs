//! The short-lived values (dedupe ids, sent marks, idempotency answers, locks, notices):
//! plain strings with a TTL, each at a key of its own (any Cluster slot).

use std::time::Duration;

use redis::AsyncCommands;

use super::{RedisConn, RedisStore};
use crate::store::{StoreBackend, StoreError};

pub(super) async fn exists(store: &RedisStore, key: &str) -> Result<bool, StoreError> {
    let n: i64 = store.run(redis::cmd("EXISTS").arg(key)).await?;
    Ok(n > 0)
}

/// A `PSETEX` for the pipe (`ms`: the TTL in milliseconds, in decimal).
fn psetex<'a>(key: &'a str, ms: &'a [u8], value: &'a str) -> [&'a [u8]; 4] {
    [b"PSETEX", key.as_bytes(), ms, value.as_bytes()]
}

pub(super) async fn set_ex(
    store: &RedisStore,
    key: &str,
    value: &str,
    ttl: Duration,
) -> Result<(), StoreError> {
    let ms = ttl.as_millis().max(1) as u64;
    if let Some(pipe) = store.pipe().await? {
        let mut n = itoa::Buffer::new();
        let args = psetex(key, n.format(ms).as_bytes(), value);
        return pipe.call(&args).await?.expect_ok("PSETEX");
    }
    let mut conn = store.conn().await?;
    match &mut conn {
        RedisConn::Single(c) => c.pset_ex::<_, _, ()>(key, value, ms).await?,
        RedisConn::Cluster(c) => c.pset_ex::<_, _, ()>(key, value, ms).await?,
        RedisConn::Plain(c) => c.pset_ex::<_, _, ()>(key, value, ms).await?,
    }
    Ok(())
}

/// The marks' `PSETEX`es: over the hot path's pipe, sent without waiting for the
/// replies; otherwise stored as [`StoreBackend::send_ex_all`] allows.
pub(super) async fn send_ex_all(
    store: &RedisStore,
    keys: &[String],
    value: &str,
    ttl: Duration,
) -> Result<(), StoreError> {
    let ms = ttl.as_millis().max(1) as u64;
    if let Some(pipe) = store.pipe().await? {
        const FAILED: &str = "A delivered event's dedupe mark could not be stored: a redelivery may reach the CRM twice.";
        let mut n = itoa::Buffer::new();
        let ms = n.format(ms).as_bytes();
        if let [key] = keys {
            return pipe.send(&[&psetex(key, ms, value)], FAILED).await;
        }
        let commands: Vec<[&[u8]; 4]> = keys.iter().map(|k| psetex(k, ms, value)).collect();
        let commands: Vec<&[&[u8]]> = commands.iter().map(|c| c.as_slice()).collect();
        return pipe.send(&commands, FAILED).await;
    }
    if store.is_cluster() || keys.len() == 1 {
        // The keys live in different slots (one command each), or there is one: a
        // pipeline would only add its own bookkeeping.
        for key in keys {
            store.set_ex(key, value, ttl).await?;
        }
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for key in keys {
        pipe.cmd("PSETEX").arg(key).arg(ms).arg(value).ignore();
    }
    let mut conn = store.conn().await?;
    match &mut conn {
        RedisConn::Single(m) => pipe.query_async::<()>(m).await?,
        RedisConn::Cluster(m) => pipe.query_async::<()>(m).await?,
        RedisConn::Plain(m) => pipe.query_async::<()>(m).await?,
    }
    Ok(())
}

pub(super) async fn set_nx_ex(
    store: &RedisStore,
    key: &str,
    value: &str,
    ttl: Duration,
) -> Result<bool, StoreError> {
    let r: Option<String> = store
        .run(
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("NX")
                .arg("PX")
                .arg(ttl.as_millis().max(1) as u64),
        )
        .await?;
    Ok(r.is_some())
}

pub(super) async fn get(store: &RedisStore, key: &str) -> Result<Option<String>, StoreError> {
    store.run(redis::cmd("GET").arg(key)).await
}

pub(super) async fn del(store: &RedisStore, key: &str) -> Result<bool, StoreError> {
    let n: i64 = store.run(redis::cmd("DEL").arg(key)).await?;
    if store.keys.parse_channel(key).is_some() {
        store.channels_changed().await;
    }
    Ok(n > 0)
}
