//! Echoes of the relay's own sends. Messenger and Instagram echo every message the
//! business sends (`message.echo`), the replies a CRM sent through `POST /v1/messages`
//! included, so a CRM would show its own reply twice. After such a send succeeds the
//! relay remembers the provider's message id ([`remember_sent`], key
//! `{prefix}sent:{kind}:{id}:{sha256(mid)}`, TTL `delivery.dedupe_window_s`); the
//! dispatcher reads that key in the same round trip as the dedupe check and sets
//! `data.sent_by_relay` (`true` or `false`, always present on these echoes) before the
//! body is rendered and signed.
//!
//! Not covered: an echo that arrives before the provider's answer to the send was
//! recorded (Meta usually answers first) is marked `false`.

use std::time::Duration;

use serde_json::Value;

use crate::channels::{ChannelKind, ChannelRef};
use crate::event::{Event, EventType};
use crate::store::{Keys, Store, StoreBackend};

/// Whether the relay's own sends echo back as this kind of channel's `message.echo`.
fn echoes(kind: ChannelKind) -> bool {
    matches!(kind, ChannelKind::Messenger | ChannelKind::Instagram)
}

/// The key that says whether the relay sent what this event echoes: only for a
/// Messenger or Instagram `message.echo` with a message id.
pub fn sent_key(keys: &Keys, event: &Event) -> Option<String> {
    if event.event_type != EventType::MessageEcho || !echoes(event.channel.kind()) {
        return None;
    }
    let mid = event
        .data
        .get("message")
        .and_then(|m| m.get("id"))
        .and_then(Value::as_str)?;
    Some(keys.relay_sent(&event.channel, mid))
}

/// Sets `data.sent_by_relay`.
pub fn mark(event: &mut Event, sent_by_relay: bool) {
    event
        .data
        .insert("sent_by_relay".into(), Value::Bool(sent_by_relay));
}

/// Remembers that the relay sent message `mid` on `channel` (a Messenger or Instagram
/// channel; others are ignored), for `window`. Best effort: a failure is logged and
/// the echo is then marked `false`.
pub async fn remember_sent(store: &Store, channel: &ChannelRef, mid: &str, window: Duration) {
    if !echoes(channel.kind()) {
        return;
    }
    let key = store.keys().relay_sent(channel, mid);
    if let Err(e) = store.set_ex(&key, "1", window).await {
        tracing::warn!(channel = %channel, error = %e, stage = "sending", "Sent message id not remembered; its echo will say sent_by_relay = false.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventId;
    use serde_json::json;

    fn event(kind: ChannelKind, event_type: EventType) -> Event {
        let data = json!({"message": {"id": "m_1", "kind": "text"}});
        Event {
            id: EventId::derive(&["x"]),
            event_type,
            timestamp_ms: 0,
            channel: ChannelRef::parse(kind, "1").unwrap(),
            conversation: None,
            data: data.as_object().unwrap().clone(),
            raw: None,
            account: None,
        }
    }

    #[test]
    fn only_meta_messaging_echoes_are_checked_and_the_mid_is_hashed() {
        let keys = Keys::new("p:");
        let k = sent_key(
            &keys,
            &event(ChannelKind::Messenger, EventType::MessageEcho),
        )
        .unwrap();
        assert!(k.starts_with("p:sent:messenger:1:"), "{k}");
        assert!(!k.contains("m_1"));
        assert!(sent_key(
            &keys,
            &event(ChannelKind::Instagram, EventType::MessageEcho)
        )
        .is_some());
        assert!(sent_key(&keys, &event(ChannelKind::Whatsapp, EventType::MessageEcho)).is_none());
        assert!(sent_key(
            &keys,
            &event(ChannelKind::Messenger, EventType::MessageReceived)
        )
        .is_none());
    }
}
