//! The HTTP client that POSTs events to CRMs: one pooled keep-alive client for every
//! tenant, redirects never followed (Standard Webhooks treats 3xx as failure), a deadline
//! per attempt, the response body read only up to a cap (and drained so the connection
//! is reused).

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};

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

#[derive(Clone)]
pub struct CrmClient {
    http: reqwest::Client,
    timeout: Duration,
    max_response_bytes: usize,
}

impl CrmClient {
    pub fn new(timeout: Duration, max_response_bytes: usize) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .tcp_keepalive(Duration::from_secs(30))
            .tcp_nodelay(true)
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
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
        let send = self
            .http
            .post(tenant.crm_url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("webhook-id", event_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send();
        // The verdict is the status line, within the deadline.
        let mut resp = tokio::time::timeout(self.timeout, send)
            .await
            .map_err(|_| DeliveryError::Timeout)?
            .map_err(classify)?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // Then drain a bounded body, briefly, so the keep-alive connection can be reused;
        // a body that stalls only costs that connection, never the verdict (a 2xx whose
        // body hangs is still delivered).
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
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Status {
                status: status.as_u16(),
                retry_after,
            })
        }
    }
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

fn classify(e: reqwest::Error) -> DeliveryError {
    // reqwest errors name the URL; CRM URLs are configuration, not secrets, but keep
    // only the kind and the source to stay terse.
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
