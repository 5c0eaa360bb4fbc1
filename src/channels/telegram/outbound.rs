//! Telegram Bot API sends: [`request`] turns a reply into Bot API calls (pure, so
//! every kind is unit-tested); [`Telegram::send`] makes them through the
//! [`TelegramClient`].
//!
//! Kinds: text (`link_preview_options` when `preview_url` is false), sendPhoto /
//! sendAudio / sendVoice (`voice: true`) / sendVideo / sendDocument / sendSticker by URL
//! or `file_id`, `sendMediaGroup` (`media_group`), `sendLocation`, one `sendContact` per
//! contact, inline keyboards for
//! buttons, lists and quick replies, `setMessageReaction`, `sendChatAction` for typing;
//! `read` is a no-op (bots cannot mark as read) except through a business connection
//! (`readBusinessMessage`); `callback_answer` is `answerCallbackQuery` (the
//! `callback_query_id` of a `postback` event); `raw` needs `method`.
//!
//! A top-level `business_connection_id` (from a `business_message` event) is put in every
//! call, so the reply goes out as the business account.

use serde_json::{json, Map, Value};

pub use super::client::{TelegramClient, TelegramEndpoint};
use crate::channels::outbound::{
    Choices, Content, GroupItem, MediaKind, MediaSource, Outbound, OutboundMessage, Receipt,
    Recipient, SendError,
};
use crate::vault::AccessToken;

/// Bot API methods a tenant may call with `raw` (lower case): those that send, edit,
/// copy, forward or delete messages, react, or answer a query, named one by one. No
/// prefix is trusted: `edit…` also names invite links and forum topics
/// (`editChatInviteLink`, `editForumTopic`, …) and `send…` spends the bot's Stars
/// (`sendGift`). Bot management (`setWebhook`, `deleteWebhook`, `logOut`, `close`,
/// `setMyCommands`, …) is never reachable through a tenant's API key.
const RAW_METHODS: &[&str] = &[
    // Sending (every `send…` of the Bot API that sends a message or a chat action).
    "sendmessage",
    "sendphoto",
    "sendaudio",
    "senddocument",
    "sendvideo",
    "sendanimation",
    "sendvoice",
    "sendvideonote",
    "sendpaidmedia",
    "sendmediagroup",
    "sendlocation",
    "sendvenue",
    "sendcontact",
    "sendpoll",
    "sendchecklist",
    "senddice",
    "sendsticker",
    "sendinvoice",
    "sendgame",
    "sendchataction",
    // Editing messages (the "Updating messages" methods).
    "editmessagetext",
    "editmessagecaption",
    "editmessagemedia",
    "editmessagelivelocation",
    "stopmessagelivelocation",
    "editmessagechecklist",
    "editmessagereplymarkup",
    "stoppoll",
    // Copying, forwarding, deleting, reacting, answering.
    "copymessage",
    "copymessages",
    "forwardmessage",
    "forwardmessages",
    "deletemessage",
    "deletemessages",
    "setmessagereaction",
    "answercallbackquery",
    "answerinlinequery",
    "answerwebappquery",
];

/// Whether `raw` may call `method`. Bot API method names are case-insensitive, so the
/// check is too.
pub fn raw_method_allowed(method: &str) -> bool {
    RAW_METHODS.contains(&method.to_ascii_lowercase().as_str())
}

/// One Bot API call: the method and its JSON body.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub body: Vec<u8>,
}

fn unsupported(field: &str, detail: &str) -> SendError {
    SendError::unsupported(field, format!("Telegram: {detail}"))
}

/// A Telegram message id (an integer).
fn message_id(field: &str, id: &str) -> Result<i64, SendError> {
    id.parse::<i64>()
        .map_err(|_| unsupported(field, "must be a Telegram message id (an integer)"))
}

/// `chat_id`: a number, or `@channelusername`.
fn chat_id(to: &str) -> Value {
    to.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(to))
}

/// Builds the calls for `msg`, in order; none when there is nothing to call (`read`
/// outside a business connection, `typing` off: the Bot API has no such action).
pub fn request(msg: &OutboundMessage) -> Result<Vec<Request>, SendError> {
    if msg.tag.is_some() {
        return Err(unsupported(
            "message.tag",
            "message tags are Messenger's and Instagram's",
        ));
    }
    if msg.messaging_type.is_some() {
        return Err(unsupported(
            "message.messaging_type",
            "messaging_type is Messenger's and Instagram's",
        ));
    }
    if let Content::Raw { body, method } = &msg.content {
        let Some(method) = method else {
            return Err(unsupported(
                "message.method",
                "`raw` needs the Bot API `method` to call (e.g. sendLocation)",
            ));
        };
        if !raw_method_allowed(method) {
            return Err(unsupported(
                "method",
                "only sending, editing, deleting, reaction and chat-action methods may be called with `raw`",
            ));
        }
        if msg.business_connection_id.is_some() {
            return Err(unsupported(
                "business_connection_id",
                "a `raw` body is sent as given: put business_connection_id in it",
            ));
        }
        return Ok(vec![Request {
            method: method.clone(),
            body: body.get().as_bytes().to_vec(),
        }]);
    }
    if let Content::CallbackAnswer {
        callback_query_id,
        text,
        show_alert,
    } = &msg.content
    {
        return callback_answer(msg, callback_query_id, text.as_deref(), *show_alert);
    }
    let to = match &msg.to {
        Recipient::User(to) => to,
        Recipient::Comment(_) => {
            return Err(unsupported(
                "comment_id",
                "there are no comments to reply to",
            ))
        }
        Recipient::InBody => return Err(unsupported("to", "`to` is required")),
    };
    let mut body = Map::new();
    if let Some(bc) = &msg.business_connection_id {
        body.insert("business_connection_id".into(), bc.clone().into());
    }
    body.insert("chat_id".into(), chat_id(to));
    if let Some(r) = &msg.reply_to {
        if matches!(
            msg.content,
            Content::Read { .. } | Content::Typing { .. } | Content::Reaction { .. }
        ) {
            return Err(unsupported(
                "message.reply_to",
                "only a message can quote one",
            ));
        }
        body.insert(
            "reply_parameters".into(),
            json!({ "message_id": message_id("message.reply_to", r)? }),
        );
    }
    let method = match &msg.content {
        Content::Text { text, preview_url } => {
            body.insert("text".into(), text.clone().into());
            if *preview_url == Some(false) {
                body.insert("link_preview_options".into(), json!({"is_disabled": true}));
            }
            "sendMessage"
        }
        Content::Media {
            kind,
            source,
            caption,
            voice,
            ..
        } => {
            let (method, field) = match kind {
                MediaKind::Image => ("sendPhoto", "photo"),
                MediaKind::Audio if *voice => ("sendVoice", "voice"),
                MediaKind::Audio => ("sendAudio", "audio"),
                MediaKind::Video => ("sendVideo", "video"),
                MediaKind::Document => ("sendDocument", "document"),
                MediaKind::Sticker => ("sendSticker", "sticker"),
            };
            let value = match source {
                MediaSource::Url(u) => u.clone(),
                MediaSource::Id(id) => id.clone(),
            };
            body.insert(field.into(), value.into());
            if let Some(c) = caption {
                if *kind == MediaKind::Sticker {
                    return Err(unsupported("message.caption", "stickers have no caption"));
                }
                body.insert("caption".into(), c.clone().into());
            }
            method
        }
        // The Bot API's location has no name or address (a venue needs both and is
        // another kind of message): the pin is sent, the labels are not.
        Content::Location {
            latitude,
            longitude,
            ..
        } => {
            body.insert("latitude".into(), json!(latitude));
            body.insert("longitude".into(), json!(longitude));
            "sendLocation"
        }
        Content::Contacts { contacts } => return contact_calls(body, contacts),
        Content::MediaGroup { items } => {
            body.insert("media".into(), media_group(items)?);
            "sendMediaGroup"
        }
        Content::Template { .. } => {
            return Err(unsupported("message.kind", "templates are WhatsApp's"))
        }
        Content::Interactive {
            text,
            header,
            footer,
            choices,
        } => {
            if header.is_some() {
                return Err(unsupported("message.header", "no header on this channel"));
            }
            if footer.is_some() {
                return Err(unsupported("message.footer", "no footer on this channel"));
            }
            let button = |title: &str, id: Option<&String>, url: Option<&String>| match url {
                Some(u) => json!([{ "text": title, "url": u }]),
                None => json!([{ "text": title, "callback_data": id }]),
            };
            let rows: Vec<Value> = match choices {
                Choices::Buttons(b) | Choices::QuickReplies(b) => b
                    .iter()
                    .map(|b| button(&b.title, b.id.as_ref(), b.url.as_ref()))
                    .collect(),
                Choices::List { sections, .. } => sections
                    .iter()
                    .flat_map(|s| s.rows.iter())
                    .map(|r| button(&r.title, Some(&r.id), None))
                    .collect(),
                Choices::Flow(_) => {
                    return Err(unsupported("message.flow", "WhatsApp Flows are WhatsApp's"))
                }
            };
            body.insert("text".into(), text.clone().into());
            body.insert("reply_markup".into(), json!({ "inline_keyboard": rows }));
            "sendMessage"
        }
        Content::Reaction {
            message_id: id,
            emoji,
        } => {
            if msg.business_connection_id.is_some() {
                return Err(unsupported(
                    "business_connection_id",
                    "setMessageReaction cannot act through a business connection",
                ));
            }
            body.insert(
                "message_id".into(),
                message_id("message.message_id", id)?.into(),
            );
            let reaction = if emoji.is_empty() {
                json!([])
            } else {
                json!([{ "type": "emoji", "emoji": emoji }])
            };
            body.insert("reaction".into(), reaction);
            "setMessageReaction"
        }
        Content::Read { message_id: id } => {
            let id = message_id("message.message_id", id)?;
            if msg.business_connection_id.is_none() {
                return Ok(Vec::new());
            }
            body.insert("message_id".into(), id.into());
            "readBusinessMessage"
        }
        Content::Typing { on: false, .. } => return Ok(Vec::new()),
        Content::Typing { on: true, .. } => {
            body.insert("action".into(), "typing".into());
            "sendChatAction"
        }
        Content::Raw { .. } | Content::CallbackAnswer { .. } => {
            return Err(unsupported("message.kind", "unreachable"))
        }
    };
    Ok(vec![Request {
        method: method.to_owned(),
        body: serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
    }])
}

/// `sendMediaGroup`'s `media`: photos and videos may mix; documents and audio files
/// are grouped only with their own kind (the Bot API's rule).
fn media_group(items: &[GroupItem]) -> Result<Value, SendError> {
    let visual = |k: MediaKind| matches!(k, MediaKind::Image | MediaKind::Video);
    let first = items.first().map(|i| i.kind);
    let mut media = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let fits = match first {
            Some(f) if visual(f) => visual(item.kind),
            Some(f) => item.kind == f,
            None => true,
        };
        if !fits {
            return Err(unsupported(
                &format!("message.items[{n}].kind"),
                "photos and videos may be grouped together; documents and audio only with their own kind",
            ));
        }
        let ty = match item.kind {
            MediaKind::Image => "photo",
            MediaKind::Video => "video",
            MediaKind::Document => "document",
            _ => "audio",
        };
        let value = match &item.source {
            MediaSource::Url(u) => u.clone(),
            MediaSource::Id(id) => id.clone(),
        };
        let mut m = json!({"type": ty, "media": value});
        if let Some(c) = &item.caption {
            m["caption"] = c.clone().into();
        }
        media.push(m);
    }
    Ok(Value::Array(media))
}

/// `answerCallbackQuery`: it names the button press, not the chat (`to` is not sent).
fn callback_answer(
    msg: &OutboundMessage,
    callback_query_id: &str,
    text: Option<&str>,
    show_alert: bool,
) -> Result<Vec<Request>, SendError> {
    if msg.reply_to.is_some() {
        return Err(unsupported(
            "message.reply_to",
            "a callback answer quotes nothing",
        ));
    }
    if msg.business_connection_id.is_some() {
        return Err(unsupported(
            "business_connection_id",
            "a callback answer needs no business connection",
        ));
    }
    if text.is_some_and(|t| t.chars().count() > 200) {
        return Err(unsupported(
            "message.text",
            "a callback answer's text is at most 200 characters",
        ));
    }
    let mut body = Map::new();
    body.insert("callback_query_id".into(), callback_query_id.into());
    if let Some(t) = text {
        body.insert("text".into(), t.into());
    }
    if show_alert {
        body.insert("show_alert".into(), true.into());
    }
    Ok(vec![Request {
        method: "answerCallbackQuery".into(),
        body: serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
    }])
}

/// One `sendContact` per contact (the Bot API sends one card a message), from its first
/// `phones[].phone` and `name.first_name` (else `name.formatted_name`), with
/// `name.last_name`. `base` holds `chat_id`, `business_connection_id`, and the quote,
/// which only the first card carries.
fn contact_calls(
    base: Map<String, Value>,
    contacts: &[Map<String, Value>],
) -> Result<Vec<Request>, SendError> {
    let mut calls = Vec::with_capacity(contacts.len());
    for (i, c) in contacts.iter().enumerate() {
        let path = format!("message.contacts[{i}]");
        let phone = text(
            c.get("phones")
                .and_then(Value::as_array)
                .and_then(|p| p.first())
                .and_then(|p| p.get("phone")),
        )
        .ok_or_else(|| {
            unsupported(
                &format!("{path}.phones"),
                "a contact needs a phone number (`phones[0].phone`)",
            )
        })?;
        let name = c.get("name");
        let first_name = text(name.and_then(|n| n.get("first_name")))
            .or_else(|| text(name.and_then(|n| n.get("formatted_name"))))
            .ok_or_else(|| {
                unsupported(
                    &format!("{path}.name.first_name"),
                    "a contact needs `name.first_name` (or `name.formatted_name`)",
                )
            })?;
        let mut body = base.clone();
        if i > 0 {
            body.remove("reply_parameters");
        }
        body.insert("phone_number".into(), phone.into());
        body.insert("first_name".into(), first_name.into());
        if let Some(last) = text(name.and_then(|n| n.get("last_name"))) {
            body.insert("last_name".into(), last.into());
        }
        calls.push(Request {
            method: "sendContact".into(),
            body: serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
        });
    }
    Ok(calls)
}

/// A non-empty string.
fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The Telegram sender for one request.
pub struct Telegram<'a> {
    pub client: &'a TelegramClient,
    pub endpoint: TelegramEndpoint,
}

impl Outbound for Telegram<'_> {
    /// Makes the calls in order; the receipt carries the first message's id. Once one
    /// call went through, a later failure is never retried by the relay (that would send
    /// the earlier ones again): a failure that would be is answered as indeterminate.
    async fn send(&self, msg: &OutboundMessage, token: &AccessToken) -> Result<Receipt, SendError> {
        let calls = request(msg)?;
        let total = calls.len();
        let mut first_id = None;
        for (n, req) in calls.into_iter().enumerate() {
            let result = match self
                .client
                .call(&self.endpoint, token, &req.method, req.body)
                .await
            {
                Ok(r) => r,
                Err(SendError::Transient(m)) if n > 0 => {
                    return Err(SendError::Indeterminate(format!(
                        "{n} of {total} messages were sent, then: {m}"
                    )))
                }
                Err(e) => return Err(e),
            };
            // `sendMediaGroup` answers the array of its messages.
            let result = match result {
                Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
                other => other,
            };
            if n == 0 {
                first_id = result.get("message_id").and_then(|v| match v {
                    Value::Number(n) => Some(n.to_string()),
                    Value::String(s) => Some(s.clone()),
                    _ => None,
                });
            }
        }
        Ok(Receipt { id: first_id })
    }
}
