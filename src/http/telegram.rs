//! `POST /webhooks/telegram/{bot_id}`: a bot's updates. The channel (kind `telegram`,
//! id = the bot id) must exist (else 404) and the `X-Telegram-Bot-Api-Secret-Token`
//! header must equal its webhook secret (else 401, nothing forwarded). Then the update
//! is normalized and dispatched like every webhook.

use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::body::{read_limited, require_json};
use super::problem::ApiError;
use super::webhooks::dispatch_and_answer;
use crate::channels::telegram::{inbound, webhook};
use crate::channels::{ChannelKind, ChannelRef, NormalizeContext};
use crate::state::AppState;
use crate::store::StoreBackend;

const PROVIDER: &str = "telegram";

/// `POST /webhooks/telegram/{bot_id}`.
pub async fn telegram_webhook(
    req: HttpRequest,
    bot_id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    let bot_id = bot_id.into_inner();
    if bot_id.is_empty() || bot_id.len() > 20 || !bot_id.bytes().all(|b| b.is_ascii_digit()) {
        outcome("rejected");
        return Err(ApiError::channel_not_found("no such Telegram bot"));
    }
    let channel = ChannelRef::new(ChannelKind::Telegram, bot_id.as_str());
    let record = state
        .store
        .get_channel(&channel)
        .await
        .map_err(|e| {
            outcome("unavailable");
            tracing::error!(error = %e, stage = "receiving", "Store unavailable; Telegram webhook refused so Telegram retries.");
            ApiError::unavailable("the store is unavailable; retry later")
        })?
        .ok_or_else(|| {
            outcome("rejected");
            tracing::warn!(channel = %channel, stage = "receiving", "Telegram webhook for an unknown bot.");
            ApiError::channel_not_found("no such Telegram bot")
        })?;

    let open = |fernet: &str| {
        live.keyring.decrypt(fernet).map_err(|e| {
            outcome("unavailable");
            tracing::error!(error = %e, channel = %channel, stage = "receiving", "The channel's webhook secret cannot be opened.");
            ApiError::internal()
        })
    };
    let current: Option<Zeroizing<Vec<u8>>> = match &record.webhook_secret {
        Some(s) => Some(open(s.expose_secret())?),
        None => None,
    };
    let header = req
        .headers()
        .get("x-telegram-bot-api-secret-token")
        .map(|v| v.as_bytes());
    let accepted: Vec<&[u8]> = current.iter().map(|s| s.as_slice()).collect();
    let unauthorized = |e: inbound::SecretError| {
        metrics::counter!("switchboard_signature_failures_total", "provider" => PROVIDER)
            .increment(1);
        outcome("unauthorized");
        tracing::warn!(error = %e, channel = %channel, stage = "receiving", "Telegram webhook secret refused.");
        ApiError::unauthorized(e.to_string())
    };
    // The secret header is checked before the body is read.
    let accepted_secret = match inbound::verify_secret(header, &accepted) {
        Ok(ok) => ok,
        // During a `set-webhook` change the previous secret is still accepted.
        Err(inbound::SecretError::Mismatch) => {
            let previous = state
                .store
                .get(&webhook::previous_secret_key(state.store.keys(), &bot_id))
                .await
                .ok()
                .flatten();
            let previous = match previous {
                Some(p) => open(&p)?,
                None => return Err(unauthorized(inbound::SecretError::Mismatch)),
            };
            inbound::verify_secret(header, &[previous.as_slice()]).map_err(unauthorized)?
        }
        Err(e) => return Err(unauthorized(e)),
    };

    let body = read_limited(&req, payload, live.settings.server.max_body_bytes)
        .await
        .inspect_err(|_| outcome("rejected"))?;
    require_json(&req).inspect_err(|_| outcome("rejected"))?;
    let verified = accepted_secret.verified(&body);
    let ctx = NormalizeContext {
        public_url: &live.public_url,
    };
    let events = inbound::normalize(&bot_id, &verified, &ctx).map_err(|e| {
        outcome("rejected");
        tracing::warn!(error = %e, channel = %channel, stage = "processing", "Telegram update could not be read.");
        ApiError::invalid(e.to_string())
    })?;
    dispatch_and_answer(&state, &live, PROVIDER, events).await
}

fn outcome(outcome: &'static str) {
    metrics::counter!("switchboard_webhooks_total", "provider" => PROVIDER, "outcome" => outcome)
        .increment(1);
}
