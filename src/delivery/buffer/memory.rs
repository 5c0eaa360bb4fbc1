//! The in-process retry buffer of `store.backend = "memory"`: the same semantics as the
//! Redis one (encryption, pending markers, heads and parked events, visibility timeout)
//! in one process. Nothing survives a restart, and there is one replica by definition.
//! The lock is a plain mutex, never held across an `.await`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{
    BufferBackend, BufferError, Entry, Handle, Presence, Pushed, ReadSlot, Taken, TenantDepth,
};
use crate::time::now_ms;

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

    /// Whether no event is held at all (none pending, no conversation waiting): then
    /// no event is in the buffer or behind one there.
    pub fn is_empty(&self) -> bool {
        let s = self.state();
        s.pending.is_empty() && s.heads.is_empty()
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

    fn push(&self, e: Entry, ordered: bool, limit: u64) -> Pushed {
        let pushed = {
            let mut s = self.state();
            if s.pending.contains(&e.id) {
                return Pushed::AlreadyBuffered;
            }
            let held = s.tenants.get(&e.tenant).map_or(0, |t| t.len() as u64);
            if limit > 0 && held >= limit {
                return Pushed::Full;
            }
            s.pending.insert(e.id.clone());
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

/// The async interface over the synchronous core above (one shard; no consumer groups).
impl BufferBackend for MemoryBuffer {
    fn shards(&self) -> u16 {
        1
    }

    async fn presence(
        &self,
        _shard: u16,
        event_id: &str,
        conv: Option<&str>,
    ) -> Result<Presence, BufferError> {
        Ok(MemoryBuffer::presence(self, event_id, conv))
    }

    async fn push(
        &self,
        entry: &Entry,
        ordered: bool,
        _ttl: Duration,
        limit: u64,
    ) -> Result<Pushed, BufferError> {
        Ok(MemoryBuffer::push(self, entry.clone(), ordered, limit))
    }

    async fn take(
        &self,
        _shard: u16,
        _consumer: &str,
        block: Duration,
        _ttl: Duration,
        _slot: &mut ReadSlot,
    ) -> Result<Option<Taken>, BufferError> {
        Ok(MemoryBuffer::take(self, block).await)
    }

    async fn reschedule(
        &self,
        taken: &Taken,
        next: &Entry,
        _ttl: Duration,
    ) -> Result<(), BufferError> {
        MemoryBuffer::reschedule(self, taken, next.clone());
        Ok(())
    }

    async fn complete(&self, taken: &Taken, _ttl: Duration) -> Result<(), BufferError> {
        MemoryBuffer::complete(self, taken);
        Ok(())
    }

    async fn depths(&self, tenants: &[String]) -> Result<Vec<TenantDepth>, BufferError> {
        Ok(MemoryBuffer::depths(self, tenants))
    }

    async fn purge_channel(&self, channel: &str, keep: &[String]) -> Result<usize, BufferError> {
        Ok(MemoryBuffer::purge_channel(self, channel, keep))
    }

    async fn prune_consumers(&self, _idle: Duration, _keep: &str) -> Result<usize, BufferError> {
        Ok(0)
    }

    async fn purge_event(
        &self,
        _shard: u16,
        event_id: &str,
        _conv: &str,
        _ttl: Duration,
    ) -> Result<bool, BufferError> {
        Ok(MemoryBuffer::purge_event(self, event_id))
    }

    async fn prepare(&self, _ttl: Duration) -> Result<(), BufferError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::tests::entry;
    use super::*;

    #[tokio::test]
    async fn memory_buffer_parks_a_conversation_behind_its_head_and_dedupes() {
        let m = MemoryBuffer::new(Duration::from_secs(30));
        assert_eq!(m.push(entry("a", "c", 0), true, 0), Pushed::Scheduled);
        assert_eq!(m.push(entry("b", "c", 0), true, 0), Pushed::Parked);
        assert_eq!(m.push(entry("a", "c", 0), true, 0), Pushed::AlreadyBuffered);
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
        m.push(entry("a", "", 0), true, 0);
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
        m.push(entry("a", "c", 0), true, 0);
        m.push(entry("b", "c", 0), true, 0);
        m.push(entry("x", "", i64::MAX / 2), true, 0);
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
        m.push(other, true, 0);
        assert_eq!(m.purge_channel("whatsapp:1", &["x".to_owned()]), 1);
        m.complete(&t);
        assert_eq!(m.depths(&["acme".into()])[0].depth, 2, "x (kept) and y");
        assert!(!m.presence("b", None).pending);
    }
}
