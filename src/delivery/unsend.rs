//! Unsend: a customer deletes a message they sent (Instagram's `is_deleted`, normalized
//! as `message.deleted`). If the relay still holds that message — its
//! `message.received` waiting, encrypted, in the retry buffer because the CRM was
//! down — the copy is dropped at once, so content the customer took back is never
//! delivered later (a copy in the dead-letter list is dropped too, so it is never
//! redriven). The `message.deleted` event itself is delivered as usual: the CRM
//! deletes its copy, if it has one. [`super::Dispatcher::dispatch`] does this right
//! after routing, before any delivery, with the tenants it routed to.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{BufferBackend, Dispatcher};
use crate::event::{Event, EventId, EventType};
use crate::live::Live;
use crate::tenant::Tenant;

/// The id of the `message.received` a `message.deleted` takes back (the adapters derive
/// it with the same [`EventId::of_message`]).
pub fn received_event_id(deleted: &Event) -> Option<EventId> {
    if deleted.event_type != EventType::MessageDeleted {
        return None;
    }
    let mid = deleted
        .data
        .get("message")
        .and_then(|m| m.get("id"))
        .and_then(Value::as_str)?;
    Some(EventId::of_message(&deleted.channel, mid))
}

impl Dispatcher {
    /// Drops from the retry buffer every message these routed `message.deleted` events
    /// take back. Best effort: a failure is logged, and the webhook goes on (the CRM
    /// still gets the deletion). Returns how many buffered messages were dropped.
    pub(super) async fn forget_unsent(
        &self,
        live: &Live,
        routed: &[(Arc<Tenant>, Event)],
    ) -> usize {
        let mut dropped = 0;
        let ttl = Duration::from_secs(live.settings.delivery.retry_buffer_ttl_s);
        for (tenant, deleted) in routed {
            let Some(original) = received_event_id(deleted) else {
                continue;
            };
            // The original is of the same conversation: the same slot.
            let slot = self.slot(tenant, deleted, original.as_str());
            match self
                .buffer
                .purge_event(slot.shard, original.as_str(), &slot.conv, ttl)
                .await
            {
                Ok(true) => {
                    dropped += 1;
                    metrics::counter!("switchboard_unsent_dropped_total", "channel" => deleted.channel.kind().as_str())
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
            // Nor is it redriven later from the dead-letter list.
            match self.dead_letters.purge_event(original.as_str()).await {
                Ok(true) => {
                    dropped += 1;
                    tracing::info!(event_id = %original, channel = %deleted.channel, stage = "processing", "Unsent message dropped from the dead-letter list.");
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(event_id = %original, error = %e, stage = "processing", "Unsent message could not be dropped from the dead-letter list.");
                }
            }
        }
        dropped
    }
}
