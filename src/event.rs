//! The normalized event: the contract's envelope, channel-agnostic.
//!
//! Adapters make [`Event`]s without knowing the tenant; routing attaches it when the body
//! for the CRM is rendered ([`Event::to_body`]). The event id is derived from the
//! provider's own ids ([`EventId::derive`]), so a redelivered webhook yields the same ids
//! and the CRM sees the same `webhook-id` on every retry.

use std::fmt;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::channel::ChannelRef;

/// The contract's event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    MessageReceived,
    MessageEcho,
    MessageStatus,
    MessageReaction,
    MessageDeleted,
    MessageEdited,
    Postback,
    ConversationRead,
    CommentReceived,
    ChannelDeauthorized,
    ChannelReauthRequired,
    /// v2: a channel was connected through a connect link.
    ChannelConnected,
    DataDeletionRequested,
    /// v2: a WhatsApp message template's review status changed (account-level).
    TemplateStatus,
    /// Something the provider sent that has no normalized form: delivered with `data.raw`.
    ProviderEvent,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::MessageReceived => "message.received",
            EventType::MessageEcho => "message.echo",
            EventType::MessageStatus => "message.status",
            EventType::MessageReaction => "message.reaction",
            EventType::MessageDeleted => "message.deleted",
            EventType::MessageEdited => "message.edited",
            EventType::Postback => "postback",
            EventType::ConversationRead => "conversation.read",
            EventType::CommentReceived => "comment.received",
            EventType::ChannelDeauthorized => "channel.deauthorized",
            EventType::ChannelReauthRequired => "channel.reauth_required",
            EventType::ChannelConnected => "channel.connected",
            EventType::DataDeletionRequested => "data_deletion.requested",
            EventType::TemplateStatus => "template.status",
            EventType::ProviderEvent => "provider.event",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// `evt_` + 32 hex digits of a SHA-256 over the provider's ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    /// Derives the id from the parts that identify the event at the provider (channel,
    /// message id, status …). Parts are length-prefixed so `("ab","c")` ≠ `("a","bc")`.
    pub fn derive(parts: &[&str]) -> Self {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p.as_bytes());
        }
        let digest = h.finalize();
        let mut s = String::with_capacity(36);
        s.push_str("evt_");
        s.push_str(&hex::encode(&digest[..16]));
        EventId(s)
    }

    /// The id of a message's event: channel kind, channel id, `"message"`, the
    /// provider's message id. The adapters derive a received message's id (and a
    /// WhatsApp reaction's) with it, and unsend finds the message it takes back by it.
    pub fn of_message(channel: &ChannelRef, message_id: &str) -> Self {
        Self::derive(&[channel.kind().as_str(), channel.id(), "message", message_id])
    }

    /// An id read back from storage (the retry buffer), trusted as is.
    pub fn from_stored(s: String) -> Self {
        EventId(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One normalized event, before it is addressed to a tenant.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: EventId,
    pub event_type: EventType,
    /// When the provider says it happened, Unix milliseconds.
    pub timestamp_ms: i64,
    pub channel: ChannelRef,
    /// The customer's id on the channel, when the event belongs to a conversation: the
    /// unit of ordering. Not serialized on its own (it is in `data.conversation.id`).
    pub conversation: Option<String>,
    /// The contract's `data` object.
    pub data: Map<String, Value>,
    /// The provider's original object, sent as `data.raw` to tenants with `include_raw`
    /// (and always for `provider.event`).
    pub raw: Option<Box<RawValue>>,
    /// WhatsApp account-level webhooks: the WABA the event is about. Routing sends it to
    /// every tenant with a channel on that WABA, each with its own `channel` and id
    /// ([`Event::for_account_channel`]); `channel` is a placeholder until then.
    pub account: Option<String>,
}

impl Event {
    /// Renders the JSON body sent to the CRM.
    pub fn to_body(&self, tenant: &str, include_raw: bool) -> Vec<u8> {
        let raw = match (
            &self.raw,
            include_raw
                || self.event_type == EventType::ProviderEvent
                || self.is_unsupported_message(),
        ) {
            (Some(r), true) => Some(r.as_ref()),
            _ => None,
        };
        let wire = Wire {
            id: &self.id,
            event_type: self.event_type,
            timestamp: Rfc3339(self.timestamp_ms),
            tenant,
            channel: &self.channel,
            data: DataWithRaw {
                data: &self.data,
                raw,
            },
        };
        // Sized once for a typical event (and its raw object), not grown step by step.
        let mut body = Vec::with_capacity(768 + raw.map_or(0, |r| r.get().len()));
        // Serializing plain maps and strings into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut body, &wire);
        body
    }

    /// A message the relay could not read (`message.kind = "unsupported"`): its raw
    /// object always travels with it, as for `provider.event`, so nothing is lost.
    pub fn is_unsupported_message(&self) -> bool {
        self.data
            .get("message")
            .and_then(|m| m.get("kind"))
            .and_then(Value::as_str)
            == Some("unsupported")
    }

    /// This account-level event as one tenant gets it: `channel` is that tenant's channel
    /// on the WABA, and the id is derived from the event's and the tenant's, so each
    /// tenant's copy has its own (deterministic) id and dedupe key.
    pub fn for_account_channel(&self, channel: ChannelRef, tenant: &str) -> Event {
        let mut ev = self.clone();
        ev.id = EventId::derive(&[self.id.as_str(), "tenant", tenant]);
        ev.channel = channel;
        ev
    }

    /// The key events of one conversation are ordered by.
    pub fn ordering_key(&self) -> Option<String> {
        self.conversation
            .as_ref()
            .map(|c| [self.channel.kind().as_str(), ":", self.channel.id(), ":", c].concat())
    }
}

#[derive(Serialize)]
struct Wire<'a> {
    id: &'a EventId,
    #[serde(rename = "type")]
    event_type: EventType,
    timestamp: Rfc3339,
    tenant: &'a str,
    channel: &'a ChannelRef,
    data: DataWithRaw<'a>,
}

struct DataWithRaw<'a> {
    data: &'a Map<String, Value>,
    raw: Option<&'a RawValue>,
}

impl Serialize for DataWithRaw<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.data.len() + usize::from(self.raw.is_some())))?;
        for (k, v) in self.data {
            map.serialize_entry(k, v)?;
        }
        if let Some(raw) = self.raw {
            map.serialize_entry("raw", raw)?;
        }
        map.end()
    }
}

/// Unix milliseconds rendered as RFC 3339 UTC (`2026-11-22T10:00:00Z`, with `.123` when
/// the provider gave milliseconds).
struct Rfc3339(i64);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&crate::time::format_rfc3339(self.0))
    }
}

/// Builds `data` objects tersely: skips `None`s so absent fields stay absent.
#[derive(Debug, Default)]
pub struct DataBuilder(Map<String, Value>);

impl DataBuilder {
    pub fn new() -> Self {
        Self(Map::new())
    }

    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    pub fn set_opt<V: Into<Value>>(mut self, key: &str, value: Option<V>) -> Self {
        if let Some(v) = value {
            self.0.insert(key.to_owned(), v.into());
        }
        self
    }

    /// Sets `key` to an object of one `id` field: `{"id": id}`.
    pub fn id_obj(self, key: &str, id: impl Into<Value>) -> Self {
        let mut m = Map::new();
        m.insert("id".to_owned(), id.into());
        self.set(key, Value::Object(m))
    }

    pub fn build(self) -> Map<String, Value> {
        self.0
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelKind;

    #[test]
    fn event_id_is_stable_and_prefix_free() {
        let a = EventId::derive(&["whatsapp", "1", "wamid.X"]);
        assert_eq!(a, EventId::derive(&["whatsapp", "1", "wamid.X"]));
        assert_ne!(EventId::derive(&["ab", "c"]), EventId::derive(&["a", "bc"]));
        assert!(a.as_str().starts_with("evt_"));
        assert_eq!(a.as_str().len(), 36);
    }

    #[test]
    fn body_has_envelope_and_raw_only_when_asked() {
        let ev = Event {
            id: EventId::derive(&["x"]),
            event_type: EventType::MessageReceived,
            timestamp_ms: 1_749_416_383_000,
            channel: ChannelRef::parse(ChannelKind::Whatsapp, "106540352242922").unwrap(),
            conversation: Some("16505551234".into()),
            data: DataBuilder::new().set("k", "v").build(),
            raw: Some(RawValue::from_string("{\"a\":1}".into()).unwrap()),
            account: None,
        };
        let v: Value = serde_json::from_slice(&ev.to_body("acme", false)).unwrap();
        assert_eq!(v["type"], "message.received");
        assert_eq!(v["tenant"], "acme");
        assert_eq!(v["timestamp"], "2025-06-08T20:59:43Z");
        assert_eq!(v["channel"]["kind"], "whatsapp");
        assert_eq!(v["data"]["k"], "v");
        assert!(v["data"].get("raw").is_none());
        let v: Value = serde_json::from_slice(&ev.to_body("acme", true)).unwrap();
        assert_eq!(v["data"]["raw"]["a"], 1);
    }
}
