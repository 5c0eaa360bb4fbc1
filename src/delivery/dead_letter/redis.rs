//! The dead-letter list in Redis, per retry shard N (hash tag `{sN}`, the slot of that
//! shard's buffer keys), so each step is one atomic script on a server or a Cluster:
//!
//! - `{prefix}dead:{sN}:entry:{event_id}`: the [`DeadLetter`] as JSON, with a TTL to
//!   its expiry;
//! - `{prefix}dead:{sN}:index` and `{prefix}dead:{sN}:tenant:{tenant}`: zsets of event
//!   ids scored by expiry, for listing and counting (reads skip members past their
//!   expiry; `keep.lua` prunes them, and each zset expires with its last member).
//!
//! Keep (`lua/keep.lua`) and remove (`lua/remove.lua`) write the three keys together;
//! lookups by id try each shard (an id alone does not say its shard).

use std::sync::Arc;

use ::redis::Script;

use super::DeadLetter;
use crate::store::redis::RedisStore;
use crate::store::{Keys, StoreError};
use crate::time::now_ms;

/// Records fetched per MGET while scanning a shard (data deletion).
const SCAN_BATCH: usize = 500;

#[derive(Clone)]
pub struct RedisDeadLetters {
    store: RedisStore,
    shards: u16,
    scripts: Arc<Scripts>,
}

struct Scripts {
    keep: Script,
    remove: Script,
}

impl RedisDeadLetters {
    pub fn new(store: RedisStore, shards: u16) -> Self {
        Self {
            store,
            shards: shards.max(1),
            scripts: Arc::new(Scripts {
                keep: Script::new(include_str!("lua/keep.lua")),
                remove: Script::new(include_str!("lua/remove.lua")),
            }),
        }
    }

    fn keys(&self) -> &Keys {
        self.store.keys()
    }

    pub async fn keep(&self, shard: u16, dl: &DeadLetter) -> Result<(), StoreError> {
        let k = self.keys();
        let mut conn = self.store.conn().await?;
        let _: i64 = conn
            .eval(
                &self.scripts.keep,
                &[
                    &k.dead_entry(shard, &dl.id),
                    &k.dead_index(shard),
                    &k.dead_tenant(shard, &dl.tenant),
                ],
                &[
                    &dl.id,
                    &dl.to_json(),
                    &dl.expires.to_string(),
                    &now_ms().to_string(),
                ],
            )
            .await?;
        Ok(())
    }

    pub async fn find(&self, id: &str) -> Result<Option<(u16, DeadLetter)>, StoreError> {
        let mut conn = self.store.conn().await?;
        for shard in 0..self.shards {
            let key = self.keys().dead_entry(shard, id);
            let raw: Option<String> = conn.query(::redis::cmd("GET").arg(&key)).await?;
            if let Some(dl) = raw.as_deref().and_then(|r| parse(&key, r)) {
                return Ok(Some((shard, dl)));
            }
        }
        Ok(None)
    }

    pub async fn remove(&self, shard: u16, dl: &DeadLetter) -> Result<bool, StoreError> {
        let k = self.keys();
        let mut conn = self.store.conn().await?;
        let n: i64 = conn
            .eval(
                &self.scripts.remove,
                &[
                    &k.dead_entry(shard, &dl.id),
                    &k.dead_index(shard),
                    &k.dead_tenant(shard, &dl.tenant),
                ],
                &[&dl.id],
            )
            .await?;
        Ok(n == 1)
    }

    /// The ids of a shard's zset not yet expired, soonest expiry first.
    async fn ids(&self, zset: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut conn = self.store.conn().await?;
        conn.query(
            ::redis::cmd("ZRANGEBYSCORE")
                .arg(zset)
                .arg(format!("({}", now_ms()))
                .arg("+inf")
                .arg("LIMIT")
                .arg(0)
                // LIMIT 0 -1: all of them.
                .arg(i64::try_from(limit).unwrap_or(-1)),
        )
        .await
    }

    /// The records of `ids` in `shard` (one MGET: one slot); missing ones are skipped.
    async fn records(&self, shard: u16, ids: &[String]) -> Result<Vec<DeadLetter>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids
            .iter()
            .map(|id| self.keys().dead_entry(shard, id))
            .collect();
        let mut conn = self.store.conn().await?;
        let raw: Vec<Option<String>> = conn.query(::redis::cmd("MGET").arg(&keys)).await?;
        Ok(keys
            .iter()
            .zip(raw)
            .filter_map(|(key, r)| parse(key, r.as_deref()?))
            .collect())
    }

    pub async fn list(
        &self,
        tenant: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let mut out = Vec::new();
        for shard in 0..self.shards {
            let zset = match tenant {
                Some(t) => self.keys().dead_tenant(shard, t),
                None => self.keys().dead_index(shard),
            };
            let ids = self.ids(&zset, limit).await?;
            out.extend(self.records(shard, &ids).await?);
        }
        out.sort_by(|a, b| (a.given_up, &a.id).cmp(&(b.given_up, &b.id)));
        out.truncate(limit);
        Ok(out)
    }

    pub async fn count(&self, tenant: &str) -> Result<u64, StoreError> {
        let mut conn = self.store.conn().await?;
        let mut n = 0;
        for shard in 0..self.shards {
            let c: u64 = conn
                .query(
                    ::redis::cmd("ZCOUNT")
                        .arg(self.keys().dead_tenant(shard, tenant))
                        .arg(format!("({}", now_ms()))
                        .arg("+inf"),
                )
                .await?;
            n += c;
        }
        Ok(n)
    }

    pub async fn purge_channel(&self, channel: &str) -> Result<usize, StoreError> {
        let mut removed = 0;
        for shard in 0..self.shards {
            let ids = self.ids(&self.keys().dead_index(shard), usize::MAX).await?;
            for chunk in ids.chunks(SCAN_BATCH) {
                for dl in self.records(shard, chunk).await? {
                    if dl.channel == channel && self.remove(shard, &dl).await? {
                        removed += 1;
                    }
                }
            }
        }
        Ok(removed)
    }
}

/// A record as `keep` wrote it; anything else is logged (by key, never its value) and
/// skipped.
fn parse(key: &str, raw: &str) -> Option<DeadLetter> {
    let dl = DeadLetter::from_json(raw);
    if dl.is_none() {
        tracing::warn!(%key, "Dead-letter record is malformed; skipped.");
    }
    dl
}
