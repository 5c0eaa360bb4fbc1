//! One messaging item → its events, by the table in [`super`]: the item's parties
//! decide the channel, the customer and the conversation ([`ItemCtx`]); each kind of
//! item has its own mapping (messages and their attachments, edits, delivery and read
//! receipts, reactions, postbacks, and the rest as `provider.event`).

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::wire::*;
use super::{digest, EntryHead};
use crate::channels::{ChannelRef, NormalizeContext};
use crate::event::{DataBuilder, Event, EventId, EventType};
use crate::time::{now_ms, seconds_or_ms_to_ms};

/// What every event of one messaging item shares.
struct ItemCtx<'a> {
    channel: ChannelRef,
    /// The customer (PSID / IGSID, or a `user_ref` before one exists).
    customer: Option<String>,
    /// Who acted: the customer, or the business for echoes.
    sender: Option<String>,
    timestamp_ms: Option<i64>,
    raw: &'a RawValue,
}

impl ItemCtx<'_> {
    /// An event whose id is derived from the channel and `id_parts`.
    fn event(&self, event_type: EventType, id_parts: &[&str], data: Map<String, Value>) -> Event {
        let mut parts = vec![self.channel.kind().as_str(), self.channel.id()];
        parts.extend_from_slice(id_parts);
        self.event_with_id(event_type, EventId::derive(&parts), data)
    }

    fn event_with_id(&self, event_type: EventType, id: EventId, data: Map<String, Value>) -> Event {
        Event {
            id,
            event_type,
            timestamp_ms: self.timestamp_ms.unwrap_or_else(now_ms),
            channel: self.channel.clone(),
            conversation: self.customer.clone(),
            data,
            raw: Some(self.raw.to_owned()),
            account: None,
        }
    }

    fn conversation(&self) -> Option<Value> {
        self.customer
            .as_deref()
            .map(|c| DataBuilder::new().set("id", c).into_value())
    }

    fn sender(&self) -> Option<Value> {
        self.sender
            .as_deref()
            .map(|s| DataBuilder::new().set("id", s).into_value())
    }

    /// `conversation` and `sender`, the start of most `data` objects.
    fn base(&self) -> DataBuilder {
        DataBuilder::new()
            .set_opt("conversation", self.conversation())
            .set_opt("sender", self.sender())
    }

    fn timestamp_part(&self) -> String {
        self.timestamp_ms.map(|t| t.to_string()).unwrap_or_default()
    }
}

pub(super) fn normalize_item(
    head: &EntryHead,
    raw: &RawValue,
    ctx: &NormalizeContext<'_>,
    out: &mut Vec<Event>,
) {
    let Ok(item) = serde_json::from_str::<Item>(raw.get()) else {
        out.push(unknown_item(head, raw));
        return;
    };
    let echo = item.message.as_ref().is_some_and(|m| m.is_echo);
    let sender = item.sender.as_ref();
    let recipient = item.recipient.as_ref();
    let (business, customer) = if echo {
        (sender, recipient)
    } else {
        (recipient, sender)
    };
    let channel_id = business
        .and_then(Party::id)
        .filter(|id| !id.is_empty())
        .unwrap_or(head.channel.id());
    let Ok(channel) = ChannelRef::parse(head.channel.kind(), channel_id) else {
        crate::channels::unparseable_channel(head.channel.kind());
        return;
    };
    let user_ref = || {
        customer.and_then(|c| c.user_ref.clone()).or_else(|| {
            item.optin
                .as_ref()
                .and_then(|o| o.get("user_ref"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    };
    let customer_id = customer
        .and_then(Party::id)
        .map(str::to_owned)
        .or_else(user_ref);
    let timestamp_ms = item
        .timestamp
        .map(seconds_or_ms_to_ms)
        .or_else(|| {
            item.delivery
                .as_ref()
                .and_then(|d| d.watermark)
                .map(seconds_or_ms_to_ms)
        })
        .or(head.time_ms);
    let ic = ItemCtx {
        channel,
        sender: if echo {
            Some(channel_id.to_owned())
        } else {
            customer_id.clone()
        },
        customer: customer_id,
        timestamp_ms,
        raw,
    };

    if let Some(m) = &item.message {
        out.push(message_event(&ic, m, item.referral.as_ref(), ctx));
    } else if let Some(e) = &item.message_edit {
        out.push(edit_event(&ic, e, raw));
    } else if let Some(d) = &item.delivery {
        delivery_events(&ic, d, out);
    } else if let Some(r) = &item.read {
        out.push(read_event(&ic, r));
    } else if let Some(r) = &item.reaction {
        out.push(reaction_event(&ic, r));
    } else if let Some(p) = &item.postback {
        out.push(postback_event(&ic, p));
    } else if let Some(r) = &item.referral {
        let r#ref = r.get("ref").and_then(Value::as_str).unwrap_or_default();
        out.push(named_event(&ic, "referral", r, &[r#ref]));
    } else if let Some(o) = &item.optin {
        out.push(named_event(&ic, "optin", o, &[&digest(raw)]));
    } else if let Some((name, v)) = [
        ("pass_thread_control", &item.pass_thread_control),
        ("take_thread_control", &item.take_thread_control),
        ("request_thread_control", &item.request_thread_control),
        ("app_roles", &item.app_roles),
    ]
    .into_iter()
    .find_map(|(n, v)| v.as_ref().map(|v| (n, v)))
    {
        out.push(named_event(&ic, name, v, &[&digest(raw)]));
    } else {
        let mut ev = unknown_item(head, raw);
        ev.channel = ic.channel.clone();
        ev.conversation = ic.customer.clone();
        if let Some(c) = ic.conversation() {
            ev.data.insert("conversation".into(), c);
        }
        if let Some(t) = ic.timestamp_ms {
            ev.timestamp_ms = t;
        }
        out.push(ev);
    }
}

fn message_event(
    ic: &ItemCtx<'_>,
    m: &Message,
    item_referral: Option<&Value>,
    ctx: &NormalizeContext<'_>,
) -> Event {
    let digest_part;
    let mid = match m.mid.as_deref() {
        Some(mid) => mid,
        None => {
            digest_part = digest(ic.raw);
            digest_part.as_str()
        }
    };
    let message_id = m.mid.as_deref();
    if m.is_deleted {
        let data = ic
            .base()
            .set_opt(
                "message",
                message_id.map(|id| DataBuilder::new().set("id", id).into_value()),
            )
            .build();
        return ic.event(EventType::MessageDeleted, &["deleted", mid], data);
    }

    let mut message = Map::new();
    if let Some(id) = message_id {
        message.insert("id".into(), id.into());
    }
    let attachments: Vec<(&'static str, Value)> = m
        .attachments
        .iter()
        .map(|a| attachment_value(a, &ic.channel, ctx))
        .collect();
    // A sticker is sent with an `image` twin until Meta drops the old form: prefer it.
    let primary = attachments
        .iter()
        .position(|(k, _)| *k == "sticker")
        .or((!attachments.is_empty()).then_some(0));
    let kind: &str = if m.is_unsupported {
        "unsupported"
    } else if let Some(i) = primary {
        let (k, v) = &attachments[i];
        if let Value::Object(obj) = v {
            for key in [
                "media",
                "location",
                "template",
                "link",
                "title",
                "sticker_id",
            ] {
                if let Some(x) = obj.get(key) {
                    message.insert(key.into(), x.clone());
                }
            }
            if let Some(p) = obj.get("provider_type") {
                message.insert("provider_type".into(), p.clone());
            }
        }
        k
    } else if m.quick_reply.is_some() {
        "interactive"
    } else if m.text.is_some() {
        "text"
    } else if m.sticker_id.is_some() {
        "sticker"
    } else {
        "unsupported"
    };
    message.insert("kind".into(), kind.into());
    if let Some(t) = &m.text {
        message.insert("text".into(), t.as_str().into());
    }
    if attachments.len() > 1 {
        message.insert(
            "attachments".into(),
            attachments.iter().map(|(_, v)| v.clone()).collect(),
        );
    }
    if let Some(q) = &m.quick_reply {
        message.insert(
            "interactive".into(),
            DataBuilder::new()
                .set("type", "quick_reply")
                .set_opt("id", q.payload.as_deref())
                .set_opt("title", m.text.as_deref())
                .into_value(),
        );
    }
    if let Some(r) = &m.reply_to {
        if let Some(id) = &r.mid {
            message.insert("reply_to".into(), id.as_str().into());
        }
        if let Some(s) = r.is_self_reply {
            message.insert("reply_to_self".into(), s.into());
        }
        if let Some(story) = &r.story {
            message.insert(
                "story".into(),
                DataBuilder::new()
                    .set("id", story.id.as_str())
                    .set_opt(
                        "media",
                        story
                            .url
                            .as_deref()
                            .map(|u| media_value(u, &ic.channel, ctx)),
                    )
                    .into_value(),
            );
        }
    }
    if let Some(s) = &m.sticker_id {
        message.entry("sticker_id").or_insert_with(|| s.clone());
    }
    if let Some(r) = m.referral.as_ref().or(item_referral) {
        message.insert("referral".into(), r.clone());
    }
    if let Some(a) = &m.app_id {
        message.insert("app_id".into(), a.clone());
    }
    if let Some(md) = &m.metadata {
        message.insert("metadata".into(), md.as_str().into());
    }

    let event_type = if m.is_echo {
        EventType::MessageEcho
    } else {
        EventType::MessageReceived
    };
    let mut data = ic.base();
    if m.is_echo {
        if let Some(c) = ic.customer.as_deref() {
            data = data.set("recipient", DataBuilder::new().set("id", c).into_value());
        }
    }
    let data = data.set("message", Value::Object(message)).build();
    ic.event_with_id(event_type, EventId::of_message(&ic.channel, mid), data)
}

/// One attachment: its normalized kind and `{kind, media?, …}`.
fn attachment_value(
    a: &Attachment,
    channel: &ChannelRef,
    ctx: &NormalizeContext<'_>,
) -> (&'static str, Value) {
    let payload = a.payload.as_ref();
    let pstr = |k: &str| payload.and_then(|p| p.get(k)).and_then(Value::as_str);
    let kind: &'static str = match a.kind.as_str() {
        "image" => "image",
        "video" => "video",
        "audio" => "audio",
        "file" => "document",
        "sticker" => "sticker",
        "location" => "location",
        "share" | "fallback" => "share",
        "story_mention" => "story_mention",
        "reel" | "ig_reel" => "reel",
        "post" | "ig_post" => "post",
        "template" => "template",
        _ => "unsupported",
    };
    let mut v = DataBuilder::new().set("kind", kind);
    if kind == "unsupported" || kind != a.kind {
        v = v.set("provider_type", a.kind.as_str());
    }
    let url = pstr("url");
    match kind {
        "template" => {
            if let Some(p) = payload {
                v = v.set("template", p.clone());
            }
        }
        "location" => {
            let coords = payload.and_then(|p| p.get("coordinates"));
            let num = |k: &str| coords.and_then(|c| c.get(k)).cloned();
            v = v.set(
                "location",
                DataBuilder::new()
                    .set_opt("latitude", num("lat"))
                    .set_opt("longitude", num("long"))
                    .set_opt("name", a.title.as_deref())
                    .set_opt("url", a.url.as_deref())
                    .into_value(),
            );
        }
        _ => {
            if let Some(u) = url {
                v = v.set("media", media_value(u, channel, ctx));
            } else if let Some(u) = a.url.as_deref() {
                v = v.set("link", u);
            }
        }
    }
    if kind != "location" {
        v = v.set_opt("title", a.title.as_deref().or_else(|| pstr("title")));
    }
    if let Some(s) = payload.and_then(|p| p.get("sticker_id")) {
        v = v.set("sticker_id", s.clone());
    }
    if let Some(r) = payload.and_then(|p| p.get("reel_video_id")) {
        v = v.set("reel_video_id", r.clone());
    }
    (kind, v.into_value())
}

/// `{id, url}` for a CDN URL: the URL is the media id; `url` is the relay's.
fn media_value(cdn_url: &str, channel: &ChannelRef, ctx: &NormalizeContext<'_>) -> Value {
    DataBuilder::new()
        .set("id", cdn_url)
        .set("url", ctx.media_url(channel.kind(), channel.id(), cdn_url))
        .into_value()
}

fn edit_event(ic: &ItemCtx<'_>, e: &MessageEdit, raw: &RawValue) -> Event {
    let message = DataBuilder::new()
        .set_opt("id", e.mid.as_deref())
        .set("kind", "text")
        .set_opt("text", e.text.as_deref())
        .set_opt("edit_count", e.num_edit)
        .into_value();
    let data = ic.base().set("message", message).build();
    let count = e.num_edit.map(|n| n.to_string());
    let digest_part = digest(raw);
    let version = count.as_deref().unwrap_or(&digest_part);
    ic.event(
        EventType::MessageEdited,
        &["edited", e.mid.as_deref().unwrap_or(&digest_part), version],
        data,
    )
}

fn delivery_events(ic: &ItemCtx<'_>, d: &Delivery, out: &mut Vec<Event>) {
    let base = |message_id: Option<&str>| {
        DataBuilder::new()
            .set_opt(
                "message",
                message_id.map(|id| DataBuilder::new().set("id", id).into_value()),
            )
            .set("status", "delivered")
            .set_opt(
                "recipient",
                ic.customer
                    .as_deref()
                    .map(|c| DataBuilder::new().set("id", c).into_value()),
            )
            .set("errors", Vec::<Value>::new())
            .set_opt("watermark", d.watermark)
            .build()
    };
    if d.mids.is_empty() {
        let watermark = d.watermark.map(|w| w.to_string()).unwrap_or_default();
        out.push(ic.event(
            EventType::MessageStatus,
            &[
                "status",
                "watermark",
                ic.customer.as_deref().unwrap_or_default(),
                &watermark,
            ],
            base(None),
        ));
    }
    for mid in &d.mids {
        out.push(ic.event(
            EventType::MessageStatus,
            &["status", mid, "delivered"],
            base(Some(mid)),
        ));
    }
}

fn read_event(ic: &ItemCtx<'_>, r: &Read) -> Event {
    let data = ic
        .base()
        .set_opt("watermark", r.watermark)
        .set_opt(
            "message",
            r.mid
                .as_deref()
                .map(|id| DataBuilder::new().set("id", id).into_value()),
        )
        .build();
    let mark = r
        .mid
        .clone()
        .or_else(|| r.watermark.map(|w| w.to_string()))
        .unwrap_or_default();
    ic.event(
        EventType::ConversationRead,
        &[
            "read",
            &mark,
            ic.sender.as_deref().unwrap_or_default(),
            &ic.timestamp_part(),
        ],
        data,
    )
}

/// Meta's reaction names, for the rare reaction that comes without its `emoji`.
fn emoji_for(reaction: &str) -> Option<&'static str> {
    Some(match reaction {
        "love" => "\u{2764}\u{fe0f}",
        "like" => "\u{1f44d}",
        "haha" => "\u{1f606}",
        "wow" => "\u{1f62e}",
        "sad" => "\u{1f622}",
        "angry" => "\u{1f620}",
        "smile" => "\u{1f60a}",
        _ => return None,
    })
}

fn reaction_event(ic: &ItemCtx<'_>, r: &Reaction) -> Event {
    let action = r.action.as_deref().unwrap_or("react");
    let emoji = if action == "unreact" {
        String::new()
    } else {
        r.emoji
            .clone()
            .or_else(|| r.reaction.as_deref().and_then(emoji_for).map(str::to_owned))
            .or_else(|| r.reaction.clone())
            .unwrap_or_default()
    };
    let data = ic
        .base()
        .set_opt(
            "message",
            r.mid
                .as_deref()
                .map(|id| DataBuilder::new().set("id", id).into_value()),
        )
        .set("emoji", emoji)
        .set("action", action)
        .set_opt("reaction", r.reaction.as_deref())
        .build();
    ic.event(
        EventType::MessageReaction,
        &[
            "reaction",
            r.mid.as_deref().unwrap_or_default(),
            ic.sender.as_deref().unwrap_or_default(),
            action,
            &ic.timestamp_part(),
        ],
        data,
    )
}

fn postback_event(ic: &ItemCtx<'_>, p: &Postback) -> Event {
    let data = ic
        .base()
        .set("payload", p.payload.as_deref().unwrap_or_default())
        .set_opt("title", p.title.as_deref())
        .set_opt(
            "message",
            p.mid
                .as_deref()
                .map(|id| DataBuilder::new().set("id", id).into_value()),
        )
        .set_opt("referral", p.referral.clone())
        .build();
    let ts = ic.timestamp_part();
    let parts: Vec<&str> = match p.mid.as_deref() {
        Some(mid) => vec!["postback", mid],
        None => vec![
            "postback",
            ic.sender.as_deref().unwrap_or_default(),
            p.payload.as_deref().unwrap_or_default(),
            &ts,
        ],
    };
    ic.event(EventType::Postback, &parts, data)
}

/// A referral, opt-in or handover item: `provider.event` with `data.kind` (and the same
/// `data.field`) naming it and
/// the object under the same name.
fn named_event(ic: &ItemCtx<'_>, name: &'static str, value: &Value, extra: &[&str]) -> Event {
    let data = DataBuilder::new()
        .set("kind", name)
        .set("field", name)
        .set_opt("conversation", ic.conversation())
        .set_opt("sender", ic.sender())
        .set(name, value.clone())
        .build();
    let ts = ic.timestamp_part();
    let mut parts = vec![name, ic.sender.as_deref().unwrap_or_default(), ts.as_str()];
    parts.extend_from_slice(extra);
    ic.event(EventType::ProviderEvent, &parts, data)
}

/// An item of no known shape: `provider.event` named after its first unknown key.
fn unknown_item(head: &EntryHead, raw: &RawValue) -> Event {
    let name = serde_json::from_str::<Map<String, Value>>(raw.get())
        .ok()
        .and_then(|m| {
            m.keys()
                .find(|k| !matches!(k.as_str(), "sender" | "recipient" | "timestamp"))
                .cloned()
        })
        .unwrap_or_else(|| "unknown".to_owned());
    Event {
        id: EventId::derive(&[
            head.channel.kind().as_str(),
            head.channel.id(),
            "item",
            &digest(raw),
        ]),
        event_type: EventType::ProviderEvent,
        timestamp_ms: head.timestamp_ms(),
        channel: head.channel(),
        conversation: None,
        data: DataBuilder::new()
            .set("kind", name.as_str())
            .set("field", name.as_str())
            .build(),
        raw: Some(raw.to_owned()),
        account: None,
    }
}
