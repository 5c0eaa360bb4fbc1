//! The memory backend's dedupe ids, the bulk of its short-lived values, kept compact:
//! an event id is `evt_` and 32 hex digits (128 bits of SHA-256, [`crate::event::EventId`]),
//! so each is held as its 128 bits with its deadline in milliseconds from the set's
//! creation — 24 bytes in the map and 24 in the expiry order, instead of two copies of a
//! 50-byte key string and a value. Both are reserved for the cap up front, so they never
//! grow (and never hold an old and a new table at once) under load.
//!
//! Every id gets the same window (`delivery.dedupe_window_s`), so ids expire in the
//! order they were marked: a FIFO is the expiry queue, O(1) per write. A reload that
//! shortens the window leaves later deadlines behind earlier ones for a while; each
//! lookup still compares its own deadline, so nothing is seen past its window, and the
//! size cap holds either way. At the cap, the oldest marks make room first.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// The map's hasher: foldhash (seeded per process), several times cheaper than the
/// standard SipHash for a 16-byte key, on the hot path's one insert per event.
type Hasher = foldhash::fast::RandomState;

/// The 128 bits of an event id (`evt_` and 32 lowercase hex digits); `None` for any
/// other form (kept as an ordinary value instead).
pub fn parse_event_id(id: &str) -> Option<u128> {
    let hex = id.strip_prefix("evt_")?;
    if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u128::from_str_radix(hex, 16).ok()
}

/// The event id of 128 bits, as [`crate::event::EventId`] writes it.
pub fn format_event_id(id: u128) -> String {
    format!("evt_{id:032x}")
}

/// An id's 128 bits as two words (8-byte aligned: 24-byte entries with a deadline).
type Id = [u64; 2];

fn split(id: u128) -> Id {
    [(id >> 64) as u64, id as u64]
}

fn join(id: Id) -> u128 {
    (u128::from(id[0]) << 64) | u128::from(id[1])
}

/// Event ids seen, each until its deadline, at most `cap` of them.
#[derive(Debug)]
pub struct SeenIds {
    cap: usize,
    /// Deadlines are milliseconds from here.
    epoch: Instant,
    deadlines: HashMap<Id, u64, Hasher>,
    /// Marks in the order they were made; a mark whose deadline no longer matches the
    /// map's (marked again, or removed) is stale and skipped.
    order: VecDeque<(Id, u64)>,
}

impl SeenIds {
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Self {
            cap,
            epoch: Instant::now(),
            deadlines: HashMap::with_capacity_and_hasher(cap, Hasher::default()),
            order: VecDeque::with_capacity(cap),
        }
    }

    /// A deadline in milliseconds from the epoch, rounded up, and a time rounded down:
    /// a mark is never forgotten early (at most a millisecond late).
    fn deadline_ms(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.epoch);
        d.as_millis() as u64 + u64::from(!d.subsec_nanos().is_multiple_of(1_000_000))
    }

    fn ms(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// Whether `id` is seen at `now`.
    pub fn contains(&self, id: u128, now: Instant) -> bool {
        let now = self.ms(now);
        self.deadlines.get(&split(id)).is_some_and(|exp| *exp > now)
    }

    /// Marks `id` seen until `expires`.
    pub fn insert(&mut self, id: u128, expires: Instant, now: Instant) {
        let (id, expires, now) = (split(id), self.deadline_ms(expires), self.ms(now));
        self.drop_expired(now);
        if !self.deadlines.contains_key(&id) {
            while self.deadlines.len() >= self.cap && self.pop_oldest() {}
        }
        self.deadlines.insert(id, expires);
        self.order.push_back((id, expires));
        // Marks made again leave stale ones behind; rebuild when they dominate.
        if self.order.len() > 2 * self.deadlines.len() + 1024 {
            let mut live: Vec<(Id, u64)> =
                self.deadlines.iter().map(|(id, exp)| (*id, *exp)).collect();
            live.sort_unstable_by_key(|(_, exp)| *exp);
            self.order = live.into();
        }
    }

    /// Forgets `id`; whether it was seen at `now`.
    pub fn remove(&mut self, id: u128, now: Instant) -> bool {
        let now = self.ms(now);
        self.deadlines
            .remove(&split(id))
            .is_some_and(|exp| exp > now)
    }

    /// The ids seen at `now`.
    pub fn iter_live(&self, now: Instant) -> impl Iterator<Item = u128> + '_ {
        let now = self.ms(now);
        self.deadlines
            .iter()
            .filter(move |(_, exp)| **exp > now)
            .map(|(id, _)| join(*id))
    }

    pub fn len(&self) -> usize {
        self.deadlines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deadlines.is_empty()
    }

    /// Drops the marks from the front whose deadline has passed.
    fn drop_expired(&mut self, now: u64) {
        while let Some(&(id, exp)) = self.order.front() {
            if exp > now {
                break;
            }
            self.order.pop_front();
            if self.deadlines.get(&id) == Some(&exp) {
                self.deadlines.remove(&id);
            }
        }
    }

    /// Removes the oldest live mark; false when none is left.
    fn pop_oldest(&mut self) -> bool {
        while let Some((id, exp)) = self.order.pop_front() {
            if self.deadlines.get(&id) == Some(&exp) {
                self.deadlines.remove(&id);
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

    #[test]
    fn event_ids_round_trip_and_other_forms_are_refused() {
        let id = "evt_0123456789abcdef0123456789abcdef";
        let n = parse_event_id(id).unwrap();
        assert_eq!(format_event_id(n), id);
        assert_eq!(format_event_id(7), "evt_00000000000000000000000000000007");
        for bad in [
            "evt_0123456789ABCDEF0123456789abcdef",
            "evt_0123",
            "0123456789abcdef0123456789abcdef",
            "evt_+123456789abcdef0123456789abcdef",
            "evt_0123456789abcdef0123456789abcdef0",
        ] {
            assert_eq!(parse_event_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_expire_in_order_and_are_dropped_by_later_marks() {
        let t0 = Instant::now();
        let mut s = SeenIds::new(100);
        s.insert(1, t0 + Duration::from_secs(1), t0);
        s.insert(2, t0 + Duration::from_secs(2), t0);
        assert!(s.contains(1, t0) && s.contains(2, t0));
        let t1 = t0 + Duration::from_millis(1500);
        assert!(!s.contains(1, t1));
        assert!(s.contains(2, t1));
        s.insert(3, t1 + Duration::from_secs(1), t1);
        assert_eq!(s.len(), 2, "the expired id is gone from memory");
        let mut live: Vec<u128> = s.iter_live(t1).collect();
        live.sort_unstable();
        assert_eq!(live, [2, 3]);
    }

    #[test]
    fn the_cap_drops_the_oldest_marks_and_a_mark_again_moves_the_deadline() {
        let t0 = Instant::now();
        let mut s = SeenIds::new(3);
        for id in 1..=3 {
            s.insert(id, t0 + Duration::from_secs(10 + id as u64), t0);
        }
        // 1 marked again: its first mark is stale, so 2 is now the oldest.
        s.insert(1, t0 + Duration::from_secs(20), t0);
        s.insert(4, t0 + Duration::from_secs(30), t0);
        assert_eq!(s.len(), 3);
        assert!(!s.contains(2, t0), "the oldest live mark made room");
        assert!(
            s.contains(1, t0 + Duration::from_secs(15)),
            "kept to its new deadline"
        );
        assert!(s.contains(3, t0) && s.contains(4, t0));
        assert!(s.remove(3, t0));
        assert!(!s.contains(3, t0));
    }

    #[test]
    fn ids_keep_all_their_bits_and_entries_stay_small() {
        let t0 = Instant::now();
        let mut s = SeenIds::new(10);
        let high = (1u128 << 127) | 5;
        s.insert(high, t0 + Duration::from_secs(1), t0);
        assert!(s.contains(high, t0));
        assert!(!s.contains(5, t0), "the high word is part of the id");
        assert_eq!(s.iter_live(t0).collect::<Vec<_>>(), [high]);
        assert_eq!(std::mem::size_of::<(Id, u64)>(), 24);
        // A deadline a fraction of a millisecond ahead is kept to it, never dropped early.
        let soon = t0 + Duration::from_micros(300);
        s.insert(7, soon, t0);
        assert!(s.contains(7, t0));
        assert!(!s.contains(7, soon + Duration::from_millis(1)));
    }

    #[test]
    fn many_marks_again_keep_the_order_bounded() {
        let t0 = Instant::now();
        let mut s = SeenIds::new(10);
        for i in 0..10_000u64 {
            s.insert(5, t0 + Duration::from_secs(100 + i), t0);
        }
        assert_eq!(s.len(), 1);
        assert!(s.order.len() <= 2 * s.len() + 1025);
        assert!(s.contains(5, t0 + Duration::from_secs(10_000)));
    }
}
