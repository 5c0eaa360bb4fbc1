//! Delivery: events to the CRM of their tenant, signed per Standard Webhooks.
//!
//! [`Dispatcher::dispatch`] takes the events of one webhook: it routes each by its
//! channel (store lookup → tenant), drops the ones the CRM already accepted (dedupe),
//! and offers the rest to the CRM directly, one conversation after another in order,
//! conversations in parallel. What the CRM does not take within `delivery.timeout_ms`
//! goes, Fernet-encrypted, into the [`buffer`] (so does an event whose tenant's
//! [`breaker`] is open, or whose conversation already waits in the buffer), and the
//! [`worker`] of any replica delivers it later. An event counts as seen only once its
//! CRM accepted it (`dedupe.rs`); a Messenger or Instagram echo is marked `sent_by_relay`
//! ([`echo`]) in the same read. Only what could be neither delivered nor buffered is
//! reported back, so the webhook is answered 5xx and the provider retries: nothing
//! acknowledged is lost.

mod account;
pub mod breaker;
pub mod buffer;
pub mod client;
pub mod dead_letter;
mod dedupe;
pub mod echo;
pub mod retry;
pub mod unsend;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};

use crate::channel::ChannelKind;
use crate::channels::ChannelRef;
use crate::config::DeliverySettings;
use crate::event::{Event, EventType};
use crate::live::Live;
use crate::store::{Store, StoreBackend, StoreError};
use crate::tenant::Tenant;

pub use breaker::{Admission, Breakers};
pub use buffer::{BufferBackend, BufferError, Entry, Pushed, RetryBuffer, Sealed};
pub use client::{CrmClient, DeliveryError};
pub use dead_letter::DeadLetters;
pub use worker::{Outcome, Worker, WorkerHandle};

/// What happened to the events of one webhook.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DispatchReport {
    /// Accepted by their CRM now.
    pub delivered: usize,
    /// Kept, encrypted, in the retry buffer (now or by an earlier delivery of the same
    /// webhook): the worker delivers them.
    pub buffered: usize,
    /// Already accepted earlier (a redelivered webhook).
    pub duplicates: usize,
    /// For a channel no tenant claims: answered 200, counted, never forwarded to a guess.
    pub unroutable: usize,
    /// Neither delivered nor kept: the webhook must be answered 5xx.
    pub failed: usize,
}

impl DispatchReport {
    pub fn all_settled(&self) -> bool {
        self.failed == 0
    }
}

/// Routes, dedupes and delivers events; buffers what the CRM does not take.
#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    client: CrmClient,
    buffer: RetryBuffer,
    /// Where given-up events wait when `delivery.dead_letter_ttl_s` > 0.
    dead_letters: DeadLetters,
    breakers: Arc<Breakers>,
}

/// An event's place in the retry buffer: the tenant's keyed hash of its conversation
/// (empty without one; Redis never sees the conversation itself) and its shard (by the
/// hash, so a conversation stays on one shard; else by the event id).
struct Slot {
    conv: String,
    shard: u16,
}

impl Slot {
    /// The conversation the event is ordered in, when ordering applies to it.
    fn ordered_conv(&self, delivery: &DeliverySettings) -> Option<&str> {
        (delivery.ordered_per_conversation && !self.conv.is_empty()).then_some(self.conv.as_str())
    }
}

/// The dedupe keys of the events of one webhook the CRM accepted, marked seen together
/// once the webhook's deliveries are done. (The groups of a webhook run concurrently on
/// one task; the lock is never held across an await.)
#[derive(Default)]
struct Accepted(std::sync::Mutex<Vec<String>>);

impl Accepted {
    fn keys(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn contains(&self, key: &str) -> bool {
        self.keys().iter().any(|k| k == key)
    }

    fn push(&self, key: String) {
        self.keys().push(key);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.keys())
    }
}

enum Step {
    Delivered,
    Duplicate,
    Buffered,
    Failed,
}

/// The ids of one event, for logs and metrics (never its content). The channel is
/// written out only when a line is logged.
#[derive(Clone, Copy)]
pub struct EventIds<'a> {
    pub id: &'a str,
    pub channel: &'a (dyn std::fmt::Display + Sync),
    pub event_type: &'a str,
}

/// Where an attempt came from, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Direct,
    Buffer,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Direct => "direct",
            Source::Buffer => "buffer",
        }
    }
}

impl Dispatcher {
    /// The buffer follows the store: Redis streams, or in-process for `memory`.
    pub fn new(store: Store, client: CrmClient, delivery: &DeliverySettings) -> Self {
        let claim_idle = Duration::from_millis(delivery.claim_idle_ms);
        let buffer = match &store {
            Store::Redis(r) => RetryBuffer::Redis(buffer::RedisBuffer::new(
                (**r).clone(),
                delivery.retry_shards,
                claim_idle,
            )),
            Store::Memory(_) => {
                RetryBuffer::Memory(Arc::new(buffer::MemoryBuffer::new(claim_idle)))
            }
        };
        let breakers = Arc::new(Breakers::new(
            delivery.breaker_failures,
            Duration::from_millis(delivery.breaker_cooldown_ms),
            Duration::from_millis(delivery.timeout_ms.saturating_mul(2)),
        ));
        let dead_letters = DeadLetters::open(&store, delivery);
        Self {
            store,
            client,
            buffer,
            dead_letters,
            breakers,
        }
    }

    /// The same dispatcher with its own CRM client (connection pool). The worker uses
    /// one: pooled connections belong to the runtime that opened them, and the HTTP
    /// server's runtimes end at shutdown, while the worker still finishes its attempts.
    pub fn with_client(&self, client: CrmClient) -> Self {
        Self {
            client,
            ..self.clone()
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn buffer(&self) -> &RetryBuffer {
        &self.buffer
    }

    pub fn dead_letters(&self) -> &DeadLetters {
        &self.dead_letters
    }

    pub fn breakers(&self) -> &Breakers {
        &self.breakers
    }

    /// Delivers (or buffers) the events of one webhook. A store failure while routing
    /// is returned as an error (nothing was delivered; answer 503).
    pub async fn dispatch(
        &self,
        live: &Live,
        events: Vec<Event>,
    ) -> Result<DispatchReport, StoreError> {
        let mut report = DispatchReport::default();
        let routed = self.route(live, events, &mut report).await?;
        // An unsent message still waiting in the retry buffer is dropped before delivery.
        // (The less usual paths are boxed, so the usual one's future stays small.)
        if routed
            .iter()
            .any(|(_, e)| unsend::received_event_id(e).is_some())
        {
            Box::pin(self.forget_unsent(live, &routed)).await;
        }

        let accepted = Accepted::default();
        if routed.len() == 1 {
            // One event, the usual webhook: delivered in place, nothing to group.
            let steps = self.deliver_group(live, routed, &accepted).await;
            tally(&mut report, steps);
        } else {
            Box::pin(async {
                let concurrency = live.settings.delivery.max_concurrency;
                let mut results = stream::iter(by_conversation(routed))
                    .map(|group| self.deliver_group(live, group, &accepted))
                    .buffer_unordered(concurrency);
                while let Some(steps) = results.next().await {
                    tally(&mut report, steps);
                }
            })
            .await;
        }
        // Every event the CRM accepted is marked seen in one pipeline, before the webhook
        // is answered.
        self.mark_all_seen(&accepted.take(), &live.settings.delivery)
            .await;
        Ok(report)
    }

    /// Looks every distinct channel up once and pairs each event with its tenant.
    async fn route(
        &self,
        live: &Live,
        events: Vec<Event>,
        report: &mut DispatchReport,
    ) -> Result<Vec<(Arc<Tenant>, Event)>, StoreError> {
        let mut tenants: HashMap<ChannelRef, Option<Arc<Tenant>>> = HashMap::new();
        let mut wabas = HashMap::new();
        let mut routed = Vec::with_capacity(events.len());
        for event in events {
            events_total(&event).increment(1);
            if let Some(waba) = event.account.as_deref() {
                // About a WhatsApp Business Account: once to each tenant with a channel on it.
                let owners = account::owners(&self.store, live, waba, &mut wabas).await?;
                if owners.is_empty() {
                    unroutable(report, &event);
                }
                for (tenant, channel) in owners {
                    let copy = event.for_account_channel(channel, &tenant.id);
                    routed.push((tenant, copy));
                }
                continue;
            }
            let tenant = match tenants.get(&event.channel) {
                Some(t) => t.clone(),
                None => {
                    let t = match self.store.channel_tenant(&event.channel).await {
                        Ok(Some(tenant)) => {
                            let t = live.tenants.get(&tenant).cloned();
                            if t.is_none() {
                                tracing::error!(
                                    channel = %event.channel,
                                    tenant = %tenant,
                                    stage = "processing",
                                    "Channel names a tenant that is not configured."
                                );
                            }
                            t
                        }
                        Ok(None) => None,
                        Err(StoreError::Malformed { key, reason }) => {
                            tracing::error!(channel = %event.channel, %key, %reason, stage = "processing", "Channel record is malformed.");
                            None
                        }
                        Err(e) => return Err(e),
                    };
                    tenants.insert(event.channel.clone(), t.clone());
                    t
                }
            };
            match tenant {
                Some(t) => routed.push((t, event)),
                None => unroutable(report, &event),
            }
        }
        Ok(routed)
    }

    /// Delivers one conversation's events in order. Once one is buffered, the later
    /// ones queue behind it (with ordering on); once one could be neither delivered nor
    /// buffered, the rest are not attempted (a later event never overtakes an earlier
    /// one, and the provider retries the webhook).
    async fn deliver_group(
        &self,
        live: &Live,
        group: Vec<(Arc<Tenant>, Event)>,
        accepted: &Accepted,
    ) -> Vec<Step> {
        let mut steps = Vec::with_capacity(group.len());
        let mut blocked = false;
        for (tenant, mut event) in group {
            if blocked {
                steps.push(Step::Failed);
                continue;
            }
            let step = self
                .deliver_event(live, &tenant, &mut event, accepted)
                .await;
            blocked = matches!(step, Step::Failed);
            steps.push(step);
        }
        steps
    }

    async fn deliver_event(
        &self,
        live: &Live,
        tenant: &Tenant,
        event: &mut Event,
        accepted: &Accepted,
    ) -> Step {
        let delivery = &live.settings.delivery;
        let dedupe_key = self.store.keys().dedupe(&event.id);
        let sent_key = echo::sent_key(self.store.keys(), event);
        // The event's place in the buffer (a keyed hash of its conversation) is worked
        // out only where it is read: always on Redis, in process only while the buffer
        // holds anything (an empty one has nothing for the event to be in or behind).
        let slot = self
            .buffer
            .may_hold_events()
            .then(|| self.slot(tenant, event, event.id.as_str()));
        let checked = self
            .check(
                slot.as_ref().map_or(0, |s| s.shard),
                event.id.as_str(),
                slot.as_ref().and_then(|s| s.ordered_conv(delivery)),
                &dedupe_key,
                sent_key.as_deref(),
            )
            .await;
        let (presence, seen) = match checked {
            Ok(dedupe::Checked {
                presence,
                seen,
                sent_by_relay,
            }) => {
                if sent_key.is_some() {
                    echo::mark(event, sent_by_relay);
                }
                (presence, seen)
            }
            Err(e) => {
                tracing::warn!(event_id = %event.id, error = %e, stage = "processing", "Retry buffer or dedupe check failed.");
                return Step::Failed;
            }
        };
        if presence.pending {
            metrics::counter!("switchboard_events_already_buffered_total", "tenant" => tenant.id.clone()).increment(1);
            tracing::info!(event_id = %event.id, tenant = %tenant.id, stage = "processing", "Redelivered event is already in the retry buffer.");
            return Step::Buffered;
        }
        if seen {
            metrics::counter!("switchboard_events_duplicate_total", "channel" => event.channel.kind().as_str()).increment(1);
            tracing::debug!(event_id = %event.id, tenant = %tenant.id, stage = "processing", "Duplicate event skipped.");
            return Step::Duplicate;
        }
        if accepted.contains(&dedupe_key) {
            // The same event twice in one webhook, and the first was accepted just now.
            metrics::counter!("switchboard_events_duplicate_total", "channel" => event.channel.kind().as_str()).increment(1);
            return Step::Duplicate;
        }
        // From here on the event is only read (its echo mark, if any, is set).
        let event: &Event = event;
        let ids = EventIds {
            id: event.id.as_str(),
            channel: &event.channel,
            event_type: event.event_type.as_str(),
        };
        let body = Bytes::from(event.to_body(&tenant.id, tenant.include_raw));
        let now = crate::time::now_ms();
        // Only an event that goes to the buffer needs an entry.
        let (reason, attempts, due) = if presence.behind {
            ("ordered", 0, now)
        } else {
            match self.breakers.admit(&tenant.id) {
                Admission::Open { until } => {
                    let wait = until.saturating_duration_since(Instant::now()).as_millis() as i64;
                    ("breaker_open", 0, now + wait)
                }
                _ => {
                    let started = Instant::now();
                    let result = self
                        .deliver_body(tenant, ids, body.clone(), Source::Direct)
                        .await;
                    self.breakers.record(&tenant.id, result.is_ok());
                    match result {
                        Ok(()) => {
                            tenant
                                .metrics
                                .direct_latency
                                .record(started.elapsed().as_secs_f64());
                            accepted.push(dedupe_key);
                            return Step::Delivered;
                        }
                        Err(e) => (
                            "failed",
                            1,
                            retry::next_due(now, now, 1, e.retry_after(), delivery),
                        ),
                    }
                }
            }
        };
        let slot = slot.unwrap_or_else(|| self.slot(tenant, event, ids.id));
        let ordered = slot.ordered_conv(delivery).is_some();
        let conv = slot.conv;
        let mut entry = Entry {
            id: ids.id.to_owned(),
            tenant: tenant.id.clone(),
            channel: ids.channel.to_string(),
            conv,
            attempts,
            due,
            first: now,
            payload: String::new(),
        };
        let sealed = Sealed {
            id: entry.id.clone(),
            event_type: ids.event_type.to_owned(),
            tenant: tenant.id.clone(),
            channel: entry.channel.clone(),
            // The body is JSON made by serde_json: always UTF-8.
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        entry.payload = Entry::seal(&live.keyring, &sealed);
        let ttl = Duration::from_secs(delivery.retry_buffer_ttl_s);
        let limit = delivery.max_buffered_per_tenant;
        match Box::pin(self.buffer.push(&entry, ordered, ttl, limit)).await {
            Ok(Pushed::Full) => {
                metrics::gauge!("switchboard_retry_buffer_full", "tenant" => tenant.id.clone())
                    .set(1.0);
                metrics::counter!("switchboard_events_refused_total", "tenant" => tenant.id.clone(), "reason" => "buffer_full").increment(1);
                tracing::warn!(
                    event_id = ids.id,
                    tenant = %tenant.id,
                    channel = %ids.channel,
                    event_type = ids.event_type,
                    limit,
                    stage = "sending",
                    "Tenant's retry buffer is full (delivery.max_buffered_per_tenant); the webhook is refused so the provider retries."
                );
                Step::Failed
            }
            Ok(pushed) => {
                metrics::counter!("switchboard_events_buffered_total", "tenant" => tenant.id.clone(), "reason" => reason).increment(1);
                tracing::info!(
                    event_id = ids.id,
                    tenant = %tenant.id,
                    channel = %ids.channel,
                    event_type = ids.event_type,
                    reason,
                    parked = pushed == Pushed::Parked,
                    stage = "sending",
                    "Event kept in the retry buffer."
                );
                Step::Buffered
            }
            Err(e) => {
                metrics::counter!("switchboard_buffer_failures_total", "tenant" => tenant.id.clone()).increment(1);
                tracing::error!(
                    event_id = ids.id,
                    tenant = %tenant.id,
                    error = %e,
                    stage = "sending",
                    "Event could be neither delivered nor buffered; the webhook is refused so the provider retries."
                );
                Step::Failed
            }
        }
    }

    /// Where an event of this tenant sits in the buffer.
    fn slot(&self, tenant: &Tenant, event: &Event, event_id: &str) -> Slot {
        let conv = event
            .ordering_key()
            .map(|k| tenant.signer.conversation_hash(&k))
            .unwrap_or_default();
        let shard = self
            .buffer
            .shard_for(if conv.is_empty() { event_id } else { &conv });
        Slot { conv, shard }
    }

    /// One signed attempt with metrics and a log line (never the content).
    pub async fn deliver_body(
        &self,
        tenant: &Tenant,
        ids: EventIds<'_>,
        body: Bytes,
        source: Source,
    ) -> Result<(), DeliveryError> {
        let started = Instant::now();
        let result = self.client.deliver(tenant, ids.id, body).await;
        let elapsed = started.elapsed().as_secs_f64();
        match source {
            Source::Direct => tenant.metrics.direct_duration.record(elapsed),
            Source::Buffer => metrics::histogram!("switchboard_delivery_duration_seconds", "tenant" => tenant.id.clone(), "source" => source.as_str())
                .record(elapsed),
        }
        match &result {
            Ok(()) => {
                match source {
                    Source::Direct => {
                        tenant.metrics.direct_attempts_delivered.increment(1);
                        tenant.metrics.direct_delivered.increment(1);
                    }
                    Source::Buffer => {
                        metrics::counter!("switchboard_deliveries_total", "tenant" => tenant.id.clone(), "source" => source.as_str(), "outcome" => "delivered").increment(1);
                        metrics::counter!("switchboard_events_delivered_total", "tenant" => tenant.id.clone(), "source" => source.as_str()).increment(1);
                    }
                }
                tracing::info!(
                    event_id = ids.id,
                    tenant = %tenant.id,
                    channel = %ids.channel,
                    event_type = ids.event_type,
                    source = source.as_str(),
                    elapsed_ms = (elapsed * 1000.0) as u64,
                    stage = "sending",
                    "Event delivered."
                );
            }
            Err(e) => {
                metrics::counter!("switchboard_deliveries_total", "tenant" => tenant.id.clone(), "source" => source.as_str(), "outcome" => e.label()).increment(1);
                metrics::counter!("switchboard_delivery_failures_total", "tenant" => tenant.id.clone(), "source" => source.as_str(), "reason" => e.label()).increment(1);
                tracing::warn!(
                    event_id = ids.id,
                    tenant = %tenant.id,
                    channel = %ids.channel,
                    event_type = ids.event_type,
                    source = source.as_str(),
                    error = %e,
                    stage = "sending",
                    "Event delivery failed."
                );
            }
        }
        result
    }
}

/// The events of one webhook grouped by conversation (per tenant), in provider order
/// inside each group; an event without a conversation is a group of its own.
fn by_conversation(routed: Vec<(Arc<Tenant>, Event)>) -> Vec<Vec<(Arc<Tenant>, Event)>> {
    let mut groups: Vec<Vec<(Arc<Tenant>, Event)>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (tenant, event) in routed {
        match event.ordering_key() {
            Some(key) => {
                let key = format!("{}:{key}", tenant.id);
                match index.get(&key) {
                    Some(&i) => groups[i].push((tenant, event)),
                    None => {
                        index.insert(key, groups.len());
                        groups.push(vec![(tenant, event)]);
                    }
                }
            }
            None => groups.push(vec![(tenant, event)]),
        }
    }
    groups
}

/// Counts what happened to each event of a group.
fn tally(report: &mut DispatchReport, steps: Vec<Step>) {
    for step in steps {
        match step {
            Step::Delivered => report.delivered += 1,
            Step::Duplicate => report.duplicates += 1,
            Step::Buffered => report.buffered += 1,
            Step::Failed => report.failed += 1,
        }
    }
}

/// `switchboard_events_total{channel,type}` of this event: one handle per channel kind and
/// event type, registered on first use (after the recorder is installed at startup), so
/// the hot path does no registry lookup per event.
fn events_total(event: &Event) -> &'static metrics::Counter {
    const TYPES: usize = 16;
    const _: () = assert!((EventType::ProviderEvent as usize) < TYPES);
    static HANDLES: [[OnceLock<metrics::Counter>; TYPES]; ChannelKind::ALL.len()] =
        [const { [const { OnceLock::new() }; TYPES] }; ChannelKind::ALL.len()];
    let (kind, event_type) = (event.channel.kind(), event.event_type);
    HANDLES[kind as usize][event_type as usize].get_or_init(|| {
        metrics::counter!(
            "switchboard_events_total",
            "channel" => kind.as_str(),
            "type" => event_type.as_str()
        )
    })
}

/// An event no tenant claims: answered 200, counted, never forwarded to a guess.
fn unroutable(report: &mut DispatchReport, event: &Event) {
    report.unroutable += 1;
    metrics::counter!(
        "switchboard_events_unroutable_total",
        "channel" => event.channel.kind().as_str()
    )
    .increment(1);
    tracing::warn!(
        channel = %event.channel,
        event_id = %event.id,
        event_type = %event.event_type,
        stage = "processing",
        "Event for an unknown channel was not forwarded."
    );
}
