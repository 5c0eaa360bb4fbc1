//! Telegram Bot API sends and file downloads.
//!
//! Calls go to `{api_base}/bot<token>/METHOD`: the token is in the path, so that URL is
//! never logged, shown or put in an error (reqwest errors are stripped with
//! `without_url`, and nothing here formats the URL). Answers are
//! `{"ok": true, "result": …}` or `{"ok": false, "error_code", "description",
//! "parameters": {"retry_after", "migrate_to_chat_id"}}`:
//! 429 → `rate_limited` (`retry_after`), 403 about the person or chat ("bot was blocked
//! by the user", "user is deactivated", "bot was kicked", "bot can't initiate
//! conversation", "bot is not a member": [`RECIPIENT_GONE`]) → `recipient_unavailable`,
//! 401 → `token_invalid` (the token was revoked), 5xx → retried, others (another 403
//! too) → `provider_error`.
//!
//! Kinds: text (`link_preview_options` when `preview_url` is false), sendPhoto /
//! sendAudio / sendVideo / sendDocument / sendSticker by URL or `file_id`, inline
//! keyboards for buttons, lists and quick replies, `setMessageReaction`,
//! `sendChatAction` for typing; `read` is a no-op (bots cannot mark as read); `raw`
//! needs `method`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::channels::meta::graph::{build_http, read_capped, retry_after};
use crate::channels::outbound::{
    Choices, Content, MediaKind, MediaSource, Outbound, OutboundMessage, ProviderDetail, Receipt,
    Recipient, SendError,
};
use crate::config::TelegramSettings;
use crate::vault::AccessToken;

/// Largest Bot API JSON answer read.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Where Bot API calls go, from the live settings.
#[derive(Debug, Clone)]
pub struct TelegramEndpoint {
    base: String,
    timeout: Duration,
}

impl TelegramEndpoint {
    pub fn from_settings(t: &TelegramSettings) -> Self {
        Self {
            base: t.api_base.trim_end_matches('/').to_owned(),
            timeout: Duration::from_millis(t.timeout_ms),
        }
    }

    /// `{base}/bot<token>/{method}`: secret, never log it.
    fn method_url(&self, token: &AccessToken, method: &str) -> String {
        format!("{}/bot{}/{}", self.base, token.expose(), method)
    }

    /// `{base}/file/bot<token>/{file_path}`: secret, never log it.
    fn file_url(&self, token: &AccessToken, file_path: &str) -> String {
        format!("{}/file/bot{}/{}", self.base, token.expose(), file_path)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// The pooled Bot API client.
#[derive(Clone)]
pub struct TelegramClient {
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default)]
    migrate_to_chat_id: Option<i64>,
}

impl TelegramClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: build_http(Duration::from_secs(30))?,
        })
    }

    /// Calls `method` with a JSON body; the `result` on success.
    pub async fn call(
        &self,
        endpoint: &TelegramEndpoint,
        token: &AccessToken,
        method: &str,
        body: Vec<u8>,
    ) -> Result<Value, SendError> {
        let resp = self
            .http
            .post(endpoint.method_url(token, method))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(endpoint.timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| crate::channels::outbound::transport_error(&e.without_url()))?;
        let status = resp.status().as_u16();
        let header_wait = retry_after(resp.headers());
        let bytes = read_capped(resp, MAX_RESPONSE_BYTES).await?;
        let answer: Option<Answer> = serde_json::from_slice(&bytes).ok();
        match answer {
            Some(a) if a.ok && (200..300).contains(&status) => {
                Ok(a.result.unwrap_or(Value::Bool(true)))
            }
            Some(a) => Err(classify(status, a, header_wait, token)),
            None if status >= 500 => Err(SendError::Transient(format!(
                "the Bot API answered HTTP {status}"
            ))),
            None if (200..300).contains(&status) => Err(SendError::Indeterminate(
                "the Bot API answered 2xx with an unreadable body".into(),
            )),
            None => Err(SendError::Provider(Box::new(ProviderDetail {
                provider: "telegram",
                http_status: status,
                message: format!("HTTP {status} without a Bot API answer"),
                ..ProviderDetail::default()
            }))),
        }
    }

    /// `getFile`, then the download response (headers in, body not yet read).
    pub async fn download(
        &self,
        endpoint: &TelegramEndpoint,
        token: &AccessToken,
        file_id: &str,
    ) -> Result<reqwest::Response, SendError> {
        let body = serde_json::to_vec(&json!({ "file_id": file_id })).unwrap_or_default();
        let file = match self.call(endpoint, token, "getFile", body).await {
            Err(SendError::Indeterminate(m)) => return Err(SendError::Transient(m)),
            other => other?,
        };
        let file_path = file
            .get("file_path")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty() && !p.contains("..") && !p.starts_with('/'))
            .ok_or_else(|| {
                SendError::Provider(Box::new(ProviderDetail {
                    provider: "telegram",
                    http_status: 200,
                    message: "getFile gave no file_path (the file may be larger than 20 MB)".into(),
                    ..ProviderDetail::default()
                }))
            })?;
        let url = endpoint.file_url(token, file_path);
        let resp = tokio::time::timeout(endpoint.timeout, self.http.get(url).send())
            .await
            .map_err(|_| SendError::Transient("the Bot API file server did not answer".into()))?
            .map_err(|e| SendError::Transient(e.without_url().to_string()))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let bytes = read_capped(resp, MAX_RESPONSE_BYTES)
            .await
            .unwrap_or_default();
        Err(match serde_json::from_slice::<Answer>(&bytes) {
            Ok(a) => classify(status.as_u16(), a, None, token),
            Err(_) if status.is_server_error() => {
                SendError::Transient(format!("the Bot API file server answered HTTP {status}"))
            }
            Err(_) => SendError::Provider(Box::new(ProviderDetail {
                provider: "telegram",
                http_status: status.as_u16(),
                message: format!("the file download answered HTTP {}", status.as_u16()),
                ..ProviderDetail::default()
            })),
        })
    }
}

/// What a Bot API 403 says when the person (or the chat) cannot be reached: the bot was
/// blocked, the account deleted, the bot removed from the group or channel, or the user
/// never started the bot. Descriptions are not contractual, so they are matched as
/// lower-case fragments.
pub const RECIPIENT_GONE: &[&str] = &[
    "bot was blocked by the user",
    "user is deactivated",
    "bot was kicked",
    "bot can't initiate conversation",
    "bot is not a member",
];

fn recipient_gone(description: &str) -> bool {
    let d = description.to_ascii_lowercase();
    RECIPIENT_GONE.iter().any(|f| d.contains(f))
}

/// A Bot API refusal as a [`SendError`]; the description is redacted of the bot token
/// (it can quote it) before it is cut to length.
fn classify(
    status: u16,
    a: Answer,
    header_wait: Option<Duration>,
    token: &AccessToken,
) -> SendError {
    let code = a.error_code.unwrap_or(i64::from(status));
    let params = a.parameters;
    let detail = Box::new(ProviderDetail {
        provider: "telegram",
        http_status: status,
        code: Some(code),
        subcode: None,
        message: crate::redact::redact_then_truncate(
            a.description.as_deref().unwrap_or_default(),
            token.expose(),
            512,
        ),
        fbtrace_id: None,
        migrate_to_chat_id: params.as_ref().and_then(|p| p.migrate_to_chat_id),
        reason: None,
    });
    match code {
        429 => SendError::RateLimited {
            retry_after: params
                .and_then(|p| p.retry_after)
                .map(Duration::from_secs)
                .or(header_wait)
                .unwrap_or(Duration::from_secs(5)),
            detail,
        },
        403 if recipient_gone(a.description.as_deref().unwrap_or_default()) => {
            SendError::RecipientUnavailable(detail)
        }
        401 => SendError::TokenInvalid(detail),
        c if c >= 500 => SendError::Transient(format!("the Bot API answered error {c}")),
        _ => SendError::Provider(detail),
    }
}

/// Bot API methods a tenant may call with `raw`, besides every `send…` and `edit…`:
/// those that act on messages. Bot management (`setWebhook`, `deleteWebhook`, `logOut`,
/// `close`, `setMyCommands`, …) is never reachable through a tenant's API key.
const RAW_METHODS: &[&str] = &[
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
    "stoppoll",
    "stopmessagelivelocation",
];

/// Whether `raw` may call `method`. Bot API method names are case-insensitive, so the
/// check is too.
pub fn raw_method_allowed(method: &str) -> bool {
    let m = method.to_ascii_lowercase();
    m.starts_with("send") || m.starts_with("edit") || RAW_METHODS.contains(&m.as_str())
}

/// One Bot API call: the method, its JSON body, and whether it makes a message.
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

/// Builds the call for `msg`; `None` when there is nothing to call (`read`, `typing`
/// off: the Bot API has no such action).
pub fn request(msg: &OutboundMessage) -> Result<Option<Request>, SendError> {
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
        return Ok(Some(Request {
            method: method.clone(),
            body: body.get().as_bytes().to_vec(),
        }));
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
            ..
        } => {
            let (method, field) = match kind {
                MediaKind::Image => ("sendPhoto", "photo"),
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
            };
            body.insert("text".into(), text.clone().into());
            body.insert("reply_markup".into(), json!({ "inline_keyboard": rows }));
            "sendMessage"
        }
        Content::Reaction {
            message_id: id,
            emoji,
        } => {
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
            message_id("message.message_id", id)?;
            return Ok(None);
        }
        Content::Typing { on: false, .. } => return Ok(None),
        Content::Typing { on: true, .. } => {
            body.insert("action".into(), "typing".into());
            "sendChatAction"
        }
        Content::Raw { .. } => return Err(unsupported("message.kind", "unreachable")),
    };
    Ok(Some(Request {
        method: method.to_owned(),
        body: serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
    }))
}

/// The Telegram sender for one request.
pub struct Telegram<'a> {
    pub client: &'a TelegramClient,
    pub endpoint: TelegramEndpoint,
}

impl Outbound for Telegram<'_> {
    async fn send(&self, msg: &OutboundMessage, token: &AccessToken) -> Result<Receipt, SendError> {
        let Some(req) = request(msg)? else {
            return Ok(Receipt { id: None });
        };
        let result = self
            .client
            .call(&self.endpoint, token, &req.method, req.body)
            .await?;
        let id = result.get("message_id").and_then(|v| match v {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) => Some(s.clone()),
            _ => None,
        });
        Ok(Receipt { id })
    }
}
