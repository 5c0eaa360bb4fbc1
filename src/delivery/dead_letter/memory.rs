//! The in-process dead-letter list of `store.backend = "memory"`: a map by event id,
//! each entry forgotten at its expiry (pruned on every add, hidden once expired).
//! The lock is a plain mutex, never held across an `.await`.

use std::collections::HashMap;
use std::sync::Mutex;

use super::DeadLetter;
use crate::time::now_ms;

#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    entries: Mutex<HashMap<String, DeadLetter>>,
}

impl MemoryDeadLetters {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, DeadLetter>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn keep(&self, dl: DeadLetter) {
        let now = now_ms();
        let mut m = self.entries();
        m.retain(|_, d| d.expires > now);
        if dl.expires > now {
            m.insert(dl.id.clone(), dl);
        }
    }

    pub fn find(&self, id: &str) -> Option<DeadLetter> {
        let now = now_ms();
        self.entries().get(id).filter(|d| d.expires > now).cloned()
    }

    pub fn remove(&self, id: &str) -> bool {
        self.entries().remove(id).is_some()
    }

    pub fn list(&self, tenant: Option<&str>, limit: usize) -> Vec<DeadLetter> {
        let now = now_ms();
        let mut out: Vec<DeadLetter> = self
            .entries()
            .values()
            .filter(|d| d.expires > now && tenant.is_none_or(|t| d.tenant == t))
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.given_up, &a.id).cmp(&(b.given_up, &b.id)));
        out.truncate(limit);
        out
    }

    pub fn count(&self, tenant: &str) -> u64 {
        let now = now_ms();
        self.entries()
            .values()
            .filter(|d| d.expires > now && d.tenant == tenant)
            .count() as u64
    }

    pub fn purge_channel(&self, channel: &str) -> usize {
        let mut m = self.entries();
        let before = m.len();
        m.retain(|_, d| d.channel != channel);
        before - m.len()
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
}
