//! The memory backend: one process, nothing kept across restarts. For trying the relay
//! out (`store.backend = "memory"`) and for tests of logic above the store. Locks are
//! plain mutexes, never held across an `.await`. Short-lived values are capped at
//! [`MAX_VALUES`] and expire through an expiry queue ([`super::expiring`]); dedupe marks
//! (`{prefix}dedupe:evt_…`, always the value `"1"`), the bulk of them under load, are
//! held compactly on their own ([`super::seen`]), capped at [`MAX_VALUES`] too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use super::expiring::ExpiringMap;
pub use super::expiring::MAX_VALUES;
use super::seen::{format_event_id, parse_event_id, SeenIds};
use super::{ChannelRecord, Keys, ScanCursor, StoreBackend, StoreError};
use crate::channel::ChannelRef;

#[derive(Debug)]
pub struct MemoryStore {
    keys: Keys,
    channels: Mutex<HashMap<ChannelRef, ChannelRecord>>,
    values: Mutex<ExpiringMap>,
    /// `{prefix}dedupe:`: the keys whose event id goes to `seen`.
    dedupe_prefix: String,
    seen: Mutex<SeenIds>,
}

impl MemoryStore {
    pub fn new(keys: Keys) -> Self {
        Self::with_cap(keys, MAX_VALUES)
    }

    /// A store holding at most `cap` short-lived values.
    pub fn with_cap(keys: Keys, cap: usize) -> Self {
        let dedupe_prefix = format!("{}dedupe:", keys.prefix());
        Self {
            keys,
            channels: Mutex::new(HashMap::new()),
            values: Mutex::new(ExpiringMap::new(cap)),
            dedupe_prefix,
            seen: Mutex::new(SeenIds::new(cap)),
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelRef, ChannelRecord>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn values(&self) -> std::sync::MutexGuard<'_, ExpiringMap> {
        self.values.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, SeenIds> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The event id of a dedupe mark's key (any other key: `None`).
    fn seen_id(&self, key: &str) -> Option<u128> {
        key.strip_prefix(&self.dedupe_prefix)
            .and_then(parse_event_id)
    }

    /// Sets `key` until `now + ttl`, as a dedupe mark or an ordinary value.
    fn set_one(&self, key: &str, value: &str, now: Instant, ttl: Duration) {
        match self.seen_id(key) {
            Some(id) if value == "1" => self.seen().insert(id, now + ttl, now),
            _ => self
                .values()
                .insert(key.to_owned(), value.to_owned(), now + ttl, now),
        }
    }
}

/// `*`-only glob, as the relay uses SCAN patterns.
pub(crate) fn glob_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let mut rest = s;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

impl StoreBackend for MemoryStore {
    async fn get_channel(&self, c: &ChannelRef) -> Result<Option<ChannelRecord>, StoreError> {
        Ok(self.channels().get(c).cloned())
    }

    async fn channel_tenant(&self, c: &ChannelRef) -> Result<Option<String>, StoreError> {
        Ok(self.channels().get(c).map(|r| r.tenant.clone()))
    }

    async fn waba_channels(&self, waba_id: &str) -> Result<Vec<(ChannelRef, String)>, StoreError> {
        let mut found: Vec<(ChannelRef, String)> = self
            .channels()
            .iter()
            .filter(|(c, r)| {
                c.kind() == crate::channel::ChannelKind::Whatsapp
                    && r.waba_id.as_deref() == Some(waba_id)
            })
            .map(|(c, r)| (c.clone(), r.tenant.clone()))
            .collect();
        found.sort_by(|a, b| super::waba::numeric_order(a.0.id(), b.0.id()));
        Ok(found)
    }

    async fn put_channel(&self, c: &ChannelRef, r: &ChannelRecord) -> Result<(), StoreError> {
        self.channels().insert(c.clone(), r.clone());
        Ok(())
    }

    async fn delete_channel(&self, c: &ChannelRef) -> Result<bool, StoreError> {
        Ok(self.channels().remove(c).is_some())
    }

    async fn list_channels(&self) -> Result<Vec<(ChannelRef, ChannelRecord)>, StoreError> {
        let mut all: Vec<_> = self
            .channels()
            .iter()
            .map(|(c, r)| (c.clone(), r.clone()))
            .collect();
        all.sort_by_key(|a| a.0.to_string());
        Ok(all)
    }

    async fn replace_channel_secrets(
        &self,
        c: &ChannelRef,
        expected: &ChannelRecord,
        updated: &ChannelRecord,
    ) -> Result<bool, StoreError> {
        let mut channels = self.channels();
        match channels.get_mut(c) {
            Some(cur)
                if cur.token.expose_secret() == expected.token.expose_secret()
                    && cur.webhook_secret.as_ref().map(|s| s.expose_secret())
                        == expected.webhook_secret.as_ref().map(|s| s.expose_secret())
                    && cur.pin.as_ref().map(|s| s.expose_secret())
                        == expected.pin.as_ref().map(|s| s.expose_secret()) =>
            {
                cur.token = updated.token.clone();
                cur.webhook_secret = updated.webhook_secret.clone();
                if updated.pin.is_some() {
                    cur.pin = updated.pin.clone();
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn scan_channels(
        &self,
        cursor: &ScanCursor,
        count: usize,
    ) -> Result<(Vec<ChannelRef>, Option<ScanCursor>), StoreError> {
        // In key order after the last one returned: a page at a time, as on Redis.
        // The `count + 1` smallest keys after the cursor (one more tells whether there is
        // a next page), never a copy of every channel.
        let (after, count) = (&cursor.0, count.max(1));
        let mut page: std::collections::BTreeMap<String, ChannelRef> = Default::default();
        for c in self.channels().keys() {
            let k = c.to_string();
            if !after.is_empty() && k <= *after {
                continue;
            }
            page.insert(k, c.clone());
            if page.len() > count + 1 {
                page.pop_last();
            }
        }
        let more = page.len() > count;
        if more {
            page.pop_last();
        }
        let next = match (more, page.keys().next_back()) {
            (true, Some(k)) => Some(ScanCursor(k.clone())),
            _ => None,
        };
        Ok((page.into_values().collect(), next))
    }

    async fn replace_channel_token(
        &self,
        c: &ChannelRef,
        expected_token: &SecretString,
        token: &SecretString,
        expires_at: &str,
    ) -> Result<bool, StoreError> {
        let mut channels = self.channels();
        match channels.get_mut(c) {
            Some(cur) if cur.token.expose_secret() == expected_token.expose_secret() => {
                cur.token = token.clone();
                cur.expires_at = Some(expires_at.to_owned());
                cur.updated_at = Some(crate::time::now_rfc3339());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let now = Instant::now();
        Ok(match self.seen_id(key) {
            Some(id) => self.seen().contains(id, now),
            None => self.values().get(key, now).is_some(),
        })
    }

    async fn set_ex(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        self.set_one(key, value, Instant::now(), ttl);
        Ok(())
    }

    async fn send_ex_all(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        for key in keys {
            self.set_one(key, value, now, ttl);
        }
        Ok(())
    }

    async fn set_nx_ex(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = Instant::now();
        if let Some(id) = self.seen_id(key).filter(|_| value == "1") {
            let mut seen = self.seen();
            if seen.contains(id, now) {
                return Ok(false);
            }
            seen.insert(id, now + ttl, now);
            return Ok(true);
        }
        let mut values = self.values();
        if values.get(key, now).is_some() {
            return Ok(false);
        }
        values.insert(key.to_owned(), value.to_owned(), now + ttl, now);
        Ok(true)
    }

    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let now = Instant::now();
        if let Some(id) = self.seen_id(key) {
            if self.seen().contains(id, now) {
                return Ok(Some("1".to_owned()));
            }
        }
        Ok(self.values().get(key, now).cloned())
    }

    async fn del(&self, key: &str) -> Result<bool, StoreError> {
        let was_channel = self
            .keys
            .parse_channel(key)
            .map(|c| self.channels().remove(&c).is_some())
            .unwrap_or(false);
        let now = Instant::now();
        let was_seen = self
            .seen_id(key)
            .is_some_and(|id| self.seen().remove(id, now));
        Ok(self.values().remove(key, now) || was_seen || was_channel)
    }

    async fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        let now = Instant::now();
        let mut out: Vec<String> = self
            .values()
            .iter_live(now)
            .filter(|k| glob_match(pattern, k))
            .cloned()
            .collect();
        let seen: Vec<u128> = self.seen().iter_live(now).collect();
        out.extend(
            seen.into_iter()
                .map(|id| format!("{}{}", self.dedupe_prefix, format_event_id(id)))
                .filter(|k| glob_match(pattern, k)),
        );
        out.extend(
            self.channels()
                .keys()
                .map(|c| self.keys.channel(c))
                .filter(|k| glob_match(pattern, k)),
        );
        Ok(out)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn channels_come_a_page_at_a_time_each_once() {
        let store = MemoryStore::new(Keys::new("t:"));
        for i in 0..250 {
            let c = ChannelRef::parse(
                crate::channel::ChannelKind::Telegram,
                format!("{}", 1000 + i),
            )
            .unwrap();
            store
                .put_channel(
                    &c,
                    &ChannelRecord::new("acme", SecretString::from("x".to_owned())),
                )
                .await
                .unwrap();
        }
        let (mut cursor, mut seen, mut pages) = (ScanCursor::default(), Vec::new(), 0);
        loop {
            let (page, next) = store.scan_channels(&cursor, 100).await.unwrap();
            assert!(page.len() <= 100);
            pages += 1;
            seen.extend(page);
            match next {
                Some(n) => cursor = n,
                None => break,
            }
        }
        assert_eq!(pages, 3);
        let n = seen.len();
        seen.sort_by_key(|c| c.to_string());
        seen.dedup();
        assert_eq!((n, seen.len()), (250, 250));
    }

    #[test]
    fn glob() {
        assert!(glob_match("a:*", "a:b:c"));
        assert!(glob_match("a:*:c", "a:b:c"));
        assert!(!glob_match("a:*:d", "a:b:c"));
        assert!(glob_match("abc", "abc"));
    }

    #[tokio::test]
    async fn set_nx_is_exclusive_and_expires() {
        let s = MemoryStore::new(Keys::new("p:"));
        assert!(s
            .set_nx_ex("k", "1", Duration::from_millis(30))
            .await
            .unwrap());
        assert!(!s.set_nx_ex("k", "2", Duration::from_secs(1)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(!s.exists("k").await.unwrap());
    }

    #[tokio::test]
    async fn dedupe_marks_are_kept_compactly_and_behave_as_values() {
        let s = MemoryStore::with_cap(Keys::new("p:"), 50);
        let key = |i: u32| format!("p:dedupe:evt_{i:032x}");
        for i in 0..500 {
            s.set_ex(&key(i), "1", Duration::from_secs(60))
                .await
                .unwrap();
        }
        assert_eq!(s.values().len(), 0, "no mark is an ordinary value");
        assert_eq!(s.seen().len(), 50, "capped");
        assert!(s.exists(&key(499)).await.unwrap(), "the newest is kept");
        assert!(!s.exists(&key(0)).await.unwrap(), "the oldest made room");
        assert_eq!(s.get(&key(499)).await.unwrap().as_deref(), Some("1"));
        let listed = s.scan("p:dedupe:*").await.unwrap();
        assert_eq!(listed.len(), 50);
        assert!(listed.contains(&key(499)));
        assert!(s.del(&key(499)).await.unwrap());
        assert!(!s.exists(&key(499)).await.unwrap());
        assert!(s
            .set_nx_ex(&key(499), "1", Duration::from_secs(60))
            .await
            .unwrap());
        assert!(!s
            .set_nx_ex(&key(499), "1", Duration::from_secs(60))
            .await
            .unwrap());
        // Another form of id is an ordinary value.
        s.set_ex("p:dedupe:legacy", "1", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(s.exists("p:dedupe:legacy").await.unwrap());
        assert_eq!(s.values().len(), 1);
    }

    #[tokio::test]
    async fn values_are_capped() {
        let s = MemoryStore::with_cap(Keys::new("p:"), 50);
        for i in 0..500 {
            let ttl = Duration::from_secs(3600 + i);
            s.set_ex(&format!("p:seen:{i}"), "1", ttl).await.unwrap();
        }
        assert_eq!(s.values().len(), 50);
        assert_eq!(s.scan("p:seen:*").await.unwrap().len(), 50);
        assert!(s.exists("p:seen:499").await.unwrap(), "the newest is kept");
        assert!(
            !s.exists("p:seen:0").await.unwrap(),
            "the soonest to expire made room"
        );
    }
}
