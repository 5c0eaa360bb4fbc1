//! The memory backend's short-lived values (and the memory dead-letter list,
//! [`crate::delivery::dead_letter::MemoryDeadLetters`]): a map with per-entry expiry and a size cap,
//! kept in O(log n) amortized per write by an expiry queue (a min-heap of deadlines)
//! rather than by sweeping the whole map. Expired entries are invisible at once and
//! dropped when the queue reaches them; when the cap is reached, the entries closest to
//! expiring make room first.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

/// How many values the memory backend holds at most (dedupe ids, idempotency answers,
/// notices). Past it, the values closest to expiring are dropped first: a relay under
/// sustained load forgets old dedupe ids early rather than growing without bound.
pub const MAX_VALUES: usize = 100_000;

/// Values `V` by key, each with a deadline `T` (an [`Instant`], or any ordered time such
/// as Unix milliseconds).
#[derive(Debug)]
pub struct ExpiringMap<V = String, T = Instant> {
    cap: usize,
    map: HashMap<String, (V, T)>,
    /// Deadlines, soonest first; an entry whose deadline no longer matches the map's (the
    /// key was rewritten or removed) is stale and skipped.
    queue: BinaryHeap<Reverse<(T, String)>>,
}

impl<V, T: Ord + Copy> ExpiringMap<V, T> {
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            map: HashMap::new(),
            queue: BinaryHeap::new(),
        }
    }

    /// The live value of `key`.
    pub fn get(&self, key: &str, now: T) -> Option<&V> {
        self.map
            .get(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v)
    }

    /// Sets `key` until `expires`, dropping what has expired and, at the cap, what expires
    /// soonest.
    pub fn insert(&mut self, key: String, value: V, expires: T, now: T) {
        self.purge(now);
        if !self.map.contains_key(&key) {
            while self.map.len() >= self.cap {
                if !self.pop_soonest() {
                    break;
                }
            }
        }
        self.queue.push(Reverse((expires, key.clone())));
        self.map.insert(key, (value, expires));
        // Rewrites leave stale deadlines behind; rebuild when they dominate.
        if self.queue.len() > 2 * self.map.len() + 1024 {
            self.queue = self
                .map
                .iter()
                .map(|(k, (_, exp))| Reverse((*exp, k.clone())))
                .collect();
        }
    }

    /// Removes `key`; whether a live value was there.
    pub fn remove(&mut self, key: &str, now: T) -> bool {
        self.map.remove(key).is_some_and(|(_, exp)| exp > now)
    }

    /// The live keys.
    pub fn iter_live(&self, now: T) -> impl Iterator<Item = &String> {
        self.map
            .iter()
            .filter(move |(_, (_, exp))| *exp > now)
            .map(|(k, _)| k)
    }

    /// The live values.
    pub fn values_live(&self, now: T) -> impl Iterator<Item = &V> {
        self.map
            .values()
            .filter(move |(_, exp)| *exp > now)
            .map(|(v, _)| v)
    }

    /// Keeps only the values `keep` accepts; how many it removed. Their deadlines stay
    /// queued as stale ones, skipped when reached.
    pub fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) -> usize {
        let before = self.map.len();
        self.map.retain(|_, (v, _)| keep(v));
        before - self.map.len()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Drops every entry whose deadline has passed (each is visited once).
    fn purge(&mut self, now: T) {
        while self
            .queue
            .peek()
            .is_some_and(|Reverse((exp, _))| *exp <= now)
        {
            if let Some(Reverse((exp, key))) = self.queue.pop() {
                if self.map.get(&key).is_some_and(|(_, e)| *e == exp) {
                    self.map.remove(&key);
                }
            }
        }
    }

    /// Removes the entry that expires soonest; false when nothing is left.
    fn pop_soonest(&mut self) -> bool {
        while let Some(Reverse((exp, key))) = self.queue.pop() {
            if self.map.get(&key).is_some_and(|(_, e)| *e == exp) {
                self.map.remove(&key);
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn s(x: &str) -> String {
        x.to_owned()
    }

    #[test]
    fn expired_values_are_invisible_and_dropped_by_later_writes() {
        let t0 = Instant::now();
        let mut m = ExpiringMap::new(100);
        m.insert(s("a"), s("1"), t0 + Duration::from_secs(1), t0);
        m.insert(s("b"), s("2"), t0 + Duration::from_secs(10), t0);
        assert_eq!(m.get("a", t0), Some(&s("1")));
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(m.get("a", t1), None);
        assert_eq!(m.get("b", t1), Some(&s("2")));
        m.insert(s("c"), s("3"), t1 + Duration::from_secs(1), t1);
        assert_eq!(m.len(), 2, "the expired entry is gone from memory");
        let live: Vec<_> = m.iter_live(t1).cloned().collect();
        assert!(live.contains(&s("b")) && live.contains(&s("c")) && !live.contains(&s("a")));
    }

    #[test]
    fn a_rewrite_moves_the_deadline() {
        let t0 = Instant::now();
        let mut m = ExpiringMap::new(100);
        m.insert(s("a"), s("1"), t0 + Duration::from_secs(1), t0);
        m.insert(s("a"), s("2"), t0 + Duration::from_secs(10), t0);
        let t1 = t0 + Duration::from_secs(5);
        m.insert(s("x"), s("x"), t1 + Duration::from_secs(1), t1);
        assert_eq!(
            m.get("a", t1),
            Some(&s("2")),
            "the stale deadline is skipped"
        );
    }

    #[test]
    fn the_cap_holds_and_drops_the_soonest_to_expire() {
        let t0 = Instant::now();
        let mut m = ExpiringMap::new(3);
        for (i, k) in ["late", "soon", "mid"].iter().enumerate() {
            let ttl = [30, 10, 20][i];
            m.insert(s(k), s(k), t0 + Duration::from_secs(ttl), t0);
        }
        m.insert(s("new"), s("new"), t0 + Duration::from_secs(5), t0);
        assert_eq!(m.len(), 3);
        assert_eq!(m.get("soon", t0), None, "the soonest to expire made room");
        assert!(m.get("late", t0).is_some() && m.get("mid", t0).is_some());
        assert!(m.get("new", t0).is_some());
        // Rewriting a held key never evicts another.
        m.insert(s("new"), s("again"), t0 + Duration::from_secs(5), t0);
        assert_eq!(m.len(), 3);
        assert!(m.get("mid", t0).is_some());
    }

    #[test]
    fn many_rewrites_keep_the_queue_bounded() {
        let t0 = Instant::now();
        let mut m = ExpiringMap::new(10);
        for i in 0..10_000u64 {
            m.insert(s("k"), s("v"), t0 + Duration::from_secs(100 + i), t0);
        }
        assert_eq!(m.len(), 1);
        assert!(m.queue.len() <= 2 * m.len() + 1025);
    }
}
