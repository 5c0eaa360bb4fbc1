//! The retry buffer in Redis: sharded zsets, streams with a consumer group, and one Lua
//! script per step, so any replica may redeliver and a replica that dies loses nothing.
//! The keys and what each holds: ARCHITECTURE.md, "Redis layout of the buffer".
//!
//! Every key of shard N carries the hash tag `{sN}` (one Redis Cluster slot), so each
//! shard's scripts (`lua/*.lua`) run atomically, on a single server or a cluster alike.
//! An event's shard is chosen from its conversation hash (or its id), so a conversation
//! lives in one shard.
//!
//! - **Push** (`push.lua`): the pending marker, the tenant index, and either the
//!   conversation's head (scheduled in the `delayed` zset, members the entry as JSON)
//!   or its `parked` list.
//! - **Take**: due members of the zset move into the stream (`promote.lua`:
//!   ZRANGEBYSCORE, XADD, ZREM), then a worker takes one entry:
//!   `XAUTOCLAIM … min-idle delivery.claim_idle_ms` (an entry read by a replica that
//!   then died or hung is taken over after this visibility timeout), else
//!   `XREADGROUP … >` (with `BLOCK` on its own connection,
//!   [`crate::store::redis::RedisStore::blocking_conn`]). The entry stays in the group's
//!   pending list while it is attempted.
//! - **After the attempt** one script acknowledges and deletes the stream entry
//!   (XACK + XDEL) and either re-adds it to the zset with its next due time
//!   (`reschedule.lua`) or forgets it and schedules the next parked event of its
//!   conversation (`complete.lua`).
//! - **Purges** (`purge_channel.lua`, `purge_event.lua`) for data deletion and unsend,
//!   in bounded steps ([`super::redis_purge`]).
//!
//! The stream keeps its consumer group while it exists; a worker recreates the group
//! (from id 0) when the key expired. Consumers of replicas that are gone (holding
//! nothing, idle for an hour) are removed from the group; a stream entry the relay did
//! not write is given up at once. Redis ≥ 6.2 (XAUTOCLAIM).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::Script;

use super::{
    shard_of, BufferBackend, BufferError, Entry, Handle, Presence, Pushed, ReadSlot, Taken,
    TenantDepth, GROUP,
};
use crate::store::redis::{RedisConn, RedisStore};
use crate::store::{Keys, StoreError};
use crate::time::now_ms;

/// How much longer than `retry_buffer_ttl_s` the buffer's keys live.
const TTL_MARGIN_MS: u64 = 3_600_000;
/// Due entries moved into the stream per read.
const PROMOTE_BATCH: usize = 64;

/// The placeholder conversation of events that have none (its keys are never set).
const NO_CONV: &str = "-";

/// The Redis buffer: see the module docs.
#[derive(Clone)]
pub struct RedisBuffer {
    pub(super) store: RedisStore,
    pub(super) shards: u16,
    claim_idle: Duration,
    pub(super) scripts: Arc<Scripts>,
    /// Members or entries one purge step looks at ([`super::redis_purge`]).
    pub(super) purge_step: usize,
}

pub(super) struct Scripts {
    push: Script,
    promote: Script,
    reschedule: Script,
    complete: Script,
    pub(super) purge: Script,
    pub(super) purge_one: Script,
}

impl RedisBuffer {
    pub fn new(store: RedisStore, shards: u16, claim_idle: Duration) -> Self {
        Self {
            store,
            shards: shards.max(1),
            claim_idle,
            scripts: Arc::new(Scripts {
                push: Script::new(include_str!("lua/push.lua")),
                promote: Script::new(include_str!("lua/promote.lua")),
                reschedule: Script::new(include_str!("lua/reschedule.lua")),
                complete: Script::new(include_str!("lua/complete.lua")),
                purge: Script::new(include_str!("lua/purge_channel.lua")),
                purge_one: Script::new(include_str!("lua/purge_event.lua")),
            }),
            purge_step: super::redis_purge::PURGE_STEP,
        }
    }

    /// The same buffer with purges looking at `step` members or entries per script
    /// call (tests: a backlog larger than one step).
    pub fn with_purge_step(mut self, step: usize) -> Self {
        self.purge_step = step.max(1);
        self
    }

    pub(super) fn keys(&self) -> &Keys {
        self.store.keys()
    }

    /// Creates shard's consumer group (from the start of the stream) if it is missing.
    async fn ensure_group(&self, shard: u16, ttl: Duration) -> Result<(), BufferError> {
        let stream = self.keys().retry_stream(shard);
        let mut conn = self.store.conn().await?;
        let created: Result<String, StoreError> = conn
            .query(
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(&stream)
                    .arg(GROUP)
                    .arg("0")
                    .arg("MKSTREAM"),
            )
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.to_string().contains("BUSYGROUP") => {}
            Err(e) => return Err(e.into()),
        }
        // MKSTREAM makes a key without a TTL: give it one (refreshed by every XADD).
        // (PTTL then PEXPIRE rather than PEXPIRE NX, which needs Redis 7.)
        let current: i64 = conn.query(redis::cmd("PTTL").arg(&stream)).await?;
        if current == -1 {
            let _: i64 = conn
                .query(redis::cmd("PEXPIRE").arg(&stream).arg(ttl_ms(ttl)))
                .await?;
        }
        Ok(())
    }

    async fn take_once(
        &self,
        shard: u16,
        consumer: &str,
        block: Duration,
        ttl: Duration,
        slot: &mut ReadSlot,
    ) -> Result<Option<Taken>, BufferError> {
        let k = self.keys();
        let stream = k.retry_stream(shard);
        let mut conn = self.store.conn().await?;
        let _: i64 = conn
            .eval(
                &self.scripts.promote,
                &[&k.retry_delayed(shard), &stream],
                &[
                    &now_ms().to_string(),
                    &PROMOTE_BATCH.to_string(),
                    &ttl_ms(ttl),
                ],
            )
            .await?;
        let claimed: StreamAutoClaimReply = conn
            .query(
                redis::cmd("XAUTOCLAIM")
                    .arg(&stream)
                    .arg(GROUP)
                    .arg(consumer)
                    .arg(self.claim_idle.as_millis() as u64)
                    .arg(slot.claim_cursor.as_deref().unwrap_or("0-0"))
                    .arg("COUNT")
                    .arg(1),
            )
            .await?;
        slot.claim_cursor = Some(claimed.next_stream_id.clone());
        if let Some(s) = claimed.claimed.into_iter().next() {
            tracing::info!(
                shard,
                stage = "sending",
                "Claimed a retry entry a replica left unfinished."
            );
            metrics::counter!("switchboard_retry_claims_total").increment(1);
            return self.taken(&mut conn, shard, &s).await;
        }
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(1);
        let reply: Option<StreamReadReply> = if block.is_zero() {
            cmd.arg("STREAMS").arg(&stream).arg(">");
            conn.query(&cmd).await?
        } else {
            cmd.arg("BLOCK")
                .arg(block.as_millis() as u64)
                .arg("STREAMS")
                .arg(&stream)
                .arg(">");
            let conn = match &mut slot.conn {
                Some(c) => c,
                None => slot.conn.insert(self.store.blocking_conn(block).await?),
            };
            conn.query(&cmd).await?
        };
        let first = reply
            .and_then(|r| r.keys.into_iter().next())
            .and_then(|k| k.ids.into_iter().next());
        match first {
            Some(s) => {
                let mut conn = self.store.conn().await?;
                self.taken(&mut conn, shard, &s).await
            }
            None => Ok(None),
        }
    }

    /// The entry read from the stream; a malformed one (not written by the relay) can
    /// never be delivered, so it is given up at once: acknowledged, deleted, counted.
    async fn taken(
        &self,
        conn: &mut RedisConn,
        shard: u16,
        s: &StreamId,
    ) -> Result<Option<Taken>, BufferError> {
        match entry_from_stream(s) {
            Ok(entry) => Ok(Some(Taken {
                entry,
                shard,
                handle: Handle::Stream(s.id.clone()),
            })),
            Err(e) => {
                let stream = self.keys().retry_stream(shard);
                let _: i64 = conn
                    .query(redis::cmd("XACK").arg(&stream).arg(GROUP).arg(&s.id))
                    .await?;
                let _: i64 = conn
                    .query(redis::cmd("XDEL").arg(&stream).arg(&s.id))
                    .await?;
                metrics::counter!("switchboard_events_given_up_total", "tenant" => "unknown", "type" => "malformed")
                    .increment(1);
                tracing::error!(shard, stream_id = %s.id, error = %e, stage = "sending", "Malformed retry entry given up and deleted.");
                Ok(None)
            }
        }
    }

    /// How many events of `tenant` the shards other than `except` hold (one ZCARD per
    /// shard, sent together on the multiplexed connection).
    async fn tenant_depth_except(
        &self,
        conn: &RedisConn,
        tenant: &str,
        except: u16,
    ) -> Result<u64, BufferError> {
        let counts = (0..self.shards).filter(|s| *s != except).map(|s| {
            let mut conn = conn.clone();
            let key = self.keys().retry_tenant(s, tenant);
            async move { conn.query::<u64>(redis::cmd("ZCARD").arg(key)).await }
        });
        let mut total = 0;
        for n in futures_util::future::join_all(counts).await {
            total += n?;
        }
        Ok(total)
    }

    fn stream_id<'a>(&self, taken: &'a Taken) -> &'a str {
        match &taken.handle {
            Handle::Stream(id) => id,
            Handle::Memory(_) => "0-0",
        }
    }
}

impl RedisBuffer {
    /// [`BufferBackend::presence`], whether `dedupe_key` is set and whether `sent_key`
    /// (an echo's, [`crate::delivery::echo`]) is, read in one MGET (so at one instant:
    /// the worker marks an event seen before it drops its pending marker, and one read
    /// never misses both). None on a Redis Cluster, where these keys live in different
    /// slots.
    pub async fn presence_and_seen(
        &self,
        shard: u16,
        event_id: &str,
        conv: Option<&str>,
        dedupe_key: &str,
        sent_key: Option<&str>,
    ) -> Result<Option<(Presence, bool, bool)>, BufferError> {
        if self.store.is_cluster() {
            return Ok(None);
        }
        let k = self.keys();
        let pending = k.retry_pending(shard, event_id);
        let head = k.retry_head(shard, conv.unwrap_or(NO_CONV));
        let mut keys = [pending.as_str(), head.as_str(), dedupe_key, ""];
        let n = match sent_key {
            Some(sent) => {
                keys[3] = sent;
                4
            }
            None => 3,
        };
        let values = self.store.mget(&keys[..n]).await?;
        let got = |i: usize| values.get(i).and_then(Option::as_deref);
        let presence = Presence {
            pending: got(0).is_some(),
            behind: conv.is_some() && got(1).is_some_and(|h| h != event_id.as_bytes()),
        };
        Ok(Some((presence, got(2).is_some(), got(3).is_some())))
    }
}

impl BufferBackend for RedisBuffer {
    fn shards(&self) -> u16 {
        self.shards
    }

    async fn presence(
        &self,
        shard: u16,
        event_id: &str,
        conv: Option<&str>,
    ) -> Result<Presence, BufferError> {
        let k = self.keys();
        let mut conn = self.store.conn().await?;
        let (pending, head): (Option<String>, Option<String>) = conn
            .query(
                redis::cmd("MGET")
                    .arg(k.retry_pending(shard, event_id))
                    .arg(k.retry_head(shard, conv.unwrap_or(NO_CONV))),
            )
            .await?;
        Ok(Presence {
            pending: pending.is_some(),
            behind: conv.is_some() && head.is_some_and(|h| h != event_id),
        })
    }

    async fn push(
        &self,
        e: &Entry,
        ordered: bool,
        ttl: Duration,
        limit: u64,
    ) -> Result<Pushed, BufferError> {
        let shard = shard_of(if e.conv.is_empty() { &e.id } else { &e.conv }, self.shards);
        let k = self.keys();
        let conv = if e.conv.is_empty() { NO_CONV } else { &e.conv };
        let ordered = ordered && !e.conv.is_empty();
        let mut conn = self.store.conn().await?;
        // The tenant's entries on the other shards (other slots: read before, all at
        // once); the script checks its own shard atomically against what is left.
        let allowance = if limit == 0 {
            String::new()
        } else {
            let elsewhere = self.tenant_depth_except(&conn, &e.tenant, shard).await?;
            limit.saturating_sub(elsewhere).to_string()
        };
        let n: i64 = conn
            .eval(
                &self.scripts.push,
                &[
                    &k.retry_delayed(shard),
                    &k.retry_pending(shard, &e.id),
                    &k.retry_head(shard, conv),
                    &k.retry_parked(shard, conv),
                    &k.retry_tenant(shard, &e.tenant),
                ],
                &[
                    &e.id,
                    &e.to_json(),
                    &e.due.to_string(),
                    &e.first.to_string(),
                    &ttl_ms(ttl),
                    if ordered { "1" } else { "0" },
                    &allowance,
                ],
            )
            .await?;
        Ok(match n {
            0 => Pushed::AlreadyBuffered,
            2 => Pushed::Parked,
            3 => Pushed::Full,
            _ => Pushed::Scheduled,
        })
    }

    async fn take(
        &self,
        shard: u16,
        consumer: &str,
        block: Duration,
        ttl: Duration,
        slot: &mut ReadSlot,
    ) -> Result<Option<Taken>, BufferError> {
        match self.take_once(shard, consumer, block, ttl, slot).await {
            Err(BufferError::Store(e)) if e.to_string().contains("NOGROUP") => {
                // The stream expired (or was never made): recreate the group, read again.
                self.ensure_group(shard, ttl).await?;
                self.take_once(shard, consumer, Duration::ZERO, ttl, slot)
                    .await
            }
            Err(e) => {
                // A broken blocking connection is made again on the next read.
                slot.conn = None;
                Err(e)
            }
            ok => ok,
        }
    }

    async fn reschedule(
        &self,
        taken: &Taken,
        next: &Entry,
        ttl: Duration,
    ) -> Result<(), BufferError> {
        let k = self.keys();
        let mut conn = self.store.conn().await?;
        let _: i64 = conn
            .eval(
                &self.scripts.reschedule,
                &[&k.retry_stream(taken.shard), &k.retry_delayed(taken.shard)],
                &[
                    GROUP,
                    self.stream_id(taken),
                    &next.to_json(),
                    &next.due.to_string(),
                    &ttl_ms(ttl),
                ],
            )
            .await?;
        Ok(())
    }

    async fn complete(&self, taken: &Taken, ttl: Duration) -> Result<(), BufferError> {
        let k = self.keys();
        let s = taken.shard;
        let e = &taken.entry;
        let conv = if e.conv.is_empty() { NO_CONV } else { &e.conv };
        let mut conn = self.store.conn().await?;
        let _: i64 = conn
            .eval(
                &self.scripts.complete,
                &[
                    &k.retry_stream(s),
                    &k.retry_delayed(s),
                    &k.retry_pending(s, &e.id),
                    &k.retry_head(s, conv),
                    &k.retry_parked(s, conv),
                    &k.retry_tenant(s, &e.tenant),
                ],
                &[
                    GROUP,
                    self.stream_id(taken),
                    &e.id,
                    &ttl_ms(ttl),
                    &now_ms().to_string(),
                ],
            )
            .await?;
        Ok(())
    }

    async fn purge_event(
        &self,
        shard: u16,
        event_id: &str,
        conv: &str,
        ttl: Duration,
    ) -> Result<bool, BufferError> {
        self.purge_event_in_steps(shard, event_id, conv, &ttl_ms(ttl))
            .await
    }

    async fn purge_channel(&self, channel: &str, keep: &[String]) -> Result<usize, BufferError> {
        self.purge_channel_in_steps(channel, keep).await
    }

    async fn prune_consumers(&self, idle: Duration, keep: &str) -> Result<usize, BufferError> {
        let mut conn = self.store.conn().await?;
        let mut removed = 0;
        for shard in 0..self.shards {
            let stream = self.keys().retry_stream(shard);
            let consumers: Vec<HashMap<String, redis::Value>> = match conn
                .query(redis::cmd("XINFO").arg("CONSUMERS").arg(&stream).arg(GROUP))
                .await
            {
                Ok(c) => c,
                // No stream or no group yet: nothing to prune.
                Err(_) => continue,
            };
            for c in consumers {
                let text = |k: &str| {
                    c.get(k)
                        .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
                };
                let int = |k: &str| {
                    c.get(k)
                        .and_then(|v| redis::from_redis_value_ref::<i64>(v).ok())
                };
                let (Some(name), Some(pending), Some(idle_ms)) =
                    (text("name"), int("pending"), int("idle"))
                else {
                    continue;
                };
                if name != keep && pending == 0 && idle_ms as u128 >= idle.as_millis() {
                    let n: i64 = conn
                        .query(
                            redis::cmd("XGROUP")
                                .arg("DELCONSUMER")
                                .arg(&stream)
                                .arg(GROUP)
                                .arg(&name),
                        )
                        .await?;
                    let _ = n;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    async fn depths(&self, tenants: &[String]) -> Result<Vec<TenantDepth>, BufferError> {
        let mut conn = self.store.conn().await?;
        let mut out = Vec::with_capacity(tenants.len());
        for t in tenants {
            let mut d = TenantDepth {
                tenant: t.clone(),
                depth: 0,
                oldest_ms: None,
            };
            for shard in 0..self.shards {
                let key = self.keys().retry_tenant(shard, t);
                let n: u64 = conn.query(redis::cmd("ZCARD").arg(&key)).await?;
                if n == 0 {
                    continue;
                }
                d.depth += n;
                let first: Vec<(String, f64)> = conn
                    .query(
                        redis::cmd("ZRANGE")
                            .arg(&key)
                            .arg(0)
                            .arg(0)
                            .arg("WITHSCORES"),
                    )
                    .await?;
                if let Some((_, ms)) = first.first() {
                    let ms = *ms as i64;
                    d.oldest_ms = Some(d.oldest_ms.map_or(ms, |o| o.min(ms)));
                }
            }
            out.push(d);
        }
        Ok(out)
    }

    async fn prepare(&self, ttl: Duration) -> Result<(), BufferError> {
        for shard in 0..self.shards {
            self.ensure_group(shard, ttl).await?;
        }
        Ok(())
    }
}

pub(super) fn ttl_ms(ttl: Duration) -> String {
    (ttl.as_millis() as u64 + TTL_MARGIN_MS).to_string()
}

/// An entry as the PROMOTE script wrote it into the stream.
fn entry_from_stream(s: &StreamId) -> Result<Entry, BufferError> {
    let text = |k: &str| {
        s.get::<String>(k)
            .ok_or_else(|| BufferError::Malformed(format!("stream entry without `{k}`")))
    };
    let num = |k: &str| {
        text(k)?
            .parse::<i64>()
            .map_err(|_| BufferError::Malformed(format!("stream entry `{k}` is not a number")))
    };
    Ok(Entry {
        id: text("id")?,
        tenant: text("tenant")?,
        channel: text("channel")?,
        conv: text("conv")?,
        attempts: num("attempts")?.clamp(0, i64::from(u32::MAX)) as u32,
        due: num("due")?,
        first: num("first")?,
        payload: text("payload")?,
    })
}
