//! The dead-letter list (opt-in, `delivery.dead_letter_ttl_s`; 0 = off): where an
//! event the retry buffer gives up on (still undelivered `retry_buffer_ttl_s` after it
//! was first seen) waits, instead of being deleted, until an operator redrives it into
//! the buffer, drops it, or it expires after `dead_letter_ttl_s`.
//!
//! A [`DeadLetter`] keeps the buffer entry's Fernet payload as it was (the rendered
//! body and routing metadata, under the vault's key) and, in the clear, only ids and
//! numbers: event id, tenant, channel, the keyed conversation hash, the event type,
//! attempts, and the first-seen, given-up and expiry times. Nothing here ever decrypts.
//!
//! Two backends, as the buffer has: [`redis::RedisDeadLetters`] (per retry shard N,
//! keys with the same hash tag `{sN}`, one Cluster slot; see [`crate::store::keys`]) and
//! [`memory::MemoryDeadLetters`] (`store.backend = "memory"`). [`DeadLetters`] is the
//! configured one. What operators do with them (list, redrive, drop, stats; shared by
//! the admin API and the CLI): [`tools`].

pub mod memory;
pub mod redis;
pub mod tools;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::buffer::Entry;
use crate::config::DeliverySettings;
use crate::store::{Store, StoreError};

pub use memory::MemoryDeadLetters;
pub use redis::RedisDeadLetters;

/// One given-up event: ids and times in the clear, the content still in `payload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: String,
    pub tenant: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// `kind:id` of the business account.
    pub channel: String,
    /// Keyed hash of the conversation (empty without one), for its place on redrive.
    pub conv: String,
    /// Attempts made before it was given up.
    pub attempts: u32,
    /// First seen, given up, and when the list forgets it (Unix ms).
    pub first: i64,
    pub given_up: i64,
    pub expires: i64,
    /// The buffer entry's Fernet token, unchanged.
    pub payload: String,
}

impl DeadLetter {
    /// The dead letter of a buffer entry given up at `now`, kept for `ttl_s`.
    pub fn of(entry: &Entry, event_type: &str, now: i64, ttl_s: u64) -> Self {
        let ttl_ms = i64::try_from(ttl_s)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        Self {
            id: entry.id.clone(),
            tenant: entry.tenant.clone(),
            event_type: event_type.to_owned(),
            channel: entry.channel.clone(),
            conv: entry.conv.clone(),
            attempts: entry.attempts,
            first: entry.first,
            given_up: now,
            expires: now.saturating_add(ttl_ms),
            payload: entry.payload.clone(),
        }
    }

    /// The buffer entry that redrives it: due now, with a fresh retry window (first
    /// seen = now, no attempts yet), so it is not given up again at once.
    pub fn to_entry(&self, now: i64) -> Entry {
        Entry {
            id: self.id.clone(),
            tenant: self.tenant.clone(),
            channel: self.channel.clone(),
            conv: self.conv.clone(),
            attempts: 0,
            due: now,
            first: now,
            payload: self.payload.clone(),
        }
    }

    fn to_json(&self) -> String {
        // Strings and integers only: cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    fn from_json(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }
}

/// The configured dead-letter list (cheap to clone).
#[derive(Clone)]
pub enum DeadLetters {
    Redis(RedisDeadLetters),
    Memory(Arc<MemoryDeadLetters>),
}

impl DeadLetters {
    /// The list that goes with the store (and the buffer's shards).
    pub fn open(store: &Store, delivery: &DeliverySettings) -> Self {
        match store {
            Store::Redis(r) => {
                DeadLetters::Redis(RedisDeadLetters::new((**r).clone(), delivery.retry_shards))
            }
            Store::Memory(_) => DeadLetters::Memory(Arc::new(MemoryDeadLetters::default())),
        }
    }

    /// Keeps a dead letter in `shard` (the shard its buffer entry was in).
    pub async fn keep(&self, shard: u16, dl: &DeadLetter) -> Result<(), StoreError> {
        match self {
            DeadLetters::Redis(r) => r.keep(shard, dl).await,
            DeadLetters::Memory(m) => {
                m.keep(dl.clone());
                Ok(())
            }
        }
    }

    /// The dead letter of an event id, with its shard.
    pub async fn find(&self, id: &str) -> Result<Option<(u16, DeadLetter)>, StoreError> {
        match self {
            DeadLetters::Redis(r) => r.find(id).await,
            DeadLetters::Memory(m) => Ok(m.find(id).map(|d| (0, d))),
        }
    }

    /// Forgets a dead letter; whether it was there.
    pub async fn remove(&self, shard: u16, dl: &DeadLetter) -> Result<bool, StoreError> {
        match self {
            DeadLetters::Redis(r) => r.remove(shard, dl).await,
            DeadLetters::Memory(m) => Ok(m.remove(&dl.id)),
        }
    }

    /// Up to `limit` dead letters (of one tenant, or all), oldest given up first.
    pub async fn list(
        &self,
        tenant: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        match self {
            DeadLetters::Redis(r) => r.list(tenant, limit).await,
            DeadLetters::Memory(m) => Ok(m.list(tenant, limit)),
        }
    }

    /// How many dead letters a tenant has.
    pub async fn count(&self, tenant: &str) -> Result<u64, StoreError> {
        match self {
            DeadLetters::Redis(r) => r.count(tenant).await,
            DeadLetters::Memory(m) => Ok(m.count(tenant)),
        }
    }

    /// Drops every dead letter of `channel` (`kind:id`), for data deletion. How many.
    pub async fn purge_channel(&self, channel: &str) -> Result<usize, StoreError> {
        match self {
            DeadLetters::Redis(r) => r.purge_channel(channel).await,
            DeadLetters::Memory(m) => Ok(m.purge_channel(channel)),
        }
    }

    /// Drops the dead letter of one event, for unsend. Whether it was there.
    pub async fn purge_event(&self, id: &str) -> Result<bool, StoreError> {
        match self.find(id).await? {
            Some((shard, dl)) => self.remove(shard, &dl).await,
            None => Ok(false),
        }
    }

    /// Publishes `switchboard_dead_letters{tenant}` (a gauge) for each tenant; for the
    /// worker's periodic report, so a failure is only logged at debug.
    pub async fn report_counts(&self, tenants: &[String]) {
        for t in tenants {
            match self.count(t).await {
                Ok(n) => {
                    metrics::gauge!("switchboard_dead_letters", "tenant" => t.clone()).set(n as f64)
                }
                Err(e) => {
                    tracing::debug!(error = %e, "Dead-letter count skipped.");
                    return;
                }
            }
        }
    }

    /// The worker's hook when it gives an entry up: keeps it when the list is on
    /// (`dead_letter_ttl_s` > 0). Whether it was kept.
    pub async fn keep_given_up(
        &self,
        entry: &Entry,
        shard: u16,
        event_type: &str,
        now: i64,
        delivery: &DeliverySettings,
    ) -> Result<bool, StoreError> {
        if delivery.dead_letter_ttl_s == 0 {
            return Ok(false);
        }
        let dl = DeadLetter::of(entry, event_type, now, delivery.dead_letter_ttl_s);
        self.keep(shard, &dl).await?;
        metrics::counter!("switchboard_events_dead_lettered_total", "tenant" => dl.tenant.clone())
            .increment(1);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::buffer::entry::tests::entry;

    #[test]
    fn a_dead_letter_keeps_the_payload_and_redrives_with_a_fresh_window() {
        let mut e = entry("evt_1", "c", 1_000);
        e.attempts = 7;
        let dl = DeadLetter::of(&e, "message.received", 90_000, 60);
        assert_eq!(dl.payload, e.payload);
        assert_eq!((dl.given_up, dl.expires, dl.attempts), (90_000, 150_000, 7));
        let back = DeadLetter::from_json(&dl.to_json()).unwrap();
        assert_eq!(back, dl);
        let again = back.to_entry(100_000);
        assert_eq!(
            (again.first, again.due, again.attempts),
            (100_000, 100_000, 0)
        );
        assert_eq!(
            (again.id, again.conv, again.payload),
            (e.id, e.conv, e.payload)
        );
    }
}
