//! `POST /v1/messages`: the CRM sends a message through one of its channels.
//!
//! Order of checks: API key (401) → body size/type (413/415) → body (400, field named)
//! → channel (404) and ownership (403) → `Idempotency-Key` → send. Success is
//! `200 {"id", "channel", "to"}` (`id` is null for read/typing, which make no message).
//! A replayed answer carries `Idempotent-Replayed: true`.

use std::time::{Duration, Instant};

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::auth::bearer;
use super::body::{read_limited, require_json};
use super::problem::{ApiError, ErrorCode};
use crate::app::AppState;
use crate::channels::outbound::{OutboundMessage, Receipt, SendError};
use crate::replies::idempotency::{self, Claim, StoredResponse};
use crate::replies::{self, ReplyError};

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
        .with_detail("the provider says the channel's access token is expired or revoked; reconnect the channel")
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
        SendError::Forbidden(d) => ApiError::forbidden(
            "the provider refuses to deliver to this recipient (e.g. the bot was blocked)",
        )
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

fn success_body(msg: &OutboundMessage, receipt: &Receipt) -> Value {
    json!({
        "id": receipt.id,
        "channel": {"kind": msg.channel.kind, "id": msg.channel.id},
        "to": msg.to.as_str(),
    })
}

/// Renders a stored answer (the recipient is put back from the request).
fn render(stored: &StoredResponse, msg: &OutboundMessage, replayed: bool) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut body = stored.body.clone();
    let mut resp = HttpResponse::build(status);
    if status.is_success() {
        body["to"] = msg.to.as_str().into();
        resp.content_type("application/json");
    } else {
        resp.content_type("application/problem+json");
    }
    if let Some(s) = stored.retry_after {
        resp.insert_header((header::RETRY_AFTER, s.to_string()));
    }
    if replayed {
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
    let idem_key = match req.headers().get("idempotency-key") {
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
    let token = replies::open_channel(&state, &live, &tenant, &msg.channel)
        .await
        .inspect_err(|e| {
            if let ReplyError::Vault(v) = e {
                tracing::error!(channel = %msg.channel, error = %v, stage = "sending", "Channel token cannot be opened.");
            }
        })?;

    let claimed = match &idem_key {
        None => None,
        Some(k) => {
            let key = state.store.keys().idempotency(&tenant.id, k);
            let fp = idempotency::fingerprint(&body);
            let settings = &live.settings;
            let pending_ttl = Duration::from_millis(
                settings.replies.retry_deadline_ms
                    + settings.meta.timeout_ms.max(settings.telegram.timeout_ms),
            ) + Duration::from_secs(30);
            let mut claim = idempotency::claim(&state.store, &key, &fp, pending_ttl)
                .await
                .map_err(ReplyError::from)?;
            if claim == Claim::InFlight {
                claim = idempotency::wait(
                    &state.store,
                    &key,
                    &fp,
                    pending_ttl,
                    Duration::from_millis(settings.replies.idempotency_wait_ms),
                )
                .await
                .map_err(ReplyError::from)?;
            }
            match claim {
                Claim::Claimed => Some((key, fp)),
                Claim::Replay(stored) => {
                    tracing::info!(tenant = %tenant.id, channel = %msg.channel, stage = "sending", "Idempotent reply replayed.");
                    return Ok(render(&stored, &msg, true));
                }
                Claim::InFlight => return Err(ReplyError::IdempotencyInFlight.into()),
                Claim::Mismatch => return Err(ReplyError::IdempotencyMismatch.into()),
            }
        }
    };

    // The send and its bookkeeping run in their own task: a CRM that hangs up (or a
    // shutdown) cannot cancel them half way, after the provider accepted the message
    // but before the idempotency record says so.
    let task = tokio::spawn(send_and_record(
        state.clone(),
        live.clone(),
        tenant.clone(),
        msg,
        token,
        claimed,
    ));
    let (stored, msg) = task.await.map_err(|_| ApiError::internal())?;
    Ok(render(&stored, &msg, false))
}

/// Sends, records metrics and the log line, and completes or releases the idempotency
/// claim. Returns what to answer.
async fn send_and_record(
    state: web::Data<AppState>,
    live: std::sync::Arc<crate::live::Live>,
    tenant: std::sync::Arc<crate::delivery::Tenant>,
    msg: OutboundMessage,
    token: crate::vault::AccessToken,
    claimed: Option<(String, String)>,
) -> (StoredResponse, OutboundMessage) {
    let started = Instant::now();
    let result = replies::send(&state.providers, &live, &msg, &token).await;
    let outcome = match &result {
        Ok(_) => "sent",
        Err(e) => e.label(),
    };
    metrics::counter!("switchboard_replies_total", "channel" => msg.channel.kind.as_str(), "outcome" => outcome).increment(1);
    metrics::histogram!("switchboard_reply_duration_seconds", "channel" => msg.channel.kind.as_str())
        .record(started.elapsed().as_secs_f64());
    tracing::info!(
        tenant = %tenant.id,
        channel = %msg.channel,
        kind = msg.content.kind(),
        outcome,
        elapsed_ms = started.elapsed().as_millis() as u64,
        stage = "sending",
        "Reply processed."
    );
    if let Err(SendError::TokenInvalid(d)) = &result {
        replies::notify_reauth(&state, live.clone(), msg.channel.clone(), d);
    }

    // What the first request answered, for replays: a success, or an unknown outcome
    // (never re-sent under this key). Anything else sent nothing: the key is freed.
    let (stored, keep) = match result {
        Ok(receipt) => {
            let mut body = success_body(&msg, &receipt);
            if let Some(o) = body.as_object_mut() {
                o.remove("to");
            }
            (
                StoredResponse {
                    status: 200,
                    body,
                    retry_after: None,
                },
                true,
            )
        }
        Err(e) => {
            let keep = matches!(e, SendError::Indeterminate(_));
            let api: ApiError = ReplyError::Send(e).into();
            (
                StoredResponse {
                    status: api.0.status,
                    body: serde_json::to_value(&*api.0).unwrap_or(Value::Null),
                    retry_after: api.0.retry_after.map(|d| d.as_secs().max(1)),
                },
                keep,
            )
        }
    };
    if let Some((key, fp)) = claimed {
        let ttl = Duration::from_secs(live.settings.replies.idempotency_ttl_s);
        let saved = if keep {
            idempotency::complete(&state.store, &key, &fp, stored.clone(), ttl).await
        } else {
            idempotency::release(&state.store, &key).await
        };
        if let Err(e) = saved {
            tracing::warn!(tenant = %tenant.id, error = %e, stage = "sending", "Idempotency record not updated; it expires on its own.");
        }
    }
    (stored, msg)
}
