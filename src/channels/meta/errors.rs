//! Graph API errors: the `{"error": {"message", "type", "code", "error_subcode",
//! "fbtrace_id", …}}` envelope turned into the contract's codes.
//!
//! | Graph `code` | contract code |
//! |---|---|
//! | 190 | `token_invalid` |
//! | 131047 (WhatsApp); 10 with subcode 2018278 (Messenger) or 2534022 (Instagram) | `outside_window` |
//! | 551 (Messenger, Instagram: "This person isn't available right now") | `recipient_unavailable` |
//! | 10, 200–299 on a WhatsApp send ([`token_cannot_reach_asset`]) | `token_invalid`, with a reason |
//! | 4, 17, 32, 613, 80007, 130429, 131056 | `rate_limited` (with `Retry-After`) |
//! | anything else, HTTP 4xx | `provider_error` |
//! | anything else, HTTP 5xx | retried (nothing was sent), then `upstream_unavailable` |
//!
//! Graph does not send `Retry-After` with its rate limits; when the header is absent the
//! wait is 6 s for 131056 (WhatsApp's pair limit: one message per 6 s to one user) and
//! 60 s otherwise (Meta's usage windows are counted over minutes to an hour).

use std::time::Duration;

use serde::Deserialize;

use crate::channels::outbound::{ProviderDetail, SendError};
use crate::redact::redact_then_truncate;
use crate::vault::AccessToken;

/// Graph codes that mean "slow down".
pub const RATE_LIMIT_CODES: &[i64] = &[4, 17, 32, 613, 80007, 130429, 131056];
pub const TOKEN_INVALID: i64 = 190;
pub const OUTSIDE_WINDOW: i64 = 131047;
/// Messenger and Instagram refuse a send outside the messaging window with code 10
/// ("This message is sent outside of allowed window") and one of these subcodes.
pub const PERMISSION: i64 = 10;
pub const OUTSIDE_WINDOW_SUBCODES: &[i64] = &[2018278, 2534022];
/// Messenger/Instagram: "This person isn't available right now" (blocked the Page,
/// deactivated).
pub const RECIPIENT_UNAVAILABLE: i64 = 551;

/// A Graph error, typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("Graph API: the access token is invalid or expired")]
    TokenInvalid(ProviderDetail),
    #[error("Graph API: outside the 24-hour customer service window")]
    OutsideWindow(ProviderDetail),
    #[error("Graph API: the recipient cannot be reached now")]
    RecipientUnavailable(ProviderDetail),
    #[error("Graph API: rate limited")]
    RateLimited {
        retry_after: Duration,
        detail: ProviderDetail,
    },
    /// A 5xx without a more specific code: nothing was done, try again.
    #[error("Graph API: temporarily unavailable (HTTP {})", .0.http_status)]
    Unavailable(ProviderDetail),
    #[error("Graph API: request refused (HTTP {})", .0.http_status)]
    Other(ProviderDetail),
}

#[derive(Deserialize)]
struct Envelope {
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    fbtrace_id: Option<String>,
    #[serde(default)]
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

/// Longest provider message kept (they are short; a proxy's HTML page is not).
const MAX_MESSAGE: usize = 512;

impl GraphError {
    /// Classifies a non-2xx answer: `status`, the (capped) body and `Retry-After`. The
    /// decoded message is redacted of `token` (Graph quotes a malformed one) before it
    /// is cut to length.
    pub fn classify(
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
        token: Option<&AccessToken>,
    ) -> Self {
        let parsed = serde_json::from_slice::<Envelope>(body)
            .ok()
            .and_then(|e| e.error);
        let detail = match &parsed {
            Some(e) => {
                let mut message = e.message.clone().unwrap_or_default();
                if let Some(d) = e.error_data.as_ref().and_then(|d| d.details.as_deref()) {
                    message = format!("{message} ({d})");
                }
                ProviderDetail {
                    provider: "graph",
                    http_status: status,
                    code: e.code,
                    subcode: e.error_subcode,
                    message: redact_then_truncate(
                        &message,
                        token.map(AccessToken::expose).as_slice(),
                        MAX_MESSAGE,
                    ),
                    fbtrace_id: e.fbtrace_id.clone(),
                    migrate_to_chat_id: None,
                    reason: None,
                }
            }
            None => ProviderDetail {
                provider: "graph",
                http_status: status,
                message: format!("HTTP {status} without a Graph error body"),
                ..ProviderDetail::default()
            },
        };
        match detail.code {
            Some(TOKEN_INVALID) => GraphError::TokenInvalid(detail),
            Some(OUTSIDE_WINDOW) => GraphError::OutsideWindow(detail),
            Some(PERMISSION)
                if detail
                    .subcode
                    .is_some_and(|s| OUTSIDE_WINDOW_SUBCODES.contains(&s)) =>
            {
                GraphError::OutsideWindow(detail)
            }
            Some(RECIPIENT_UNAVAILABLE) => GraphError::RecipientUnavailable(detail),
            Some(c) if RATE_LIMIT_CODES.contains(&c) => GraphError::RateLimited {
                retry_after: retry_after.unwrap_or(if c == 131056 {
                    Duration::from_secs(6)
                } else {
                    Duration::from_secs(60)
                }),
                detail,
            },
            _ if status == 429 => GraphError::RateLimited {
                retry_after: retry_after.unwrap_or(Duration::from_secs(60)),
                detail,
            },
            _ if status >= 500 => GraphError::Unavailable(detail),
            _ => GraphError::Other(detail),
        }
    }

    pub fn detail(&self) -> &ProviderDetail {
        match self {
            GraphError::TokenInvalid(d)
            | GraphError::OutsideWindow(d)
            | GraphError::RecipientUnavailable(d)
            | GraphError::Unavailable(d)
            | GraphError::Other(d) => d,
            GraphError::RateLimited { detail, .. } => detail,
        }
    }
}

impl From<GraphError> for SendError {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::TokenInvalid(d) => SendError::TokenInvalid(Box::new(d)),
            GraphError::OutsideWindow(d) => SendError::OutsideWindow(Box::new(d)),
            GraphError::RecipientUnavailable(d) => SendError::RecipientUnavailable(Box::new(d)),
            GraphError::RateLimited {
                retry_after,
                detail,
            } => SendError::RateLimited {
                retry_after,
                detail: Box::new(detail),
            },
            GraphError::Unavailable(d) => SendError::Transient(format!(
                "Graph API answered HTTP {} (code {})",
                d.http_status,
                d.code.map_or_else(|| "none".into(), |c| c.to_string())
            )),
            GraphError::Other(d) => SendError::Provider(Box::new(d)),
        }
    }
}

/// A WhatsApp send refused with a permission error (code 10, or 200–299): the token is
/// valid but cannot reach this phone number or its WhatsApp Business Account (the system
/// user was not given the asset, or lost it). Nothing the CRM can change in the message
/// fixes it, so it is `token_invalid` with a reason saying so; any other error is
/// returned as it is.
pub fn token_cannot_reach_asset(e: SendError) -> SendError {
    match e {
        SendError::Provider(mut d)
            if d.code
                .is_some_and(|c| c == PERMISSION || (200..=299).contains(&c)) =>
        {
            d.reason = Some(format!(
                "the channel's token cannot reach this WhatsApp phone number (Graph permission error {}): \
                 give the token's system user access to the WhatsApp Business Account, or reconnect the channel",
                d.code.unwrap_or_default()
            ));
            SendError::TokenInvalid(d)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_codes_map() {
        let body =
            |code: i64| format!(r#"{{"error":{{"message":"m","code":{code},"fbtrace_id":"T"}}}}"#);
        assert!(matches!(
            GraphError::classify(401, body(190).as_bytes(), None, None),
            GraphError::TokenInvalid(_)
        ));
        assert!(matches!(
            GraphError::classify(400, body(131047).as_bytes(), None, None),
            GraphError::OutsideWindow(_)
        ));
        for c in RATE_LIMIT_CODES {
            match GraphError::classify(400, body(*c).as_bytes(), None, None) {
                GraphError::RateLimited { retry_after, .. } => {
                    assert!(retry_after >= Duration::from_secs(6))
                }
                other => panic!("{c}: {other:?}"),
            }
        }
        let e = GraphError::classify(400, body(100).as_bytes(), None, None);
        assert_eq!(e.detail().code, Some(100));
        assert_eq!(e.detail().fbtrace_id.as_deref(), Some("T"));
        assert!(matches!(e, GraphError::Other(_)));
        let sub = |code: i64, subcode: i64| {
            format!(r#"{{"error":{{"message":"m","code":{code},"error_subcode":{subcode}}}}}"#)
        };
        for s in OUTSIDE_WINDOW_SUBCODES {
            assert!(matches!(
                GraphError::classify(400, sub(10, *s).as_bytes(), None, None),
                GraphError::OutsideWindow(_)
            ));
        }
        // Code 10 with another subcode is a permission error, not the window.
        assert!(matches!(
            GraphError::classify(400, sub(10, 2018065).as_bytes(), None, None),
            GraphError::Other(_)
        ));
        assert!(matches!(
            GraphError::classify(400, sub(551, 1545041).as_bytes(), None, None),
            GraphError::RecipientUnavailable(_)
        ));
        assert!(matches!(
            GraphError::classify(503, b"<html>", None, None),
            GraphError::Unavailable(_)
        ));
        assert!(matches!(
            GraphError::classify(400, body(4).as_bytes(), Some(Duration::from_secs(9)), None),
            GraphError::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(9)
        ));
    }

    #[test]
    fn whatsapp_permission_errors_are_token_invalid_with_a_reason() {
        for code in [10, 200, 299] {
            let body = format!(r#"{{"error":{{"message":"m","code":{code}}}}}"#);
            let e: SendError = GraphError::classify(403, body.as_bytes(), None, None).into();
            match token_cannot_reach_asset(e) {
                SendError::TokenInvalid(d) => {
                    assert!(d.reason.unwrap().contains("WhatsApp Business Account"))
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        let e: SendError =
            GraphError::classify(400, br#"{"error":{"code":100}}"#, None, None).into();
        assert!(matches!(
            token_cannot_reach_asset(e),
            SendError::Provider(_)
        ));
    }

    #[test]
    fn without_a_token_the_message_still_goes_through_the_redaction() {
        let token = format!("EAAG{}", "x7Q".repeat(30));
        let body =
            format!(r#"{{"error":{{"message":"Malformed access token {token}","code":190}}}}"#);
        let e = GraphError::classify(401, body.as_bytes(), None, None);
        assert_eq!(
            e.detail().message,
            "Malformed access token [REDACTED]",
            "a token-shaped word is cut even when the call had no token"
        );
    }
}
