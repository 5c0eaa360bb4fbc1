//! Reading a `POST /v1/messages` body into an [`OutboundMessage`] with serde.
//!
//! The body is one JSON value; the envelope (`channel`, `to`, `comment_id`, `message`,
//! top-level `raw` and `method`, `business_connection_id`) and then the message are
//! deserialized into typed structs through `serde_path_to_error`, so that every refusal
//! names the field at fault (`message.buttons[1].title: is required`). The message's
//! `kind` is a serde enum that picks the struct its fields are read into (one per kind,
//! in [`super::wire`]). Field types ([`super::fields`]) say what a wrong
//! value is; a key no struct names is refused by name (a typo never silently drops part
//! of a message); what is required is decided here, where the field's path is known.
//! `raw` bodies are kept byte for byte ([`RawValue`]).

use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::fields::{Id, Number, Obj, Str, Unknown};
use super::message::{
    Button, Choices, Content, GroupItem, Header, ListRow, ListSection, MediaKind, MediaSource,
    OutboundMessage, Recipient,
};
use super::wire::{
    ActionWire, ButtonWire, CallbackAnswerWire, Common, ContactCheck, ContactsWire, Envelope,
    InteractiveWire, Kind, KindProbe, ListWire, LocationWire, MediaGroupWire, MediaHeaderWire,
    MediaWire, RawKindWire, RawProbe, TemplateWire, TextWire,
};
use crate::channels::{ChannelKind, ChannelRef, UnknownChannelKind};

/// A request body that is not a valid message: `field` names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {detail}")]
pub struct ParseError {
    pub field: String,
    pub detail: String,
}

pub(super) fn err(field: impl Into<String>, detail: impl Into<String>) -> ParseError {
    ParseError {
        field: field.into(),
        detail: detail.into(),
    }
}

/// `value` (found at the path `at`) deserialized as `T`; a wrong field is named by its
/// full path.
fn typed<T: DeserializeOwned>(value: Value, at: &str) -> Result<T, ParseError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut field = at.to_owned();
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Map { key } if field.is_empty() => {
                    field.push_str(key)
                }
                serde_path_to_error::Segment::Map { key } => {
                    field.push('.');
                    field.push_str(key);
                }
                serde_path_to_error::Segment::Seq { index } => {
                    field.push_str(&format!("[{index}]"))
                }
                _ => {}
            }
        }
        err(field, e.into_inner().to_string())
    })
}

/// `at.name`, or `name` at the top.
fn path(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_owned()
    } else {
        format!("{at}.{name}")
    }
}

/// Refuses the first key no struct named, unless it is one of `allowed`.
pub(super) fn known_only(unknown: &Unknown, at: &str, allowed: &[&str]) -> Result<(), ParseError> {
    match unknown.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(err(path(at, k), "is not a known field here")),
        None => Ok(()),
    }
}

pub(super) fn required<T>(v: Option<T>, at: &str, name: &str) -> Result<T, ParseError> {
    v.ok_or_else(|| err(path(at, name), "is required"))
}

/// The fields every kind but `raw` may carry (read by [`Common`]).
const COMMON: &[&str] = &["kind", "reply_to", "messaging_type", "tag"];

impl OutboundMessage {
    /// Parses a `POST /v1/messages` body.
    pub fn parse(body: &[u8]) -> Result<Self, ParseError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| err("body", format!("not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(err("body", "must be a JSON object"));
        }
        let env: Envelope = typed(value, "")?;
        known_only(&env.unknown, "", &[])?;

        let Obj(ch) = required(env.channel, "", "channel")?;
        known_only(&ch.unknown, "channel", &[])?;
        let kind: ChannelKind = required(ch.kind, "channel", "kind")?
            .0
            .parse()
            .map_err(|e: UnknownChannelKind| err("channel.kind", e.to_string()))?;
        let id = required(ch.id, "channel", "id")?.0;
        let channel = ChannelRef::parse(kind, id).map_err(|e| err("channel.id", e.to_string()))?;

        // `raw` may sit at the top level (beside `channel`) or in `message`.
        let (content, common) = match (env.raw, env.message) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "raw",
                    "give either a top-level `raw` or a `message`, not both",
                ))
            }
            (Some(raw), None) => (raw_content(&raw, env.method, body, "", |p| p.raw)?, None),
            (None, message) => {
                if env.method.is_some() {
                    return Err(err("method", "only with a top-level `raw`"));
                }
                let m = required(message, "", "message")?;
                if !m.is_object() {
                    return Err(err("message", "must be an object"));
                }
                message_content(m, body)?
            }
        };

        let to = match (env.to, env.comment_id) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "comment_id",
                    "give either `to` or `comment_id`, not both",
                ))
            }
            (Some(Id(to)), None) => Recipient::User(to),
            (None, Some(Str(c))) => Recipient::Comment(c),
            (None, None) if matches!(content, Content::Raw { .. }) => Recipient::InBody,
            (None, None) => return Err(err("to", "is required")),
        };
        let (reply_to, messaging_type, tag) = match common {
            None => (None, None, None),
            Some(c) => (
                c.reply_to.map(|v| v.0),
                c.messaging_type.map(|v| v.0),
                c.tag.map(|v| v.0),
            ),
        };
        if let Some(t) = &messaging_type {
            if !matches!(t.as_str(), "RESPONSE" | "UPDATE" | "MESSAGE_TAG") {
                return Err(err(
                    "message.messaging_type",
                    "must be RESPONSE, UPDATE or MESSAGE_TAG",
                ));
            }
        }
        Ok(Self {
            channel,
            to,
            reply_to,
            messaging_type,
            tag,
            business_connection_id: env.business_connection_id.map(|v| v.0),
            content,
        })
    }
}

/// The content of `message` (an object), and its common fields (none for `raw`).
fn message_content(m: Value, body: &[u8]) -> Result<(Content, Option<Common>), ParseError> {
    let probe: KindProbe = typed(m.clone(), "message")?;
    let kind = match (probe.kind, probe.raw) {
        (Some(Str(k)), _) => Kind::deserialize(IntoDeserializer::<
            serde::de::value::Error,
        >::into_deserializer(k.as_str()))
        .map_err(|_| {
                err(
                    "message.kind",
                    format!(
                        "unknown kind `{}` (text, image, audio, video, document, sticker, location, contacts, template, interactive, reaction, read, typing, callback_answer, media_group, raw)",
                        k.chars().take(32).collect::<String>()
                    ),
                )
        })?,
        (None, Some(_)) => Kind::Raw,
        (None, None) => return Err(err("message.kind", "is required")),
    };
    if kind == Kind::Raw {
        let w: RawKindWire = typed(m.clone(), "message")?;
        known_only(&w.unknown, "message", &["kind", "raw"])?;
        let raw = m.get("raw").cloned().unwrap_or(Value::Null);
        let content = raw_content(&raw, w.method, body, "message.", |p| {
            p.message.and_then(|m| m.raw)
        })?;
        return Ok((content, None));
    }
    let content = kind_content(kind, m.clone())?;
    let common: Common = typed(m, "message")?;
    Ok((content, Some(common)))
}

/// `raw` (and Telegram's `method`), keeping the raw bytes; `prefix` is the field path
/// of the object holding them (`""` or `"message."`).
fn raw_content(
    raw: &Value,
    method: Option<Value>,
    body: &[u8],
    prefix: &str,
    pick: fn(RawProbe) -> Option<Box<RawValue>>,
) -> Result<Content, ParseError> {
    if !raw.is_object() {
        return Err(err(format!("{prefix}raw"), "must be an object"));
    }
    let probe: RawProbe = serde_json::from_slice(body)
        .map_err(|e| err(format!("{prefix}raw"), format!("unreadable: {e}")))?;
    let raw = pick(probe).ok_or_else(|| err(format!("{prefix}raw"), "is required"))?;
    let method = match method {
        None => None,
        Some(v) => {
            let Str(meth) = typed(v, &format!("{prefix}method"))?;
            if meth.len() > 64 || !meth.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(err(
                    format!("{prefix}method"),
                    "must be a Bot API method name",
                ));
            }
            Some(meth)
        }
    };
    Ok(Content::Raw { body: raw, method })
}

/// Every kind but `raw`, from the `message` object.
fn kind_content(kind: Kind, m: Value) -> Result<Content, ParseError> {
    const AT: &str = "message";
    Ok(match kind {
        Kind::Text => {
            let w: TextWire = typed(m, AT)?;
            known_only(&w.unknown, AT, COMMON)?;
            Content::Text {
                text: required(w.text, AT, "text")?.0,
                preview_url: w.preview_url.map(|f| f.0),
            }
        }
        Kind::Image | Kind::Audio | Kind::Video | Kind::Document | Kind::Sticker => {
            let w: MediaWire = typed(m, AT)?;
            known_only(&w.unknown, AT, COMMON)?;
            media(kind, w)?
        }
        Kind::Location => {
            let w: LocationWire = typed(m, AT)?;
            known_only(&w.unknown, AT, COMMON)?;
            let within = |v: Option<Number>, name: &str, max: f64| {
                let x = required(v, AT, name)?.0;
                if (-max..=max).contains(&x) {
                    Ok(x)
                } else {
                    Err(err(
                        path(AT, name),
                        format!("must be between {} and {max}", -max),
                    ))
                }
            };
            Content::Location {
                latitude: within(w.latitude, "latitude", 90.0)?,
                longitude: within(w.longitude, "longitude", 180.0)?,
                name: w.name.map(|v| v.0),
                address: w.address.map(|v| v.0),
            }
        }
        Kind::Contacts => {
            let w: ContactsWire = typed(m, AT)?;
            known_only(&w.unknown, AT, COMMON)?;
            let list = required(w.contacts, AT, "contacts")?.0;
            let mut contacts = Vec::with_capacity(list.len());
            for (i, Obj(card)) in list.into_iter().enumerate() {
                let at = format!("message.contacts[{i}]");
                // Both channels name the card from `name`.
                let check: ContactCheck = typed(Value::Object(card.clone()), &at)?;
                required(check.name, &at, "name")?;
                contacts.push(card);
            }
            Content::Contacts { contacts }
        }
        Kind::Template => {
            let w: TemplateWire = typed(m, AT)?;
            known_only(&w.unknown, AT, COMMON)?;
            Content::Template {
                name: required(w.name, AT, "name")?.0,
                language: required(w.language, AT, "language")?.0,
                components: w
                    .components
                    .map(|l| l.0.into_iter().map(|Obj(c)| Value::Object(c)).collect())
                    .unwrap_or_default(),
            }
        }
        Kind::Interactive => {
            let w: InteractiveWire = typed(m, AT)?;
            known_only(&w.unknown, AT, COMMON)?;
            let choices = match (w.buttons, w.list, w.quick_replies, w.flow) {
                (Some(b), None, None, None) => {
                    Choices::Buttons(buttons(b.0, "message.buttons", true)?)
                }
                (None, None, Some(q), None) => {
                    Choices::QuickReplies(buttons(q.0, "message.quick_replies", false)?)
                }
                (None, Some(Obj(l)), None, None) => list(l)?,
                (None, None, None, Some(Obj(f))) => Choices::Flow(super::flow::parse(f)?),
                _ => {
                    return Err(err(
                        "message.buttons",
                        "give exactly one of `buttons`, `list`, `quick_replies` or `flow`",
                    ))
                }
            };
            Content::Interactive {
                text: required(w.text, AT, "text")?.0,
                header: w.header.map(header).transpose()?,
                footer: w.footer.map(|v| v.0),
                choices,
            }
        }
        Kind::MediaGroup => {
            let w: MediaGroupWire = typed(m, AT)?;
            known_only(&w.unknown, AT, COMMON)?;
            let list = required(w.items, AT, "items")?.0;
            if !(2..=10).contains(&list.len()) {
                return Err(err("message.items", "a media group has 2 to 10 items"));
            }
            let mut items = Vec::with_capacity(list.len());
            for (i, Obj(it)) in list.into_iter().enumerate() {
                let at = format!("message.items[{i}]");
                known_only(&it.unknown, &at, &[])?;
                let kind = match required(it.kind, &at, "kind")?.0.as_str() {
                    "image" => MediaKind::Image,
                    "video" => MediaKind::Video,
                    "document" => MediaKind::Document,
                    "audio" => MediaKind::Audio,
                    _ => {
                        return Err(err(
                            format!("{at}.kind"),
                            "must be image, video, document or audio",
                        ))
                    }
                };
                items.push(GroupItem {
                    kind,
                    source: media_source(it.url, it.media_id, &at)?,
                    caption: it.caption.map(|v| v.0),
                });
            }
            Content::MediaGroup { items }
        }
        Kind::CallbackAnswer => {
            let w: CallbackAnswerWire = typed(m, AT)?;
            known_only(&w.unknown, AT, COMMON)?;
            Content::CallbackAnswer {
                callback_query_id: required(w.callback_query_id, AT, "callback_query_id")?.0,
                text: w.text.map(|v| v.0),
                show_alert: w.show_alert.is_some_and(|f| f.0),
            }
        }
        Kind::Reaction | Kind::Read | Kind::Typing => {
            let w: ActionWire = typed(m, AT)?;
            let own: &[&str] = match kind {
                Kind::Reaction => &["emoji"],
                Kind::Typing => &["on"],
                _ => &[],
            };
            for (name, given) in [("emoji", w.emoji.is_some()), ("on", w.on.is_some())] {
                if given && !own.contains(&name) {
                    return Err(err(path(AT, name), "is not a known field here"));
                }
            }
            known_only(&w.unknown, AT, COMMON)?;
            match kind {
                Kind::Reaction => Content::Reaction {
                    message_id: required(w.message_id, AT, "message_id")?.0,
                    emoji: required(w.emoji, AT, "emoji")?.0,
                },
                Kind::Read => Content::Read {
                    message_id: required(w.message_id, AT, "message_id")?.0,
                },
                _ => Content::Typing {
                    on: w.on.is_none_or(|f| f.0),
                    message_id: w.message_id.map(|v| v.0),
                },
            }
        }
        Kind::Raw => return Err(err("message.kind", "unreachable")),
    })
}

/// `message.header`: a string (text), or `{kind: image|video|document, url|media_id,
/// filename}`.
fn header(v: Value) -> Result<Header, ParseError> {
    const AT: &str = "message.header";
    if v.is_string() {
        return Ok(Header::Text(typed::<Str>(v, AT)?.0));
    }
    if !v.is_object() {
        return Err(err(AT, "must be a string or an object"));
    }
    let w: MediaHeaderWire = typed(v, AT)?;
    known_only(&w.unknown, AT, &[])?;
    let kind = match required(w.kind, AT, "kind")?.0.as_str() {
        "image" => MediaKind::Image,
        "video" => MediaKind::Video,
        "document" => MediaKind::Document,
        _ => {
            return Err(err(
                "message.header.kind",
                "must be image, video or document",
            ))
        }
    };
    let source = media_source(w.url, w.media_id, AT)?;
    let filename = w.filename.map(|v| v.0);
    if filename.is_some() && kind != MediaKind::Document {
        return Err(err(
            "message.header.filename",
            "only a document has a filename",
        ));
    }
    Ok(Header::Media {
        kind,
        source,
        filename,
    })
}

/// `url` (http or https) or `media_id`, under `at`.
fn media_source(
    url: Option<Str>,
    media_id: Option<Str>,
    at: &str,
) -> Result<MediaSource, ParseError> {
    let url_field = path(at, "url");
    match (url, media_id) {
        (Some(_), Some(_)) => Err(err(path(at, "media_id"), "give either `url` or `media_id`")),
        (Some(Str(u)), None) => {
            let parsed = url::Url::parse(&u)
                .map_err(|e| err(url_field.clone(), format!("not a URL ({e})")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(err(url_field, "must be an http(s) URL"));
            }
            Ok(MediaSource::Url(u))
        }
        (None, Some(Str(id))) => Ok(MediaSource::Id(id)),
        (None, None) => Err(err(url_field, "`url` or `media_id` is required")),
    }
}

fn media(kind: Kind, w: MediaWire) -> Result<Content, ParseError> {
    let kind = match kind {
        Kind::Image => MediaKind::Image,
        Kind::Audio => MediaKind::Audio,
        Kind::Video => MediaKind::Video,
        Kind::Document => MediaKind::Document,
        _ => MediaKind::Sticker,
    };
    let source = media_source(w.url, w.media_id, "message")?;
    let filename = w.filename.map(|v| v.0);
    if filename.is_some() && kind != MediaKind::Document {
        return Err(err("message.filename", "only a document has a filename"));
    }
    let voice = w.voice.is_some_and(|f| f.0);
    if voice && kind != MediaKind::Audio {
        return Err(err("message.voice", "only audio can be a voice note"));
    }
    Ok(Content::Media {
        kind,
        source,
        caption: w.caption.map(|v| v.0),
        filename,
        voice,
    })
}

/// Reply buttons (`allow_url`: link buttons too) or quick replies, at `at`.
fn buttons(
    list: Vec<Obj<ButtonWire>>,
    at: &str,
    allow_url: bool,
) -> Result<Vec<Button>, ParseError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, Obj(b)) in list.into_iter().enumerate() {
        let p = format!("{at}[{i}]");
        if !allow_url && b.url.is_some() {
            return Err(err(format!("{p}.url"), "is not a known field here"));
        }
        known_only(&b.unknown, &p, &[])?;
        match (&b.id, &b.url) {
            (Some(_), Some(_)) => return Err(err(format!("{p}.url"), "give `id` or `url`")),
            (None, None) => return Err(err(format!("{p}.id"), "is required")),
            _ => {}
        }
        out.push(Button {
            title: required(b.title, &p, "title")?.0,
            id: b.id.map(|v| v.0),
            url: b.url.map(|v| v.0),
        });
    }
    Ok(out)
}

fn list(l: ListWire) -> Result<Choices, ParseError> {
    const AT: &str = "message.list";
    known_only(&l.unknown, AT, &[])?;
    let sections = required(l.sections, AT, "sections")?.0;
    let mut out = Vec::with_capacity(sections.len());
    for (i, Obj(s)) in sections.into_iter().enumerate() {
        let at = format!("{AT}.sections[{i}]");
        known_only(&s.unknown, &at, &[])?;
        let rows = required(s.rows, &at, "rows")?.0;
        let mut parsed = Vec::with_capacity(rows.len());
        for (j, Obj(r)) in rows.into_iter().enumerate() {
            let at = format!("{at}.rows[{j}]");
            known_only(&r.unknown, &at, &[])?;
            parsed.push(ListRow {
                id: required(r.id, &at, "id")?.0,
                title: required(r.title, &at, "title")?.0,
                description: r.description.map(|v| v.0),
            });
        }
        out.push(ListSection {
            title: s.title.map(|v| v.0),
            rows: parsed,
        });
    }
    Ok(Choices::List {
        button: required(l.button, AT, "button")?.0,
        sections: out,
    })
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
