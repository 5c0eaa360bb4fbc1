//! WhatsApp Business Account → its WhatsApp channels, for the account-level webhooks
//! (template status, quality, account updates), which name only the WABA.
//!
//! There is no index to keep in step: the lookup reads the channel hashes themselves
//! (`SCAN {prefix}channel:whatsapp:*`, then `HMGET tenant waba_id` of each), so channels
//! written directly by other services are found too. Account-level webhooks are rare,
//! so the scan is off the message hot path; its result is cached per process:
//!
//! - **Writes by this relay** drop this process's copy at once and bump the channels
//!   version key; every lookup reads that key (one `GET`) and rebuilds when it changed,
//!   so other replicas see such writes on their next account-level webhook.
//! - **Writes by anyone else** are seen once the copy is older than
//!   `store.channel_cache_ms` (the routing cache's bound; 0: every lookup scans).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};

use super::redis::RedisStore;
use super::{StoreBackend, StoreError};
use crate::channel::{ChannelKind, ChannelRef};

/// WABA id → its channels and their tenants, smallest channel id first.
type Index = HashMap<String, Vec<(ChannelRef, String)>>;

/// One channel key and its `tenant` and `waba_id` fields, as read.
type Read = (String, Result<(Option<String>, Option<String>), StoreError>);

/// HMGETs in flight at once while the index is rebuilt.
const READS_AT_ONCE: usize = 16;

/// Channel ids in numeric order when both are digits (`9` before `10`), else as text.
pub fn numeric_order(a: &str, b: &str) -> Ordering {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if digits(a) && digits(b) {
        let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    } else {
        a.cmp(b)
    }
}

/// The process's copy of the index, with the version key it was built under.
#[derive(Debug)]
pub struct WabaCache {
    ttl: Duration,
    state: Mutex<Option<Snapshot>>,
}

#[derive(Debug)]
struct Snapshot {
    built: Instant,
    version: Option<i64>,
    index: Arc<Index>,
}

impl WabaCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            state: Mutex::new(None),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Option<Snapshot>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The copy, if it was built under `version` less than the TTL ago.
    fn get(&self, version: Option<i64>, now: Instant) -> Option<Arc<Index>> {
        self.state()
            .as_ref()
            .filter(|s| s.version == version && now.saturating_duration_since(s.built) < self.ttl)
            .map(|s| s.index.clone())
    }

    fn put(&self, version: Option<i64>, built: Instant, index: Arc<Index>) {
        *self.state() = Some(Snapshot {
            built,
            version,
            index,
        });
    }

    /// This process changed channels.
    pub fn clear(&self) {
        *self.state() = None;
    }
}

/// [`StoreBackend::waba_channels`] for Redis.
pub(super) async fn redis_lookup(
    store: &RedisStore,
    waba_id: &str,
) -> Result<Vec<(ChannelRef, String)>, StoreError> {
    let cache = store.wabas();
    let now = Instant::now();
    let version = if cache.ttl.is_zero() {
        None
    } else {
        let key = store.keys().channels_version();
        match store.run::<Option<i64>>(redis::cmd("GET").arg(&key)).await {
            Ok(v) => {
                if let Some(index) = cache.get(v, now) {
                    return Ok(index.get(waba_id).cloned().unwrap_or_default());
                }
                v
            }
            Err(_) => {
                cache.clear();
                None
            }
        }
    };
    let index = Arc::new(build(store).await?);
    if !cache.ttl.is_zero() {
        // Aged from before the scan, so a write during it is never trusted longer.
        cache.put(version, now, index.clone());
    }
    Ok(index.get(waba_id).cloned().unwrap_or_default())
}

async fn build(store: &RedisStore) -> Result<Index, StoreError> {
    let keys = store.keys();
    let pattern = keys.channel_kind_pattern(ChannelKind::Whatsapp);
    let found = store.scan(&pattern).await?;
    let reads: Vec<Read> = stream::iter(found)
        .map(|key| async move {
            let fields = store
                .run(redis::cmd("HMGET").arg(&key).arg("tenant").arg("waba_id"))
                .await;
            (key, fields)
        })
        .buffer_unordered(READS_AT_ONCE)
        .collect()
        .await;
    let mut index = Index::new();
    for (key, fields) in reads {
        let (tenant, waba) = match fields {
            Ok(f) => f,
            // Someone wrote another type at a channel key: that channel is broken,
            // the others still route.
            Err(StoreError::Unavailable(m)) if m.contains("WRONGTYPE") => continue,
            Err(e) => return Err(e),
        };
        let (Some(tenant), Some(waba)) = (tenant, waba) else {
            continue;
        };
        if tenant.is_empty() || waba.is_empty() {
            continue;
        }
        if let Some(channel) = keys.parse_channel(&key) {
            index.entry(waba).or_default().push((channel, tenant));
        }
    }
    for channels in index.values_mut() {
        channels.sort_by(|a, b| numeric_order(a.0.id(), b.0.id()));
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_by_number_then_text() {
        assert_eq!(numeric_order("9", "10"), Ordering::Less);
        assert_eq!(numeric_order("10", "9"), Ordering::Greater);
        assert_eq!(numeric_order("010", "10"), Ordering::Equal);
        assert_eq!(numeric_order("b", "a"), Ordering::Greater);
    }

    #[tokio::test]
    async fn the_memory_store_lists_a_wabas_whatsapp_channels_smallest_first() {
        use crate::store::memory::MemoryStore;
        use crate::store::{ChannelRecord, Keys};
        let store = MemoryStore::new(Keys::new("switchboard:"));
        let put = |kind, id: &str, tenant: &str, waba: Option<&str>| {
            let record = ChannelRecord {
                waba_id: waba.map(str::to_owned),
                ..ChannelRecord::new(tenant, secrecy::SecretString::from("t".to_owned()))
            };
            (ChannelRef::parse(kind, id).unwrap(), record)
        };
        for (c, r) in [
            put(ChannelKind::Whatsapp, "900", "globex", Some("W")),
            put(ChannelKind::Whatsapp, "80", "globex", Some("W")),
            put(ChannelKind::Whatsapp, "7", "acme", Some("other")),
            put(ChannelKind::Whatsapp, "6", "acme", None),
            put(ChannelKind::Messenger, "5", "acme", Some("W")),
        ] {
            store.put_channel(&c, &r).await.unwrap();
        }
        let found = store.waba_channels("W").await.unwrap();
        let ids: Vec<&str> = found.iter().map(|(c, _)| c.id()).collect();
        assert_eq!(ids, ["80", "900"]);
        assert!(found.iter().all(|(_, t)| t == "globex"));
        assert!(store.waba_channels("none").await.unwrap().is_empty());
    }

    #[test]
    fn the_copy_expires_and_follows_the_version() {
        let c = WabaCache::new(Duration::from_secs(1));
        let t0 = Instant::now();
        c.put(Some(1), t0, Arc::new(Index::new()));
        assert!(c.get(Some(1), t0).is_some());
        assert!(c.get(Some(2), t0).is_none());
        assert!(c.get(Some(1), t0 + Duration::from_secs(1)).is_none());
        c.clear();
        assert!(c.get(Some(1), t0).is_none());
    }
}
