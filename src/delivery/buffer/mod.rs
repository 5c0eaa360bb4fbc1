//! The retry buffer: where an event waits, Fernet-encrypted, when its CRM did not take
//! it directly. Any replica may redeliver it; a replica that dies loses nothing; nothing
//! at all is kept in the normal case (an event the CRM takes directly never touches it).
//!
//! One interface, [`BufferBackend`], with two backends, as in [`crate::store`]:
//! [`redis::RedisBuffer`] (sharded streams with a consumer group, Lua scripts; its
//! module doc has the design, ARCHITECTURE.md the key layout) and
//! [`memory::MemoryBuffer`] (`store.backend = "memory"`: the same semantics in this
//! process). [`RetryBuffer`] is the configured one. What an entry holds: [`entry`].

pub mod entry;
pub mod memory;
pub mod redis;
mod redis_purge;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::store::redis::RedisConn;
use crate::store::StoreError;

pub use entry::{Entry, Sealed};
pub use memory::MemoryBuffer;
pub use redis::RedisBuffer;

/// The consumer group every replica's worker joins.
pub const GROUP: &str = "relay";

/// Why the buffer could not do what was asked. Never carries content.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a retry buffer entry is malformed: {0}")]
    Malformed(String),
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
    /// Not buffered: its tenant holds `delivery.max_buffered_per_tenant` events already.
    Full,
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

/// What every buffer backend does. Methods are `async` and `Send`, so the dispatcher
/// and the worker can hold any backend; [`RetryBuffer`] picks one at start.
pub trait BufferBackend: Send + Sync {
    /// How many shards the buffer has (the memory backend: one).
    fn shards(&self) -> u16;

    /// The shard of a conversation hash (or, without a conversation, an event id).
    fn shard_for(&self, key: &str) -> u16 {
        shard_of(key, self.shards())
    }

    /// Whether `event_id` (and earlier events of `conv`, when ordering) are buffered.
    fn presence(
        &self,
        shard: u16,
        event_id: &str,
        conv: Option<&str>,
    ) -> impl Future<Output = Result<Presence, BufferError>> + Send;

    /// Adds an entry; `ordered` parks it behind its conversation's head. `limit` (0 =
    /// none) is how many events its tenant may have buffered, on every replica
    /// together: at the limit the entry is refused ([`Pushed::Full`]).
    fn push(
        &self,
        entry: &Entry,
        ordered: bool,
        ttl: Duration,
        limit: u64,
    ) -> impl Future<Output = Result<Pushed, BufferError>> + Send;

    /// Takes one due entry of `shard`, waiting up to `block` (zero: not at all).
    fn take(
        &self,
        shard: u16,
        consumer: &str,
        block: Duration,
        ttl: Duration,
        slot: &mut ReadSlot,
    ) -> impl Future<Output = Result<Option<Taken>, BufferError>> + Send;

    /// Puts a taken entry back with a new due time (and attempt count).
    fn reschedule(
        &self,
        taken: &Taken,
        next: &Entry,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), BufferError>> + Send;

    /// Forgets a taken entry (delivered or given up) and schedules the next event of
    /// its conversation.
    fn complete(
        &self,
        taken: &Taken,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), BufferError>> + Send;

    /// Depth and oldest entry per tenant.
    fn depths(
        &self,
        tenants: &[String],
    ) -> impl Future<Output = Result<Vec<TenantDepth>, BufferError>> + Send;

    /// Removes every buffered event of `channel` (`kind:id`), except the ids in `keep`:
    /// scheduled, parked, and in flight (a worker's later reschedule or complete of a
    /// removed entry does nothing). For data deletion ([`crate::privacy`]). Returns how
    /// many events were removed.
    fn purge_channel(
        &self,
        channel: &str,
        keep: &[String],
    ) -> impl Future<Output = Result<usize, BufferError>> + Send;

    /// Forgets the group's consumers that hold nothing and were idle longer than
    /// `idle` (replicas that are gone; a live one is added again by its next read).
    /// Returns how many were removed.
    fn prune_consumers(
        &self,
        idle: Duration,
        keep: &str,
    ) -> impl Future<Output = Result<usize, BufferError>> + Send;

    /// Removes one buffered event (scheduled, parked or in flight) from `shard`; `conv`
    /// is its conversation hash (empty without one). The next event of its
    /// conversation, if it was the head, is scheduled. For unsend
    /// ([`crate::delivery::unsend`]). Whether it was there.
    fn purge_event(
        &self,
        shard: u16,
        event_id: &str,
        conv: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, BufferError>> + Send;

    /// Readies the buffer for a worker (creates the consumer groups).
    fn prepare(&self, ttl: Duration) -> impl Future<Output = Result<(), BufferError>> + Send;
}

/// The configured buffer (cheap to clone).
#[derive(Clone)]
pub enum RetryBuffer {
    Redis(RedisBuffer),
    Memory(Arc<MemoryBuffer>),
}

impl RetryBuffer {
    /// Whether the buffer may hold events, as far as this process can tell without a
    /// round trip: a Redis buffer always may; an in-process one only when not empty.
    pub fn may_hold_events(&self) -> bool {
        match self {
            RetryBuffer::Redis(_) => true,
            RetryBuffer::Memory(b) => !b.is_empty(),
        }
    }
}

macro_rules! delegate {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            RetryBuffer::Redis($b) => {
                let $b: &RedisBuffer = $b;
                $e
            }
            RetryBuffer::Memory($b) => {
                let $b: &MemoryBuffer = $b;
                $e
            }
        }
    };
}

impl BufferBackend for RetryBuffer {
    fn shards(&self) -> u16 {
        delegate!(self, b => b.shards())
    }
    async fn presence(
        &self,
        shard: u16,
        event_id: &str,
        conv: Option<&str>,
    ) -> Result<Presence, BufferError> {
        delegate!(self, b => BufferBackend::presence(b, shard, event_id, conv).await)
    }
    async fn push(
        &self,
        entry: &Entry,
        ordered: bool,
        ttl: Duration,
        limit: u64,
    ) -> Result<Pushed, BufferError> {
        delegate!(self, b => BufferBackend::push(b, entry, ordered, ttl, limit).await)
    }
    async fn take(
        &self,
        shard: u16,
        consumer: &str,
        block: Duration,
        ttl: Duration,
        slot: &mut ReadSlot,
    ) -> Result<Option<Taken>, BufferError> {
        delegate!(self, b => BufferBackend::take(b, shard, consumer, block, ttl, slot).await)
    }
    async fn reschedule(
        &self,
        taken: &Taken,
        next: &Entry,
        ttl: Duration,
    ) -> Result<(), BufferError> {
        delegate!(self, b => BufferBackend::reschedule(b, taken, next, ttl).await)
    }
    async fn complete(&self, taken: &Taken, ttl: Duration) -> Result<(), BufferError> {
        delegate!(self, b => BufferBackend::complete(b, taken, ttl).await)
    }
    async fn depths(&self, tenants: &[String]) -> Result<Vec<TenantDepth>, BufferError> {
        delegate!(self, b => BufferBackend::depths(b, tenants).await)
    }
    async fn purge_channel(&self, channel: &str, keep: &[String]) -> Result<usize, BufferError> {
        delegate!(self, b => BufferBackend::purge_channel(b, channel, keep).await)
    }
    async fn prune_consumers(&self, idle: Duration, keep: &str) -> Result<usize, BufferError> {
        delegate!(self, b => BufferBackend::prune_consumers(b, idle, keep).await)
    }
    async fn purge_event(
        &self,
        shard: u16,
        event_id: &str,
        conv: &str,
        ttl: Duration,
    ) -> Result<bool, BufferError> {
        delegate!(self, b => BufferBackend::purge_event(b, shard, event_id, conv, ttl).await)
    }
    async fn prepare(&self, ttl: Duration) -> Result<(), BufferError> {
        delegate!(self, b => BufferBackend::prepare(b, ttl).await)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

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
