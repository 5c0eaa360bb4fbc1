//! Inbound webhooks: Meta's subscription handshake and signed event deliveries.
//! Verify (raw bytes) → normalize (pure) → dispatch (route, dedupe, deliver). A webhook
//! is answered 200 only once every event is delivered or kept in the retry buffer (or,
//! for an unknown channel, counted and dropped on purpose); otherwise 503, so the
//! provider retries.

use std::collections::HashMap;
use std::sync::OnceLock;

use actix_web::{web, HttpRequest, HttpResponse};
use metrics::Counter;

use super::body::{read_limited, require_json};
use super::problem::ApiError;
use crate::channels::meta_webhook::{self, MetaNormalizeError, MetaObject};
use crate::channels::NormalizeContext;
use crate::delivery::DispatchReport;
use crate::event::Event;
use crate::live::{Live, SignedBy};
use crate::state::AppState;

/// `GET /webhooks/meta`: `hub.mode=subscribe` with a configured `hub.verify_token`
/// → 200 and `hub.challenge` as the plain body; anything else → 403.
pub async fn meta_handshake(
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load();
    let mode = query.get("hub.mode").map(String::as_str);
    let token = query.get("hub.verify_token").map(String::as_str);
    let challenge = query.get("hub.challenge");
    match (mode, token, challenge) {
        (Some("subscribe"), Some(token), Some(challenge)) if live.is_verify_token(token) => {
            tracing::info!(stage = "receiving", "Meta webhook subscription verified.");
            Ok(HttpResponse::Ok()
                .content_type("text/plain; charset=utf-8")
                .body(challenge.clone()))
        }
        _ => {
            tracing::warn!(stage = "receiving", "Meta webhook subscription refused.");
            Err(ApiError::forbidden(
                "hub.mode must be subscribe and hub.verify_token a configured verify token",
            ))
        }
    }
}

/// `POST /webhooks/meta`: WhatsApp, Instagram and Messenger events.
pub async fn meta_webhook(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    let body = read_limited(&req, payload, live.settings.server.max_body_bytes)
        .await
        .inspect_err(|_| webhook_outcome("meta", "rejected"))?;
    let signature = req
        .headers()
        .get("x-hub-signature-256")
        .map(|v| v.as_bytes());
    let refuse = |e: &dyn std::fmt::Display| {
        metrics::counter!("switchboard_signature_failures_total", "provider" => "meta")
            .increment(1);
        webhook_outcome("meta", "unauthorized");
        tracing::warn!(error = %e, stage = "receiving", "Meta webhook signature refused.");
        ApiError::unauthorized(e.to_string())
    };
    let (verified, signed_by) = live
        .verify_meta_signature(signature, &body)
        .map_err(|e| refuse(&e))?;
    require_json(&req).inspect_err(|_| webhook_outcome("meta", "rejected"))?;
    let ctx = NormalizeContext {
        public_url: &live.public_url,
    };
    let (object, events) = meta_webhook::normalize(&verified, &ctx).map_err(|e| {
        if signed_by == SignedBy::InstagramApp {
            // Nothing is echoed back for a body only the Instagram app vouched for but
            // that is not an Instagram webhook.
            return refuse(&"the X-Hub-Signature-256 signature matches no configured app secret");
        }
        webhook_outcome("meta", "rejected");
        tracing::warn!(error = %e, stage = "processing", "Meta webhook could not be read.");
        match e {
            MetaNormalizeError::UnknownObject(u) => {
                ApiError::invalid(u.to_string()).with_field("object")
            }
            MetaNormalizeError::Invalid(e) => ApiError::invalid(e.to_string()),
        }
    })?;
    if signed_by == SignedBy::InstagramApp && object != MetaObject::Instagram {
        return Err(refuse(
            &"the X-Hub-Signature-256 signature matches no configured app secret",
        ));
    }
    tracing::debug!(
        object = object.as_str(),
        signed_by = signed_by.as_str(),
        events = events.len(),
        stage = "processing",
        "Meta webhook normalized."
    );
    dispatch_and_answer(&state, &live, "meta", events).await
}

/// Delivers the events and answers: 200 with counts, or 503 when anything is left.
pub async fn dispatch_and_answer(
    state: &AppState,
    live: &Live,
    provider: &'static str,
    events: Vec<Event>,
) -> Result<HttpResponse, ApiError> {
    let total = events.len();
    // Boxed: the dispatch future is large (routing, delivery, the buffer's paths), and
    // each async layer above it would otherwise hold (and move) a copy of its state.
    let report: DispatchReport =
        Box::pin(state.dispatcher.dispatch(live, events))
            .await
            .map_err(|e| {
                webhook_outcome(provider, "unavailable");
                tracing::error!(error = %e, stage = "processing", "Store unavailable; webhook refused so the provider retries.");
                ApiError::unavailable("the store is unavailable; retry later")
            })?;
    if !report.all_settled() {
        webhook_outcome(provider, "unavailable");
        return Err(ApiError::unavailable(format!(
            "{} of {total} events could not be delivered; retry later",
            report.failed
        )));
    }
    webhook_outcome(provider, "accepted");
    Ok(HttpResponse::Ok().json(Answer {
        events: total,
        delivered: report.delivered,
        buffered: report.buffered,
        duplicates: report.duplicates,
        unroutable: report.unroutable,
    }))
}

/// The answer to a webhook whose events are all settled.
#[derive(serde::Serialize)]
struct Answer {
    events: usize,
    delivered: usize,
    buffered: usize,
    duplicates: usize,
    unroutable: usize,
}

/// Counts a webhook in `switchboard_webhooks_total{provider,outcome}`.
pub(super) fn webhook_outcome(provider: &'static str, outcome: &'static str) {
    // Every outcome's handle is kept (registered on first use, after the recorder is
    // installed at startup): no registry lookup per webhook.
    const PROVIDERS: [&str; 2] = ["meta", "telegram"];
    const OUTCOMES: [&str; 4] = ["accepted", "rejected", "unauthorized", "unavailable"];
    static HANDLES: [[OnceLock<Counter>; OUTCOMES.len()]; PROVIDERS.len()] =
        [const { [const { OnceLock::new() }; OUTCOMES.len()] }; PROVIDERS.len()];
    let register = || metrics::counter!("switchboard_webhooks_total", "provider" => provider, "outcome" => outcome);
    match (
        PROVIDERS.iter().position(|p| *p == provider),
        OUTCOMES.iter().position(|o| *o == outcome),
    ) {
        (Some(p), Some(o)) => HANDLES[p][o].get_or_init(register).increment(1),
        _ => register().increment(1),
    }
}
