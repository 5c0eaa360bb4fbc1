//! A tenant: one downstream CRM as the live configuration describes it, the parsed form
//! of a `[[tenants]]` entry (built by [`crate::live::Live::new`], used by delivery and
//! replies).

use metrics::{Counter, Histogram};
use secrecy::SecretString;

use crate::signing::Signer;

/// One downstream CRM.
#[derive(Debug)]
pub struct Tenant {
    pub id: String,
    pub crm_url: url::Url,
    /// Its signing secrets, keyed (the primary first).
    pub signer: Signer,
    /// Its API keys for `/v1/…` (matched by digest in [`crate::live::Live`]).
    pub api_keys: Vec<SecretString>,
    /// Whether events carry the provider's raw payload.
    pub include_raw: bool,
    /// The tenant's delivery metrics on the hot path, registered once (not looked up,
    /// with its labels built, for every event).
    pub metrics: TenantMetrics,
}

/// The metric handles of one tenant's direct deliveries (the worker's deliveries and
/// every failure are rarer and use the `metrics` macros where they happen).
#[derive(Debug)]
pub struct TenantMetrics {
    /// `switchboard_delivery_duration_seconds{tenant,source=direct}`: one attempt.
    pub direct_duration: Histogram,
    /// `switchboard_delivery_latency_seconds{tenant,source=direct}`: receipt to acceptance.
    pub direct_latency: Histogram,
    /// `switchboard_deliveries_total{tenant,source=direct,outcome=delivered}`.
    pub direct_attempts_delivered: Counter,
    /// `switchboard_events_delivered_total{tenant,source=direct}`.
    pub direct_delivered: Counter,
}

impl TenantMetrics {
    /// Registers (or finds, after a reload) the handles of tenant `id`.
    pub fn register(id: &str) -> Self {
        let tenant = id.to_owned();
        Self {
            direct_duration: metrics::histogram!("switchboard_delivery_duration_seconds", "tenant" => tenant.clone(), "source" => "direct"),
            direct_latency: metrics::histogram!("switchboard_delivery_latency_seconds", "tenant" => tenant.clone(), "source" => "direct"),
            direct_attempts_delivered: metrics::counter!("switchboard_deliveries_total", "tenant" => tenant.clone(), "source" => "direct", "outcome" => "delivered"),
            direct_delivered: metrics::counter!("switchboard_events_delivered_total", "tenant" => tenant, "source" => "direct"),
        }
    }
}
