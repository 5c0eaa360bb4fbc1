//! Dedupe: whether an event was accepted already, read together with its place in the
//! retry buffer (and, for an echo, the relay's mark of its own send) in one round trip,
//! and marking accepted events seen for `delivery.dedupe_window_s`.

use std::time::Duration;

use super::{buffer, BufferBackend, BufferError, Dispatcher, RetryBuffer};
use crate::config::DeliverySettings;
use crate::store::StoreBackend;

/// What [`Dispatcher::check`] read for one event.
pub(super) struct Checked {
    pub(super) presence: buffer::Presence,
    pub(super) seen: bool,
    pub(super) sent_by_relay: bool,
}

impl Dispatcher {
    /// Whether the event is in the buffer (or behind its conversation there), whether
    /// the CRM accepted it already, and, for an echo (`sent_key`), whether the relay
    /// sent what it echoes. The buffer is read first, then dedupe: the worker marks an
    /// event seen before it releases its pending marker, so this order never misses
    /// both. On one Redis server all are one MGET (one round trip).
    pub(super) async fn check(
        &self,
        shard: u16,
        event_id: &str,
        conv: Option<&str>,
        dedupe_key: &str,
        sent_key: Option<&str>,
    ) -> Result<Checked, BufferError> {
        if let RetryBuffer::Redis(b) = &self.buffer {
            if let Some((presence, seen, sent_by_relay)) = b
                .presence_and_seen(shard, event_id, conv, dedupe_key, sent_key)
                .await?
            {
                return Ok(Checked {
                    presence,
                    seen,
                    sent_by_relay,
                });
            }
        }
        let presence = self.buffer.presence(shard, event_id, conv).await?;
        if presence.pending {
            return Ok(Checked {
                presence,
                seen: false,
                sent_by_relay: false,
            });
        }
        let seen = self.store.exists(dedupe_key).await?;
        let sent_by_relay = match sent_key {
            Some(k) => self.store.exists(k).await?,
            None => false,
        };
        Ok(Checked {
            presence,
            seen,
            sent_by_relay,
        })
    }

    /// Remembers that the CRM accepted these events (dedupe keys): the marks are stored,
    /// or on their way ahead of anything this thread sends later
    /// ([`StoreBackend::send_ex_all`]).
    pub(super) async fn mark_all_seen(&self, dedupe_keys: &[String], delivery: &DeliverySettings) {
        if dedupe_keys.is_empty() {
            return;
        }
        let window = Duration::from_secs(delivery.dedupe_window_s);
        if let Err(e) = self.store.send_ex_all(dedupe_keys, "1", window).await {
            // Delivered but not remembered: a redelivery may reach the CRM twice
            // (at-least-once), which webhook-id lets it detect.
            tracing::warn!(events = dedupe_keys.len(), error = %e, stage = "sending", "Delivered events could not be marked as seen.");
        }
    }

    /// Remembers that the CRM accepted an event (for the dedupe window).
    pub async fn mark_seen(&self, dedupe_key: &str, event_id: &str, delivery: &DeliverySettings) {
        let window = Duration::from_secs(delivery.dedupe_window_s);
        if let Err(e) = self.store.set_ex(dedupe_key, "1", window).await {
            // Delivered but not remembered: a redelivery may reach the CRM twice
            // (at-least-once), which webhook-id lets it detect.
            tracing::warn!(event_id, error = %e, stage = "sending", "Delivered event could not be marked as seen.");
        }
    }
}
