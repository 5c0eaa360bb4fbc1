//! The in-process dead-letter list of `store.backend = "memory"`: dead letters by event
//! id in a [`ExpiringMap`] (deadline: the dead letter's expiry, Unix ms), so an add
//! drops only what has expired since, in O(log n), never sweeping the whole list; an
//! expired one is hidden at once. At most [`MAX_DEAD_LETTERS`]: past it, those closest
//! to expiring make room. The lock is a plain mutex, never held across an `.await`.

use std::sync::Mutex;

use super::DeadLetter;
use crate::store::expiring::ExpiringMap;
use crate::time::now_ms;

/// The most dead letters the memory backend holds.
pub const MAX_DEAD_LETTERS: usize = 100_000;

#[derive(Debug)]
pub struct MemoryDeadLetters {
    entries: Mutex<ExpiringMap<DeadLetter, i64>>,
}

impl Default for MemoryDeadLetters {
    fn default() -> Self {
        Self::with_cap(MAX_DEAD_LETTERS)
    }
}

impl MemoryDeadLetters {
    pub fn with_cap(cap: usize) -> Self {
        Self {
            entries: Mutex::new(ExpiringMap::new(cap)),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, ExpiringMap<DeadLetter, i64>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn keep(&self, dl: DeadLetter) {
        let now = now_ms();
        if dl.expires > now {
            let expires = dl.expires;
            self.entries().insert(dl.id.clone(), dl, expires, now);
        }
    }

    pub fn find(&self, id: &str) -> Option<DeadLetter> {
        self.entries().get(id, now_ms()).cloned()
    }

    pub fn remove(&self, id: &str) -> bool {
        self.entries().remove(id, now_ms())
    }

    pub fn list(&self, tenant: Option<&str>, limit: usize) -> Vec<DeadLetter> {
        let mut out: Vec<DeadLetter> = self
            .entries()
            .values_live(now_ms())
            .filter(|d| tenant.is_none_or(|t| d.tenant == t))
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.given_up, &a.id).cmp(&(b.given_up, &b.id)));
        out.truncate(limit);
        out
    }

    pub fn count(&self, tenant: &str) -> u64 {
        self.entries()
            .values_live(now_ms())
            .filter(|d| d.tenant == tenant)
            .count() as u64
    }

    pub fn purge_channel(&self, channel: &str) -> usize {
        self.entries().retain(|d| d.channel != channel)
    }

    /// Dead letters held, expired ones not yet dropped included.
    pub fn held(&self) -> usize {
        self.entries().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::buffer::entry::tests::entry;

    #[test]
    fn memory_dead_letters_expire_filter_by_tenant_and_purge_by_channel() {
        let m = MemoryDeadLetters::default();
        let now = now_ms();
        m.keep(DeadLetter::of(
            &entry("a", "", now),
            "message.received",
            now,
            60,
        ));
        m.keep(DeadLetter::of(
            &entry("b", "", now),
            "message.status",
            now + 1,
            60,
        ));
        let mut gone = DeadLetter::of(&entry("c", "", now), "message.received", now, 60);
        gone.expires = now - 1;
        m.keep(gone);
        let ids: Vec<String> = m.list(None, 10).into_iter().map(|d| d.id).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(m.list(Some("globex"), 10).len(), 0);
        assert_eq!(m.list(Some("acme"), 1).len(), 1);
        assert_eq!(m.count("acme"), 2);
        assert!(m.find("c").is_none());
        assert!(m.remove("a"));
        assert!(!m.remove("a"));
        assert_eq!(m.purge_channel("whatsapp:1"), 1);
        assert_eq!(m.count("acme"), 0);
    }

    #[test]
    fn an_add_drops_only_what_expired_and_the_cap_holds() {
        let m = MemoryDeadLetters::with_cap(3);
        let now = now_ms();
        let mut old = DeadLetter::of(&entry("old", "", now), "message.received", now, 60);
        old.expires = now + 30;
        m.keep(old);
        for id in ["a", "b"] {
            m.keep(DeadLetter::of(
                &entry(id, "", now),
                "message.received",
                now,
                60,
            ));
        }
        assert_eq!(m.held(), 3);
        std::thread::sleep(std::time::Duration::from_millis(40));
        assert!(m.find("old").is_none(), "hidden once expired");
        m.keep(DeadLetter::of(
            &entry("c", "", now),
            "message.received",
            now,
            60,
        ));
        assert_eq!(m.held(), 3, "the expired one was dropped by the add");
        m.keep(DeadLetter::of(
            &entry("d", "", now),
            "message.received",
            now,
            120,
        ));
        assert_eq!(m.held(), 3, "at the cap, the soonest to expire made room");
        assert!(m.find("d").is_some());
    }
}
