//! One WhatsApp message's content → the contract's `data.message` object: its kind,
//! text (body, caption or chosen title), media (with a relay URL), the kind's own object
//! (location, contacts, interactive, button, order, system), context and errors.
//! A type the relay does not know becomes kind `unsupported` with `provider_type`.

use serde_json::{Map, Value};

use super::wire::{Media, WaError, WaMessage};
use super::KIND;
use crate::channels::{ChannelRef, NormalizeContext};
use crate::event::DataBuilder;

/// The `data.message` object of `m` (received, echoed or edited alike).
pub(super) fn message_object(
    m: &WaMessage,
    channel: &ChannelRef,
    value_errors: &[Value],
    ctx: &NormalizeContext<'_>,
) -> Map<String, Value> {
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

    message
}

pub(super) fn collect_errors(own: &[WaError], value_errors: &[Value]) -> Vec<Value> {
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
