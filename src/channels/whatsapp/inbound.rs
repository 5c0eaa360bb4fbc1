//! WhatsApp Cloud API webhooks (`object: whatsapp_business_account`) → events.
//!
//! One entry holds `changes[]`; a `messages` change holds `messages[]`, `statuses[]` and
//! value-level `errors[]`. Every message and every status becomes one event; any other
//! `field` (template status, account updates …) becomes a `provider.event` with `data.raw`.
//! A message whose shape is not understood still becomes an event (kind `unsupported`).

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::channels::{ChannelKind, ChannelRef, NormalizeContext, NormalizeError};
use crate::event::{DataBuilder, Event, EventId, EventType};
use crate::time::{now_ms, seconds_or_ms_to_ms};

const KIND: ChannelKind = ChannelKind::Whatsapp;

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(default)]
    id: String,
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

#[derive(Deserialize)]
struct MessagesValue<'a> {
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default, borrow)]
    messages: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    statuses: Vec<&'a RawValue>,
    #[serde(default)]
    errors: Vec<WaError>,
}

#[derive(Deserialize)]
struct Metadata {
    phone_number_id: String,
}

#[derive(Deserialize)]
struct Contact {
    #[serde(default)]
    profile: Option<Profile>,
    #[serde(default)]
    wa_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

#[derive(Deserialize, Clone)]
struct WaError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<ErrorData>,
}

#[derive(Deserialize, Clone)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

impl WaError {
    /// The contract's `{code, title, detail}`.
    fn to_value(&self) -> Value {
        let detail = self
            .error_data
            .as_ref()
            .and_then(|d| d.details.clone())
            .or_else(|| self.message.clone());
        json!({"code": self.code, "title": self.title, "detail": detail})
    }
}

#[derive(Deserialize)]
struct WaMessage {
    from: String,
    id: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default)]
    text: Option<Text>,
    #[serde(default)]
    image: Option<Media>,
    #[serde(default)]
    audio: Option<Media>,
    #[serde(default)]
    video: Option<Media>,
    #[serde(default)]
    document: Option<Media>,
    #[serde(default)]
    sticker: Option<Media>,
    #[serde(default)]
    location: Option<Value>,
    #[serde(default)]
    contacts: Option<Value>,
    #[serde(default)]
    interactive: Option<Interactive>,
    #[serde(default)]
    button: Option<Button>,
    #[serde(default)]
    reaction: Option<Reaction>,
    #[serde(default)]
    order: Option<Value>,
    #[serde(default)]
    system: Option<System>,
    #[serde(default)]
    referral: Option<Value>,
    #[serde(default)]
    errors: Vec<WaError>,
    #[serde(default)]
    unsupported: Option<Value>,
    #[serde(default)]
    from_user_id: Option<String>,
}

#[derive(Deserialize)]
struct Context {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    forwarded: Option<bool>,
    #[serde(default)]
    frequently_forwarded: Option<bool>,
    #[serde(default)]
    referred_product: Option<Value>,
}

#[derive(Deserialize)]
struct Text {
    #[serde(default)]
    body: Option<String>,
}

#[derive(Deserialize)]
struct Media {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    caption: Option<String>,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    voice: Option<bool>,
    #[serde(default)]
    animated: Option<bool>,
}

#[derive(Deserialize)]
struct Interactive {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    button_reply: Option<Reply>,
    #[serde(default)]
    list_reply: Option<Reply>,
    #[serde(default)]
    nfm_reply: Option<Value>,
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct Button {
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Reaction {
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct System {
    #[serde(default)]
    body: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    wa_id: Option<String>,
    #[serde(default)]
    new_wa_id: Option<String>,
    #[serde(default)]
    customer: Option<String>,
}

#[derive(Deserialize)]
struct WaStatus {
    id: String,
    status: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    recipient_id: Option<String>,
    #[serde(default)]
    conversation: Option<Value>,
    #[serde(default)]
    pricing: Option<Value>,
    #[serde(default)]
    errors: Vec<WaError>,
    #[serde(default)]
    biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    recipient_type: Option<String>,
    #[serde(default)]
    recipient_participant_id: Option<String>,
}

/// Normalizes one `entry[]` item, appending to `out`.
pub fn normalize_entry(
    entry: &RawValue,
    ctx: &NormalizeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), NormalizeError> {
    let entry: Entry<'_> = serde_json::from_str(entry.get())?;
    for change in &entry.changes {
        let Some(value) = change.value else { continue };
        if change.field == "messages" {
            if let Ok(v) = serde_json::from_str::<MessagesValue<'_>>(value.get()) {
                if let Some(meta) = &v.metadata {
                    normalize_messages(&v, value, &meta.phone_number_id, ctx, out);
                    continue;
                }
            }
        }
        out.extend(provider_event(&entry.id, &change.field, value));
    }
    Ok(())
}

fn normalize_messages(
    v: &MessagesValue<'_>,
    value: &RawValue,
    phone_number_id: &str,
    ctx: &NormalizeContext<'_>,
    out: &mut Vec<Event>,
) {
    let Ok(channel) = ChannelRef::parse(KIND, phone_number_id) else {
        crate::channels::unparseable_channel(KIND);
        return;
    };
    let value_errors: Vec<Value> = v.errors.iter().map(WaError::to_value).collect();
    for raw in &v.messages {
        out.push(match serde_json::from_str::<WaMessage>(raw.get()) {
            Ok(m) => message_event(&m, raw, v, &channel, &value_errors, ctx),
            Err(_) => unreadable_message(raw, &channel, &value_errors),
        });
    }
    for raw in &v.statuses {
        out.push(match serde_json::from_str::<WaStatus>(raw.get()) {
            Ok(s) => status_event(&s, raw, &channel, &value_errors),
            Err(_) => opaque_event(&channel, "status", raw),
        });
    }
    if v.messages.is_empty() && v.statuses.is_empty() && !value_errors.is_empty() {
        // Errors about the account or a payload Meta could not deliver: nothing else
        // carries them, so they travel on their own.
        // Meta gives such errors no id: the digest of the change is the best identity.
        let digest = hex::encode(Sha256::digest(value.get().as_bytes()));
        out.push(Event {
            id: EventId::derive(&[KIND.as_str(), phone_number_id, "errors", &digest]),
            event_type: EventType::ProviderEvent,
            timestamp_ms: now_ms(),
            channel: channel.clone(),
            conversation: None,
            data: DataBuilder::new()
                .set("kind", "errors")
                .set("errors", value_errors.clone())
                .build(),
            raw: Some(value.to_owned()),
        });
    }
}

fn parse_ts(ts: Option<&str>) -> i64 {
    ts.and_then(|t| t.parse::<i64>().ok())
        .map(seconds_or_ms_to_ms)
        .unwrap_or_else(now_ms)
}

fn message_event(
    m: &WaMessage,
    raw: &RawValue,
    v: &MessagesValue<'_>,
    channel: &ChannelRef,
    value_errors: &[Value],
    ctx: &NormalizeContext<'_>,
) -> Event {
    let contact = v
        .contacts
        .iter()
        .find(|c| c.wa_id.as_deref() == Some(m.from.as_str()))
        .or_else(|| v.contacts.first());
    let profile = contact.and_then(|c| c.profile.as_ref());
    let sender = DataBuilder::new()
        .set("id", m.from.as_str())
        .set_opt("name", profile.and_then(|p| p.name.as_deref()))
        .set_opt("username", profile.and_then(|p| p.username.as_deref()))
        .set_opt(
            "user_id",
            m.from_user_id
                .as_deref()
                .or_else(|| contact.and_then(|c| c.user_id.as_deref())),
        )
        .into_value();
    let timestamp_ms = parse_ts(m.timestamp.as_deref());
    let conversation = DataBuilder::new().set("id", m.from.as_str()).into_value();

    if m.kind == "reaction" {
        if let Some(r) = &m.reaction {
            let data = DataBuilder::new()
                .set("conversation", conversation)
                .set("sender", sender)
                .set_opt(
                    "message",
                    r.message_id
                        .as_deref()
                        .map(|id| DataBuilder::new().set("id", id).into_value()),
                )
                .set("emoji", r.emoji.as_deref().unwrap_or(""))
                .set("reaction_id", m.id.as_str())
                .build();
            return Event {
                id: EventId::of_message(channel, &m.id),
                event_type: EventType::MessageReaction,
                timestamp_ms,
                channel: channel.clone(),
                conversation: Some(m.from.clone()),
                data,
                raw: Some(raw.to_owned()),
            };
        }
    }

    let mut message = Map::new();
    message.insert("id".into(), m.id.as_str().into());
    let (kind, text): (&str, Option<&str>) = match m.kind.as_str() {
        "text" => ("text", m.text.as_ref().and_then(|t| t.body.as_deref())),
        "image" | "audio" | "video" | "document" | "sticker" => {
            let media = match m.kind.as_str() {
                "image" => &m.image,
                "audio" => &m.audio,
                "video" => &m.video,
                "document" => &m.document,
                _ => &m.sticker,
            };
            if let Some(media) = media {
                message.insert("media".into(), media_value(media, channel, ctx));
            }
            (
                m.kind.as_str(),
                media.as_ref().and_then(|x| x.caption.as_deref()),
            )
        }
        "location" => {
            if let Some(l) = &m.location {
                message.insert("location".into(), l.clone());
            }
            ("location", None)
        }
        "contacts" => {
            if let Some(c) = &m.contacts {
                message.insert("contacts".into(), c.clone());
            }
            ("contacts", None)
        }
        "interactive" => {
            let reply = m
                .interactive
                .as_ref()
                .and_then(|i| i.button_reply.as_ref().or(i.list_reply.as_ref()));
            if let Some(i) = &m.interactive {
                let mut obj = DataBuilder::new()
                    .set_opt("type", i.kind.as_deref())
                    .set_opt("id", reply.and_then(|r| r.id.as_deref()))
                    .set_opt("title", reply.and_then(|r| r.title.as_deref()))
                    .set_opt("description", reply.and_then(|r| r.description.as_deref()));
                if let Some(nfm) = &i.nfm_reply {
                    obj = obj.set("nfm_reply", nfm.clone());
                }
                message.insert("interactive".into(), obj.into_value());
            }
            ("interactive", reply.and_then(|r| r.title.as_deref()))
        }
        "button" => {
            if let Some(b) = &m.button {
                message.insert(
                    "button".into(),
                    DataBuilder::new()
                        .set_opt("payload", b.payload.as_deref())
                        .set_opt("text", b.text.as_deref())
                        .into_value(),
                );
            }
            ("button", m.button.as_ref().and_then(|b| b.text.as_deref()))
        }
        "order" => {
            if let Some(o) = &m.order {
                message.insert("order".into(), o.clone());
            }
            (
                "order",
                m.order
                    .as_ref()
                    .and_then(|o| o.get("text"))
                    .and_then(Value::as_str),
            )
        }
        "system" => {
            if let Some(s) = &m.system {
                message.insert(
                    "system".into(),
                    DataBuilder::new()
                        .set_opt("type", s.kind.as_deref())
                        .set_opt("wa_id", s.wa_id.as_deref().or(s.new_wa_id.as_deref()))
                        .set_opt("customer", s.customer.as_deref())
                        .into_value(),
                );
            }
            ("system", m.system.as_ref().and_then(|s| s.body.as_deref()))
        }
        other => {
            if !other.is_empty() && other != "unsupported" {
                message.insert("provider_type".into(), other.into());
            }
            if let Some(t) = m
                .unsupported
                .as_ref()
                .and_then(|u| u.get("type"))
                .and_then(Value::as_str)
            {
                message.insert("provider_type".into(), t.into());
            }
            ("unsupported", None)
        }
    };
    message.insert("kind".into(), kind.into());
    if let Some(t) = text {
        message.insert("text".into(), t.into());
    }
    if let Some(c) = &m.context {
        if let Some(id) = &c.id {
            message.insert("reply_to".into(), id.as_str().into());
        }
        if let Some(from) = &c.from {
            message.insert("reply_to_from".into(), from.as_str().into());
        }
        if c.forwarded == Some(true) {
            message.insert("forwarded".into(), true.into());
        }
        if c.frequently_forwarded == Some(true) {
            message.insert("frequently_forwarded".into(), true.into());
        }
        if let Some(p) = &c.referred_product {
            message.insert("referred_product".into(), p.clone());
        }
    }
    if let Some(r) = &m.referral {
        message.insert("referral".into(), r.clone());
    }
    let errors = collect_errors(&m.errors, value_errors);
    if !errors.is_empty() {
        message.insert("errors".into(), errors.into());
    }

    Event {
        id: EventId::of_message(channel, &m.id),
        event_type: EventType::MessageReceived,
        timestamp_ms,
        channel: channel.clone(),
        conversation: Some(m.from.clone()),
        data: DataBuilder::new()
            .set("conversation", conversation)
            .set("sender", sender)
            .set("message", Value::Object(message))
            .build(),
        raw: Some(raw.to_owned()),
    }
}

fn collect_errors(own: &[WaError], value_errors: &[Value]) -> Vec<Value> {
    own.iter()
        .map(WaError::to_value)
        .chain(value_errors.iter().cloned())
        .collect()
}

fn media_value(media: &Media, channel: &ChannelRef, ctx: &NormalizeContext<'_>) -> Value {
    DataBuilder::new()
        .set_opt("id", media.id.as_deref())
        .set_opt("mime_type", media.mime_type.as_deref())
        .set_opt(
            "url",
            media
                .id
                .as_deref()
                .map(|id| ctx.media_url(KIND, channel.id(), id)),
        )
        .set_opt("sha256", media.sha256.as_deref())
        .set_opt("filename", media.filename.as_deref())
        .set_opt("voice", media.voice)
        .set_opt("animated", media.animated)
        .into_value()
}

fn status_event(
    s: &WaStatus,
    raw: &RawValue,
    channel: &ChannelRef,
    value_errors: &[Value],
) -> Event {
    let errors = collect_errors(&s.errors, value_errors);
    let data = DataBuilder::new()
        .set(
            "message",
            DataBuilder::new().set("id", s.id.as_str()).into_value(),
        )
        .set("status", s.status.as_str())
        .set_opt(
            "recipient",
            s.recipient_id.as_deref().map(|r| {
                DataBuilder::new()
                    .set("id", r)
                    .set_opt("type", s.recipient_type.as_deref())
                    .set_opt("participant_id", s.recipient_participant_id.as_deref())
                    .into_value()
            }),
        )
        .set("errors", errors)
        .set_opt("conversation", s.conversation.clone())
        .set_opt("pricing", s.pricing.clone())
        .set_opt(
            "biz_opaque_callback_data",
            s.biz_opaque_callback_data.as_deref(),
        )
        .build();
    Event {
        id: EventId::derive(&[KIND.as_str(), channel.id(), "status", &s.id, &s.status]),
        event_type: EventType::MessageStatus,
        timestamp_ms: parse_ts(s.timestamp.as_deref()),
        channel: channel.clone(),
        conversation: s.recipient_id.clone(),
        data,
        raw: Some(raw.to_owned()),
    }
}

/// A message object that does not even have `from` and `id`: still delivered.
fn unreadable_message(raw: &RawValue, channel: &ChannelRef, value_errors: &[Value]) -> Event {
    let mut ev = opaque_event(channel, "message", raw);
    ev.event_type = EventType::MessageReceived;
    let mut message = DataBuilder::new().set("kind", "unsupported");
    if !value_errors.is_empty() {
        message = message.set("errors", value_errors.to_vec());
    }
    ev.data = DataBuilder::new()
        .set("message", message.into_value())
        .build();
    ev
}

fn opaque_event(channel: &ChannelRef, what: &str, raw: &RawValue) -> Event {
    let digest = hex::encode(Sha256::digest(raw.get().as_bytes()));
    Event {
        id: EventId::derive(&[KIND.as_str(), channel.id(), what, &digest]),
        event_type: EventType::ProviderEvent,
        timestamp_ms: now_ms(),
        channel: channel.clone(),
        conversation: None,
        data: DataBuilder::new().set("kind", what).build(),
        raw: Some(raw.to_owned()),
    }
}

/// A change of a field this relay does not normalize (template status, account updates …).
/// Routed by `value.metadata.phone_number_id` when present, else by the WABA id.
/// `None` when the change names no channel id of WhatsApp's (see
/// [`crate::channels::unparseable_channel`]).
fn provider_event(waba_id: &str, field: &str, value: &RawValue) -> Option<Event> {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(default)]
        metadata: Option<Metadata>,
    }
    let channel_id = serde_json::from_str::<Peek>(value.get())
        .ok()
        .and_then(|p| p.metadata)
        .map(|m| m.phone_number_id)
        .unwrap_or_else(|| waba_id.to_owned());
    let Ok(channel) = ChannelRef::parse(KIND, channel_id) else {
        crate::channels::unparseable_channel(KIND);
        return None;
    };
    let digest = hex::encode(Sha256::digest(value.get().as_bytes()));
    Some(Event {
        id: EventId::derive(&[KIND.as_str(), channel.id(), "change", field, &digest]),
        event_type: EventType::ProviderEvent,
        timestamp_ms: now_ms(),
        channel,
        conversation: None,
        data: DataBuilder::new()
            .set("field", field)
            .set("waba_id", waba_id)
            .build(),
        raw: Some(value.to_owned()),
    })
}
