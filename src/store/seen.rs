//! The memory backend's dedupe ids, the bulk of its short-lived values, kept compact:
//! an event id is `evt_` and 32 hex digits (128 bits of SHA-256, [`crate::event::EventId`]),
//! so each is held as its 128 bits with its deadline in milliseconds from the set's
//! creation — one 24-byte mark in a ring of at most `cap` marks, found through an index
//! of 4-byte ring positions, instead of two copies of a 50-byte key string and a value.
//! Both are sized for the cap up front and never grow: the index has room for twice the
//! cap, so the slots removals leave behind are reclaimed in place, never by a larger
//! table held beside the old one (at 100,000 ids: 2.4 MB of marks, 1.3 MB of index).
//!
//! Every id gets the same window (`delivery.dedupe_window_s`), so ids expire in the
//! order they were marked: the ring is the expiry queue, O(1) per write. A reload that
//! shortens the window leaves later deadlines behind earlier ones for a while; each
//! lookup still compares its own deadline, so nothing is seen past its window, and the
//! size cap holds either way. At the cap, the oldest marks make room first. A mark made
//! again leaves its earlier one in the ring, stale (the index no longer points to it),
//! until it reaches the front.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::time::Instant;

use hashbrown::HashTable;

/// The index's hasher: foldhash (seeded per process), several times cheaper than the
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

/// An id's 128 bits as two words (8-byte aligned: 24-byte marks with a deadline).
type Id = [u64; 2];

fn split(id: u128) -> Id {
    [(id >> 64) as u64, id as u64]
}

fn join(id: Id) -> u128 {
    (u128::from(id[0]) << 64) | u128::from(id[1])
}

/// One mark: an id and its deadline (milliseconds from the set's epoch).
#[derive(Debug, Clone, Copy)]
struct Mark {
    id: Id,
    deadline: u64,
}

/// The mark with sequence number `seq` in a ring whose front has number `head`.
fn at(ring: &VecDeque<Mark>, head: u32, seq: u32) -> Mark {
    ring[seq.wrapping_sub(head) as usize]
}

/// Event ids seen, each until its deadline, at most `cap` of them.
#[derive(Debug)]
pub struct SeenIds {
    cap: usize,
    /// Deadlines are milliseconds from here.
    epoch: Instant,
    /// Marks in the order they were made, at most `cap`. Each has a sequence number
    /// (wrapping `u32`): the front's is `head`, and the one at position `i` is `head + i`.
    ring: VecDeque<Mark>,
    head: u32,
    /// The live marks' sequence numbers, by id.
    index: HashTable<u32>,
    hasher: Hasher,
}

impl SeenIds {
    pub fn new(cap: usize) -> Self {
        // Positions must fit the wrapping sequence numbers.
        let cap = cap.clamp(1, u32::MAX as usize / 2);
        Self {
            cap,
            epoch: Instant::now(),
            ring: VecDeque::with_capacity(cap),
            head: 0,
            index: HashTable::with_capacity(cap.saturating_mul(2)),
            hasher: Hasher::default(),
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

    fn hash(&self, id: Id) -> u64 {
        self.hasher.hash_one(id)
    }

    /// The live mark of `id`, if any.
    fn mark(&self, id: Id) -> Option<Mark> {
        let (ring, head) = (&self.ring, self.head);
        self.index
            .find(self.hash(id), |&seq| at(ring, head, seq).id == id)
            .map(|&seq| at(ring, head, seq))
    }

    /// Whether `id` is seen at `now`.
    pub fn contains(&self, id: u128, now: Instant) -> bool {
        let now = self.ms(now);
        self.mark(split(id)).is_some_and(|m| m.deadline > now)
    }

    /// Marks `id` seen until `expires`.
    pub fn insert(&mut self, id: u128, expires: Instant, now: Instant) {
        let (id, deadline, now) = (split(id), self.deadline_ms(expires), self.ms(now));
        self.drop_expired(now);
        let hash = self.hash(id);
        // The new mark's sequence number (head + length does not change as the front
        // makes room).
        let seq = self.head.wrapping_add(self.ring.len() as u32);
        // Marked before: the index points to the new mark, and the earlier one is stale
        // (so making room below never drops this id).
        let (ring, head) = (&self.ring, self.head);
        let again = match self.index.find_mut(hash, |&s| at(ring, head, s).id == id) {
            Some(s) => {
                *s = seq;
                true
            }
            None => false,
        };
        while self.ring.len() >= self.cap {
            self.pop_front();
        }
        self.ring.push_back(Mark { id, deadline });
        if !again {
            let (ring, head, hasher) = (&self.ring, self.head, &self.hasher);
            self.index
                .insert_unique(hash, seq, |&s| hasher.hash_one(at(ring, head, s).id));
        }
    }

    /// Forgets `id`; whether it was seen at `now`.
    pub fn remove(&mut self, id: u128, now: Instant) -> bool {
        let (id, now) = (split(id), self.ms(now));
        let hash = self.hash(id);
        let (ring, head) = (&self.ring, self.head);
        match self.index.find_entry(hash, |&s| at(ring, head, s).id == id) {
            Ok(entry) => {
                let (seq, _) = entry.remove();
                at(ring, head, seq).deadline > now
            }
            Err(_) => false,
        }
    }

    /// The ids seen at `now`.
    pub fn iter_live(&self, now: Instant) -> impl Iterator<Item = u128> + '_ {
        let now = self.ms(now);
        self.index
            .iter()
            .map(|&seq| at(&self.ring, self.head, seq))
            .filter(move |m| m.deadline > now)
            .map(|m| join(m.id))
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Drops the marks from the front whose deadline has passed.
    fn drop_expired(&mut self, now: u64) {
        while self.ring.front().is_some_and(|m| m.deadline <= now) {
            self.pop_front();
        }
    }

    /// Drops the front mark, and its id from the index unless the mark is stale.
    fn pop_front(&mut self) {
        let Some(mark) = self.ring.front().copied() else {
            return;
        };
        let seq = self.head;
        if let Ok(entry) = self.index.find_entry(self.hash(mark.id), |&s| s == seq) {
            entry.remove();
        }
        self.ring.pop_front();
        self.head = self.head.wrapping_add(1);
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
        assert_eq!(std::mem::size_of::<Mark>(), 24);
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
        assert!(s.ring.len() <= 10, "stale marks make room like any other");
        assert!(s.contains(5, t0 + Duration::from_secs(10_000)));
    }

    /// Against a plain map of deadlines (no cap pressure): every answer agrees, through
    /// marks, marks again, removals and time passing; then churn far past the cap
    /// keeps at most `cap` ids, the latest marks among them, in the index sized up front.
    #[test]
    fn agrees_with_a_plain_map_and_never_grows() {
        use std::collections::HashMap;
        let mut s = SeenIds::new(1000);
        // Whole milliseconds from the set's epoch: no rounding between the two.
        let t0 = s.epoch;
        let mut model: HashMap<u128, u64> = HashMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut now_ms = 0u64;
        for _ in 0..20_000 {
            let r = next();
            let id = u128::from(r % 300) << 70 | u128::from(r % 7);
            let now = t0 + Duration::from_millis(now_ms);
            match r >> 60 {
                0..=8 => {
                    let ttl = 1 + (r >> 20) % 500;
                    s.insert(id, now + Duration::from_millis(ttl), now);
                    model.insert(id, now_ms + ttl);
                }
                9..=10 => {
                    let was = model.remove(&id).is_some_and(|d| d > now_ms);
                    assert_eq!(s.remove(id, now), was);
                }
                _ => now_ms += (r >> 30) % 20,
            }
            let probe = u128::from(next() % 300) << 70 | u128::from(r % 7);
            let now = t0 + Duration::from_millis(now_ms);
            let expected = model.get(&probe).is_some_and(|d| *d > now_ms);
            assert_eq!(s.contains(probe, now), expected);
        }
        let now = t0 + Duration::from_millis(now_ms);
        let mut live: Vec<u128> = s.iter_live(now).collect();
        let mut expected: Vec<u128> = model
            .iter()
            .filter(|(_, d)| **d > now_ms)
            .map(|(id, _)| *id)
            .collect();
        live.sort_unstable();
        expected.sort_unstable();
        assert_eq!(live, expected);

        let buckets = s.index.capacity();
        for id in 0..10_000u128 {
            s.insert(id << 64 | 1, now + Duration::from_secs(60), now);
            if id % 3 == 0 && id >= 500 {
                s.remove((id - 500) << 64 | 1, now);
            }
        }
        assert!(s.len() <= 1000 && s.ring.len() <= 1000);
        assert!((9_990..10_000).all(|id| s.contains(id << 64 | 1, now)));
        assert_eq!(
            s.index.capacity(),
            buckets,
            "the index was never reallocated"
        );
    }
}
