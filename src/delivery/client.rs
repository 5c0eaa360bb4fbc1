//! The HTTP client that POSTs events to CRMs: one pooled keep-alive client for every
//! tenant (HTTP/1.1, or HTTP/2 where the CRM offers it over TLS), redirects never
//! followed (Standard Webhooks treats 3xx as failure), a deadline per attempt, the
//! response body read only up to a cap (and drained so the connection is reused).
//!
//! It is hyper's pooled client itself, not reqwest: on the hot path reqwest's layers
//! (its redirect and retry policies, a URL parsed for every request and every response)
//! cost more than the relay's own work on an event (benches/load/README.md). The CRM's
//! URL is parsed once per tenant ([`Tenant::crm_uri`]).
//!
//! Where the environment names an HTTP proxy (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
//! in either case), deliveries go through reqwest instead, which honours those and
//! `NO_PROXY` exactly as the relay's calls to the providers do: an egress proxy that
//! worked before keeps working for the CRM too.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::tenant::Tenant;

/// Why an attempt failed. Every failure is retryable: an event is never dropped because
/// a CRM misbehaved once.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the CRM did not answer within the deadline")]
    Timeout,
    #[error("the CRM could not be reached: {0}")]
    Connect(String),
    #[error("the CRM answered HTTP {status}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("the request to the CRM failed: {0}")]
    Other(String),
}

impl DeliveryError {
    /// The wait the CRM asked for (`Retry-After` seconds).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeliveryError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            DeliveryError::Timeout => "timeout",
            DeliveryError::Connect(_) => "connect",
            DeliveryError::Status { .. } => "status",
            DeliveryError::Other(_) => "other",
        }
    }
}

/// The CRM client could not be built (the platform's TLS roots).
#[derive(Debug, thiserror::Error)]
#[error("the CRM client could not be built: {0}")]
pub struct ClientBuildError(String);

const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const AGENT: HeaderValue =
    HeaderValue::from_static(concat!("switchboard/", env!("CARGO_PKG_VERSION")));

type Pool = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

#[derive(Clone)]
pub struct CrmClient {
    transport: Transport,
    timeout: Duration,
    max_response_bytes: usize,
}

/// How requests leave: hyper's pool directly, or reqwest through the environment's proxy.
#[derive(Clone)]
enum Transport {
    Direct(Arc<Pool>),
    Proxied(reqwest::Client),
}

/// The environment variables that name a proxy (reqwest reads the same).
const PROXY_VARS: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

fn proxy_configured() -> bool {
    PROXY_VARS
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

impl CrmClient {
    pub fn new(timeout: Duration, max_response_bytes: usize) -> Result<Self, ClientBuildError> {
        let transport = if proxy_configured() {
            tracing::debug!("CRM deliveries go through the proxy the environment names.");
            Transport::Proxied(proxied(timeout)?)
        } else {
            Transport::Direct(Arc::new(direct(timeout)?))
        };
        Ok(Self {
            transport,
            timeout,
            max_response_bytes,
        })
    }

    /// One signed attempt. `body` is sent as is: the exact bytes that were signed.
    pub async fn deliver(
        &self,
        tenant: &Tenant,
        event_id: &str,
        body: Bytes,
    ) -> Result<(), DeliveryError> {
        let ts = crate::time::now_s();
        let signature = tenant.signer.sign(event_id, ts, &body);
        let mut headers = http::HeaderMap::with_capacity(8);
        headers.insert(CONTENT_TYPE, JSON);
        headers.insert(USER_AGENT, AGENT);
        if let Some(auth) = &tenant.crm_authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        headers.insert(WEBHOOK_ID, header_value(event_id)?);
        headers.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(ts));
        headers.insert(WEBHOOK_SIGNATURE, header_value(&signature)?);
        let (status, retry_after) = match &self.transport {
            Transport::Direct(pool) => self.direct_attempt(pool, tenant, headers, body).await?,
            Transport::Proxied(client) => {
                self.proxied_attempt(client, tenant, headers, body).await?
            }
        };
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Status {
                status: status.as_u16(),
                retry_after,
            })
        }
    }

    async fn direct_attempt(
        &self,
        pool: &Pool,
        tenant: &Tenant,
        headers: http::HeaderMap,
        body: Bytes,
    ) -> Result<(http::StatusCode, Option<Duration>), DeliveryError> {
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = tenant.crm_uri.clone();
        *request.headers_mut() = headers;
        // The verdict is the status line, within the deadline.
        let resp = tokio::time::timeout(self.timeout, pool.request(request))
            .await
            .map_err(|_| DeliveryError::Timeout)?
            .map_err(classify)?;
        let verdict = (resp.status(), retry_after_of(resp.headers()));
        // Then drain a bounded body, briefly, so the keep-alive connection can be reused;
        // a body that stalls only costs that connection, never the verdict (a 2xx whose
        // body hangs is still delivered). An empty answer (a 204) is done already.
        let mut body = resp.into_body();
        if !hyper::body::Body::is_end_stream(&body) {
            let drain = async {
                let mut read = 0usize;
                while let Some(Ok(frame)) = body.frame().await {
                    read += frame.data_ref().map_or(0, Bytes::len);
                    if read > self.max_response_bytes {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(self.timeout.min(Duration::from_secs(1)), drain).await;
        }
        Ok(verdict)
    }

    async fn proxied_attempt(
        &self,
        client: &reqwest::Client,
        tenant: &Tenant,
        headers: http::HeaderMap,
        body: Bytes,
    ) -> Result<(http::StatusCode, Option<Duration>), DeliveryError> {
        let send = client
            .post(tenant.crm_uri.to_string())
            .headers(headers)
            .body(body)
            .send();
        let mut resp = tokio::time::timeout(self.timeout, send)
            .await
            .map_err(|_| DeliveryError::Timeout)?
            .map_err(classify_reqwest)?;
        let verdict = (resp.status(), retry_after_of(resp.headers()));
        let drain = async {
            let mut read = 0usize;
            while let Ok(Some(chunk)) = resp.chunk().await {
                read += chunk.len();
                if read > self.max_response_bytes {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(self.timeout.min(Duration::from_secs(1)), drain).await;
        Ok(verdict)
    }
}

/// `Retry-After`, when the CRM sent a readable one.
fn retry_after_of(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

/// hyper's pool: keep-alive, HTTP/2 over TLS when offered, no redirects (hyper follows
/// none), the connect deadline within the attempt's.
fn direct(timeout: Duration) -> Result<Pool, ClientBuildError> {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_connect_timeout(Some(timeout.min(Duration::from_secs(5))));
    tcp.set_keepalive(Some(Duration::from_secs(30)));
    tcp.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config()?)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https))
}

/// reqwest with the same settings; it reads the proxy (and `NO_PROXY`) from the
/// environment.
fn proxied(timeout: Duration) -> Result<reqwest::Client, ClientBuildError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .tcp_keepalive(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| ClientBuildError(e.to_string()))
}

/// rustls with the process's crypto provider (aws-lc-rs unless one was installed) and
/// the platform's certificate verifier: what reqwest uses for the providers' APIs.
fn tls_config() -> Result<rustls::ClientConfig, ClientBuildError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientBuildError(e.to_string()))?
        .with_platform_verifier()
        .map_err(|e| ClientBuildError(e.to_string()))?
        .with_no_client_auth())
}

/// Event ids and signatures are ASCII by construction; anything else is refused rather
/// than sent mangled.
fn header_value(s: &str) -> Result<HeaderValue, DeliveryError> {
    HeaderValue::from_str(s).map_err(|_| DeliveryError::Other("a header that is not ASCII".into()))
}

/// `Retry-After`: delay-seconds, or an HTTP-date (IMF-fixdate,
/// `Sun, 06 Nov 1994 08:49:37 GMT`) turned into the wait from now.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // An HTTP-date (RFC 9110 §5.6.7): the time to wait until, never negative.
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn classify_reqwest(e: reqwest::Error) -> DeliveryError {
    if e.is_timeout() {
        DeliveryError::Timeout
    } else if e.is_connect() {
        DeliveryError::Connect(
            std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "connection failed".into()),
        )
    } else {
        DeliveryError::Other(e.without_url().to_string())
    }
}

fn classify(e: hyper_util::client::legacy::Error) -> DeliveryError {
    // Keep the kind and the innermost cause, terse (the URL is configuration anyway).
    let cause = {
        let mut source: &dyn std::error::Error = &e;
        while let Some(next) = source.source() {
            source = next;
        }
        source.to_string()
    };
    if e.is_connect() {
        DeliveryError::Connect(cause)
    } else {
        DeliveryError::Other(cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        // A date in the past means: now.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(90));
        let wait = parse_retry_after(&soon).unwrap();
        assert!((85..=90).contains(&wait.as_secs()), "{soon}: {wait:?}");
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("Sun, 06 Foo 1994 08:49:37 GMT"), None);
    }
}
