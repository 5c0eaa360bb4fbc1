//! Which tenant a channel belongs to, cached in the process for the webhook hot path
//! (the Redis backend; the memory backend's lookup is already in-process).
//!
//! Staleness is bounded twice:
//! - **Writes by this relay** (admin API, CLI, reload, connect, privacy, rotation: every
//!   `put_channel`/`delete_channel`/`replace_channel_secrets`/`del` of a channel key)
//!   drop this process's cache at once and bump the version key
//!   (`{prefix}channels:version`); every replica reads that key at most every
//!   [`VERSION_CHECK`] while it uses the cache and drops its cache when it changed.
//! - **Writes by anyone else** (another service writing the public layout directly)
//!   are seen once an entry is older than `store.channel_cache_ms` (default 1 s; 0 turns
//!   the cache off).
//!
//! Only found channels are cached, so a channel written for the first time is routed
//! at once; the cache is bounded ([`MAX_ENTRIES`]). Tokens are never cached: replies
//! and the media proxy read the record on every use.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::channel::ChannelRef;

/// How often a replica reads the version key while it serves from the cache.
pub const VERSION_CHECK: Duration = Duration::from_millis(100);
/// Channels held at most; past it the cache starts over.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub struct RouteCache {
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    tenants: HashMap<ChannelRef, (Instant, String)>,
    /// The version key's value when last read (None: absent or not read yet).
    version: Option<i64>,
    /// When the version key was last read (None: never).
    checked: Option<Instant>,
}

/// Whether the version key needs reading before the cache is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    CheckVersion,
}

impl RouteCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            state: Mutex::new(State::default()),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this caller should read the version key first. Claims the check, so of
    /// many concurrent callers one reads it and the others go on with the cache.
    pub fn freshness(&self, now: Instant) -> Freshness {
        let mut s = self.state();
        match s.checked {
            Some(at) if now.saturating_duration_since(at) < VERSION_CHECK => Freshness::Fresh,
            _ => {
                s.checked = Some(now);
                Freshness::CheckVersion
            }
        }
    }

    /// The version key as just read: a change drops every entry.
    pub fn observe_version(&self, version: Option<i64>) {
        let mut s = self.state();
        if s.version != version {
            s.tenants.clear();
            s.version = version;
        }
    }

    /// The version key could not be read: nothing cached can be trusted.
    pub fn version_unknown(&self) {
        let mut s = self.state();
        s.tenants.clear();
        s.checked = None;
    }

    /// The cached tenant of `channel`, if fetched less than the TTL ago.
    pub fn get(&self, channel: &ChannelRef, now: Instant) -> Option<String> {
        let s = self.state();
        s.tenants
            .get(channel)
            .filter(|(at, _)| now.saturating_duration_since(*at) < self.ttl)
            .map(|(_, tenant)| tenant.clone())
    }

    pub fn insert(&self, channel: &ChannelRef, tenant: &str, fetched: Instant) {
        let mut s = self.state();
        if s.tenants.len() >= MAX_ENTRIES && !s.tenants.contains_key(channel) {
            s.tenants.clear();
        }
        s.tenants
            .insert(channel.clone(), (fetched, tenant.to_owned()));
    }

    /// This process changed channels: forget everything.
    pub fn clear(&self) {
        self.state().tenants.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelKind;

    fn wa(id: &str) -> ChannelRef {
        ChannelRef::parse(ChannelKind::Whatsapp, id).unwrap()
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let c = RouteCache::new(Duration::from_secs(1));
        let t0 = Instant::now();
        c.insert(&wa("1"), "acme", t0);
        assert_eq!(c.get(&wa("1"), t0).as_deref(), Some("acme"));
        assert_eq!(
            c.get(&wa("1"), t0 + Duration::from_millis(999)).as_deref(),
            Some("acme")
        );
        assert_eq!(c.get(&wa("1"), t0 + Duration::from_secs(1)), None);
        assert_eq!(c.get(&wa("2"), t0), None);
    }

    #[test]
    fn a_new_version_drops_the_cache_and_the_same_keeps_it() {
        let c = RouteCache::new(Duration::from_secs(60));
        let t0 = Instant::now();
        c.observe_version(Some(3));
        c.insert(&wa("1"), "acme", t0);
        c.observe_version(Some(3));
        assert!(c.get(&wa("1"), t0).is_some());
        c.observe_version(Some(4));
        assert!(c.get(&wa("1"), t0).is_none());
        c.insert(&wa("1"), "acme", t0);
        c.version_unknown();
        assert!(c.get(&wa("1"), t0).is_none());
    }

    #[test]
    fn one_caller_per_interval_reads_the_version() {
        let c = RouteCache::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(c.freshness(t0), Freshness::CheckVersion);
        assert_eq!(c.freshness(t0), Freshness::Fresh);
        assert_eq!(c.freshness(t0 + VERSION_CHECK / 2), Freshness::Fresh);
        assert_eq!(c.freshness(t0 + VERSION_CHECK), Freshness::CheckVersion);
    }

    #[test]
    fn the_cache_is_bounded() {
        let c = RouteCache::new(Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..=MAX_ENTRIES {
            c.insert(&wa(&i.to_string()), "acme", t0);
        }
        assert!(c.state().tenants.len() <= MAX_ENTRIES);
        assert!(c.get(&wa(&MAX_ENTRIES.to_string()), t0).is_some());
    }
}
