//! Sending a reply: [`send_message`] is the whole of `POST /v1/messages` after the route
//! parsed it (channel, `Idempotency-Key`, the send in its own task, metrics, the record
//! of the answer); [`send`] is one message through the channel's adapter, with retries
//! of what cannot have been delivered. A Messenger or Instagram message id is
//! remembered once sent, so its echo says `sent_by_relay` ([`crate::delivery::echo`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::idempotency::{self, Claim, StoredResponse};
use super::{notify_reauth, open_channel, OpenChannel, Providers, ReplyError};
use crate::channels::instagram::outbound::Instagram;
use crate::channels::messenger::outbound::Messenger;
use crate::channels::outbound::{Outbound, OutboundMessage, Receipt, SendError};
use crate::channels::telegram::outbound::{Telegram, TelegramEndpoint};
use crate::channels::whatsapp::outbound::WhatsApp;
use crate::channels::ChannelKind;
use crate::delivery::{echo, Dispatcher};
use crate::live::Live;
use crate::store::Store;
use crate::tenant::Tenant;

/// A `POST /v1/messages`, as the route parsed it.
pub struct Reply {
    /// The config the request started with.
    pub live: Arc<Live>,
    /// The tenant of the API key.
    pub tenant: Arc<Tenant>,
    pub msg: OutboundMessage,
    /// A valid `Idempotency-Key` ([`idempotency::valid_key`]), if one was sent.
    pub idempotency_key: Option<String>,
}

/// What to answer: the stored form of the answer (the recipient is put back from the
/// message), and whether it replays an earlier request's.
pub struct Answer {
    pub response: StoredResponse,
    pub msg: OutboundMessage,
    pub replayed: bool,
}

/// Sends a reply: opens the channel (404/403, the token from the vault), claims the
/// `Idempotency-Key` (or replays its answer, or refuses: in flight, other body), and
/// sends in a task of its own, so a CRM that hangs up (or a shutdown) cannot cancel the
/// send and its bookkeeping half way, after the provider accepted the message but before
/// the idempotency record says so. `error_answer` renders a refused send as the route
/// answers it (that answer is what a replay repeats). `body` is the request body the key
/// is bound to.
pub async fn send_message(
    store: &Store,
    dispatcher: &Dispatcher,
    providers: &Providers,
    reply: Reply,
    body: &[u8],
    error_answer: fn(SendError) -> StoredResponse,
) -> Result<Answer, ReplyError> {
    let Reply {
        live,
        tenant,
        msg,
        idempotency_key,
    } = reply;
    let opened = open_channel(store, &live, &tenant, &msg.channel)
        .await
        .inspect_err(|e| {
            if let ReplyError::Vault(v) = e {
                tracing::error!(channel = %msg.channel, error = %v, stage = "sending", "Channel token cannot be opened.");
            }
        })?;

    let claimed = match idempotency_key {
        None => None,
        Some(k) => {
            let key = store.keys().idempotency(&tenant.id, &k);
            let fp = idempotency::fingerprint(live.keyring.fingerprints(), body);
            let settings = &live.settings;
            // The pending marker outlives the longest send, so a replica that dies
            // mid-send frees the key.
            let pending_ttl = Duration::from_millis(
                settings.replies.retry_deadline_ms
                    + settings.meta.timeout_ms.max(settings.telegram.timeout_ms),
            ) + Duration::from_secs(30);
            let mut claim = idempotency::claim(store, &key, &fp, pending_ttl).await?;
            if claim == Claim::InFlight {
                claim = idempotency::wait(
                    store,
                    &key,
                    &fp,
                    pending_ttl,
                    Duration::from_millis(settings.replies.idempotency_wait_ms),
                )
                .await?;
            }
            match claim {
                Claim::Claimed => Some((key, fp)),
                Claim::Replay(response) => {
                    tracing::info!(tenant = %tenant.id, channel = %msg.channel, stage = "sending", "Idempotent reply replayed.");
                    return Ok(Answer {
                        response,
                        msg,
                        replayed: true,
                    });
                }
                Claim::InFlight => return Err(ReplyError::IdempotencyInFlight),
                Claim::Mismatch => return Err(ReplyError::IdempotencyMismatch),
            }
        }
    };

    let task = tokio::spawn(send_and_record(
        store.clone(),
        dispatcher.clone(),
        providers.clone(),
        Sending {
            live,
            tenant,
            msg,
            opened,
            claimed,
        },
        error_answer,
    ));
    task.await.map_err(|_| ReplyError::Aborted)
}

/// A send under way, with the idempotency claim (key, fingerprint) it must settle.
struct Sending {
    live: Arc<Live>,
    tenant: Arc<Tenant>,
    msg: OutboundMessage,
    opened: OpenChannel,
    claimed: Option<(String, idempotency::Fingerprint)>,
}

/// Sends, records metrics and the log line, and completes or releases the idempotency
/// claim. Returns what to answer.
async fn send_and_record(
    store: Store,
    dispatcher: Dispatcher,
    providers: Providers,
    sending: Sending,
    error_answer: fn(SendError) -> StoredResponse,
) -> Answer {
    let Sending {
        live,
        tenant,
        msg,
        opened,
        claimed,
    } = sending;
    let started = Instant::now();
    let result = send(&providers, &live, &msg, &opened).await;
    if let Ok(Receipt { id: Some(mid) }) = &result {
        // First, so the echo Meta sends for it finds the mark (delivery::echo).
        let window = Duration::from_secs(live.settings.delivery.dedupe_window_s);
        echo::remember_sent(&store, &msg.channel, mid, window).await;
    }
    let outcome = match &result {
        Ok(_) => "sent",
        Err(e) => e.label(),
    };
    metrics::counter!("switchboard_replies_total", "channel" => msg.channel.kind().as_str(), "outcome" => outcome).increment(1);
    metrics::histogram!("switchboard_reply_duration_seconds", "channel" => msg.channel.kind().as_str())
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
        notify_reauth(&store, &dispatcher, live.clone(), msg.channel.clone(), d);
    }

    // What the first request answered, for replays: a success, or an unknown outcome
    // (never re-sent under this key). Anything else sent nothing: the key is freed.
    let (response, keep) = match result {
        Ok(receipt) => (
            StoredResponse {
                status: 200,
                body: json!({
                    "id": receipt.id,
                    "channel": {"kind": msg.channel.kind(), "id": msg.channel.id()},
                }),
                retry_after: None,
            },
            true,
        ),
        Err(e) => {
            let keep = matches!(e, SendError::Indeterminate(_));
            (error_answer(e), keep)
        }
    };
    if let Some((key, fp)) = claimed {
        let ttl = Duration::from_secs(live.settings.replies.idempotency_ttl_s);
        let saved = if keep {
            idempotency::complete(&store, &key, &fp, response.clone(), ttl).await
        } else {
            idempotency::release(&store, &key).await
        };
        if let Err(e) = saved {
            tracing::warn!(tenant = %tenant.id, error = %e, stage = "sending", "Idempotency record not updated; it expires on its own.");
        }
    }
    Answer {
        response,
        msg,
        replayed: false,
    }
}

/// One send through the channel's adapter (no retry), to the Graph API that serves the
/// channel.
pub async fn send_once(
    providers: &Providers,
    live: &Live,
    msg: &OutboundMessage,
    channel: &OpenChannel,
) -> Result<Receipt, SendError> {
    let graph = || channel.api.endpoint(live);
    let token = &channel.token;
    match msg.channel.kind() {
        ChannelKind::Whatsapp => {
            WhatsApp {
                graph: &providers.graph,
                endpoint: graph(),
            }
            .send(msg, token)
            .await
        }
        ChannelKind::Messenger => {
            Messenger {
                graph: &providers.graph,
                endpoint: graph(),
            }
            .send(msg, token)
            .await
        }
        ChannelKind::Instagram => {
            Instagram {
                graph: &providers.graph,
                endpoint: graph(),
            }
            .send(msg, token)
            .await
        }
        ChannelKind::Telegram => {
            Telegram {
                client: &providers.telegram,
                endpoint: TelegramEndpoint::from_settings(&live.settings.telegram),
            }
            .send(msg, token)
            .await
        }
    }
}

/// Sends with retries of what cannot have been delivered, until the deadline.
pub async fn send(
    providers: &Providers,
    live: &Live,
    msg: &OutboundMessage,
    channel: &OpenChannel,
) -> Result<Receipt, SendError> {
    let deadline = Instant::now() + Duration::from_millis(live.settings.replies.retry_deadline_ms);
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1u32;
    loop {
        let result = send_once(providers, live, msg, channel).await;
        match result {
            Err(e) if e.is_retryable() => {
                // ±20 % jitter, so replicas do not retry in step.
                let factor = 0.8 + rand::random::<f64>() * 0.4;
                let wait = delay.mul_f64(factor);
                if Instant::now() + wait >= deadline {
                    return Err(e);
                }
                tracing::warn!(
                    channel = %msg.channel,
                    attempt,
                    error = %e,
                    stage = "sending",
                    "Reply failed before reaching the provider; retrying."
                );
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(Duration::from_secs(2));
                attempt += 1;
            }
            other => return other,
        }
    }
}
