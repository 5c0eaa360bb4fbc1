//! Messenger Send API: `POST /{version}/{page_id}/messages` with the Page token as
//! `Authorization: Bearer`. Instagram uses the same body shapes ([`body_for`] is shared;
//! see [`crate::channels::instagram::outbound`]).
//!
//! - `recipient`: `{"id": PSID}`, or `{"comment_id": …}` for a private reply to a comment;
//! - `messaging_type` defaults to `RESPONSE`; a `tag` (e.g. `HUMAN_AGENT`) makes it
//!   `MESSAGE_TAG`;
//! - text; image/audio/video/document as an attachment by `url` (`is_reusable`) or
//!   `attachment_id`; `buttons` as a button template (postback or web_url buttons);
//!   `quick_replies` as text quick replies;
//! - reaction, read and typing are sender actions (`react`/`unreact`, `mark_seen`,
//!   `typing_on`/`typing_off`).
//!
//! Refused with a 400 naming the field: captions (attachments have none: send the text
//! as its own message), stickers, templates, lists, header/footer, `reply_to` (the Send
//! API has no quoting; `raw` reaches anything the API offers), location and contacts,
//! `business_connection_id` (Telegram's). A document's `filename` is not sent: the name
//! comes from the URL; an audio's `voice` is accepted and sent as the audio attachment it
//! is (the Send API has no separate voice type).

use serde_json::{json, Map, Value};

use crate::channels::meta::graph::{GraphClient, GraphEndpoint, GraphPath};
use crate::channels::outbound::{
    Choices, Content, MediaKind, MediaSource, Outbound, OutboundMessage, Receipt, Recipient,
    SendError,
};
use crate::vault::AccessToken;

/// The Messenger sender for one request.
pub struct Messenger<'a> {
    pub graph: &'a GraphClient,
    pub endpoint: GraphEndpoint,
}

/// A Send API body and whether its answer carries a `message_id`.
#[derive(Debug)]
pub struct SendBody {
    pub body: Vec<u8>,
    pub expects_id: bool,
}

/// Builds the Send API body shared by Messenger and Instagram; `channel` names the
/// channel in errors. `sticker_ok`: whether stickers may be sent.
pub fn body_for(msg: &OutboundMessage, channel: &str) -> Result<SendBody, SendError> {
    let unsupported =
        |field: &str, detail: &str| SendError::unsupported(field, format!("{channel}: {detail}"));
    if msg.business_connection_id.is_some() {
        return Err(unsupported(
            "business_connection_id",
            "business connections are Telegram's",
        ));
    }
    if let Content::Raw { body, method } = &msg.content {
        if method.is_some() {
            return Err(unsupported(
                "message.method",
                "`method` is only for Telegram",
            ));
        }
        return Ok(SendBody {
            body: body.get().as_bytes().to_vec(),
            expects_id: true,
        });
    }
    let recipient = match &msg.to {
        Recipient::User(id) => json!({ "id": id }),
        Recipient::Comment(c) => json!({ "comment_id": c }),
        Recipient::InBody => return Err(unsupported("to", "`to` is required")),
    };
    if msg.reply_to.is_some() {
        return Err(unsupported(
            "message.reply_to",
            "the Send API cannot quote a message (use `raw` for provider-specific fields)",
        ));
    }
    let mut body = Map::new();
    body.insert("recipient".into(), recipient);

    let sender_action = match &msg.content {
        Content::Read { .. } => Some(("mark_seen", None)),
        Content::Typing { on: true, .. } => Some(("typing_on", None)),
        Content::Typing { on: false, .. } => Some(("typing_off", None)),
        Content::Reaction { message_id, emoji } if emoji.is_empty() => {
            Some(("unreact", Some(json!({ "message_id": message_id }))))
        }
        Content::Reaction { message_id, emoji } => Some((
            "react",
            Some(json!({"message_id": message_id, "reaction": emoji})),
        )),
        _ => None,
    };
    if let Some((action, payload)) = sender_action {
        if matches!(msg.to, Recipient::Comment(_)) {
            return Err(unsupported(
                "comment_id",
                "a private reply must be a message, not a sender action",
            ));
        }
        if msg.tag.is_some() || msg.messaging_type.is_some() {
            return Err(unsupported(
                "message.tag",
                "sender actions take no messaging_type or tag",
            ));
        }
        body.insert("sender_action".into(), action.into());
        if let Some(p) = payload {
            body.insert("payload".into(), p);
        }
        return Ok(SendBody {
            body: serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
            expects_id: false,
        });
    }

    let messaging_type = match (&msg.messaging_type, &msg.tag) {
        (Some(t), Some(_)) if t != "MESSAGE_TAG" => {
            return Err(unsupported(
                "message.messaging_type",
                "a tag requires messaging_type MESSAGE_TAG",
            ))
        }
        (Some(t), None) if t == "MESSAGE_TAG" => {
            return Err(unsupported("message.tag", "MESSAGE_TAG requires a tag"))
        }
        (_, Some(_)) => "MESSAGE_TAG".to_owned(),
        (Some(t), None) => t.clone(),
        (None, None) => "RESPONSE".to_owned(),
    };
    body.insert("messaging_type".into(), messaging_type.into());
    if let Some(tag) = &msg.tag {
        body.insert("tag".into(), tag.clone().into());
    }

    let message = match &msg.content {
        Content::Text { text, .. } => json!({ "text": text }),
        Content::Media {
            kind,
            source,
            caption,
            ..
        } => {
            if caption.is_some() {
                return Err(unsupported(
                    "message.caption",
                    "attachments have no caption; send the text as its own message",
                ));
            }
            let ty = match kind {
                MediaKind::Image => "image",
                MediaKind::Audio => "audio",
                MediaKind::Video => "video",
                MediaKind::Document => "file",
                MediaKind::Sticker => {
                    return Err(unsupported("message.kind", "stickers cannot be sent"))
                }
            };
            let payload = match source {
                MediaSource::Url(u) => json!({"url": u, "is_reusable": true}),
                MediaSource::Id(id) => json!({ "attachment_id": id }),
            };
            json!({"attachment": {"type": ty, "payload": payload}})
        }
        Content::MediaGroup { .. } => {
            return Err(unsupported(
                "message.kind",
                "there are no media groups: send each file as its own message",
            ))
        }
        Content::CallbackAnswer { .. } => {
            return Err(unsupported(
                "message.kind",
                "callback answers are Telegram's",
            ))
        }
        Content::Location { .. } => {
            return Err(unsupported(
                "message.kind",
                "the Send API cannot send a location (send a link to a map as text)",
            ))
        }
        Content::Contacts { .. } => {
            return Err(unsupported(
                "message.kind",
                "the Send API cannot send contact cards",
            ))
        }
        Content::Template { .. } => return Err(unsupported(
            "message.kind",
            "templates are WhatsApp's (use a tag such as HUMAN_AGENT outside the 24-hour window)",
        )),
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
            match choices {
                Choices::Buttons(buttons) => {
                    let buttons: Vec<Value> = buttons
                        .iter()
                        .map(|b| match (&b.id, &b.url) {
                            (_, Some(url)) => {
                                json!({"type": "web_url", "url": url, "title": b.title})
                            }
                            (id, None) => {
                                json!({"type": "postback", "title": b.title, "payload": id})
                            }
                        })
                        .collect();
                    json!({"attachment": {"type": "template", "payload": {
                        "template_type": "button", "text": text, "buttons": buttons
                    }}})
                }
                Choices::QuickReplies(replies) => {
                    let replies: Vec<Value> = replies
                        .iter()
                        .map(|q| json!({"content_type": "text", "title": q.title, "payload": q.id}))
                        .collect();
                    json!({"text": text, "quick_replies": replies})
                }
                Choices::List { .. } => {
                    return Err(unsupported(
                        "message.list",
                        "there are no list messages; use `buttons` or `quick_replies`",
                    ))
                }
                Choices::Flow(_) => {
                    return Err(unsupported("message.flow", "WhatsApp Flows are WhatsApp's"))
                }
            }
        }
        Content::Reaction { .. }
        | Content::Read { .. }
        | Content::Typing { .. }
        | Content::Raw { .. } => return Err(unsupported("message.kind", "not a message")),
    };
    body.insert("message".into(), message);
    Ok(SendBody {
        body: serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
        expects_id: true,
    })
}

/// Posts a Send API body to `path` and reads `message_id`.
pub async fn post(
    graph: &GraphClient,
    endpoint: &GraphEndpoint,
    path: &GraphPath,
    body: SendBody,
    token: &AccessToken,
) -> Result<Receipt, SendError> {
    let answer = graph.post_json(endpoint, path, body.body, token).await?;
    let id = answer
        .get("message_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Receipt {
        id: if body.expects_id { id } else { None },
    })
}

/// The Graph path Messenger sends to.
pub fn path(msg: &OutboundMessage) -> GraphPath {
    GraphPath::new(&[msg.channel.id(), "messages"])
}

impl Outbound for Messenger<'_> {
    async fn send(&self, msg: &OutboundMessage, token: &AccessToken) -> Result<Receipt, SendError> {
        let body = body_for(msg, "Messenger")?;
        post(self.graph, &self.endpoint, &path(msg), body, token).await
    }
}
