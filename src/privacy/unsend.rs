//! Unsend: a customer deletes a message they sent (Instagram's `is_deleted`, normalized
//! as `message.deleted`). If the relay still holds that message — its
//! `message.received` waiting, encrypted, in the retry buffer because the CRM was
//! down — the copy is dropped at once, so content the customer took back is never
//! delivered later. The `message.deleted` event itself is delivered as usual: the CRM
//! deletes its copy, if it has one.

use std::time::Duration;

use serde_json::Value;

use crate::delivery::Dispatcher;
use crate::event::{Event, EventId, EventType};
use crate::live::Live;
use crate::store::{Store, StoreBackend};

/// The id of the `message.received` a `message.deleted` takes back: derived as the
/// Meta messaging adapter derives it (channel kind, channel id, `"message"`, mid).
pub fn received_event_id(deleted: &Event) -> Option<EventId> {
    if deleted.event_type != EventType::MessageDeleted {
        return None;
    }
    let mid = deleted
        .data
        .get("message")
        .and_then(|m| m.get("id"))
        .and_then(Value::as_str)?;
    Some(EventId::derive(&[
        deleted.channel.kind.as_str(),
        &deleted.channel.id,
        "message",
        mid,
    ]))
}

/// Drops from the retry buffer every message these `message.deleted` events take back.
/// Best effort: a failure is logged, and the webhook goes on (the CRM still gets the
/// deletion). Returns how many buffered messages were dropped.
pub async fn forget_unsent(
    store: &Store,
    dispatcher: &Dispatcher,
    live: &Live,
    events: &[Event],
) -> usize {
    let mut dropped = 0;
    for deleted in events {
        let Some(original) = received_event_id(deleted) else {
            continue;
        };
        // The buffer files a conversation's events under the tenant's keyed hash of it.
        let tenant = match store.get_channel(&deleted.channel).await {
            Ok(Some(record)) => live.tenants.get(&record.tenant).cloned(),
            _ => None,
        };
        let Some(tenant) = tenant else {
            continue;
        };
        let conv = deleted
            .ordering_key()
            .map(|k| tenant.signer.conversation_hash(&k))
            .unwrap_or_default();
        let buffer = dispatcher.buffer();
        let shard = buffer.shard_for(if conv.is_empty() {
            original.as_str()
        } else {
            &conv
        });
        let ttl = Duration::from_secs(live.settings.delivery.retry_buffer_ttl_s);
        match buffer
            .purge_event(shard, original.as_str(), &conv, ttl)
            .await
        {
            Ok(true) => {
                dropped += 1;
                metrics::counter!("switchboard_unsent_dropped_total", "channel" => deleted.channel.kind.as_str())
                    .increment(1);
                tracing::info!(
                    event_id = %original,
                    channel = %deleted.channel,
                    stage = "processing",
                    "Unsent message dropped from the retry buffer before delivery."
                );
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(event_id = %original, error = %e, stage = "processing", "Unsent message could not be dropped from the retry buffer.");
            }
        }
    }
    dropped
}
