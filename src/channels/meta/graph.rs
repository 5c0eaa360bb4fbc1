//! The Graph API client: one pooled `reqwest::Client` for every Meta call (WhatsApp,
//! Instagram, Messenger), built once.
//!
//! - Base URL and version come from the live settings on every call
//!   ([`GraphEndpoint::from_settings`]), so a reload (or a test's mock) takes effect at once.
//! - The token travels as `Authorization: Bearer …`, never in the URL.
//! - One deadline per call (`meta.timeout_ms`); redirects are never followed; response
//!   bodies are read only up to [`MAX_RESPONSE_BYTES`].
//! - Media downloads ([`GraphClient::get_stream`]) are streamed: the deadline covers the
//!   headers, and a stalled body is cut by the per-read timeout.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde_json::Value;

use super::errors::GraphError;
use crate::channels::outbound::{transport_error, SendError};
use crate::channels::UrlError;
use crate::config::MetaSettings;
use crate::vault::AccessToken;

/// Largest Graph JSON answer read (send answers are a few hundred bytes).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Where Graph calls go, from the live settings.
#[derive(Debug, Clone)]
pub struct GraphEndpoint {
    base: String,
    version: String,
    timeout: Duration,
}

impl GraphEndpoint {
    pub fn from_settings(meta: &MetaSettings) -> Self {
        Self {
            base: meta.graph_api_base.trim_end_matches('/').to_owned(),
            version: meta.graph_api_version.clone(),
            timeout: Duration::from_millis(meta.timeout_ms),
        }
    }

    /// The same version and deadline on another host: the Instagram Graph API
    /// (`instagram.graph_base`) for channels connected with Instagram Login.
    pub fn with_base(mut self, base: &str) -> Self {
        self.base = base.trim_end_matches('/').to_owned();
        self
    }

    /// `{base}` without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `{base}/{version}/{path}`, every segment and query value encoded
    /// ([`crate::channels::build_url`]).
    pub fn url(&self, path: &GraphPath) -> Result<url::Url, SendError> {
        let mut segments = vec![self.version.as_str()];
        segments.extend(path.segments.iter().map(String::as_str));
        let query: Vec<(&str, &str)> = path
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        crate::channels::build_url(&self.base, &segments, &query).map_err(|e| match e {
            UrlError::DotSegment => SendError::unsupported("id", "`.` and `..` are not Graph ids"),
            UrlError::Base => SendError::Transient("meta.graph_api_base cannot take a path".into()),
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// A Graph API path below `{base}/{version}`: segments (ids among them) and query
/// pairs, kept apart until [`GraphEndpoint::url`] encodes each, so no id can change
/// the path's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphPath {
    segments: Vec<String>,
    query: Vec<(String, String)>,
}

impl GraphPath {
    /// `segments`, one path segment each (`["106540352242922", "messages"]`).
    pub fn new(segments: &[&str]) -> Self {
        Self {
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
        }
    }

    /// Adds `key=value` to the query.
    pub fn query(mut self, key: &str, value: &str) -> Self {
        self.query.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// The pooled Graph client (cheap to clone).
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
}

/// Builds a provider client (Graph here, the Bot API in
/// [`crate::channels::telegram::outbound`]): pooled keep-alive connections, redirects
/// never followed, a connect timeout and a per-read timeout (a stalled stream ends).
pub fn build_http(read_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(read_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .tcp_keepalive(Duration::from_secs(30))
        .tcp_nodelay(true)
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build()
}

impl GraphClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: build_http(Duration::from_secs(30))?,
        })
    }

    /// `POST {base}/{version}/{path}` with a JSON body; the JSON answer on 2xx.
    pub async fn post_json(
        &self,
        endpoint: &GraphEndpoint,
        path: &GraphPath,
        body: Vec<u8>,
        token: &AccessToken,
    ) -> Result<Value, SendError> {
        let req = self
            .http
            .post(endpoint.url(path)?)
            .header(AUTHORIZATION, bearer(token))
            .header(CONTENT_TYPE, "application/json")
            .timeout(endpoint.timeout)
            .body(body);
        self.json_call(req, token).await
    }

    /// `GET {base}/{version}/{path}`; the JSON answer on 2xx.
    pub async fn get_json(
        &self,
        endpoint: &GraphEndpoint,
        path: &GraphPath,
        token: &AccessToken,
    ) -> Result<Value, SendError> {
        let req = self
            .http
            .get(endpoint.url(path)?)
            .header(AUTHORIZATION, bearer(token))
            .timeout(endpoint.timeout);
        self.json_call(req, token).await
    }

    async fn json_call(
        &self,
        req: reqwest::RequestBuilder,
        token: &AccessToken,
    ) -> Result<Value, SendError> {
        let resp = req.send().await.map_err(|e| transport_error(&e))?;
        let status = resp.status();
        let retry_after = retry_after(resp.headers());
        let body = read_capped(resp, MAX_RESPONSE_BYTES).await?;
        if status.is_success() {
            serde_json::from_slice(&body).map_err(|_| {
                SendError::Indeterminate(
                    "the Graph API answered 2xx with an unreadable body".into(),
                )
            })
        } else {
            // Graph echoes a malformed token in its message ("Malformed access token
            // EAAG…"): the message goes to the CRM and the logs, so the token is cut out
            // of the decoded message.
            Err(GraphError::classify(status.as_u16(), &body, retry_after, Some(token)).into())
        }
    }

    /// `GET url` for streaming (media): the response once its headers are in, 2xx only.
    /// `token`: sent as `Authorization: Bearer` (WhatsApp media URLs need it; CDN
    /// attachment URLs are pre-signed and get none).
    pub async fn get_stream(
        &self,
        url: &str,
        token: Option<&AccessToken>,
        header_timeout: Duration,
    ) -> Result<reqwest::Response, SendError> {
        let mut req = self.http.get(url);
        if let Some(t) = token {
            req = req.header(AUTHORIZATION, bearer(t));
        }
        let resp = tokio::time::timeout(header_timeout, req.send())
            .await
            .map_err(|_| SendError::Transient("the media server did not answer in time".into()))?
            .map_err(|e| match transport_error(&e) {
                // A GET changes nothing: any failure is worth a retry by the caller.
                SendError::Indeterminate(m) => SendError::Transient(m),
                other => other,
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = retry_after(resp.headers());
        let body = read_capped(resp, MAX_RESPONSE_BYTES)
            .await
            .unwrap_or_default();
        Err(GraphError::classify(status.as_u16(), &body, retry_after, token).into())
    }
}

fn bearer(token: &AccessToken) -> String {
    format!("Bearer {}", token.expose())
}

/// `Retry-After` in seconds, when given.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Reads a response body up to `cap` bytes; a larger body is an error (never buffered).
pub async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Bytes, SendError> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(SendError::Indeterminate(format!(
            "the provider's answer is larger than {cap} bytes"
        )));
    }
    let mut buf = BytesMut::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > cap {
                    return Err(SendError::Indeterminate(format!(
                        "the provider's answer is larger than {cap} bytes"
                    )));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(e) => return Err(transport_error(&e)),
        }
    }
}
