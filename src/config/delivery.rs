//! `[delivery]`: the direct attempt, the retry buffer and its worker, the breaker, the
//! dead-letter list, with their defaults.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    pub timeout_ms: u64,
    pub retry_buffer_ttl_s: u64,
    pub dedupe_window_s: u64,
    pub ordered_per_conversation: bool,
    pub max_concurrency: usize,
    pub max_response_bytes: usize,
    /// First retry delay; doubled on every failed attempt, ±20 % jitter.
    #[serde(default = "d_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Largest retry delay.
    #[serde(default = "d_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Redis streams the retry buffer is spread over (one hash slot each); fixed for
    /// the life of a buffer.
    #[serde(default = "d_retry_shards")]
    pub retry_shards: u16,
    /// An entry read by a replica that stays unacknowledged this long is claimed by
    /// another (the visibility timeout); must exceed `delivery.timeout_ms`.
    #[serde(default = "d_claim_idle_ms")]
    pub claim_idle_ms: u64,
    /// How long an idle worker waits for new entries per read.
    #[serde(default = "d_poll_ms")]
    pub poll_ms: u64,
    /// Buffered events delivered at once by one replica's worker.
    #[serde(default = "d_worker_concurrency")]
    pub worker_concurrency: usize,
    /// Whether this replica runs the retry worker (off only in tests that drive it).
    #[serde(default = "d_true")]
    pub worker: bool,
    /// Consecutive failures of a tenant's CRM that open its circuit breaker.
    #[serde(default = "d_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open breaker sends a tenant's events straight to the buffer before
    /// one probe is let through.
    #[serde(default = "d_breaker_cooldown_ms")]
    pub breaker_cooldown_ms: u64,
    /// How long an event given up at `retry_buffer_ttl_s` stays, still encrypted, in
    /// the dead-letter list (to be redriven or dropped); 0 = no list, it is deleted.
    #[serde(default)]
    pub dead_letter_ttl_s: u64,
    /// Events one tenant may have in the retry buffer, all replicas together (0 = no
    /// limit); beyond it its webhooks with an event that does not fit get 503.
    #[serde(default = "d_max_buffered_per_tenant")]
    pub max_buffered_per_tenant: u64,
}

fn d_retry_base_ms() -> u64 {
    1_000
}
fn d_retry_max_ms() -> u64 {
    600_000
}
fn d_retry_shards() -> u16 {
    4
}
fn d_claim_idle_ms() -> u64 {
    30_000
}
fn d_poll_ms() -> u64 {
    500
}
fn d_worker_concurrency() -> usize {
    16
}
fn d_true() -> bool {
    true
}
fn d_breaker_failures() -> u32 {
    5
}
fn d_breaker_cooldown_ms() -> u64 {
    10_000
}
/// The longest a given-up event may be kept (a year): beyond, a Redis TTL would be
/// out of range and the list a second store.
pub const MAX_DEAD_LETTER_TTL_S: u64 = 31_536_000;

fn d_max_buffered_per_tenant() -> u64 {
    100_000
}
