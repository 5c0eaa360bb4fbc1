//! WhatsApp Cloud API sends: `POST /{version}/{phone_number_id}/messages` with the
//! channel's token as `Authorization: Bearer`. [`request`] builds the body (pure, so every
//! kind is unit-tested); [`WhatsApp::send`] posts it.
//!
//! - text (`preview_url`, default false), image/audio/video/document/sticker by `link` or
//!   `id` (caption on image, video and document; filename on document), template,
//!   interactive reply buttons and lists, one link button as a call-to-action URL message
//!   (`cta_url`), a media header (image, video, document) on buttons, reaction,
//!   `context.message_id` for `reply_to`;
//! - `audio` with `voice: true` is a voice note (`audio.voice`: an OGG/OPUS file);
//! - location (`latitude`, `longitude`, `name`, `address`); contacts as given (WhatsApp's
//!   own contact shape);
//! - `read` is the mark-as-read call; `typing` is mark-as-read with `typing_indicator`
//!   (WhatsApp shows typing only in answer to a message, so `message_id` is required);
//! - an interactive `flow` opens a WhatsApp Flow (`type: flow`, `flow_message_version`
//!   3, by `flow_id` or `flow_name`, `navigate` with its first screen or `data_exchange`);
//! - `to` a business-scoped user id (`US.1349…`, a user known without a phone number)
//!   goes in `recipient` instead of `to`, as the Cloud API takes it;
//! - `raw` is posted unchanged to the same endpoint.
//!
//! A permission error (Graph 10, 200–299) means the token cannot reach this phone number:
//! `token_invalid` with a reason ([`token_cannot_reach_asset`]).

use serde_json::{json, Map, Value};

use crate::channels::meta::errors::token_cannot_reach_asset;
use crate::channels::meta::graph::{GraphClient, GraphEndpoint, GraphPath};
use crate::channels::outbound::{
    Choices, Content, Flow, FlowAction, FlowRef, Header, MediaKind, MediaSource, Outbound,
    OutboundMessage, Receipt, Recipient, SendError,
};
use crate::vault::AccessToken;

/// The WhatsApp sender for one request (the client is shared and pooled).
pub struct WhatsApp<'a> {
    pub graph: &'a GraphClient,
    pub endpoint: GraphEndpoint,
}

/// Path and body of one send.
#[derive(Debug)]
pub struct Request {
    pub path: GraphPath,
    pub body: Vec<u8>,
    /// Whether the answer carries a message id (`messages[0].id`).
    pub expects_id: bool,
}

fn unsupported(field: &str, detail: &str) -> SendError {
    SendError::unsupported(field, format!("WhatsApp: {detail}"))
}

/// Builds the Graph request for `msg`.
pub fn request(msg: &OutboundMessage) -> Result<Request, SendError> {
    let path = GraphPath::new(&[msg.channel.id(), "messages"]);
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
        return Ok(Request {
            path,
            body: body.get().as_bytes().to_vec(),
            expects_id: true,
        });
    }
    let to = match &msg.to {
        Recipient::User(to) => to.clone(),
        Recipient::Comment(_) => {
            return Err(unsupported(
                "comment_id",
                "there are no comments to reply to",
            ))
        }
        Recipient::InBody => return Err(unsupported("to", "`to` is required")),
    };

    let mut body = Map::new();
    body.insert("messaging_product".into(), "whatsapp".into());
    let mut expects_id = true;
    match &msg.content {
        Content::Read { message_id } => {
            body.insert("status".into(), "read".into());
            body.insert("message_id".into(), message_id.clone().into());
            expects_id = false;
        }
        Content::Typing { on, message_id } => {
            if !on {
                return Err(unsupported(
                    "message.on",
                    "the typing indicator cannot be stopped; it ends on the next message or after 25 s",
                ));
            }
            let Some(message_id) = message_id else {
                return Err(unsupported(
                    "message.message_id",
                    "typing is shown in answer to a received message: give its message_id",
                ));
            };
            body.insert("status".into(), "read".into());
            body.insert("message_id".into(), message_id.clone().into());
            body.insert("typing_indicator".into(), json!({"type": "text"}));
            expects_id = false;
        }
        content => {
            body.insert("recipient_type".into(), "individual".into());
            // A user known only by a business-scoped user id is sent to in `recipient`
            // (Cloud API: `to` takes phone numbers, `recipient` BSUIDs and parent BSUIDs).
            let field = if is_business_scoped_user_id(&to) {
                "recipient"
            } else {
                "to"
            };
            body.insert(field.into(), to.into());
            if let Some(r) = &msg.reply_to {
                body.insert("context".into(), json!({ "message_id": r }));
            }
            let (kind, object) = message_object(content)?;
            body.insert("type".into(), kind.into());
            body.insert(kind.into(), object);
        }
    }
    if !expects_id && msg.reply_to.is_some() {
        return Err(unsupported(
            "message.reply_to",
            "read and typing quote nothing",
        ));
    }
    Ok(Request {
        path,
        body: serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
        expects_id,
    })
}

/// An interactive `flow` message's `action.parameters` (`flow_message_version` 3).
fn flow_parameters(flow: &Flow) -> Value {
    let mut p = Map::new();
    p.insert("flow_message_version".into(), "3".into());
    if let Some(t) = &flow.token {
        p.insert("flow_token".into(), t.clone().into());
    }
    match &flow.flow {
        FlowRef::Id(id) => p.insert("flow_id".into(), id.clone().into()),
        FlowRef::Name(name) => p.insert("flow_name".into(), name.clone().into()),
    };
    p.insert("flow_cta".into(), flow.cta.clone().into());
    if let Some(m) = &flow.mode {
        p.insert("mode".into(), m.clone().into());
    }
    match &flow.action {
        FlowAction::Navigate { screen, data } => {
            p.insert("flow_action".into(), "navigate".into());
            let mut payload = json!({ "screen": screen });
            if let Some(d) = data {
                payload["data"] = Value::Object(d.clone());
            }
            p.insert("flow_action_payload".into(), payload);
        }
        FlowAction::DataExchange => {
            p.insert("flow_action".into(), "data_exchange".into());
        }
    }
    Value::Object(p)
}

/// A business-scoped user id (BSUID): a two-letter country code, a period, then letters
/// and digits (`US.13491208655302741918`); a parent BSUID has `ENT.` after the country
/// (`US.ENT.11815799212886844830`). Phone numbers never contain a period.
pub fn is_business_scoped_user_id(to: &str) -> bool {
    let Some((country, rest)) = to.split_once('.') else {
        return false;
    };
    let rest = rest.strip_prefix("ENT.").unwrap_or(rest);
    country.len() == 2
        && country.bytes().all(|b| b.is_ascii_uppercase())
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The `type` and its object.
fn message_object(content: &Content) -> Result<(&'static str, Value), SendError> {
    Ok(match content {
        Content::Text { text, preview_url } => (
            "text",
            json!({"body": text, "preview_url": preview_url.unwrap_or(false)}),
        ),
        Content::Media {
            kind,
            source,
            caption,
            filename,
            voice,
        } => {
            let mut o = Map::new();
            match source {
                MediaSource::Url(u) => o.insert("link".into(), u.clone().into()),
                MediaSource::Id(id) => o.insert("id".into(), id.clone().into()),
            };
            if let Some(c) = caption {
                if matches!(kind, MediaKind::Audio | MediaKind::Sticker) {
                    return Err(unsupported(
                        "message.caption",
                        "audio and stickers have no caption",
                    ));
                }
                o.insert("caption".into(), c.clone().into());
            }
            if let Some(f) = filename {
                o.insert("filename".into(), f.clone().into());
            }
            if *voice {
                o.insert("voice".into(), true.into());
            }
            (kind.as_str(), Value::Object(o))
        }
        Content::Location {
            latitude,
            longitude,
            name,
            address,
        } => {
            let mut o = json!({"latitude": latitude, "longitude": longitude});
            if let Some(n) = name {
                o["name"] = n.clone().into();
            }
            if let Some(a) = address {
                o["address"] = a.clone().into();
            }
            ("location", o)
        }
        Content::Contacts { contacts } => (
            "contacts",
            Value::Array(contacts.iter().cloned().map(Value::Object).collect()),
        ),
        Content::Template {
            name,
            language,
            components,
        } => {
            let mut t = json!({"name": name, "language": {"code": language}});
            if !components.is_empty() {
                t["components"] = Value::Array(components.clone());
            }
            ("template", t)
        }
        Content::Interactive {
            text,
            header,
            footer,
            choices,
        } => {
            let mut i = Map::new();
            match header {
                None => {}
                Some(Header::Text(h)) => {
                    i.insert("header".into(), json!({"type": "text", "text": h}));
                }
                Some(Header::Media { .. }) if matches!(choices, Choices::List { .. }) => {
                    return Err(unsupported(
                        "message.header",
                        "a list message's header is text",
                    ))
                }
                Some(Header::Media {
                    kind,
                    source,
                    filename,
                }) => {
                    let mut o = Map::new();
                    match source {
                        MediaSource::Url(u) => o.insert("link".into(), u.clone().into()),
                        MediaSource::Id(id) => o.insert("id".into(), id.clone().into()),
                    };
                    if let Some(f) = filename {
                        o.insert("filename".into(), f.clone().into());
                    }
                    i.insert(
                        "header".into(),
                        json!({"type": kind.as_str(), kind.as_str(): Value::Object(o)}),
                    );
                }
            }
            i.insert("body".into(), json!({ "text": text }));
            if let Some(f) = footer {
                i.insert("footer".into(), json!({ "text": f }));
            }
            match choices {
                // One link button: a call-to-action URL message.
                Choices::Buttons(buttons) if buttons.iter().all(|b| b.url.is_some()) => {
                    if buttons.len() > 1 {
                        return Err(unsupported(
                            "message.buttons[1]",
                            "a call-to-action message has one link button",
                        ));
                    }
                    let b = &buttons[0];
                    i.insert("type".into(), "cta_url".into());
                    i.insert(
                        "action".into(),
                        json!({"name": "cta_url", "parameters": {"display_text": b.title, "url": b.url}}),
                    );
                }
                Choices::Buttons(buttons) => {
                    let mut out = Vec::with_capacity(buttons.len());
                    for (n, b) in buttons.iter().enumerate() {
                        let Some(id) = &b.id else {
                            return Err(unsupported(
                                &format!("message.buttons[{n}].url"),
                                "reply buttons carry an id; a link button is sent alone (a call-to-action URL message)",
                            ));
                        };
                        out.push(json!({"type": "reply", "reply": {"id": id, "title": b.title}}));
                    }
                    i.insert("type".into(), "button".into());
                    i.insert("action".into(), json!({ "buttons": out }));
                }
                Choices::List { button, sections } => {
                    let sections: Vec<Value> = sections
                        .iter()
                        .map(|s| {
                            let rows: Vec<Value> = s
                                .rows
                                .iter()
                                .map(|r| {
                                    let mut row = json!({"id": r.id, "title": r.title});
                                    if let Some(d) = &r.description {
                                        row["description"] = d.clone().into();
                                    }
                                    row
                                })
                                .collect();
                            let mut sec = json!({ "rows": rows });
                            if let Some(t) = &s.title {
                                sec["title"] = t.clone().into();
                            }
                            sec
                        })
                        .collect();
                    i.insert("type".into(), "list".into());
                    i.insert(
                        "action".into(),
                        json!({"button": button, "sections": sections}),
                    );
                }
                Choices::Flow(flow) => {
                    i.insert("type".into(), "flow".into());
                    i.insert(
                        "action".into(),
                        json!({"name": "flow", "parameters": flow_parameters(flow)}),
                    );
                }
                Choices::QuickReplies(_) => {
                    return Err(unsupported(
                        "message.quick_replies",
                        "there are no quick replies; use `buttons` (up to 3) or a `list`",
                    ))
                }
            }
            ("interactive", Value::Object(i))
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
        Content::Reaction { message_id, emoji } => (
            "reaction",
            json!({"message_id": message_id, "emoji": emoji}),
        ),
        // Handled by the caller.
        Content::Read { .. } | Content::Typing { .. } | Content::Raw { .. } => {
            return Err(unsupported("message.kind", "not a message"))
        }
    })
}

impl Outbound for WhatsApp<'_> {
    async fn send(&self, msg: &OutboundMessage, token: &AccessToken) -> Result<Receipt, SendError> {
        let req = request(msg)?;
        let answer = self
            .graph
            .post_json(&self.endpoint, &req.path, req.body, token)
            .await
            .map_err(token_cannot_reach_asset)?;
        let id = answer
            .pointer("/messages/0/id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(Receipt {
            id: if req.expects_id { id } else { None },
        })
    }
}
