//! What operators do with the retry buffer and the dead-letter list, shared by the
//! admin API (`/admin/v1/dead-letters`, `/admin/v1/buffer/stats`) and the CLI
//! (`switchboard buffer list|redrive|drop|stats`). Every answer holds ids, tenant,
//! type, attempts, times and ages only, never content: nothing here decrypts.
//!
//! Redrive puts a dead letter back into the retry buffer as a fresh entry (due now, a
//! new `retry_buffer_ttl_s` window, behind its conversation's buffered events when
//! ordering), then forgets the dead letter. The worker delivers it with its original
//! id; dedupe still applies (an event the CRM accepted in the meantime is not sent
//! again), and a redrive repeated after a crash finds it already buffered. A redriven
//! event counts toward `delivery.max_buffered_per_tenant` like any other: when its
//! tenant's buffer is full, the dead letter stays where it is.

use std::time::Duration;

use serde::Serialize;

use super::DeadLetter;
use crate::delivery::buffer::{BufferBackend, BufferError, Pushed};
use crate::delivery::Dispatcher;
use crate::event::EventId;
use crate::live::Live;
use crate::store::{StoreBackend, StoreError};
use crate::time::{format_rfc3339, now_ms};

/// Dead letters listed at most per call (and by default).
pub const MAX_LIMIT: usize = 1000;
pub const DEFAULT_LIMIT: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("no dead letter has the id {0}")]
    NotFound(String),
    #[error("dead letter {id} belongs to tenant {tenant}, which is not configured")]
    TenantNotConfigured { id: String, tenant: String },
    #[error("the retry buffer of tenant {tenant} is full (delivery.max_buffered_per_tenant); dead letter {id} is kept")]
    BufferFull { id: String, tenant: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Buffer(#[from] BufferError),
}

/// One dead letter as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterView {
    pub id: String,
    pub tenant: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub channel: String,
    pub attempts: u32,
    pub first_seen_at: String,
    pub given_up_at: String,
    pub expires_at: String,
    /// Since the relay first saw the event.
    pub age_s: u64,
    /// Since it was given up.
    pub dead_for_s: u64,
}

impl DeadLetterView {
    pub fn of(dl: &DeadLetter, now: i64) -> Self {
        let secs = |since: i64| ((now - since).max(0) / 1000) as u64;
        Self {
            id: dl.id.clone(),
            tenant: dl.tenant.clone(),
            event_type: dl.event_type.clone(),
            channel: dl.channel.clone(),
            attempts: dl.attempts,
            first_seen_at: format_rfc3339(dl.first),
            given_up_at: format_rfc3339(dl.given_up),
            expires_at: format_rfc3339(dl.expires),
            age_s: secs(dl.first),
            dead_for_s: secs(dl.given_up),
        }
    }
}

/// `GET /admin/v1/dead-letters`, `switchboard buffer list --json`.
#[derive(Debug, Serialize)]
pub struct DeadLetterList {
    /// Whether given-up events are kept now (`delivery.dead_letter_ttl_s` > 0).
    pub enabled: bool,
    pub count: usize,
    pub dead_letters: Vec<DeadLetterView>,
}

/// Where a redriven event went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Redriven {
    /// Due now in the retry buffer.
    Scheduled,
    /// In the buffer behind earlier events of its conversation.
    Parked,
    /// It was in the buffer already (a repeated redrive, or a provider redelivery).
    AlreadyBuffered,
    /// The CRM accepted it in the meantime (dedupe): not sent again.
    AlreadyDelivered,
}

#[derive(Debug, Clone, Serialize)]
pub struct RedriveReport {
    pub id: String,
    pub tenant: String,
    pub outcome: Redriven,
}

/// One tenant's retry buffer depth and dead letters.
#[derive(Debug, Clone, Serialize)]
pub struct TenantStats {
    pub tenant: String,
    pub buffered: u64,
    /// At `delivery.max_buffered_per_tenant`: its new events are refused (503).
    pub full: bool,
    /// Age of its oldest buffered event (none when empty).
    pub oldest_age_s: Option<u64>,
    pub dead_letters: u64,
}

/// `GET /admin/v1/buffer/stats`, `switchboard buffer stats --json`.
#[derive(Debug, Clone, Serialize)]
pub struct BufferStats {
    pub retry_buffer_ttl_s: u64,
    pub dead_letter_ttl_s: u64,
    /// `delivery.max_buffered_per_tenant` (0: no limit).
    pub max_buffered_per_tenant: u64,
    pub buffered: u64,
    pub dead_letters: u64,
    /// Every configured tenant, by id.
    pub tenants: Vec<TenantStats>,
}

/// Up to `limit` (at most [`MAX_LIMIT`]) dead letters, of one tenant or all, oldest
/// given up first.
pub async fn list(
    dispatcher: &Dispatcher,
    live: &Live,
    tenant: Option<&str>,
    limit: usize,
) -> Result<DeadLetterList, ToolError> {
    let found = dispatcher
        .dead_letters()
        .list(tenant, limit.clamp(1, MAX_LIMIT))
        .await?;
    let now = now_ms();
    Ok(DeadLetterList {
        enabled: live.settings.delivery.dead_letter_ttl_s > 0,
        count: found.len(),
        dead_letters: found.iter().map(|d| DeadLetterView::of(d, now)).collect(),
    })
}

/// One dead letter.
pub async fn get(dispatcher: &Dispatcher, id: &str) -> Result<DeadLetterView, ToolError> {
    match dispatcher.dead_letters().find(id).await? {
        Some((_, dl)) => Ok(DeadLetterView::of(&dl, now_ms())),
        None => Err(ToolError::NotFound(id.to_owned())),
    }
}

/// Puts a dead letter back into the retry buffer (see the module docs).
pub async fn redrive(
    dispatcher: &Dispatcher,
    live: &Live,
    id: &str,
) -> Result<RedriveReport, ToolError> {
    let dead = dispatcher.dead_letters();
    let Some((shard, dl)) = dead.find(id).await? else {
        return Err(ToolError::NotFound(id.to_owned()));
    };
    if !live.tenants.contains_key(&dl.tenant) {
        return Err(ToolError::TenantNotConfigured {
            id: dl.id,
            tenant: dl.tenant,
        });
    }
    let store = dispatcher.store();
    let delivery = &live.settings.delivery;
    let seen = store
        .exists(&store.keys().dedupe(&EventId::from_stored(dl.id.clone())))
        .await?;
    let outcome = if seen {
        Redriven::AlreadyDelivered
    } else {
        let ordered = delivery.ordered_per_conversation && !dl.conv.is_empty();
        let ttl = Duration::from_secs(delivery.retry_buffer_ttl_s);
        // Held to delivery.max_buffered_per_tenant like any event: a full buffer
        // keeps the dead letter where it is.
        match dispatcher
            .buffer()
            .push(
                &dl.to_entry(now_ms()),
                ordered,
                ttl,
                delivery.max_buffered_per_tenant,
            )
            .await?
        {
            Pushed::Scheduled => Redriven::Scheduled,
            Pushed::Parked => Redriven::Parked,
            Pushed::AlreadyBuffered => Redriven::AlreadyBuffered,
            Pushed::Full => {
                return Err(ToolError::BufferFull {
                    id: dl.id,
                    tenant: dl.tenant,
                })
            }
        }
    };
    // Only once it is safely in the buffer (a crash before this leaves both, and a
    // second redrive finds it buffered).
    dead.remove(shard, &dl).await?;
    metrics::counter!("switchboard_dead_letters_redriven_total", "tenant" => dl.tenant.clone())
        .increment(1);
    tracing::info!(
        event_id = %dl.id,
        tenant = %dl.tenant,
        event_type = %dl.event_type,
        outcome = ?outcome,
        stage = "sending",
        "Dead letter redriven into the retry buffer."
    );
    Ok(RedriveReport {
        id: dl.id,
        tenant: dl.tenant,
        outcome,
    })
}

/// Redrives up to `limit` dead letters (of one tenant, or all).
pub async fn redrive_all(
    dispatcher: &Dispatcher,
    live: &Live,
    tenant: Option<&str>,
    limit: usize,
) -> Result<Vec<RedriveReport>, ToolError> {
    let found = dispatcher
        .dead_letters()
        .list(tenant, limit.clamp(1, MAX_LIMIT))
        .await?;
    let mut out = Vec::with_capacity(found.len());
    for dl in found {
        match redrive(dispatcher, live, &dl.id).await {
            Ok(r) => out.push(r),
            // Gone meanwhile (redriven or dropped elsewhere, or expired).
            Err(ToolError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Deletes a dead letter for good.
pub async fn drop(dispatcher: &Dispatcher, id: &str) -> Result<(), ToolError> {
    let dead = dispatcher.dead_letters();
    let Some((shard, dl)) = dead.find(id).await? else {
        return Err(ToolError::NotFound(id.to_owned()));
    };
    dead.remove(shard, &dl).await?;
    metrics::counter!("switchboard_dead_letters_dropped_total", "tenant" => dl.tenant.clone())
        .increment(1);
    tracing::info!(event_id = %dl.id, tenant = %dl.tenant, event_type = %dl.event_type, stage = "sending", "Dead letter dropped.");
    Ok(())
}

/// The retry buffer depth, oldest age and dead letters of every configured tenant.
pub async fn stats(dispatcher: &Dispatcher, live: &Live) -> Result<BufferStats, ToolError> {
    let mut ids: Vec<String> = live.tenants.keys().cloned().collect();
    ids.sort();
    let depths = dispatcher.buffer().depths(&ids).await?;
    let now = now_ms();
    let delivery = &live.settings.delivery;
    let limit = delivery.max_buffered_per_tenant;
    let mut tenants = Vec::with_capacity(depths.len());
    for d in depths {
        let dead_letters = dispatcher.dead_letters().count(&d.tenant).await?;
        tenants.push(TenantStats {
            oldest_age_s: d.oldest_ms.map(|o| ((now - o).max(0) / 1000) as u64),
            buffered: d.depth,
            full: limit > 0 && d.depth >= limit,
            dead_letters,
            tenant: d.tenant,
        });
    }
    Ok(BufferStats {
        retry_buffer_ttl_s: delivery.retry_buffer_ttl_s,
        dead_letter_ttl_s: delivery.dead_letter_ttl_s,
        max_buffered_per_tenant: limit,
        buffered: tenants.iter().map(|t| t.buffered).sum(),
        dead_letters: tenants.iter().map(|t| t.dead_letters).sum(),
        tenants,
    })
}
