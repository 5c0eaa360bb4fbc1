//! `POST /webhooks/telegram/{bot_id}`: a bot's updates. The channel (kind `telegram`,
//! id = the bot id) must exist (else 404) and the `X-Telegram-Bot-Api-Secret-Token`
//! header must equal its webhook secret (else 401, nothing forwarded). Then the update
//! is normalized and dispatched like every webhook.

use actix_web::{web, HttpRequest, HttpResponse};

use super::body::{read_limited, require_json};
use super::problem::ApiError;
use super::webhooks::{dispatch_and_answer, webhook_outcome};
use crate::channels::telegram::inbound;
use crate::channels::telegram::secret::{self, SecretCheckError};
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
    // A bot id is positive (a chat id may be negative, a bot's never is).
    let channel = match ChannelRef::parse(ChannelKind::Telegram, bot_id.as_str()) {
        Ok(c) if !bot_id.starts_with('-') && bot_id.len() <= 20 => c,
        _ => {
            outcome("rejected");
            return Err(ApiError::channel_not_found("no such Telegram bot"));
        }
    };
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

    let header = req
        .headers()
        .get("x-telegram-bot-api-secret-token")
        .map(|v| v.as_bytes());
    // The secret header is checked before the body is read.
    let accepted_secret =
        secret::check_webhook_secret(&state.store, &live.keyring, &bot_id, &record, header)
            .await
            .map_err(|e| match e {
                SecretCheckError::Refused(e) => {
                    metrics::counter!("switchboard_signature_failures_total", "provider" => PROVIDER)
                        .increment(1);
                    outcome("unauthorized");
                    tracing::warn!(error = %e, channel = %channel, stage = "receiving", "Telegram webhook secret refused.");
                    ApiError::unauthorized(e.to_string())
                }
                SecretCheckError::Unopenable(e) => {
                    outcome("unavailable");
                    tracing::error!(error = %e, channel = %channel, stage = "receiving", "The channel's webhook secret cannot be opened.");
                    ApiError::internal()
                }
            })?;

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
    webhook_outcome(PROVIDER, outcome);
}
