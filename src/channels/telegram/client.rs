//! The Bot API client: calls and file downloads, and its answers classified.
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

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::channels::meta::graph::{build_http, read_capped, retry_after};
use crate::channels::outbound::{ProviderDetail, SendError};
use crate::channels::{build_url, UrlError};
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

    /// `{base}/bot<token>/{method}`, each part one encoded segment: secret, never log it.
    fn method_url(&self, token: &AccessToken, method: &str) -> Result<url::Url, SendError> {
        let bot = format!("bot{}", token.expose());
        build_url(&self.base, &[&bot, method], &[]).map_err(url_error)
    }

    /// `{base}/file/bot<token>/{file_path}`, each `/`-separated part of `file_path` one
    /// encoded segment: secret, never log it.
    fn file_url(&self, token: &AccessToken, file_path: &str) -> Result<url::Url, SendError> {
        let bot = format!("bot{}", token.expose());
        let mut segments = vec!["file", bot.as_str()];
        segments.extend(file_path.split('/'));
        build_url(&self.base, &segments, &[]).map_err(url_error)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

fn url_error(e: UrlError) -> SendError {
    match e {
        UrlError::DotSegment => SendError::Provider(Box::new(ProviderDetail {
            provider: "telegram",
            http_status: 200,
            message: "the Bot API named a path with a `.` or `..` part".into(),
            ..ProviderDetail::default()
        })),
        UrlError::Base => SendError::Transient("telegram.api_base cannot take a path".into()),
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
            .post(endpoint.method_url(token, method)?)
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
            .filter(|p| !p.is_empty() && !p.starts_with('/'))
            .ok_or_else(|| {
                SendError::Provider(Box::new(ProviderDetail {
                    provider: "telegram",
                    http_status: 200,
                    message: "getFile gave no file_path (the file may be larger than 20 MB)".into(),
                    ..ProviderDetail::default()
                }))
            })?;
        let url = endpoint.file_url(token, file_path)?;
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
            &[token.expose()],
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
