//! The retry buffer: where an event waits, Fernet-encrypted, when its CRM did not take
//! it directly. Any replica may redeliver it; a replica that dies loses nothing.
//!
//! ## What an entry holds
//!
//! The ciphertext (`payload`: a Fernet token, under the vault's primary key, of the
//! rendered CRM body plus the routing metadata: event id, type, tenant, channel) and,
//! in the clear, only ids: `id` (event id), `tenant`, `channel` (kind:id of the
//! business account), `conv` (a keyed hash of the conversation, never a phone number),
//! `attempts`, `due` and `first` (Unix ms). Nothing else is kept, and nothing at all in
//! the normal case: an event the CRM takes directly never touches the buffer.
//!
//! ## Redis design
//!
//! The buffer is split into `delivery.retry_shards` shards. Every key of shard N
//! carries the hash tag `{sN}` (one Redis Cluster slot), so each shard's Lua scripts
//! run atomically, on a single server or a cluster alike. An event's shard is chosen
//! from its conversation hash (or its id), so a conversation lives in one shard.
//!
//! - `retry:{sN}:delayed` (zset, scored by due time): entries waiting for their next
//!   attempt. Members are the entry encoded as JSON (ciphertext plus ids).
//! - `retry:{sN}:stream` (stream, consumer group `relay`): entries due now. A worker
//!   first moves due members of the zset into the stream (one script: ZRANGEBYSCORE,
//!   XADD, ZREM), then takes one entry: `XAUTOCLAIM … min-idle delivery.claim_idle_ms`
//!   (an entry read by a replica that then died or hung is taken over after this
//!   visibility timeout), else `XREADGROUP … >` (with `BLOCK` on its own connection,
//!   [`crate::store::redis::RedisStore::blocking_conn`]). The entry stays in the
//!   group's pending list while it is attempted.
//! - After an attempt, one script acknowledges and deletes the stream entry
//!   (XACK + XDEL) and either re-adds it to the zset with the next due time (backoff,
//!   or the CRM's `Retry-After`) or, delivered or given up, forgets it.
//! - `retry:{sN}:pending:{event_id}` (string): the event is in the buffer, so a webhook
//!   Meta redelivers is answered 200 without buffering (or delivering) it twice.
//! - `retry:{sN}:head:{conv}` and `retry:{sN}:parked:{conv}` (string, list): with
//!   `delivery.ordered_per_conversation`, only the head of a conversation is scheduled;
//!   its later events wait in the list, in order, and the next one is scheduled when the
//!   head is delivered or given up. A new event of a conversation that has a head is
//!   parked behind it instead of being delivered directly.
//! - `retry:{sN}:tenant:{tenant}` (zset: event id → first-seen ms): depth and oldest
//!   age per tenant, for the gauges.
//!
//! Every key has a TTL of `delivery.retry_buffer_ttl_s` + 1 h, refreshed whenever it is
//! written; an entry is given up (metric, log, deleted) once older than
//! `retry_buffer_ttl_s`, so the TTLs only sweep what a buffer abandoned by every replica
//! leaves behind. The stream keeps its consumer group while it exists; a worker
//! recreates the group (from id 0) when the key expired. Consumers of replicas that are
//! gone (holding nothing, idle for an hour) are removed from the group; a stream entry
//! the relay did not write is given up at once. Redis (≥ 6.2, for XAUTOCLAIM) should
//! run with `maxmemory-policy noeviction` and persistence (AOF) for the buffer to
//! survive a Redis restart.
//!
//! ## Memory backend
//!
//! With `store.backend = "memory"` the same semantics (encryption, pending markers,
//! heads and parked events, visibility timeout) live in this process: nothing survives a
//! restart, and there is one replica by definition.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::Script;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::redis::{RedisConn, RedisStore};
use crate::store::{Keys, StoreError};
use crate::time::now_ms;
use crate::vault::Keyring;

/// The consumer group every replica's worker joins.
pub const GROUP: &str = "relay";
/// How much longer than `retry_buffer_ttl_s` the buffer's keys live.
const TTL_MARGIN_MS: u64 = 3_600_000;
/// Due entries moved into the stream per read.
const PROMOTE_BATCH: usize = 64;

/// Why the buffer could not do what was asked. Never carries content.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a retry buffer entry is malformed: {0}")]
    Malformed(String),
}

/// One buffered event: ids in the clear, the rest in `payload` (Fernet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub tenant: String,
    pub channel: String,
    /// Keyed hash of the conversation; empty when the event has none.
    pub conv: String,
    #[serde(with = "as_string")]
    pub attempts: u32,
    #[serde(with = "as_string")]
    pub due: i64,
    #[serde(with = "as_string")]
    pub first: i64,
    pub payload: String,
}

/// Numbers as strings, so Lua's `cjson` never rounds or reformats them.
mod as_string {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<T: std::fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    pub fn deserialize<'de, T: std::str::FromStr, D: Deserializer<'de>>(
        d: D,
    ) -> Result<T, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| serde::de::Error::custom("not a number"))
    }
}

/// What the ciphertext holds.
#[derive(Serialize, Deserialize)]
pub struct Sealed {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub tenant: String,
    pub channel: String,
    /// The rendered CRM body: the exact bytes every attempt sends and signs.
    pub body: String,
}

impl Entry {
    fn to_json(&self) -> String {
        // Plain strings into a Vec cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    #[cfg(test)]
    fn from_json(s: &str) -> Result<Self, BufferError> {
        serde_json::from_str(s).map_err(|e| BufferError::Malformed(e.to_string()))
    }

    fn from_stream(s: &StreamId) -> Result<Self, BufferError> {
        let text = |k: &str| {
            s.get::<String>(k)
                .ok_or_else(|| BufferError::Malformed(format!("stream entry without `{k}`")))
        };
        let num = |k: &str| {
            text(k)?
                .parse::<i64>()
                .map_err(|_| BufferError::Malformed(format!("stream entry `{k}` is not a number")))
        };
        Ok(Self {
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

    /// Encrypts the body and routing metadata under the primary vault key.
    pub fn seal(keyring: &Keyring, sealed: &Sealed) -> String {
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(sealed).unwrap_or_default());
        keyring.encrypt(&plain)
    }

    /// Decrypts the payload (any configured vault key) and checks it belongs to this
    /// entry's ids.
    pub fn open(&self, keyring: &Keyring) -> Result<Sealed, BufferError> {
        let plain = keyring
            .decrypt(&self.payload)
            .map_err(|e| BufferError::Malformed(e.to_string()))?;
        let sealed: Sealed =
            serde_json::from_slice(&plain).map_err(|e| BufferError::Malformed(e.to_string()))?;
        if sealed.id != self.id || sealed.tenant != self.tenant {
            return Err(BufferError::Malformed(
                "the ciphertext belongs to another entry".into(),
            ));
        }
        Ok(sealed)
    }
}

/// The shard of a conversation hash (or, without a conversation, an event id).
pub fn shard_of(key: &str, shards: u16) -> u16 {
    let d = Sha256::digest(key.as_bytes());
    u16::from_be_bytes([d[0], d[1]]) % shards.max(1)
}

/// What the buffer already holds for an event.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    /// The event itself is buffered (a provider redelivery).
    pub pending: bool,
    /// Earlier events of its conversation are buffered.
    pub behind: bool,
}

/// Where [`RetryBuffer::push`] put an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Scheduled for its due time.
    Scheduled,
    /// Waiting behind earlier events of its conversation.
    Parked,
    /// It was in the buffer already.
    AlreadyBuffered,
}

/// An entry a worker holds while attempting it.
#[derive(Debug)]
pub struct Taken {
    pub entry: Entry,
    pub shard: u16,
    handle: Handle,
}

#[derive(Debug)]
enum Handle {
    Stream(String),
    Memory(u64),
}

/// Depth and oldest entry of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantDepth {
    pub tenant: String,
    pub depth: u64,
    pub oldest_ms: Option<i64>,
}

/// A worker's read state for one shard: the blocking connection, and where its
/// XAUTOCLAIM scan of the pending list goes on (each call looks at a few entries, so the
/// cursor walks the whole list over successive reads).
#[derive(Default)]
pub struct ReadSlot {
    conn: Option<RedisConn>,
    claim_cursor: Option<String>,
}

/// The configured buffer (cheap to clone).
#[derive(Clone)]
pub enum RetryBuffer {
    Redis(RedisBuffer),
    Memory(Arc<MemoryBuffer>),
}

impl RetryBuffer {
    pub fn shards(&self) -> u16 {
        match self {
            RetryBuffer::Redis(r) => r.shards,
            RetryBuffer::Memory(_) => 1,
        }
    }

    pub fn shard_for(&self, key: &str) -> u16 {
        shard_of(key, self.shards())
    }

    /// Whether `event_id` (and earlier events of `conv`, when ordering) are buffered.
    pub async fn presence(
        &self,
        shard: u16,
        event_id: &str,
        conv: Option<&str>,
    ) -> Result<Presence, BufferError> {
        match self {
            RetryBuffer::Redis(r) => r.presence(shard, event_id, conv).await,
            RetryBuffer::Memory(m) => Ok(m.presence(event_id, conv)),
        }
    }

    /// Adds an entry; `ordered` parks it behind its conversation's head.
    pub async fn push(
        &self,
        entry: &Entry,
        ordered: bool,
        ttl: Duration,
    ) -> Result<Pushed, BufferError> {
        match self {
            RetryBuffer::Redis(r) => r.push(entry, ordered, ttl).await,
            RetryBuffer::Memory(m) => Ok(m.push(entry.clone(), ordered)),
        }
    }

    /// Takes one due entry of `shard`, waiting up to `block` (zero: not at all).
    pub async fn take(
        &self,
        shard: u16,
        consumer: &str,
        block: Duration,
        ttl: Duration,
        slot: &mut ReadSlot,
    ) -> Result<Option<Taken>, BufferError> {
        match self {
            RetryBuffer::Redis(r) => r.take(shard, consumer, block, ttl, slot).await,
            RetryBuffer::Memory(m) => Ok(m.take(block).await),
        }
    }

    /// Puts a taken entry back with a new due time (and attempt count).
    pub async fn reschedule(
        &self,
        taken: &Taken,
        next: &Entry,
        ttl: Duration,
    ) -> Result<(), BufferError> {
        match self {
            RetryBuffer::Redis(r) => r.reschedule(taken, next, ttl).await,
            RetryBuffer::Memory(m) => {
                m.reschedule(taken, next.clone());
                Ok(())
            }
        }
    }

    /// Forgets a taken entry (delivered or given up) and schedules the next event of
    /// its conversation.
    pub async fn complete(&self, taken: &Taken, ttl: Duration) -> Result<(), BufferError> {
        match self {
            RetryBuffer::Redis(r) => r.complete(taken, ttl).await,
            RetryBuffer::Memory(m) => {
                m.complete(taken);
                Ok(())
            }
        }
    }

    /// Depth and oldest entry per tenant.
    pub async fn depths(&self, tenants: &[String]) -> Result<Vec<TenantDepth>, BufferError> {
        match self {
            RetryBuffer::Redis(r) => r.depths(tenants).await,
            RetryBuffer::Memory(m) => Ok(m.depths(tenants)),
        }
    }

    /// Removes every buffered event of `channel` (`kind:id`), except the ids in `keep`:
    /// scheduled, parked, and in flight (a worker's later reschedule or complete of a
    /// removed entry does nothing). For data deletion ([`crate::privacy`]). Returns how
    /// many events were removed.
    pub async fn purge_channel(
        &self,
        channel: &str,
        keep: &[String],
    ) -> Result<usize, BufferError> {
        match self {
            RetryBuffer::Redis(r) => r.purge_channel(channel, keep).await,
            RetryBuffer::Memory(m) => Ok(m.purge_channel(channel, keep)),
        }
    }

    /// Forgets the group's consumers that hold nothing and were idle longer than
    /// `idle` (replicas that are gone; a live one is added again by its next read).
    /// Returns how many were removed.
    pub async fn prune_consumers(&self, idle: Duration, keep: &str) -> Result<usize, BufferError> {
        match self {
            RetryBuffer::Redis(r) => r.prune_consumers(idle, keep).await,
            RetryBuffer::Memory(_) => Ok(0),
        }
    }

    /// Removes one buffered event (scheduled, parked or in flight) from `shard`; `conv`
    /// is its conversation hash (empty without one). The next event of its
    /// conversation, if it was the head, is scheduled. For unsend
    /// ([`crate::delivery::unsend`]). Whether it was there.
    pub async fn purge_event(
        &self,
        shard: u16,
        event_id: &str,
        conv: &str,
        ttl: Duration,
    ) -> Result<bool, BufferError> {
        match self {
            RetryBuffer::Redis(r) => r.purge_event(shard, event_id, conv, ttl).await,
            RetryBuffer::Memory(m) => Ok(m.purge_event(event_id)),
        }
    }

    /// Readies the buffer for a worker (creates the consumer groups).
    pub async fn prepare(&self, ttl: Duration) -> Result<(), BufferError> {
        match self {
            RetryBuffer::Redis(r) => {
                for shard in 0..r.shards {
                    r.ensure_group(shard, ttl).await?;
                }
                Ok(())
            }
            RetryBuffer::Memory(_) => Ok(()),
        }
    }
}

fn ttl_ms(ttl: Duration) -> String {
    (ttl.as_millis() as u64 + TTL_MARGIN_MS).to_string()
}

const PUSH: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[5])
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[1])
redis.call('PEXPIRE', KEYS[5], ARGV[5])
if ARGV[6] == '1' then
  if redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('RPUSH', KEYS[4], ARGV[2])
    redis.call('PEXPIRE', KEYS[4], ARGV[5])
    return 2
  end
  redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[5])
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"#;

const PROMOTE: &str = r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  -- A member the relay did not write (it does not decode to an entry) is dropped, so
  -- it can never stall the shard.
  local ok, e = pcall(cjson.decode, m)
  local whole = ok and type(e) == 'table'
  if whole then
    for _, f in ipairs({'id', 'tenant', 'channel', 'conv', 'attempts', 'due', 'first', 'payload'}) do
      if type(e[f]) ~= 'string' then whole = false end
    end
  end
  if whole then
    redis.call('XADD', KEYS[2], '*', 'id', e.id, 'tenant', e.tenant, 'channel', e.channel,
      'conv', e.conv, 'attempts', e.attempts, 'due', e.due, 'first', e.first, 'payload', e.payload)
  end
  redis.call('ZREM', KEYS[1], m)
end
if #due > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return #due
"#;

const RESCHEDULE: &str = r#"
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if n == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
"#;

const COMPLETE: &str = r#"
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if n == 0 then return 0 end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[6], ARGV[3])
if redis.call('GET', KEYS[4]) == ARGV[3] then
  local nxt = redis.call('LPOP', KEYS[5])
  if nxt then
    local e = cjson.decode(nxt)
    redis.call('SET', KEYS[4], e.id, 'PX', ARGV[4])
    redis.call('ZADD', KEYS[2], ARGV[5], nxt)
    redis.call('PEXPIRE', KEYS[2], ARGV[4])
  else
    redis.call('DEL', KEYS[4])
  end
end
return 1
"#;

/// Removes a channel's entries from one shard. KEYS: stream, delayed (the other keys
/// of the shard are built from ARGV[3], the shard's key prefix: same hash tag, same
/// slot). ARGV: group, channel, shard prefix, comma-separated ids to keep. XACK of an
/// entry in flight makes the worker's RESCHEDULE/COMPLETE of it a no-op.
const PURGE: &str = r#"
local keep = {}
for id in string.gmatch(ARGV[4], '[^,]+') do keep[id] = true end
local removed = 0
local convs = {}
local function forget(id, tenant, conv)
  redis.call('DEL', ARGV[3] .. 'pending:' .. id)
  redis.call('ZREM', ARGV[3] .. 'tenant:' .. tenant, id)
  if conv ~= '' then convs[conv] = true end
  removed = removed + 1
end
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local e = cjson.decode(m)
  if e.channel == ARGV[2] and not keep[e.id] then
    redis.call('ZREM', KEYS[2], m)
    forget(e.id, e.tenant, e.conv)
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  for _, s in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
    local f = {}
    for i = 1, #s[2], 2 do f[s[2][i]] = s[2][i + 1] end
    if f.channel == ARGV[2] and not keep[f.id] then
      redis.pcall('XACK', KEYS[1], ARGV[1], s[1])
      redis.call('XDEL', KEYS[1], s[1])
      forget(f.id, f.tenant, f.conv or '')
    end
  end
end
for conv, _ in pairs(convs) do
  local parked = ARGV[3] .. 'parked:' .. conv
  for _, m in ipairs(redis.call('LRANGE', parked, 0, -1)) do
    local e = cjson.decode(m)
    forget(e.id, e.tenant, '')
  end
  redis.call('DEL', parked)
  redis.call('DEL', ARGV[3] .. 'head:' .. conv)
end
return removed
"#;

/// Removes one entry from a shard. KEYS: stream, delayed. ARGV: group, event id, shard
/// prefix, conversation hash (or ''), key TTL ms, now ms. Like COMPLETE, a removed head
/// hands over to the next parked event of its conversation.
const PURGE_ONE: &str = r#"
local p = ARGV[3]
if redis.call('EXISTS', p .. 'pending:' .. ARGV[2]) == 0 then return 0 end
local found = nil
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local e = cjson.decode(m)
  if e.id == ARGV[2] then
    redis.call('ZREM', KEYS[2], m)
    found = e
    break
  end
end
if not found and redis.call('EXISTS', KEYS[1]) == 1 then
  for _, s in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
    local f = {}
    for i = 1, #s[2], 2 do f[s[2][i]] = s[2][i + 1] end
    if f.id == ARGV[2] then
      redis.pcall('XACK', KEYS[1], ARGV[1], s[1])
      redis.call('XDEL', KEYS[1], s[1])
      found = f
      break
    end
  end
end
if not found and ARGV[4] ~= '' then
  local parked = p .. 'parked:' .. ARGV[4]
  for _, m in ipairs(redis.call('LRANGE', parked, 0, -1)) do
    local e = cjson.decode(m)
    if e.id == ARGV[2] then
      redis.call('LREM', parked, 1, m)
      found = e
      break
    end
  end
end
if not found then return 0 end
redis.call('DEL', p .. 'pending:' .. ARGV[2])
redis.call('ZREM', p .. 'tenant:' .. found.tenant, ARGV[2])
local conv = found.conv or ''
if conv ~= '' then
  local head = p .. 'head:' .. conv
  if redis.call('GET', head) == ARGV[2] then
    local nxt = redis.call('LPOP', p .. 'parked:' .. conv)
    if nxt then
      local e = cjson.decode(nxt)
      redis.call('SET', head, e.id, 'PX', ARGV[5])
      redis.call('ZADD', KEYS[2], ARGV[6], nxt)
      redis.call('PEXPIRE', KEYS[2], ARGV[5])
    else
      redis.call('DEL', head)
    end
  end
end
return 1
"#;

/// The placeholder conversation of events that have none (its keys are never set).
const NO_CONV: &str = "-";

/// The Redis buffer: see the module docs.
#[derive(Clone)]
pub struct RedisBuffer {
    store: RedisStore,
    shards: u16,
    claim_idle: Duration,
    scripts: Arc<Scripts>,
}

struct Scripts {
    push: Script,
    promote: Script,
    reschedule: Script,
    complete: Script,
    purge: Script,
    purge_one: Script,
}

impl RedisBuffer {
    pub fn new(store: RedisStore, shards: u16, claim_idle: Duration) -> Self {
        Self {
            store,
            shards: shards.max(1),
            claim_idle,
            scripts: Arc::new(Scripts {
                push: Script::new(PUSH),
                promote: Script::new(PROMOTE),
                reschedule: Script::new(RESCHEDULE),
                complete: Script::new(COMPLETE),
                purge: Script::new(PURGE),
                purge_one: Script::new(PURGE_ONE),
            }),
        }
    }

    fn keys(&self) -> &Keys {
        self.store.keys()
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

    async fn push(&self, e: &Entry, ordered: bool, ttl: Duration) -> Result<Pushed, BufferError> {
        let shard = shard_of(if e.conv.is_empty() { &e.id } else { &e.conv }, self.shards);
        let k = self.keys();
        let conv = if e.conv.is_empty() { NO_CONV } else { &e.conv };
        let ordered = ordered && !e.conv.is_empty();
        let mut conn = self.store.conn().await?;
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
                ],
            )
            .await?;
        Ok(match n {
            0 => Pushed::AlreadyBuffered,
            2 => Pushed::Parked,
            _ => Pushed::Scheduled,
        })
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
        match Entry::from_stream(s) {
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

    fn stream_id<'a>(&self, taken: &'a Taken) -> &'a str {
        match &taken.handle {
            Handle::Stream(id) => id,
            Handle::Memory(_) => "0-0",
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
        let k = self.keys();
        let stream = k.retry_stream(shard);
        let prefix = stream.strip_suffix("stream").unwrap_or_default().to_owned();
        let mut conn = self.store.conn().await?;
        let n: i64 = conn
            .eval(
                &self.scripts.purge_one,
                &[&stream, &k.retry_delayed(shard)],
                &[
                    GROUP,
                    event_id,
                    &prefix,
                    conv,
                    &ttl_ms(ttl),
                    &now_ms().to_string(),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn purge_channel(&self, channel: &str, keep: &[String]) -> Result<usize, BufferError> {
        let k = self.keys();
        let keep = keep.join(",");
        let mut conn = self.store.conn().await?;
        let mut removed = 0;
        for shard in 0..self.shards {
            let stream = k.retry_stream(shard);
            let prefix = stream.strip_suffix("stream").unwrap_or_default().to_owned();
            let n: i64 = conn
                .eval(
                    &self.scripts.purge,
                    &[&stream, &k.retry_delayed(shard)],
                    &[GROUP, channel, &prefix, &keep],
                )
                .await?;
            removed += n.max(0) as usize;
        }
        Ok(removed)
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
}

/// The in-process buffer of the memory backend: the same semantics, one process.
#[derive(Debug)]
pub struct MemoryBuffer {
    state: Mutex<MemState>,
    wake: tokio::sync::Notify,
    claim_idle: Duration,
}

#[derive(Debug, Default)]
struct MemState {
    seq: u64,
    delayed: BTreeMap<(i64, u64), Entry>,
    inflight: HashMap<u64, (Entry, Instant)>,
    pending: HashSet<String>,
    heads: HashMap<String, String>,
    parked: HashMap<String, VecDeque<Entry>>,
    tenants: HashMap<String, HashMap<String, i64>>,
}

impl MemState {
    /// Forgets a settled entry: its pending marker and tenant index, and, if it headed
    /// its conversation, hands the conversation to the next parked entry (due now).
    fn forget(&mut self, e: &Entry) {
        self.pending.remove(&e.id);
        if let Some(t) = self.tenants.get_mut(&e.tenant) {
            t.remove(&e.id);
        }
        if self.heads.get(&e.conv).is_some_and(|h| *h == e.id) {
            match self.parked.get_mut(&e.conv).and_then(|q| q.pop_front()) {
                Some(n) => {
                    self.heads.insert(e.conv.clone(), n.id.clone());
                    self.schedule(now_ms(), n);
                }
                None => {
                    self.heads.remove(&e.conv);
                    self.parked.remove(&e.conv);
                }
            }
        }
    }

    fn schedule(&mut self, due: i64, e: Entry) {
        self.seq += 1;
        self.delayed.insert((due, self.seq), e);
    }
}

impl MemoryBuffer {
    pub fn new(claim_idle: Duration) -> Self {
        Self {
            state: Mutex::new(MemState::default()),
            wake: tokio::sync::Notify::new(),
            claim_idle,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MemState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn presence(&self, event_id: &str, conv: Option<&str>) -> Presence {
        let s = self.state();
        Presence {
            pending: s.pending.contains(event_id),
            behind: conv
                .and_then(|c| s.heads.get(c))
                .is_some_and(|h| h != event_id),
        }
    }

    fn push(&self, e: Entry, ordered: bool) -> Pushed {
        let pushed = {
            let mut s = self.state();
            if !s.pending.insert(e.id.clone()) {
                return Pushed::AlreadyBuffered;
            }
            s.tenants
                .entry(e.tenant.clone())
                .or_default()
                .insert(e.id.clone(), e.first);
            if ordered && !e.conv.is_empty() {
                if s.heads.contains_key(&e.conv) {
                    s.parked.entry(e.conv.clone()).or_default().push_back(e);
                    return Pushed::Parked;
                }
                s.heads.insert(e.conv.clone(), e.id.clone());
            }
            let due = e.due;
            s.schedule(due, e);
            Pushed::Scheduled
        };
        self.wake.notify_waiters();
        pushed
    }

    fn try_take(&self) -> Option<Taken> {
        let mut s = self.state();
        let now = Instant::now();
        let stale = s
            .inflight
            .iter()
            .find(|(_, (_, at))| now.duration_since(*at) >= self.claim_idle)
            .map(|(k, _)| *k);
        let entry = match stale {
            Some(k) => s.inflight.remove(&k).map(|(e, _)| e),
            None => {
                let first = s.delayed.keys().next().copied();
                match first {
                    Some(key) if key.0 <= now_ms() => s.delayed.remove(&key),
                    _ => None,
                }
            }
        }?;
        s.seq += 1;
        let token = s.seq;
        s.inflight.insert(token, (entry.clone(), now));
        Some(Taken {
            entry,
            shard: 0,
            handle: Handle::Memory(token),
        })
    }

    async fn take(&self, block: Duration) -> Option<Taken> {
        if let Some(t) = self.try_take() {
            return Some(t);
        }
        if block.is_zero() {
            return None;
        }
        // Wake on a push, or after `block` (due times pass without a push).
        let _ = tokio::time::timeout(block, self.wake.notified()).await;
        self.try_take()
    }

    fn token(taken: &Taken) -> u64 {
        match taken.handle {
            Handle::Memory(t) => t,
            Handle::Stream(_) => 0,
        }
    }

    fn reschedule(&self, taken: &Taken, next: Entry) {
        let mut s = self.state();
        if s.inflight.remove(&Self::token(taken)).is_some() {
            s.schedule(next.due, next);
        }
    }

    fn complete(&self, taken: &Taken) {
        let mut s = self.state();
        if s.inflight.remove(&Self::token(taken)).is_none() {
            return;
        }
        s.forget(&taken.entry);
        drop(s);
        self.wake.notify_waiters();
    }

    fn purge_event(&self, id: &str) -> bool {
        let mut s = self.state();
        if !s.pending.contains(id) {
            return false;
        }
        let mut found = None;
        if let Some(k) = s.delayed.iter().find(|(_, e)| e.id == id).map(|(k, _)| *k) {
            found = s.delayed.remove(&k);
        }
        if found.is_none() {
            if let Some(t) = s
                .inflight
                .iter()
                .find(|(_, (e, _))| e.id == id)
                .map(|(k, _)| *k)
            {
                found = s.inflight.remove(&t).map(|(e, _)| e);
            }
        }
        if found.is_none() {
            for q in s.parked.values_mut() {
                if let Some(pos) = q.iter().position(|e| e.id == id) {
                    found = q.remove(pos);
                    break;
                }
            }
        }
        let Some(e) = found else {
            return false;
        };
        s.forget(&e);
        drop(s);
        self.wake.notify_waiters();
        true
    }

    fn purge_channel(&self, channel: &str, keep: &[String]) -> usize {
        let mut s = self.state();
        let hit = |e: &Entry| e.channel == channel && !keep.contains(&e.id);
        let mut removed: Vec<Entry> = Vec::new();
        let delayed: Vec<(i64, u64)> = s
            .delayed
            .iter()
            .filter(|(_, e)| hit(e))
            .map(|(k, _)| *k)
            .collect();
        for k in delayed {
            removed.extend(s.delayed.remove(&k));
        }
        let inflight: Vec<u64> = s
            .inflight
            .iter()
            .filter(|(_, (e, _))| hit(e))
            .map(|(k, _)| *k)
            .collect();
        for k in inflight {
            removed.extend(s.inflight.remove(&k).map(|(e, _)| e));
        }
        let convs: HashSet<String> = removed
            .iter()
            .filter(|e| !e.conv.is_empty())
            .map(|e| e.conv.clone())
            .collect();
        for c in convs {
            removed.extend(s.parked.remove(&c).into_iter().flatten());
            s.heads.remove(&c);
        }
        for e in &removed {
            s.pending.remove(&e.id);
            if let Some(t) = s.tenants.get_mut(&e.tenant) {
                t.remove(&e.id);
            }
        }
        removed.len()
    }

    fn depths(&self, tenants: &[String]) -> Vec<TenantDepth> {
        let s = self.state();
        tenants
            .iter()
            .map(|t| {
                let m = s.tenants.get(t);
                TenantDepth {
                    tenant: t.clone(),
                    depth: m.map_or(0, |m| m.len() as u64),
                    oldest_ms: m.and_then(|m| m.values().min().copied()),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, conv: &str, due: i64) -> Entry {
        Entry {
            id: id.into(),
            tenant: "acme".into(),
            channel: "whatsapp:1".into(),
            conv: conv.into(),
            attempts: 1,
            due,
            first: due,
            payload: "gAAAAA".into(),
        }
    }

    #[test]
    fn entry_json_round_trips_with_numbers_as_strings() {
        let e = entry("evt_1", "c", 1_763_400_000_123);
        let j = e.to_json();
        assert!(j.contains("\"due\":\"1763400000123\""), "{j}");
        assert_eq!(Entry::from_json(&j).unwrap(), e);
    }

    #[test]
    fn sealed_payload_opens_only_for_its_entry() {
        let ring = Keyring::new(&[secrecy::SecretString::from(Keyring::generate_key())]).unwrap();
        let sealed = Sealed {
            id: "evt_1".into(),
            event_type: "message.received".into(),
            tenant: "acme".into(),
            channel: "whatsapp:1".into(),
            body: "{\"text\":\"hello\"}".into(),
        };
        let mut e = entry("evt_1", "c", 0);
        e.payload = Entry::seal(&ring, &sealed);
        assert!(!e.payload.contains("hello"));
        assert_eq!(e.open(&ring).unwrap().body, sealed.body);
        e.id = "evt_2".into();
        assert!(e.open(&ring).is_err());
    }

    #[tokio::test]
    async fn memory_buffer_parks_a_conversation_behind_its_head_and_dedupes() {
        let m = MemoryBuffer::new(Duration::from_secs(30));
        assert_eq!(m.push(entry("a", "c", 0), true), Pushed::Scheduled);
        assert_eq!(m.push(entry("b", "c", 0), true), Pushed::Parked);
        assert_eq!(m.push(entry("a", "c", 0), true), Pushed::AlreadyBuffered);
        assert_eq!(
            m.presence("z", Some("c")),
            Presence {
                pending: false,
                behind: true
            }
        );
        let t = m.take(Duration::ZERO).await.unwrap();
        assert_eq!(t.entry.id, "a");
        assert!(m.take(Duration::ZERO).await.is_none(), "b waits behind a");
        m.complete(&t);
        let t = m.take(Duration::ZERO).await.unwrap();
        assert_eq!(t.entry.id, "b");
        m.complete(&t);
        assert_eq!(m.depths(&["acme".into()])[0].depth, 0);
        assert!(!m.presence("a", Some("c")).pending);
    }

    #[tokio::test]
    async fn memory_buffer_reclaims_an_entry_after_the_visibility_timeout() {
        let m = MemoryBuffer::new(Duration::from_millis(0));
        m.push(entry("a", "", 0), true);
        let first = m.take(Duration::ZERO).await.unwrap();
        let again = m.take(Duration::ZERO).await.unwrap();
        assert_eq!(again.entry.id, "a");
        // The first holder's late answer is ignored; the claimer's counts.
        m.complete(&first);
        assert!(m.presence("a", None).pending);
        m.complete(&again);
        assert!(!m.presence("a", None).pending);
    }

    #[tokio::test]
    async fn memory_buffer_purges_an_event_or_a_channel_and_keeps_the_order() {
        let m = MemoryBuffer::new(Duration::from_secs(30));
        m.push(entry("a", "c", 0), true);
        m.push(entry("b", "c", 0), true);
        m.push(entry("x", "", i64::MAX / 2), true);
        // Purging the head hands the conversation to the next event.
        assert!(m.purge_event("a"));
        assert!(!m.purge_event("a"));
        assert!(!m.presence("a", None).pending);
        assert_eq!(
            m.presence("b", Some("c")),
            Presence {
                pending: true,
                behind: false
            }
        );
        let t = m.take(Duration::ZERO).await.unwrap();
        assert_eq!(t.entry.id, "b");
        // A channel purge takes what is in flight too; the worker's late answer is moot.
        let mut other = entry("y", "", 0);
        other.channel = "whatsapp:2".into();
        m.push(other, true);
        assert_eq!(m.purge_channel("whatsapp:1", &["x".to_owned()]), 1);
        m.complete(&t);
        assert_eq!(m.depths(&["acme".into()])[0].depth, 2, "x (kept) and y");
        assert!(!m.presence("b", None).pending);
    }

    #[test]
    fn shards_spread_and_stay_in_range() {
        let mut seen = HashSet::new();
        for i in 0..100 {
            let s = shard_of(&format!("k{i}"), 4);
            assert!(s < 4);
            seen.insert(s);
        }
        assert_eq!(seen.len(), 4);
    }
}
