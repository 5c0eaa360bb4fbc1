//! Outbound (replies): the neutral [`OutboundMessage`] a CRM posts to `POST /v1/messages`,
//! the one trait every channel implements ([`Outbound`]), and what a send answers:
//! a [`Receipt`] or a [`SendError`] already classified the contract's way.
//!
//! Parsing walks the JSON by hand so that every error names the offending field
//! (`message.buttons[1].title`). What a channel cannot do is not decided here: each
//! channel's `outbound` module refuses it with [`SendError::Unsupported`], naming the field.

use std::future::Future;
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{ChannelKind, ChannelRef};
use crate::vault::AccessToken;

/// One message to send, channel-neutral.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    pub channel: ChannelRef,
    pub to: Recipient,
    pub content: Content,
    /// The provider id of the message this one quotes (`message.reply_to`).
    pub reply_to: Option<String>,
    /// Messenger/Instagram `messaging_type` (`RESPONSE`, `UPDATE`, `MESSAGE_TAG`).
    pub messaging_type: Option<String>,
    /// Messenger/Instagram message tag (`HUMAN_AGENT`, …); implies `MESSAGE_TAG`.
    pub tag: Option<String>,
    /// Telegram: the business connection the reply goes through (the
    /// `data.business_connection_id` of a `business_message` event).
    pub business_connection_id: Option<String>,
}

/// Who receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// `to`: the customer's id on the channel (wa_id, IGSID, PSID, Telegram chat id).
    User(String),
    /// `comment_id`: an Instagram/Messenger private reply to a comment.
    Comment(String),
    /// Neither given: only for `raw` bodies, which carry their own recipient.
    InBody,
}

impl Recipient {
    /// The `to` echoed in the success response.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Recipient::User(s) | Recipient::Comment(s) => Some(s),
            Recipient::InBody => None,
        }
    }
}

/// The five media kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Audio,
    Video,
    Document,
    Sticker,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }
}

/// Where a media file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// A public http(s) URL the provider fetches.
    Url(String),
    /// A provider media id (WhatsApp media id, Messenger attachment id, Telegram file_id).
    Id(String),
}

/// A reply button (`id`: postback / reply id) or a link button (`url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub title: String,
    pub id: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSection {
    pub title: Option<String>,
    pub rows: Vec<ListRow>,
}

/// The choice an interactive message offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choices {
    /// `buttons`: WhatsApp reply buttons, Messenger/Instagram button template,
    /// Telegram inline keyboard.
    Buttons(Vec<Button>),
    /// `list`: WhatsApp list message, Telegram inline keyboard (one row per item).
    List {
        button: String,
        sections: Vec<ListSection>,
    },
    /// `quick_replies`: Messenger/Instagram quick replies, Telegram inline keyboard.
    QuickReplies(Vec<Button>),
}

/// What is sent.
#[derive(Debug, Clone)]
pub enum Content {
    Text {
        text: String,
        /// Whether links get a preview (WhatsApp `preview_url`, Telegram
        /// `link_preview_options`); `None`: the channel's default.
        preview_url: Option<bool>,
    },
    Media {
        kind: MediaKind,
        source: MediaSource,
        caption: Option<String>,
        filename: Option<String>,
        /// `audio` only: a voice note (WhatsApp `audio.voice`, Telegram `sendVoice`).
        voice: bool,
    },
    /// A map pin (`name` and `address` where the channel shows them).
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
    },
    /// Contact cards in WhatsApp's contact shape (`name`, `phones`, `emails`, `org`,
    /// …), passed to WhatsApp as given.
    Contacts { contacts: Vec<Map<String, Value>> },
    /// WhatsApp templates: `components` are passed as given.
    Template {
        name: String,
        language: String,
        components: Vec<Value>,
    },
    Interactive {
        text: String,
        header: Option<String>,
        footer: Option<String>,
        choices: Choices,
    },
    /// `emoji` empty: remove the reaction.
    Reaction { message_id: String, emoji: String },
    /// Mark `message_id` (and what came before) as read.
    Read { message_id: String },
    /// A typing indicator (`on: false` stops it where the channel can).
    Typing {
        on: bool,
        message_id: Option<String>,
    },
    /// A provider-native body sent unchanged (Telegram: to `method`).
    Raw {
        body: Box<RawValue>,
        method: Option<String>,
    },
}

impl Content {
    /// The contract's `message.kind` of this content.
    pub fn kind(&self) -> &'static str {
        match self {
            Content::Text { .. } => "text",
            Content::Media { kind, .. } => kind.as_str(),
            Content::Location { .. } => "location",
            Content::Contacts { .. } => "contacts",
            Content::Template { .. } => "template",
            Content::Interactive { .. } => "interactive",
            Content::Reaction { .. } => "reaction",
            Content::Read { .. } => "read",
            Content::Typing { .. } => "typing",
            Content::Raw { .. } => "raw",
        }
    }
}

/// A request body that is not a valid message: `field` names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {detail}")]
pub struct ParseError {
    pub field: String,
    pub detail: String,
}

fn err(field: impl Into<String>, detail: impl Into<String>) -> ParseError {
    ParseError {
        field: field.into(),
        detail: detail.into(),
    }
}

/// Field access with the path kept for error messages.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn of(value: &'a Value, path: &str) -> Result<Self, ParseError> {
        match value {
            Value::Object(map) => Ok(Self {
                map,
                path: path.to_owned(),
            }),
            _ => Err(err(path, "must be an object")),
        }
    }

    fn field(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn opt_str(&self, name: &str) -> Result<Option<String>, ParseError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => {
                Err(err(self.field(name), "must not be empty"))
            }
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(err(self.field(name), "must be a string")),
        }
    }

    /// An id: a string, or an integer (Telegram ids are numbers) taken as its decimal text.
    fn opt_id(&self, name: &str) -> Result<Option<String>, ParseError> {
        match self.get(name) {
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
            Some(Value::Number(_)) => Err(err(self.field(name), "must be a string or an integer")),
            _ => self.opt_str(name),
        }
    }

    fn id(&self, name: &str) -> Result<String, ParseError> {
        self.opt_id(name)?
            .ok_or_else(|| err(self.field(name), "is required"))
    }

    fn str(&self, name: &str) -> Result<String, ParseError> {
        self.opt_str(name)?
            .ok_or_else(|| err(self.field(name), "is required"))
    }

    /// A string that may be empty (a reaction's emoji: empty removes it).
    fn str_allow_empty(&self, name: &str) -> Result<String, ParseError> {
        match self.get(name) {
            None => Err(err(self.field(name), "is required")),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(err(self.field(name), "must be a string")),
        }
    }

    /// A number within `min..=max` (coordinates).
    fn num_in(&self, name: &str, min: f64, max: f64) -> Result<f64, ParseError> {
        match self.get(name) {
            None => Err(err(self.field(name), "is required")),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if (min..=max).contains(&x) => Ok(x),
                _ => Err(err(
                    self.field(name),
                    format!("must be between {min} and {max}"),
                )),
            },
            Some(_) => Err(err(self.field(name), "must be a number")),
        }
    }

    fn opt_bool(&self, name: &str) -> Result<Option<bool>, ParseError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(err(self.field(name), "must be true or false")),
        }
    }

    fn opt_array(&self, name: &str) -> Result<Option<&'a Vec<Value>>, ParseError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) if a.is_empty() => {
                Err(err(self.field(name), "must not be empty"))
            }
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(err(self.field(name), "must be an array")),
        }
    }

    fn obj(&self, name: &str) -> Result<Obj<'a>, ParseError> {
        let v = self
            .get(name)
            .ok_or_else(|| err(self.field(name), "is required"))?;
        Obj::of(v, &self.field(name))
    }

    /// Refuses fields this kind does not know (a typo must not be silently dropped).
    fn only(&self, allowed: &[&str]) -> Result<(), ParseError> {
        for k in self.map.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(err(self.field(k), "is not a known field here"));
            }
        }
        Ok(())
    }
}

/// The raw sub-object of `message.raw`, byte for byte.
#[derive(serde::Deserialize)]
struct RawProbe {
    message: Option<RawMessageProbe>,
    raw: Option<Box<RawValue>>,
}

#[derive(serde::Deserialize)]
struct RawMessageProbe {
    raw: Option<Box<RawValue>>,
}

const COMMON: &[&str] = &["kind", "reply_to", "messaging_type", "tag"];

impl OutboundMessage {
    /// Parses a `POST /v1/messages` body.
    pub fn parse(body: &[u8]) -> Result<Self, ParseError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| err("body", format!("not valid JSON: {e}")))?;
        let root = Obj::of(&value, "").map_err(|_| err("body", "must be a JSON object"))?;
        root.only(&[
            "channel",
            "to",
            "comment_id",
            "message",
            "raw",
            "method",
            "business_connection_id",
        ])?;

        let ch = root.obj("channel")?;
        ch.only(&["kind", "id"])?;
        let kind_s = ch.str("kind")?;
        let kind: ChannelKind = kind_s
            .parse()
            .map_err(|e: super::UnknownChannelKind| err("channel.kind", e.to_string()))?;
        let id = ch.id("id")?;
        if !ChannelRef::valid_id(&id) {
            return Err(err("channel.id", "is not a valid channel id"));
        }
        let channel = ChannelRef::new(kind, id);

        // `raw` may sit at the top level (beside `channel`) or in `message`.
        let top_raw = root.get("raw").is_some();
        let m = if top_raw {
            if root.get("message").is_some() {
                return Err(err(
                    "raw",
                    "give either a top-level `raw` or a `message`, not both",
                ));
            }
            None
        } else {
            if root.get("method").is_some() {
                return Err(err("method", "only with a top-level `raw`"));
            }
            Some(root.obj("message")?)
        };
        let content = match &m {
            None => parse_raw(&root, body, "", |p| p.raw)?,
            Some(m) => {
                let kind = match (m.opt_str("kind")?, m.get("raw")) {
                    (Some(k), _) => k,
                    (None, Some(_)) => "raw".to_owned(),
                    (None, None) => return Err(err("message.kind", "is required")),
                };
                parse_content(&kind, m, body)?
            }
        };

        let to = match (root.opt_id("to")?, root.opt_str("comment_id")?) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "comment_id",
                    "give either `to` or `comment_id`, not both",
                ))
            }
            (Some(to), None) => Recipient::User(to),
            (None, Some(c)) => Recipient::Comment(c),
            (None, None) if matches!(content, Content::Raw { .. }) => Recipient::InBody,
            (None, None) => return Err(err("to", "is required")),
        };

        let (messaging_type, reply_to, tag) = match &m {
            None => (None, None, None),
            Some(m) => (
                m.opt_str("messaging_type")?,
                m.opt_id("reply_to")?,
                m.opt_str("tag")?,
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
        let business_connection_id = root.opt_str("business_connection_id")?;
        Ok(Self {
            channel,
            to,
            reply_to,
            messaging_type,
            tag,
            business_connection_id,
            content,
        })
    }
}

/// `raw` (and Telegram's `method`) from `obj`, keeping the raw bytes; `prefix` is the
/// field path of `obj` (`""` or `"message."`).
fn parse_raw(
    obj: &Obj<'_>,
    body: &[u8],
    prefix: &str,
    pick: fn(RawProbe) -> Option<Box<RawValue>>,
) -> Result<Content, ParseError> {
    if !obj.get("raw").is_some_and(Value::is_object) {
        return Err(err(format!("{prefix}raw"), "must be an object"));
    }
    let probe: RawProbe = serde_json::from_slice(body)
        .map_err(|e| err(format!("{prefix}raw"), format!("unreadable: {e}")))?;
    let raw = pick(probe).ok_or_else(|| err(format!("{prefix}raw"), "is required"))?;
    let method = obj.opt_str("method")?;
    if let Some(meth) = &method {
        if meth.len() > 64 || !meth.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(err(
                format!("{prefix}method"),
                "must be a Bot API method name",
            ));
        }
    }
    Ok(Content::Raw { body: raw, method })
}

fn with_common<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = COMMON.to_vec();
    v.extend_from_slice(extra);
    v
}

fn parse_content(kind: &str, m: &Obj<'_>, body: &[u8]) -> Result<Content, ParseError> {
    Ok(match kind {
        "text" => {
            m.only(&with_common(&["text", "preview_url"]))?;
            Content::Text {
                text: m.str("text")?,
                preview_url: m.opt_bool("preview_url")?,
            }
        }
        "image" | "audio" | "video" | "document" | "sticker" => {
            m.only(&with_common(&[
                "url", "media_id", "caption", "filename", "voice",
            ]))?;
            let kind = match kind {
                "image" => MediaKind::Image,
                "audio" => MediaKind::Audio,
                "video" => MediaKind::Video,
                "document" => MediaKind::Document,
                _ => MediaKind::Sticker,
            };
            let source = match (m.opt_str("url")?, m.opt_str("media_id")?) {
                (Some(_), Some(_)) => {
                    return Err(err("message.media_id", "give either `url` or `media_id`"))
                }
                (Some(u), None) => {
                    let parsed = url::Url::parse(&u)
                        .map_err(|e| err("message.url", format!("not a URL ({e})")))?;
                    if !matches!(parsed.scheme(), "http" | "https") {
                        return Err(err("message.url", "must be an http(s) URL"));
                    }
                    MediaSource::Url(u)
                }
                (None, Some(id)) => MediaSource::Id(id),
                (None, None) => return Err(err("message.url", "`url` or `media_id` is required")),
            };
            let filename = m.opt_str("filename")?;
            if filename.is_some() && kind != MediaKind::Document {
                return Err(err("message.filename", "only a document has a filename"));
            }
            let voice = m.opt_bool("voice")?.unwrap_or(false);
            if voice && kind != MediaKind::Audio {
                return Err(err("message.voice", "only audio can be a voice note"));
            }
            Content::Media {
                kind,
                source,
                caption: m.opt_str("caption")?,
                filename,
                voice,
            }
        }
        "location" => {
            m.only(&with_common(&["latitude", "longitude", "name", "address"]))?;
            Content::Location {
                latitude: m.num_in("latitude", -90.0, 90.0)?,
                longitude: m.num_in("longitude", -180.0, 180.0)?,
                name: m.opt_str("name")?,
                address: m.opt_str("address")?,
            }
        }
        "contacts" => {
            m.only(&with_common(&["contacts"]))?;
            let list = m
                .opt_array("contacts")?
                .ok_or_else(|| err("message.contacts", "is required"))?;
            let mut contacts = Vec::with_capacity(list.len());
            for (i, c) in list.iter().enumerate() {
                let path = format!("message.contacts[{i}]");
                let c = Obj::of(c, &path)?;
                // Both channels name the card from `name`.
                c.obj("name")?;
                if let Some(phones) = c.opt_array("phones")? {
                    for (j, p) in phones.iter().enumerate() {
                        Obj::of(p, &format!("{path}.phones[{j}]"))?;
                    }
                }
                contacts.push(c.map.clone());
            }
            Content::Contacts { contacts }
        }
        "template" => {
            m.only(&with_common(&["name", "language", "components"]))?;
            let components = match m.get("components") {
                None => Vec::new(),
                Some(Value::Array(a)) => a.clone(),
                Some(_) => return Err(err("message.components", "must be an array")),
            };
            for (i, c) in components.iter().enumerate() {
                if !c.is_object() {
                    return Err(err(
                        format!("message.components[{i}]"),
                        "must be an object",
                    ));
                }
            }
            Content::Template {
                name: m.str("name")?,
                language: m.str("language")?,
                components,
            }
        }
        "interactive" => {
            m.only(&with_common(&[
                "text",
                "header",
                "footer",
                "buttons",
                "list",
                "quick_replies",
            ]))?;
            let given = ["buttons", "list", "quick_replies"]
                .iter()
                .filter(|k| m.get(k).is_some())
                .count();
            if given != 1 {
                return Err(err(
                    "message.buttons",
                    "give exactly one of `buttons`, `list` or `quick_replies`",
                ));
            }
            let choices = if let Some(a) = m.opt_array("buttons")? {
                Choices::Buttons(parse_buttons(a, "message.buttons", true)?)
            } else if let Some(a) = m.opt_array("quick_replies")? {
                Choices::QuickReplies(parse_buttons(a, "message.quick_replies", false)?)
            } else {
                let l = m.obj("list")?;
                l.only(&["button", "sections"])?;
                let sections = l
                    .opt_array("sections")?
                    .ok_or_else(|| err("message.list.sections", "is required"))?;
                let mut out = Vec::with_capacity(sections.len());
                for (i, s) in sections.iter().enumerate() {
                    let path = format!("message.list.sections[{i}]");
                    let s = Obj::of(s, &path)?;
                    s.only(&["title", "rows"])?;
                    let rows = s
                        .opt_array("rows")?
                        .ok_or_else(|| err(format!("{path}.rows"), "is required"))?;
                    let mut parsed = Vec::with_capacity(rows.len());
                    for (j, r) in rows.iter().enumerate() {
                        let r = Obj::of(r, &format!("{path}.rows[{j}]"))?;
                        r.only(&["id", "title", "description"])?;
                        parsed.push(ListRow {
                            id: r.str("id")?,
                            title: r.str("title")?,
                            description: r.opt_str("description")?,
                        });
                    }
                    out.push(ListSection {
                        title: s.opt_str("title")?,
                        rows: parsed,
                    });
                }
                Choices::List {
                    button: l.str("button")?,
                    sections: out,
                }
            };
            Content::Interactive {
                text: m.str("text")?,
                header: m.opt_str("header")?,
                footer: m.opt_str("footer")?,
                choices,
            }
        }
        "reaction" => {
            m.only(&with_common(&["message_id", "emoji"]))?;
            Content::Reaction {
                message_id: m.id("message_id")?,
                emoji: m.str_allow_empty("emoji")?,
            }
        }
        "read" => {
            m.only(&with_common(&["message_id"]))?;
            Content::Read {
                message_id: m.id("message_id")?,
            }
        }
        "typing" => {
            m.only(&with_common(&["on", "message_id"]))?;
            Content::Typing {
                on: m.opt_bool("on")?.unwrap_or(true),
                message_id: m.opt_id("message_id")?,
            }
        }
        "raw" => {
            m.only(&["kind", "raw", "method"])?;
            parse_raw(m, body, "message.", |p| p.message.and_then(|m| m.raw))?
        }
        other => {
            return Err(err(
                "message.kind",
                format!(
                    "unknown kind `{}` (text, image, audio, video, document, sticker, location, contacts, template, interactive, reaction, read, typing, raw)",
                    other.chars().take(32).collect::<String>()
                ),
            ))
        }
    })
}

fn parse_buttons(a: &[Value], path: &str, allow_url: bool) -> Result<Vec<Button>, ParseError> {
    let mut out = Vec::with_capacity(a.len());
    for (i, b) in a.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let o = Obj::of(b, &p)?;
        o.only(if allow_url {
            &["id", "title", "url"]
        } else {
            &["id", "title"]
        })?;
        let id = o.opt_str("id")?;
        let url = if allow_url { o.opt_str("url")? } else { None };
        match (&id, &url) {
            (Some(_), Some(_)) => return Err(err(format!("{p}.url"), "give `id` or `url`")),
            (None, None) => return Err(err(format!("{p}.id"), "is required")),
            _ => {}
        }
        out.push(Button {
            title: o.str("title")?,
            id,
            url,
        });
    }
    Ok(out)
}

/// What the provider answered to a successful send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's message id; `None` for actions without one (read, typing).
    pub id: Option<String>,
}

/// What the provider said when it refused, for the problem details. Never holds message
/// content or tokens: only the provider's code and message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderDetail {
    /// `graph` or `telegram`.
    pub provider: &'static str,
    pub http_status: u16,
    pub code: Option<i64>,
    pub subcode: Option<i64>,
    pub message: String,
    pub fbtrace_id: Option<String>,
    /// Telegram: the group moved to this supergroup id.
    pub migrate_to_chat_id: Option<i64>,
    /// The relay's reading of the refusal when it is not the code's plain meaning (a
    /// WhatsApp permission error answered as `token_invalid`): put in the problem's
    /// `detail` and the `channel.reauth_required` reason, not in `provider`.
    pub reason: Option<String>,
}

impl ProviderDetail {
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), self.provider.into());
        m.insert("http_status".into(), self.http_status.into());
        if let Some(c) = self.code {
            m.insert("code".into(), c.into());
        }
        if let Some(c) = self.subcode {
            m.insert("subcode".into(), c.into());
        }
        m.insert("message".into(), self.message.clone().into());
        if let Some(f) = &self.fbtrace_id {
            m.insert("fbtrace_id".into(), f.clone().into());
        }
        if let Some(c) = self.migrate_to_chat_id {
            m.insert("migrate_to_chat_id".into(), c.into());
        }
        Value::Object(m)
    }
}

/// Why a send (or a media fetch) failed, classified the contract's way.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// The channel cannot do what was asked (answered 400, nothing sent).
    #[error("{field}: {detail}")]
    Unsupported { field: String, detail: String },
    /// The provider says the channel's token is expired or revoked.
    #[error("the provider refused the channel's token")]
    TokenInvalid(Box<ProviderDetail>),
    /// WhatsApp's 24-hour customer service window has closed.
    #[error("outside the messaging window")]
    OutsideWindow(Box<ProviderDetail>),
    #[error("rate limited by the provider")]
    RateLimited {
        retry_after: Duration,
        detail: Box<ProviderDetail>,
    },
    /// The person cannot be reached now (Graph 551; Telegram 403: the bot was blocked,
    /// the user is deactivated, the bot was removed from the chat).
    #[error("the recipient cannot be reached now")]
    RecipientUnavailable(Box<ProviderDetail>),
    /// Any other refusal.
    #[error("the provider refused the request")]
    Provider(Box<ProviderDetail>),
    /// Nothing was delivered (a 5xx, or the connection failed before the request was
    /// sent): safe to try again.
    #[error("the provider is unavailable: {0}")]
    Transient(String),
    /// The request may have reached the provider but no answer came (a timeout after
    /// sending): never retried, the message may have been sent.
    #[error("no answer from the provider: {0}")]
    Indeterminate(String),
}

impl SendError {
    /// Only failures where nothing can have been sent are retried.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Transient(_))
    }

    pub fn unsupported(field: impl Into<String>, detail: impl Into<String>) -> Self {
        SendError::Unsupported {
            field: field.into(),
            detail: detail.into(),
        }
    }

    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            SendError::Unsupported { .. } => "unsupported",
            SendError::TokenInvalid(_) => "token_invalid",
            SendError::OutsideWindow(_) => "outside_window",
            SendError::RateLimited { .. } => "rate_limited",
            SendError::RecipientUnavailable(_) => "recipient_unavailable",
            SendError::Provider(_) => "provider_error",
            SendError::Transient(_) => "transient",
            SendError::Indeterminate(_) => "indeterminate",
        }
    }
}

/// Classifies a transport error (never showing its URL: Telegram's holds the token).
pub fn transport_error(e: &reqwest::Error) -> SendError {
    let what = if e.is_timeout() {
        "timeout"
    } else {
        "connection"
    };
    if e.is_connect() {
        // Connecting failed: the request never left.
        SendError::Transient(format!("{what}: could not connect"))
    } else if e.is_timeout() {
        SendError::Indeterminate("timed out after the request was sent".into())
    } else if e.is_body() || e.is_decode() {
        SendError::Indeterminate("the response could not be read".into())
    } else {
        SendError::Indeterminate("the request failed after it may have been sent".into())
    }
}

/// Sending through one channel.
pub trait Outbound: Send + Sync {
    fn send(
        &self,
        message: &OutboundMessage,
        token: &AccessToken,
    ) -> impl Future<Output = Result<Receipt, SendError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<OutboundMessage, ParseError> {
        OutboundMessage::parse(&serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn text_parses_with_reply_to() {
        let m = parse(serde_json::json!({
            "channel": {"kind": "whatsapp", "id": "106540352242922"},
            "to": "15551234567",
            "message": {"kind": "text", "text": "Hello!", "reply_to": "wamid.X"}
        }))
        .unwrap();
        assert_eq!(m.to, Recipient::User("15551234567".into()));
        assert_eq!(m.reply_to.as_deref(), Some("wamid.X"));
        assert!(
            matches!(m.content, Content::Text { ref text, preview_url: None } if text == "Hello!")
        );
    }

    #[test]
    fn errors_name_the_field() {
        let base = |message: Value| serde_json::json!({"channel": {"kind": "telegram", "id": "1"}, "to": "2", "message": message});
        let cases = [
            (base(serde_json::json!({"kind": "text"})), "message.text"),
            (base(serde_json::json!({"kind": "fax"})), "message.kind"),
            (
                base(serde_json::json!({"kind": "text", "text": 3})),
                "message.text",
            ),
            (
                base(serde_json::json!({"kind": "text", "txt": "a"})),
                "message.txt",
            ),
            (base(serde_json::json!({"kind": "image"})), "message.url"),
            (
                base(serde_json::json!({"kind": "image", "url": "ftp://x"})),
                "message.url",
            ),
            (
                base(
                    serde_json::json!({"kind": "interactive", "text": "t", "buttons": [{"id": "a", "title": "A"}, {"id": "b"}]}),
                ),
                "message.buttons[1].title",
            ),
            (
                base(
                    serde_json::json!({"kind": "interactive", "text": "t", "list": {"button": "b", "sections": [{"rows": [{"id": "x"}]}]}}),
                ),
                "message.list.sections[0].rows[0].title",
            ),
            (
                serde_json::json!({"channel": {"kind": "fax", "id": "1"}, "to": "2", "message": {"kind": "text", "text": "a"}}),
                "channel.kind",
            ),
            (
                serde_json::json!({"channel": {"kind": "telegram", "id": "1"}, "message": {"kind": "text", "text": "a"}}),
                "to",
            ),
            (
                serde_json::json!({"to": "2", "message": {"kind": "text", "text": "a"}}),
                "channel",
            ),
        ];
        for (body, field) in cases {
            let e = parse(body.clone()).unwrap_err();
            assert_eq!(e.field, field, "{body}: {e}");
        }
        assert_eq!(OutboundMessage::parse(b"{").unwrap_err().field, "body");
    }

    #[tokio::test]
    async fn refused_connection_is_retryable_but_a_timeout_after_sending_is_not() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let e = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert!(transport_error(&e).is_retryable(), "{e}");

        // A server that reads the request and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            drop(sock);
        });
        let e = reqwest::Client::new()
            .post(format!("http://{addr}/"))
            .timeout(std::time::Duration::from_millis(200))
            .body("x")
            .send()
            .await
            .unwrap_err();
        let classified = transport_error(&e);
        assert!(
            matches!(classified, SendError::Indeterminate(_)),
            "{classified:?}"
        );
        assert!(!classified.is_retryable());
    }

    #[test]
    fn raw_keeps_bytes_and_needs_no_to() {
        let body = br#"{"channel":{"kind":"whatsapp","id":"1"},"message":{"raw":{"z":1,"a":[2]}}}"#;
        let m = OutboundMessage::parse(body).unwrap();
        assert_eq!(m.to, Recipient::InBody);
        match m.content {
            Content::Raw { body, method } => {
                assert_eq!(body.get(), r#"{"z":1,"a":[2]}"#);
                assert!(method.is_none());
            }
            other => panic!("{other:?}"),
        }
        // Also at the top level, beside `channel` (Telegram names its method there).
        let body =
            br#"{"channel":{"kind":"telegram","id":"1"},"method":"sendDice","raw":{"chat_id":5}}"#;
        let m = OutboundMessage::parse(body).unwrap();
        match m.content {
            Content::Raw { body, method } => {
                assert_eq!(body.get(), r#"{"chat_id":5}"#);
                assert_eq!(method.as_deref(), Some("sendDice"));
            }
            other => panic!("{other:?}"),
        }
        let both = br#"{"channel":{"kind":"telegram","id":"1"},"raw":{},"message":{"kind":"text","text":"a"}}"#;
        assert_eq!(OutboundMessage::parse(both).unwrap_err().field, "raw");
    }
}
