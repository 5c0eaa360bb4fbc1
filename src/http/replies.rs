//! `POST /v1/messages`: the CRM sends a message through one of its channels.
//!
//! Order of checks: API key (401) → body size/type (413/415) → body (400, field named)
//! → channel (404) and ownership (403) → `Idempotency-Key` → send. Success is
//! `200 {"id", "channel", "to"}` (`id` is null for read/typing, which make no message).
//! A replayed answer carries `Idempotent-Replayed: true`.

use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::auth::bearer;
use super::body::{read_limited, require_json};
use super::problem::{ApiError, ErrorCode};
use crate::channels::outbound::{OutboundMessage, SendError};
use crate::replies::idempotency::{self, StoredResponse};
use crate::replies::{self, Answer, Reply, ReplyError};
use crate::state::AppState;

impl From<ReplyError> for ApiError {
    fn from(e: ReplyError) -> Self {
        match e {
            ReplyError::Unauthorized => ApiError::unauthorized(
                "send `Authorization: Bearer <api key>` with a tenant's API key",
            ),
            ReplyError::Invalid(p) => ApiError::invalid_field(p.field, p.detail),
            ReplyError::ChannelNotFound(c) => {
                ApiError::channel_not_found(format!("no channel {c}"))
            }
            ReplyError::NotYourChannel(c) => {
                ApiError::forbidden(format!("channel {c} belongs to another tenant"))
            }
            ReplyError::Store(_) => ApiError::unavailable("the store is unavailable; retry later"),
            ReplyError::Vault(_) => ApiError::internal(),
            ReplyError::IdempotencyInFlight => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::InvalidRequest,
                "Request in progress",
            )
            .with_field("Idempotency-Key")
            .with_detail("a request with this Idempotency-Key is still being sent; retry shortly")
            .with_retry_after(Duration::from_secs(1)),
            ReplyError::IdempotencyMismatch => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidRequest,
                "Idempotency-Key reused",
            )
            .with_field("Idempotency-Key")
            .with_detail("this Idempotency-Key was already used with a different body"),
            ReplyError::MediaTooLarge(max) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                ErrorCode::ProviderError,
                "Media too large",
            )
            .with_detail(format!(
                "the media file is larger than media.max_bytes ({max} bytes)"
            )),
            ReplyError::Send(e) => send_error(e),
            ReplyError::Aborted => ApiError::internal(),
        }
    }
}

fn send_error(e: SendError) -> ApiError {
    match e {
        SendError::Unsupported { field, detail } => ApiError::invalid_field(field, detail),
        SendError::TokenInvalid(d) => ApiError::new(
            StatusCode::FAILED_DEPENDENCY,
            ErrorCode::TokenInvalid,
            "Channel token invalid",
        )
        .with_detail(d.reason.clone().unwrap_or_else(|| {
            "the provider says the channel's access token is expired or revoked; reconnect the channel".into()
        }))
        .with_provider(d.to_json()),
        SendError::OutsideWindow(d) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::OutsideWindow,
            "Outside the messaging window",
        )
        .with_detail("the customer has not written in the last 24 hours: send a template")
        .with_provider(d.to_json()),
        SendError::RateLimited {
            retry_after,
            detail,
        } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "Rate limited",
        )
        .with_detail("the provider asks to slow down; retry after the Retry-After delay")
        .with_retry_after(retry_after)
        .with_provider(detail.to_json()),
        SendError::RecipientUnavailable(d) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::RecipientUnavailable,
            "Recipient unavailable",
        )
        .with_detail("the person cannot be reached now (they blocked the business or the bot, or their account is deactivated); do not retry now")
        .with_provider(d.to_json()),
        SendError::Provider(d) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::ProviderError,
            "Provider error",
        )
        .with_detail("the provider refused the request; see `provider`")
        .with_provider(d.to_json()),
        SendError::Transient(_) => {
            ApiError::unavailable("the provider is unavailable (it answered 5xx or could not be reached, also after retries); retry later")
        }
        SendError::Indeterminate(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::UpstreamUnavailable,
            "Upstream timeout",
        )
        .with_detail(
            "the provider did not answer in time; the message may have been sent and was not retried",
        ),
    }
}

/// A refused send as this route answers it: what the idempotency record keeps, so a
/// replay repeats it.
fn error_answer(e: SendError) -> StoredResponse {
    let api: ApiError = ReplyError::Send(e).into();
    StoredResponse {
        status: api.0.status,
        body: serde_json::to_value(&*api.0).unwrap_or(Value::Null),
        retry_after: api.0.retry_after.map(|d| d.as_secs().max(1)),
    }
}

/// Renders an answer (the recipient is put back from the request).
fn render(answer: &Answer) -> HttpResponse {
    let stored = &answer.response;
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut body = stored.body.clone();
    let mut resp = HttpResponse::build(status);
    if status.is_success() {
        body["to"] = answer.msg.to.as_str().into();
        resp.content_type("application/json");
    } else {
        resp.content_type("application/problem+json");
    }
    if let Some(s) = stored.retry_after {
        resp.insert_header((header::RETRY_AFTER, s.to_string()));
    }
    if answer.replayed {
        resp.insert_header(("idempotent-replayed", "true"));
    }
    resp.body(serde_json::to_vec(&body).unwrap_or_default())
}

/// `POST /v1/messages`.
pub async fn send_message(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    let tenant = replies::authenticate(&live, bearer(&req))?;
    let body = read_limited(&req, payload, live.settings.server.max_body_bytes).await?;
    require_json(&req)?;
    let msg = OutboundMessage::parse(&body).map_err(ReplyError::from)?;
    let idempotency_key = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if idempotency::valid_key(k) => Some(k.to_owned()),
            _ => {
                return Err(ApiError::invalid_field(
                    "Idempotency-Key",
                    "must be 1 to 255 visible ASCII characters",
                ))
            }
        },
    };
    let reply = Reply {
        live,
        tenant,
        msg,
        idempotency_key,
    };
    let answer = replies::send_message(
        &state.store,
        &state.dispatcher,
        &state.providers,
        reply,
        &body,
        error_answer,
    )
    .await?;
    Ok(render(&answer))
}
