//! The retry worker: every replica runs one, and together they drain the
//! [`super::buffer`]. It is a thin loop around one step: take a due entry, attempt it,
//! then acknowledge and forget it (delivered, or given up past
//! `delivery.retry_buffer_ttl_s`) or put it back with its next due time
//! ([`super::retry`]: exponential backoff with jitter, or the CRM's `Retry-After`).
//! Tests drive the step directly with [`Worker::deliver_next`].
//!
//! The loop reads each shard on its own blocking connection and hands every entry to a
//! task of its own, at most `delivery.worker_concurrency` at once, so a slow CRM never
//! holds up another tenant's entries: one tenant holds at most half of them, and an open
//! circuit breaker postpones its tenant's entries without attempting them. On shutdown
//! the loop stops taking entries and waits for the attempts in flight: each ends
//! delivered or back in the buffer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use super::buffer::{BufferBackend, BufferError, ReadSlot, Taken};
use super::retry;
use super::{Admission, Dispatcher, EventIds, Source};
use crate::event::EventId;
use crate::live::Live;
use crate::store::StoreBackend;
use crate::time::now_ms;

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was due.
    Idle,
    /// The CRM accepted the entry; it is gone from the buffer.
    Delivered,
    /// The CRM had already accepted it (a repeated step after a crash); forgotten.
    Duplicate,
    /// The attempt failed; the entry waits for its next due time.
    Retried,
    /// Not attempted: the tenant's circuit breaker is open; postponed.
    Deferred,
    /// Older than `delivery.retry_buffer_ttl_s`: counted, logged, deleted from the
    /// buffer (and kept in the dead-letter list when `delivery.dead_letter_ttl_s` > 0).
    GivenUp,
}

/// One replica's worker.
pub struct Worker {
    live: Arc<ArcSwap<Live>>,
    dispatcher: Dispatcher,
    /// This replica's name in the consumer group (unique per process).
    consumer: String,
    /// Attempts in flight per tenant: one tenant may hold at most half of
    /// `delivery.worker_concurrency`, so a CRM that is slow (but not failing, so its
    /// breaker stays shut) cannot take every slot from the others.
    inflight: Mutex<HashMap<String, usize>>,
}

/// A tenant's slot in the worker; freed on drop.
struct TenantSlot<'a> {
    worker: &'a Worker,
    tenant: String,
}

impl Drop for TenantSlot<'_> {
    fn drop(&mut self) {
        let mut map = self.worker.inflight();
        if let Some(n) = map.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.tenant);
            }
        }
    }
}

impl Worker {
    pub fn new(
        live: Arc<ArcSwap<Live>>,
        dispatcher: Dispatcher,
        consumer: impl Into<String>,
    ) -> Self {
        let d = &live.load().settings.delivery;
        // A pool of its own (see `Dispatcher::with_client`).
        let dispatcher = match super::CrmClient::new(
            Duration::from_millis(d.timeout_ms),
            d.max_response_bytes,
        ) {
            Ok(client) => dispatcher.with_client(client),
            Err(_) => dispatcher,
        };
        Self {
            live,
            dispatcher,
            consumer: consumer.into(),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    fn inflight(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for an attempt of `tenant`, unless it holds `cap` already.
    fn tenant_slot(&self, tenant: &str, cap: usize) -> Option<TenantSlot<'_>> {
        let mut map = self.inflight();
        let n = map.entry(tenant.to_owned()).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(TenantSlot {
            worker: self,
            tenant: tenant.to_owned(),
        })
    }

    /// A consumer name unique to this process.
    pub fn consumer_name() -> String {
        format!("relay-{}-{:08x}", std::process::id(), rand::random::<u32>())
    }

    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    fn ttl(live: &Live) -> Duration {
        Duration::from_secs(live.settings.delivery.retry_buffer_ttl_s)
    }

    /// The step: takes one due entry (of any shard, without waiting) and handles it.
    pub async fn deliver_next(&self) -> Result<Outcome, BufferError> {
        let ttl = Self::ttl(&self.live.load());
        let buffer = self.dispatcher.buffer();
        let mut slot = ReadSlot::default();
        for shard in 0..buffer.shards() {
            if let Some(taken) = buffer
                .take(shard, &self.consumer, Duration::ZERO, ttl, &mut slot)
                .await?
            {
                return self.handle(taken).await;
            }
        }
        Ok(Outcome::Idle)
    }

    /// Attempts one taken entry and settles it in the buffer.
    pub async fn handle(&self, taken: Taken) -> Result<Outcome, BufferError> {
        let live = self.live.load_full();
        let delivery = &live.settings.delivery;
        let ttl = Self::ttl(&live);
        let buffer = self.dispatcher.buffer();
        let e = &taken.entry;
        let now = now_ms();
        let opened = e.open(&live.keyring);

        if now >= e.first.saturating_add(ttl.as_millis() as i64) {
            let event_type = opened
                .as_ref()
                .map(|s| s.event_type.clone())
                .unwrap_or_else(|_| "unknown".into());
            // Kept before it leaves the buffer: a failure leaves it pending, to be
            // claimed and given up again.
            let dead_lettered = self
                .dispatcher
                .dead_letters()
                .keep_given_up(e, taken.shard, &event_type, now, delivery)
                .await?;
            buffer.complete(&taken, ttl).await?;
            metrics::counter!("switchboard_events_given_up_total", "tenant" => e.tenant.clone(), "type" => event_type.clone())
                .increment(1);
            tracing::error!(
                event_id = %e.id,
                tenant = %e.tenant,
                event_type = %event_type,
                attempts = e.attempts,
                age_s = (now - e.first) / 1000,
                dead_lettered,
                stage = "sending",
                "Event given up: not delivered within delivery.retry_buffer_ttl_s."
            );
            return Ok(Outcome::GivenUp);
        }

        let sealed = match opened {
            Ok(s) => s,
            Err(err) => {
                tracing::error!(event_id = %e.id, tenant = %e.tenant, error = %err, stage = "sending",
                    "Retry entry cannot be opened with the vault keys; kept until a key that opens it is configured or it is given up.");
                return self.retry(&taken, None, &live).await;
            }
        };
        let Some(tenant) = live.tenants.get(&e.tenant).cloned() else {
            tracing::error!(event_id = %e.id, tenant = %e.tenant, stage = "sending",
                "Retry entry names a tenant that is not configured; kept until it is or the entry is given up.");
            return self.retry(&taken, None, &live).await;
        };

        let store = self.dispatcher.store();
        let dedupe_key = store.keys().dedupe(&EventId::from_stored(e.id.clone()));
        if store.exists(&dedupe_key).await? {
            buffer.complete(&taken, ttl).await?;
            return Ok(Outcome::Duplicate);
        }

        let cap = (delivery.worker_concurrency / 2).max(1);
        let Some(_slot) = self.tenant_slot(&tenant.id, cap) else {
            // The tenant has its share in flight: try again about one attempt later.
            let mut next = e.clone();
            let wait = delivery.timeout_ms.min(delivery.retry_max_ms) as f64;
            next.due = now + (wait * rand::random_range(0.5..=1.0)) as i64;
            buffer.reschedule(&taken, &next, ttl).await?;
            return Ok(Outcome::Deferred);
        };

        if let Admission::Open { until } = self.dispatcher.breakers().admit(&tenant.id) {
            let mut next = e.clone();
            let wait = until.saturating_duration_since(Instant::now());
            let spread = rand::random_range(0..=(wait.as_millis() as i64 / 5).max(1));
            next.due = now + wait.as_millis() as i64 + spread;
            buffer.reschedule(&taken, &next, ttl).await?;
            return Ok(Outcome::Deferred);
        }

        let ids = EventIds {
            id: &e.id,
            channel: &e.channel,
            event_type: &sealed.event_type,
        };
        let result = self
            .dispatcher
            .deliver_body(&tenant, ids, Bytes::from(sealed.body), Source::Buffer)
            .await;
        self.dispatcher
            .breakers()
            .record(&tenant.id, result.is_ok());
        match result {
            Ok(()) => {
                self.dispatcher
                    .mark_seen(&dedupe_key, &e.id, delivery)
                    .await;
                buffer.complete(&taken, ttl).await?;
                metrics::histogram!("switchboard_delivery_latency_seconds", "tenant" => tenant.id.clone(), "source" => "buffer")
                    .record((now_ms() - e.first).max(0) as f64 / 1000.0);
                Ok(Outcome::Delivered)
            }
            Err(err) => self.retry(&taken, err.retry_after(), &live).await,
        }
    }

    /// Puts an entry back for its next attempt (never later than its give-up time).
    async fn retry(
        &self,
        taken: &Taken,
        retry_after: Option<Duration>,
        live: &Live,
    ) -> Result<Outcome, BufferError> {
        let ttl = Self::ttl(live);
        let mut next = taken.entry.clone();
        next.attempts = next.attempts.saturating_add(1);
        next.due = retry::next_due(
            now_ms(),
            next.first,
            next.attempts,
            retry_after,
            &live.settings.delivery,
        );
        self.dispatcher
            .buffer()
            .reschedule(taken, &next, ttl)
            .await?;
        Ok(Outcome::Retried)
    }
}

/// The running worker of a replica.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Stops taking entries and waits until every attempt in flight has settled.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        tracing::info!("Retry worker stopped.");
    }
}

/// Starts the worker: one reading loop per shard, plus the depth gauges.
pub fn spawn(worker: Arc<Worker>) -> WorkerHandle {
    let concurrency = worker.live.load().settings.delivery.worker_concurrency;
    let (stop, rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::new();
    for shard in 0..worker.dispatcher.buffer().shards() {
        tasks.push(tokio::spawn(run_shard(
            worker.clone(),
            shard,
            rx.clone(),
            permits.clone(),
        )));
    }
    tasks.push(tokio::spawn(report_depths(worker.clone(), rx)));
    tracing::info!(consumer = %worker.consumer, "Retry worker started.");
    WorkerHandle { stop, tasks }
}

async fn run_shard(
    worker: Arc<Worker>,
    shard: u16,
    mut stop: watch::Receiver<bool>,
    permits: Arc<Semaphore>,
) {
    let mut slot = ReadSlot::default();
    let mut inflight = JoinSet::new();
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            break;
        }
        while inflight.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let live = worker.live.load_full();
        let d = &live.settings.delivery;
        let block = Duration::from_millis(d.poll_ms);
        // A blocking read returns within `poll_ms`; it is not cancelled, so an entry
        // Redis hands out is never dropped on the floor.
        let taken = worker
            .dispatcher
            .buffer()
            .take(
                shard,
                &worker.consumer,
                block,
                Worker::ttl(&live),
                &mut slot,
            )
            .await;
        match taken {
            Ok(Some(taken)) => {
                failures = 0;
                let w = worker.clone();
                inflight.spawn(async move {
                    let _permit = permit;
                    let id = taken.entry.id.clone();
                    if let Err(e) = w.handle(taken).await {
                        // The entry stays in the group's pending list and is claimed
                        // again after the visibility timeout.
                        tracing::warn!(event_id = %id, error = %e, stage = "sending", "Retry entry not settled; it will be claimed again.");
                    }
                });
            }
            Ok(None) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 {
                    tracing::warn!(shard, error = %e, stage = "sending", "Retry buffer unreadable; retrying.");
                }
                let wait = retry::backoff(failures, d.poll_ms.max(50), 5_000);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => break,
                }
            }
        }
    }
    while inflight.join_next().await.is_some() {}
}

/// How often the group's consumers are pruned, and how long one must have been idle
/// (holding nothing) to go.
const CONSUMER_PRUNE_EVERY: Duration = Duration::from_secs(600);
const CONSUMER_IDLE: Duration = Duration::from_secs(3600);

/// Publishes depth and oldest age per tenant (gauges), logs them while non-zero, and
/// prunes the consumers of replicas that are gone.
async fn report_depths(worker: Arc<Worker>, mut stop: watch::Receiver<bool>) {
    let mut last_log: Option<Instant> = None;
    let mut last_prune = Instant::now();
    loop {
        let live = worker.live.load_full();
        let every = Duration::from_millis((live.settings.delivery.poll_ms * 10).clamp(500, 5_000));
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => break,
        }
        if last_prune.elapsed() >= CONSUMER_PRUNE_EVERY {
            last_prune = Instant::now();
            match worker
                .dispatcher
                .buffer()
                .prune_consumers(CONSUMER_IDLE, &worker.consumer)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    removed = n,
                    "Consumers of replicas that are gone removed from the retry group."
                ),
                Err(e) => tracing::debug!(error = %e, "Consumer pruning skipped."),
            }
        }
        let tenants: Vec<String> = live.tenants.keys().cloned().collect();
        let Ok(depths) = worker.dispatcher.buffer().depths(&tenants).await else {
            continue;
        };
        let now = now_ms();
        let log = depths.iter().any(|d| d.depth > 0)
            && last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(30));
        for d in &depths {
            let age = d
                .oldest_ms
                .map_or(0.0, |o| (now - o).max(0) as f64 / 1000.0);
            metrics::gauge!("switchboard_retry_buffer_depth", "tenant" => d.tenant.clone())
                .set(d.depth as f64);
            let limit = live.settings.delivery.max_buffered_per_tenant;
            let full = limit > 0 && d.depth >= limit;
            metrics::gauge!("switchboard_retry_buffer_full", "tenant" => d.tenant.clone())
                .set(if full { 1.0 } else { 0.0 });
            metrics::gauge!("switchboard_retry_buffer_oldest_age_seconds", "tenant" => d.tenant.clone())
                .set(age);
            if log && d.depth > 0 {
                tracing::info!(tenant = %d.tenant, depth = d.depth, oldest_age_s = age as u64, stage = "sending", "Retry buffer holds events.");
            }
        }
        if log {
            last_log = Some(Instant::now());
        }
        if live.settings.delivery.dead_letter_ttl_s > 0 {
            worker
                .dispatcher
                .dead_letters()
                .report_counts(&tenants)
                .await;
        }
    }
}
