//! Delivery: events to the CRM of their tenant, signed per Standard Webhooks.
//!
//! [`Dispatcher::dispatch`] takes the events of one webhook: it routes each by its
//! channel (store lookup → tenant), drops the ones the CRM already accepted (dedupe),
//! and POSTs the rest, one conversation after another in order, conversations in
//! parallel. An event counts as seen only once its CRM accepted it. What could not be
//! delivered is reported back, so the webhook is answered 5xx and the provider retries:
//! nothing is acknowledged and lost.

pub mod client;
pub mod signing;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use secrecy::SecretString;

use crate::channels::ChannelRef;
use crate::event::Event;
use crate::live::Live;
use crate::store::{Store, StoreBackend, StoreError};

pub use client::{CrmClient, DeliveryError};
pub use signing::Signer;

/// One downstream CRM, as the live configuration describes it.
#[derive(Debug)]
pub struct Tenant {
    pub id: String,
    pub crm_url: url::Url,
    pub signer: Signer,
    pub api_keys: Vec<SecretString>,
    pub include_raw: bool,
}

/// What happened to the events of one webhook.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DispatchReport {
    /// Accepted by their CRM now.
    pub delivered: usize,
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

/// Routes, dedupes and delivers events.
#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    client: CrmClient,
}

enum Step {
    Delivered,
    Duplicate,
    Failed,
}

impl Dispatcher {
    pub fn new(store: Store, client: CrmClient) -> Self {
        Self { store, client }
    }

    pub fn client(&self) -> &CrmClient {
        &self.client
    }

    /// Delivers the events of one webhook. A store failure while routing is returned as
    /// an error (nothing was delivered; answer 503).
    pub async fn dispatch(
        &self,
        live: &Live,
        events: Vec<Event>,
    ) -> Result<DispatchReport, StoreError> {
        let mut report = DispatchReport::default();
        let routed = self.route(live, events, &mut report).await?;

        // Group by conversation, keeping provider order inside each group.
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

        let window = Duration::from_secs(live.settings.delivery.dedupe_window_s);
        let concurrency = live.settings.delivery.max_concurrency;
        let mut results = stream::iter(groups)
            .map(|group| self.deliver_group(group, window))
            .buffer_unordered(concurrency);
        while let Some(steps) = results.next().await {
            for step in steps {
                match step {
                    Step::Delivered => report.delivered += 1,
                    Step::Duplicate => report.duplicates += 1,
                    Step::Failed => report.failed += 1,
                }
            }
        }
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
        let mut routed = Vec::with_capacity(events.len());
        for event in events {
            metrics::counter!(
                "switchboard_events_total",
                "channel" => event.channel.kind.as_str(),
                "type" => event.event_type.as_str()
            )
            .increment(1);
            let tenant = match tenants.get(&event.channel) {
                Some(t) => t.clone(),
                None => {
                    let t = match self.store.get_channel(&event.channel).await {
                        Ok(Some(record)) => {
                            let t = live.tenants.get(&record.tenant).cloned();
                            if t.is_none() {
                                tracing::error!(
                                    channel = %event.channel,
                                    tenant = %record.tenant,
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
                None => {
                    report.unroutable += 1;
                    metrics::counter!(
                        "switchboard_events_unroutable_total",
                        "channel" => event.channel.kind.as_str()
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
            }
        }
        Ok(routed)
    }

    /// Delivers one conversation's events in order; after a failure the rest of the
    /// group is not attempted (a later event never overtakes an earlier one).
    async fn deliver_group(&self, group: Vec<(Arc<Tenant>, Event)>, window: Duration) -> Vec<Step> {
        let mut steps = Vec::with_capacity(group.len());
        let mut blocked = false;
        for (tenant, event) in group {
            if blocked {
                steps.push(Step::Failed);
                continue;
            }
            let step = self.deliver_event(&tenant, &event, window).await;
            blocked = matches!(step, Step::Failed);
            steps.push(step);
        }
        steps
    }

    async fn deliver_event(&self, tenant: &Tenant, event: &Event, window: Duration) -> Step {
        let dedupe_key = self.store.keys().dedupe(&event.id);
        match self.store.exists(&dedupe_key).await {
            Ok(true) => {
                metrics::counter!("switchboard_events_duplicate_total", "channel" => event.channel.kind.as_str()).increment(1);
                tracing::debug!(event_id = %event.id, tenant = %tenant.id, stage = "processing", "Duplicate event skipped.");
                return Step::Duplicate;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(event_id = %event.id, error = %e, stage = "processing", "Dedupe check failed.");
                return Step::Failed;
            }
        }
        let body = Bytes::from(event.to_body(&tenant.id, tenant.include_raw));
        match self.deliver_body(tenant, event, body).await {
            Ok(()) => {
                if let Err(e) = self.store.set_ex(&dedupe_key, "1", window).await {
                    // Delivered but not remembered: a redelivery may reach the CRM twice
                    // (at-least-once), which webhook-id lets it detect.
                    tracing::warn!(event_id = %event.id, error = %e, stage = "sending", "Delivered event could not be marked as seen.");
                }
                Step::Delivered
            }
            Err(_) => Step::Failed,
        }
    }

    /// One signed attempt with metrics and a log line (never the content).
    pub async fn deliver_body(
        &self,
        tenant: &Tenant,
        event: &Event,
        body: Bytes,
    ) -> Result<(), DeliveryError> {
        let started = Instant::now();
        let result = self.client.deliver(tenant, event.id.as_str(), body).await;
        let elapsed = started.elapsed().as_secs_f64();
        metrics::histogram!("switchboard_delivery_duration_seconds", "tenant" => tenant.id.clone())
            .record(elapsed);
        match &result {
            Ok(()) => {
                metrics::counter!("switchboard_deliveries_total", "tenant" => tenant.id.clone(), "outcome" => "delivered").increment(1);
                tracing::info!(
                    event_id = %event.id,
                    tenant = %tenant.id,
                    channel = %event.channel,
                    event_type = %event.event_type,
                    elapsed_ms = (elapsed * 1000.0) as u64,
                    stage = "sending",
                    "Event delivered."
                );
            }
            Err(e) => {
                metrics::counter!("switchboard_deliveries_total", "tenant" => tenant.id.clone(), "outcome" => e.label()).increment(1);
                tracing::warn!(
                    event_id = %event.id,
                    tenant = %tenant.id,
                    channel = %event.channel,
                    event_type = %event.event_type,
                    error = %e,
                    stage = "sending",
                    "Event delivery failed."
                );
            }
        }
        result
    }
}
