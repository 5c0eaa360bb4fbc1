//! Every Redis key the relay writes, built in one place from typed arguments.
//!
//! | key | type | TTL | what |
//! |---|---|---|---|
//! | `{prefix}channel:{kind}:{id}` | hash | none (a channel lives until deleted) | the contract's public layout: `tenant`, `token` (Fernet), `webhook_secret` (Fernet), `updated_at`, optional `user_id` (the Meta user who connected it), `waba_id`, `graph` (`instagram` = Instagram Login), `expires_at` (RFC 3339), `pin` (Fernet) |
//! | `{prefix}dedupe:{event_id}` | string | `delivery.dedupe_window_s` | an event the CRM accepted |
//! | `{prefix}sent:{kind}:{id}:{sha256(mid)}` | string | `delivery.dedupe_window_s` | a Messenger or Instagram message the relay sent through `POST /v1/messages`: its echo is marked `sent_by_relay` ([`crate::delivery::echo`]); the id is hashed, no content |
//! | `{prefix}idem:{tenant}:{sha256(key)}` | string | `replies.idempotency_ttl_s` | the first response to an `Idempotency-Key` (without the recipient) |
//! | `{prefix}reauth:{kind}:{id}` | string | 1 h | `channel.reauth_required` was sent |
//! | `{prefix}tokens:lock:{kind}:{id}` | string | `tokens.lock_ttl_s` | a replica is checking this channel's token now ([`crate::tokens`]) |
//! | `{prefix}tokens:checked:{kind}:{id}` | string | most of `tokens.check_interval_s` | the channel's token was checked this round: other replicas' periodic checks skip it |
//! | `{prefix}telegram:previous_secret:{bot_id}` | string | 15 min | the Fernet token of a bot's previous webhook secret, still accepted while `set-webhook` switches to a new one |
//! | `{prefix}deletion:{code}` | string | `privacy.deletion_status_ttl_s` | a data-deletion request's status: counts and times, no ids ([`crate::privacy`]) |
//! | `{prefix}connect:link:{id}` | string (JSON) | the link's life + 7 days | a connect link: tenant, kind, status, return_url, external_ref, the SHA-256 of its secret, the channel or error ([`crate::connect::links`]) |
//! | `{prefix}connect:secret:{sha256(secret)}` | string | the link's life | the link id a secret opens |
//! | `{prefix}connect:used:{id}` | string | the link's life + 7 days | the link is used up (connected or revoked) |
//! | `{prefix}connect:flow:{sha256(cookie)}` | string (JSON) | `connect.flow_ttl_s` (at most the link's life) | one pass through a connect page: the link, the OAuth state nonce, tokens got so far (Fernet) ([`crate::connect::flow`]) |
//! | `{prefix}retry:{sN}:stream` | stream + group `relay` | refreshed to `retry_buffer_ttl_s` + 1 h on every add | retry buffer shard N: entries ready for delivery |
//! | `{prefix}retry:{sN}:delayed` | zset | same | entries waiting for their due time (score) |
//! | `{prefix}retry:{sN}:pending:{event_id}` | string | `retry_buffer_ttl_s` + 1 h | the event is in the buffer (a redelivery is not buffered twice) |
//! | `{prefix}retry:{sN}:head:{conv}` | string | same | the event id at the head of a conversation |
//! | `{prefix}retry:{sN}:parked:{conv}` | list | same | a conversation's later entries, in order |
//! | `{prefix}retry:{sN}:tenant:{tenant}` | zset | same | event id → first-seen ms, for depth and age gauges |
//! | `{prefix}dead:{sN}:entry:{event_id}` | string (JSON) | `delivery.dead_letter_ttl_s` | a given-up event (opt-in): ids, type, attempts, times in the clear, the buffer entry's Fernet payload ([`crate::delivery::dead_letter`]) |
//! | `{prefix}dead:{sN}:index` | zset | refreshed to `dead_letter_ttl_s` on every add | event id → expiry ms, for listing |
//! | `{prefix}dead:{sN}:tenant:{tenant}` | zset | same | event id → expiry ms, for counts per tenant |
//!
//! Each key above the retry buffer stands alone (no multi-key command spans two of
//! them), so it works on a Redis Cluster without hash tags. The retry buffer's keys of
//! one shard, and the dead letters of that shard, share the hash tag `{sN}` (one slot,
//! so their Lua scripts are atomic); `conv`
//! is a keyed hash of the conversation, never a phone number. The design is described
//! in [`crate::delivery::buffer`].

use sha2::{Digest, Sha256};

use crate::channel::{ChannelKind, ChannelRef};
use crate::event::EventId;

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn channel(&self, channel: &ChannelRef) -> String {
        format!("{}channel:{}:{}", self.prefix, channel.kind(), channel.id())
    }

    /// Bumped by every channel write of the relay, so each replica's routing cache
    /// notices ([`super::routes`]); a counter with a TTL.
    pub fn channels_version(&self) -> String {
        format!("{}channels:version", self.prefix)
    }

    /// The SCAN pattern of every channel hash.
    pub fn channel_pattern(&self) -> String {
        format!("{}channel:*", self.prefix)
    }

    /// The SCAN pattern of the channel hashes of one kind.
    pub fn channel_kind_pattern(&self, kind: ChannelKind) -> String {
        format!("{}channel:{}:*", self.prefix, kind)
    }

    /// Parses a channel hash key back into its channel.
    pub fn parse_channel(&self, key: &str) -> Option<ChannelRef> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix("channel:")?;
        let (kind, id) = rest.split_once(':')?;
        ChannelRef::parse(kind.parse().ok()?, id).ok()
    }

    pub fn dedupe(&self, id: &EventId) -> String {
        [self.prefix.as_str(), "dedupe:", id.as_str()].concat()
    }

    /// A message the relay sent on `channel` (its provider message id, hashed), so its
    /// echo can be told from what the business sent elsewhere.
    pub fn relay_sent(&self, channel: &ChannelRef, mid: &str) -> String {
        let digest = hex::encode(Sha256::digest(mid.as_bytes()));
        format!(
            "{}sent:{}:{}:{}",
            self.prefix,
            channel.kind(),
            channel.id(),
            digest
        )
    }

    /// The idempotency record of a tenant's key; the key itself is hashed (it is the
    /// CRM's string, of any length and content).
    pub fn idempotency(&self, tenant: &str, key: &str) -> String {
        let digest = hex::encode(Sha256::digest(key.as_bytes()));
        format!("{}idem:{}:{}", self.prefix, tenant, digest)
    }

    pub fn reauth_notice(&self, channel: &ChannelRef) -> String {
        format!("{}reauth:{}:{}", self.prefix, channel.kind(), channel.id())
    }

    /// Held by the replica checking a channel's token (`SET NX PX`).
    pub fn tokens_lock(&self, channel: &ChannelRef) -> String {
        format!(
            "{}tokens:lock:{}:{}",
            self.prefix,
            channel.kind(),
            channel.id()
        )
    }

    /// The channel's token was checked in this round (periodic checks skip it).
    pub fn tokens_checked(&self, channel: &ChannelRef) -> String {
        format!(
            "{}tokens:checked:{}:{}",
            self.prefix,
            channel.kind(),
            channel.id()
        )
    }

    /// A bot's previous Telegram webhook secret, kept briefly during `set-webhook`.
    pub fn telegram_previous_secret(&self, bot_id: &str) -> String {
        format!("{}telegram:previous_secret:{}", self.prefix, bot_id)
    }

    pub fn deletion(&self, code: &str) -> String {
        format!("{}deletion:{}", self.prefix, code)
    }

    /// A connect link's record (JSON, no secret), by its public id.
    pub fn connect_link(&self, id: &str) -> String {
        format!("{}connect:link:{}", self.prefix, id)
    }

    /// A connect link's id, by the SHA-256 (hex) of its secret.
    pub fn connect_secret(&self, secret_sha256: &str) -> String {
        format!("{}connect:secret:{}", self.prefix, secret_sha256)
    }

    /// Set once a connect link is used up (connected or revoked): single use.
    pub fn connect_used(&self, id: &str) -> String {
        format!("{}connect:used:{}", self.prefix, id)
    }

    /// A connect page's flow (JSON, secrets Fernet-encrypted), by the SHA-256 (hex) of
    /// its cookie.
    pub fn connect_flow(&self, cookie_sha256: &str) -> String {
        format!("{}connect:flow:{}", self.prefix, cookie_sha256)
    }

    /// A key of retry buffer shard `shard`: `{prefix}retry:{sN}:{name}{tail}` (the
    /// shard's hash tag keeps its keys in one slot). Built in one allocation: two of
    /// these are read for every event on the hot path.
    fn retry(&self, shard: u16, name: &str, tail: &str) -> String {
        let mut n = itoa::Buffer::new();
        let shard = n.format(shard);
        let mut key =
            String::with_capacity(self.prefix.len() + 10 + shard.len() + name.len() + tail.len());
        for part in [self.prefix.as_str(), "retry:{s", shard, "}:", name, tail] {
            key.push_str(part);
        }
        key
    }

    pub fn retry_stream(&self, shard: u16) -> String {
        self.retry(shard, "stream", "")
    }

    pub fn retry_delayed(&self, shard: u16) -> String {
        self.retry(shard, "delayed", "")
    }

    pub fn retry_pending(&self, shard: u16, event_id: &str) -> String {
        self.retry(shard, "pending:", event_id)
    }

    pub fn retry_head(&self, shard: u16, conv: &str) -> String {
        self.retry(shard, "head:", conv)
    }

    pub fn retry_parked(&self, shard: u16, conv: &str) -> String {
        self.retry(shard, "parked:", conv)
    }

    pub fn retry_tenant(&self, shard: u16, tenant: &str) -> String {
        self.retry(shard, "tenant:", tenant)
    }

    /// The hash tag and prefix of dead-letter shard `shard`: `{prefix}dead:{sN}:` (the
    /// same slot as retry shard N).
    fn dead(&self, shard: u16) -> String {
        format!("{}dead:{{s{}}}:", self.prefix, shard)
    }

    pub fn dead_entry(&self, shard: u16, event_id: &str) -> String {
        format!("{}entry:{}", self.dead(shard), event_id)
    }

    pub fn dead_index(&self, shard: u16) -> String {
        format!("{}index", self.dead(shard))
    }

    pub fn dead_tenant(&self, shard: u16, tenant: &str) -> String {
        format!("{}tenant:{}", self.dead(shard), tenant)
    }

    /// Any other relay key: `{prefix}{name}` (for modules that own their own layout).
    pub fn named(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelKind;

    #[test]
    fn channel_key_follows_the_contract_and_parses_back() {
        let k = Keys::new("switchboard:");
        let c = ChannelRef::parse(ChannelKind::Whatsapp, "106540352242922").unwrap();
        let key = k.channel(&c);
        assert_eq!(key, "switchboard:channel:whatsapp:106540352242922");
        assert_eq!(k.parse_channel(&key), Some(c));
        assert_eq!(k.parse_channel("switchboard:channel:fax:1"), None);
    }

    #[test]
    fn retry_keys_of_a_shard_share_one_hash_tag() {
        let k = Keys::new("switchboard:");
        assert_eq!(k.retry_stream(3), "switchboard:retry:{s3}:stream");
        assert_eq!(
            k.retry_pending(12, "evt_1"),
            "switchboard:retry:{s12}:pending:evt_1"
        );
        assert_eq!(k.retry_head(0, "ab"), "switchboard:retry:{s0}:head:ab");
        for key in [
            k.retry_delayed(3),
            k.retry_pending(3, "evt_1"),
            k.retry_head(3, "ab"),
            k.retry_parked(3, "ab"),
            k.retry_tenant(3, "acme"),
            k.dead_entry(3, "evt_1"),
            k.dead_index(3),
            k.dead_tenant(3, "acme"),
        ] {
            let tag = key.split_once('{').and_then(|(_, r)| r.split_once('}'));
            assert_eq!(tag.map(|t| t.0), Some("s3"), "{key}");
            assert!(
                key.starts_with("switchboard:retry:{s3}:")
                    || key.starts_with("switchboard:dead:{s3}:"),
                "{key}"
            );
        }
    }
}
