//! The Messenger Platform's webhook walk, shared by Instagram (`object: instagram`) and
//! Messenger (`object: page`): one entry holds `messaging[]` (this app owns the thread),
//! `standby[]` (another app owns it) and `changes[]` (comments, feed, …).
//!
//! Every messaging item becomes one event (a delivery receipt naming several `mids`
//! becomes one per mid). The business is the item's `recipient`, except for echoes,
//! where it is the `sender`; the other party is the customer and the conversation.
//! Items are mapped as follows:
//!
//! | item | event |
//! |---|---|
//! | `message` | `message.received`; `message.echo` when `is_echo`; `message.deleted` when `is_deleted` |
//! | `message_edit` | `message.edited` |
//! | `delivery` | `message.status` (`delivered`), one per mid, or one carrying the `watermark` |
//! | `read` | `conversation.read` (`watermark` or `message.id`) |
//! | `reaction` | `message.reaction` (`emoji` empty on `unreact`) |
//! | `postback` | `postback` (`payload`, `title`, `referral`) |
//! | `referral`, `optin`, handover (`pass_thread_control`, …), anything else | `provider.event`, `data.kind` naming it |
//! | any item under `standby[]` | `provider.event` of kind `standby`, the normalized event inside `data.event` |
//!
//! `changes[]` are product specific (Instagram comments and mentions, Page feed): each
//! adapter passes its own [`ChangeHandler`]; a change that carries a messaging item
//! (as the App Dashboard's test button sends them) is walked as one.
//!
//! Instagram and Messenger attachments have no id of their own, only a CDN URL: that URL
//! is the media id, and the relay URL given to the CRM carries it percent-encoded.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

mod items;
mod wire;

use items::normalize_item;

use crate::channels::{ChannelKind, ChannelRef, NormalizeContext, NormalizeError};
use crate::event::{DataBuilder, Event, EventId, EventType};
use crate::time::{now_ms, seconds_or_ms_to_ms};

/// What a change handler knows about the entry a change came in.
#[derive(Debug, Clone)]
pub struct EntryHead {
    /// `entry.id`: the Instagram account or the Page.
    pub channel: ChannelRef,
    /// `entry.time`, Unix milliseconds, when Meta gave one.
    pub time_ms: Option<i64>,
}

impl EntryHead {
    pub fn channel(&self) -> ChannelRef {
        self.channel.clone()
    }

    /// When the entry says it happened, else now.
    pub fn timestamp_ms(&self) -> i64 {
        self.time_ms.unwrap_or_else(now_ms)
    }
}

/// Turns one `changes[]` item (`field`, `value`) into events.
pub type ChangeHandler = fn(&EntryHead, &str, &RawValue, &mut Vec<Event>);

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(default, deserialize_with = "lenient_string")]
    id: String,
    #[serde(default, deserialize_with = "lenient_i64")]
    time: Option<i64>,
    #[serde(default, borrow)]
    messaging: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    standby: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    changes: Vec<Change<'a>>,
}

#[derive(Deserialize)]
struct Change<'a> {
    #[serde(default)]
    field: String,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
}

/// Walks one `entry[]` item of an `instagram` or `page` webhook, appending to `out`.
pub fn normalize_entry(
    kind: ChannelKind,
    entry: &RawValue,
    ctx: &NormalizeContext<'_>,
    out: &mut Vec<Event>,
    on_change: ChangeHandler,
) -> Result<(), NormalizeError> {
    let entry: Entry<'_> = serde_json::from_str(entry.get())?;
    let Ok(channel) = ChannelRef::parse(kind, entry.id) else {
        crate::channels::unparseable_channel(kind);
        return Ok(());
    };
    let head = EntryHead {
        channel,
        time_ms: entry.time.map(seconds_or_ms_to_ms),
    };
    for item in &entry.messaging {
        normalize_item(&head, item, ctx, out);
    }
    for item in &entry.standby {
        let mut inner = Vec::with_capacity(1);
        normalize_item(&head, item, ctx, &mut inner);
        out.extend(inner.into_iter().map(into_standby));
    }
    for change in &entry.changes {
        let Some(value) = change.value else { continue };
        if is_messaging_item(value) {
            normalize_item(&head, value, ctx, out);
        } else {
            on_change(&head, &change.field, value, out);
        }
    }
    Ok(())
}

/// A change this relay does not normalize: `provider.event` with `data.kind` = the field.
pub fn change_event(head: &EntryHead, field: &str, value: &RawValue) -> Event {
    Event {
        id: EventId::derive(&[
            head.channel.kind().as_str(),
            head.channel.id(),
            "change",
            field,
            &digest(value),
        ]),
        event_type: EventType::ProviderEvent,
        timestamp_ms: head.timestamp_ms(),
        channel: head.channel(),
        conversation: None,
        data: DataBuilder::new()
            .set("kind", field)
            .set("field", field)
            .build(),
        raw: Some(value.to_owned()),
        account: None,
    }
}

/// Hex SHA-256 of a raw object: the identity of what Meta gives no id to.
pub fn digest(raw: &RawValue) -> String {
    hex::encode(Sha256::digest(raw.get().as_bytes()))
}

/// Reads an id Meta sometimes sends as a number, sometimes as a string.
pub fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    })
}

/// Reads a timestamp or count given as a number or a numeric string.
pub fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    })
}

fn is_messaging_item(value: &RawValue) -> bool {
    #[derive(Deserialize)]
    struct Peek {
        sender: Option<Value>,
        recipient: Option<Value>,
    }
    serde_json::from_str::<Peek>(value.get())
        .map(|p| p.sender.is_some() && p.recipient.is_some())
        .unwrap_or(false)
}

/// An item received on `standby[]` (another app owns the thread): delivered as
/// `provider.event` of kind `standby`, so a CRM that does not know handover never acts
/// on it as its own, with the normalized event inside `data.event`.
fn into_standby(ev: Event) -> Event {
    let conversation = ev.data.get("conversation").cloned();
    let inner = json!({"type": ev.event_type.as_str(), "data": Value::Object(ev.data)});
    Event {
        id: EventId::derive(&[ev.id.as_str(), "standby"]),
        event_type: EventType::ProviderEvent,
        timestamp_ms: ev.timestamp_ms,
        channel: ev.channel,
        conversation: ev.conversation,
        data: DataBuilder::new()
            .set("kind", "standby")
            .set("field", "standby")
            .set_opt("conversation", conversation)
            .set("event", inner)
            .build(),
        raw: ev.raw,
        account: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: NormalizeContext<'static> = NormalizeContext {
        public_url: "https://relay.test",
    };

    fn walk(kind: ChannelKind, body: &str) -> Vec<Event> {
        fn no_changes(head: &EntryHead, field: &str, value: &RawValue, out: &mut Vec<Event>) {
            out.push(change_event(head, field, value));
        }
        let raw: Box<RawValue> = RawValue::from_string(body.to_owned()).unwrap();
        let mut out = Vec::new();
        normalize_entry(kind, &raw, &CTX, &mut out, no_changes).unwrap();
        out
    }

    #[test]
    fn echo_is_routed_by_its_sender_and_addressed_to_the_customer() {
        let evs = walk(
            ChannelKind::Messenger,
            r#"{"id":"1","time":1,"messaging":[{"sender":{"id":"1"},"recipient":{"id":"9"},
               "timestamp":1457764197627,"message":{"is_echo":true,"mid":"m1","text":"hi"}}]}"#,
        );
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].event_type, EventType::MessageEcho);
        assert_eq!(evs[0].channel.id(), "1");
        assert_eq!(evs[0].conversation.as_deref(), Some("9"));
        assert_eq!(evs[0].data["recipient"]["id"], "9");
        assert_eq!(evs[0].data["sender"]["id"], "1");
    }

    #[test]
    fn delivery_without_mids_gives_one_watermark_status() {
        let evs = walk(
            ChannelKind::Messenger,
            r#"{"id":"1","messaging":[{"sender":{"id":"9"},"recipient":{"id":"1"},
               "delivery":{"watermark":1458668856253}}]}"#,
        );
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].event_type, EventType::MessageStatus);
        assert_eq!(evs[0].data["watermark"], 1458668856253i64);
        assert!(evs[0].data.get("message").is_none());
        assert_eq!(evs[0].timestamp_ms, 1458668856253);
    }

    #[test]
    fn deletion_and_receipt_of_one_mid_have_different_ids() {
        let a = walk(
            ChannelKind::Instagram,
            r#"{"id":"1","messaging":[{"sender":{"id":"9"},"recipient":{"id":"1"},"message":{"mid":"m","text":"x"}}]}"#,
        );
        let b = walk(
            ChannelKind::Instagram,
            r#"{"id":"1","messaging":[{"sender":{"id":"9"},"recipient":{"id":"1"},"message":{"mid":"m","is_deleted":true}}]}"#,
        );
        assert_eq!(b[0].event_type, EventType::MessageDeleted);
        assert_ne!(a[0].id, b[0].id);
    }

    #[test]
    fn unknown_items_and_wrong_shapes_become_provider_events() {
        let evs = walk(
            ChannelKind::Messenger,
            r#"{"id":"1","messaging":[{"sender":{"id":"9"},"recipient":{"id":"1"},"game_play":{"x":1}},
               {"sender":{"id":"9"},"recipient":{"id":"1"},"message":"not an object"}]}"#,
        );
        assert_eq!(evs.len(), 2);
        assert!(evs.iter().all(|e| e.event_type == EventType::ProviderEvent));
        assert_eq!(evs[0].data["kind"], "game_play");
        assert_eq!(evs[1].data["kind"], "message");
    }

    #[test]
    fn a_messaging_item_inside_changes_is_walked_as_one() {
        let evs = walk(
            ChannelKind::Instagram,
            r#"{"id":"1","changes":[{"field":"messages","value":{"sender":{"id":"9"},
               "recipient":{"id":"1"},"timestamp":"1527459824","message":{"mid":"m","text":"t"}}}]}"#,
        );
        assert_eq!(evs[0].event_type, EventType::MessageReceived);
        assert_eq!(evs[0].timestamp_ms, 1_527_459_824_000);
    }
}
