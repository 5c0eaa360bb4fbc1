//! What a send answers: a [`Receipt`], or a [`SendError`] already classified the
//! contract's way, with the provider's own words in a [`ProviderDetail`].

use std::time::Duration;

use serde_json::{Map, Value};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
