//! WhatsApp Cloud API webhooks (`object: whatsapp_business_account`) → events.
//!
//! One entry holds `changes[]`. A change that names its number (`value.metadata.
//! phone_number_id`) is routed by it: a `messages` change's `messages[]` and
//! `statuses[]` become one event each (value-level `errors[]` ride along, or travel
//! alone), `smb_message_echoes` become `message.echo`, any other such field a
//! `provider.event`. A change without it is about the account as a whole
//! ([`super::account`]). A message whose shape is not understood still becomes an
//! event (kind `unsupported`); the message content itself is read in [`super::content`].

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::content::{collect_errors, message_object};
use super::wire::{Contact, Entry, MessagesValue, Metadata, WaError, WaMessage, WaStatus};
use super::{account, KIND};
use crate::channels::{ChannelRef, NormalizeContext, NormalizeError};
use crate::event::{DataBuilder, Event, EventId, EventType};
use crate::time::{now_ms, seconds_or_ms_to_ms};

/// Normalizes one `entry[]` item, appending to `out`.
pub fn normalize_entry(
    entry: &RawValue,
    ctx: &NormalizeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), NormalizeError> {
    let entry: Entry<'_> = serde_json::from_str(entry.get())?;
    normalize_parsed_entry(&entry, ctx, out);
    Ok(())
}

/// Normalizes one `entry[]` item read already (with the envelope, in one pass),
/// appending to `out`.
pub(crate) fn normalize_parsed_entry(
    entry: &Entry<'_>,
    ctx: &NormalizeContext<'_>,
    out: &mut Vec<Event>,
) {
    // When Meta says it sent the entry: the time of what carries no time of its own.
    let sent_ms = entry.time.map(seconds_or_ms_to_ms).unwrap_or_else(now_ms);
    for change in &entry.changes {
        let Some(value) = change.value else { continue };
        let field = change.field.as_str();
        // A `messages` change (the hot path) is read once, its number with its messages;
        // any other change is peeked at for its number.
        let messages = if matches!(field, "messages" | "smb_message_echoes") {
            serde_json::from_str::<MessagesValue<'_>>(value.get()).ok()
        } else {
            None
        };
        let number = match &messages {
            Some(v) => v.metadata.as_ref().map(|m| m.phone_number_id.clone()),
            None => phone_number_id(value),
        };
        let Some(number) = number else {
            out.extend(account::event(
                &entry.id,
                &change.field,
                entry.time,
                sent_ms,
                value,
            ));
            continue;
        };
        let Ok(channel) = ChannelRef::parse(KIND, number.as_str()) else {
            crate::channels::unparseable_channel(KIND);
            continue;
        };
        let cx = ChangeCtx {
            channel,
            sent_ms,
            ctx,
        };
        if let Some(v) = &messages {
            if field == "messages" {
                normalize_messages(v, value, &cx, out);
                continue;
            }
            if !v.message_echoes.is_empty() {
                normalize_echoes(v, &cx, out);
                continue;
            }
        }
        out.push(number_event(&entry.id, &cx, field, value));
    }
}

/// `value.metadata.phone_number_id`: the number a change is about, if it names one.
fn phone_number_id(value: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(default)]
        metadata: Option<Metadata>,
    }
    serde_json::from_str::<Peek>(value.get())
        .ok()
        .and_then(|p| p.metadata)
        .map(|m| m.phone_number_id)
}

/// What every event of one change shares.
struct ChangeCtx<'a> {
    channel: ChannelRef,
    sent_ms: i64,
    ctx: &'a NormalizeContext<'a>,
}

impl ChangeCtx<'_> {
    /// A provider timestamp (seconds as a string), else when the entry was sent.
    fn ts(&self, ts: Option<&str>) -> i64 {
        ts.and_then(|t| t.parse::<i64>().ok())
            .map(seconds_or_ms_to_ms)
            .unwrap_or(self.sent_ms)
    }
}

fn normalize_messages(
    v: &MessagesValue<'_>,
    value: &RawValue,
    cx: &ChangeCtx<'_>,
    out: &mut Vec<Event>,
) {
    let channel = &cx.channel;
    let value_errors: Vec<Value> = v.errors.iter().map(WaError::to_value).collect();
    for raw in &v.messages {
        let event = serde_json::from_str::<WaMessage>(raw.get())
            .ok()
            .and_then(|m| message_event(&m, raw, v, cx, &value_errors));
        out.push(event.unwrap_or_else(|| unreadable_message(raw, cx, &value_errors)));
    }
    for raw in &v.statuses {
        out.push(match serde_json::from_str::<WaStatus>(raw.get()) {
            Ok(s) => status_event(&s, raw, &v.contacts, cx, &value_errors),
            Err(_) => opaque_event(cx, "status", raw),
        });
    }
    if v.messages.is_empty() && v.statuses.is_empty() && !value_errors.is_empty() {
        // Errors about the account or a payload Meta could not deliver: nothing else
        // carries them, so they travel on their own.
        // Meta gives such errors no id: the digest of the change is the best identity.
        let digest = hex::encode(Sha256::digest(value.get().as_bytes()));
        out.push(Event {
            id: EventId::derive(&[KIND.as_str(), channel.id(), "errors", &digest]),
            event_type: EventType::ProviderEvent,
            timestamp_ms: cx.sent_ms,
            channel: channel.clone(),
            conversation: None,
            data: DataBuilder::new()
                .set("kind", "errors")
                .set("field", "errors")
                .set("errors", value_errors.clone())
                .build(),
            raw: Some(value.to_owned()),
            account: None,
        });
    }
}

/// `smb_message_echoes`: what the business sent from the WhatsApp Business app (or a
/// linked device), as `message.echo`: `sender` is the business number, `conversation`
/// the customer it wrote `to`.
fn normalize_echoes(v: &MessagesValue<'_>, cx: &ChangeCtx<'_>, out: &mut Vec<Event>) {
    for raw in &v.message_echoes {
        let echo = serde_json::from_str::<WaMessage>(raw.get())
            .ok()
            .and_then(|m| echo_event(&m, raw, cx));
        out.push(echo.unwrap_or_else(|| {
            let mut ev = unreadable_message(raw, cx, &[]);
            ev.event_type = EventType::MessageEcho;
            ev
        }));
    }
}

fn echo_event(m: &WaMessage, raw: &RawValue, cx: &ChangeCtx<'_>) -> Option<Event> {
    let to = m.to.as_deref()?;
    let channel = &cx.channel;
    let message = message_object(m, channel, &[], cx.ctx);
    Some(Event {
        id: EventId::derive(&[KIND.as_str(), channel.id(), "echo", &m.id]),
        event_type: EventType::MessageEcho,
        timestamp_ms: cx.ts(m.timestamp.as_deref()),
        channel: channel.clone(),
        conversation: Some(to.to_owned()),
        data: DataBuilder::new()
            .set(
                "conversation",
                DataBuilder::new().set("id", to).into_value(),
            )
            .set(
                "sender",
                DataBuilder::new()
                    .set_opt("id", m.from.as_deref())
                    .into_value(),
            )
            .set("message", Value::Object(message))
            .build(),
        raw: Some(raw.to_owned()),
        account: None,
    })
}

/// The contact entry of a message's sender: by `wa_id`, else by business-scoped user
/// id, else the only one.
fn sender_contact<'a>(m: &WaMessage, contacts: &'a [Contact]) -> Option<&'a Contact> {
    contacts
        .iter()
        .find(|c| m.from.is_some() && c.wa_id == m.from)
        .or_else(|| {
            contacts
                .iter()
                .find(|c| m.from_user_id.is_some() && c.user_id == m.from_user_id)
        })
        .or_else(|| contacts.first())
}

/// A received message (or reaction). `None` when it names no sender at all (neither
/// `from` nor `from_user_id`).
fn message_event(
    m: &WaMessage,
    raw: &RawValue,
    v: &MessagesValue<'_>,
    cx: &ChangeCtx<'_>,
    value_errors: &[Value],
) -> Option<Event> {
    // A user known only by a business-scoped user id is addressed by it.
    let who = m.from.as_deref().or(m.from_user_id.as_deref())?;
    let channel = &cx.channel;
    let contact = sender_contact(m, &v.contacts);
    let profile = contact.and_then(|c| c.profile.as_ref());
    let sender = DataBuilder::new()
        .set("id", who)
        .set_opt("name", profile.and_then(|p| p.name.as_deref()))
        .set_opt("username", profile.and_then(|p| p.username.as_deref()))
        .set_opt(
            "user_id",
            m.from_user_id
                .as_deref()
                .or_else(|| contact.and_then(|c| c.user_id.as_deref())),
        )
        .into_value();
    let timestamp_ms = cx.ts(m.timestamp.as_deref());
    let conversation = DataBuilder::new().set("id", who).into_value();

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
            return Some(Event {
                id: EventId::of_message(channel, &m.id),
                event_type: EventType::MessageReaction,
                timestamp_ms,
                channel: channel.clone(),
                conversation: Some(who.to_owned()),
                data,
                raw: Some(raw.to_owned()),
                account: None,
            });
        }
    }

    let message = message_object(m, channel, value_errors, cx.ctx);
    Some(Event {
        id: EventId::of_message(channel, &m.id),
        event_type: EventType::MessageReceived,
        timestamp_ms,
        channel: channel.clone(),
        conversation: Some(who.to_owned()),
        data: DataBuilder::new()
            .set("conversation", conversation)
            .set("sender", sender)
            .set("message", Value::Object(message))
            .build(),
        raw: Some(raw.to_owned()),
        account: None,
    })
}

fn status_event(
    s: &WaStatus,
    raw: &RawValue,
    contacts: &[Contact],
    cx: &ChangeCtx<'_>,
    value_errors: &[Value],
) -> Event {
    let channel = &cx.channel;
    let errors = collect_errors(&s.errors, value_errors);
    // A recipient known only by a business-scoped user id is addressed by it.
    let recipient = s.recipient_id.as_deref().or(s.recipient_user_id.as_deref());
    // Its contact entry (delivered and read statuses may carry one): BSUID, username.
    let contact = contacts.iter().find(|c| {
        (s.recipient_id.is_some() && c.wa_id == s.recipient_id)
            || (s.recipient_user_id.is_some() && c.user_id == s.recipient_user_id)
    });
    let user_id = s
        .recipient_user_id
        .as_deref()
        .or_else(|| contact.and_then(|c| c.user_id.as_deref()));
    let username = contact
        .and_then(|c| c.profile.as_ref())
        .and_then(|p| p.username.as_deref());
    let data = DataBuilder::new()
        .set(
            "message",
            DataBuilder::new().set("id", s.id.as_str()).into_value(),
        )
        .set("status", s.status.as_str())
        .set_opt(
            "recipient",
            recipient.map(|r| {
                DataBuilder::new()
                    .set("id", r)
                    .set_opt("user_id", user_id)
                    .set_opt("username", username)
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
        timestamp_ms: cx.ts(s.timestamp.as_deref()),
        channel: channel.clone(),
        conversation: recipient.map(str::to_owned),
        data,
        raw: Some(raw.to_owned()),
        account: None,
    }
}

/// A message object without an id or any sender: still delivered.
fn unreadable_message(raw: &RawValue, cx: &ChangeCtx<'_>, value_errors: &[Value]) -> Event {
    let mut ev = opaque_event(cx, "message", raw);
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

fn opaque_event(cx: &ChangeCtx<'_>, what: &str, raw: &RawValue) -> Event {
    let channel = &cx.channel;
    let digest = hex::encode(Sha256::digest(raw.get().as_bytes()));
    Event {
        id: EventId::derive(&[KIND.as_str(), channel.id(), what, &digest]),
        event_type: EventType::ProviderEvent,
        timestamp_ms: cx.sent_ms,
        channel: channel.clone(),
        conversation: None,
        data: DataBuilder::new()
            .set("kind", what)
            .set("field", what)
            .build(),
        raw: Some(raw.to_owned()),
        account: None,
    }
}

/// A change of a field this relay does not normalize that names its number (`history`,
/// `smb_app_state_sync`, `calls`, `user_preferences` …): routed by that number.
fn number_event(waba_id: &str, cx: &ChangeCtx<'_>, field: &str, value: &RawValue) -> Event {
    let channel = &cx.channel;
    let digest = hex::encode(Sha256::digest(value.get().as_bytes()));
    Event {
        id: EventId::derive(&[KIND.as_str(), channel.id(), "change", field, &digest]),
        event_type: EventType::ProviderEvent,
        timestamp_ms: cx.sent_ms,
        channel: channel.clone(),
        conversation: None,
        data: DataBuilder::new()
            .set("kind", field)
            .set("field", field)
            .set("waba_id", waba_id)
            .build(),
        raw: Some(value.to_owned()),
        account: None,
    }
}
