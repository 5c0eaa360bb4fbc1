//! The retry policy, one rule for the dispatcher (an event's first failure) and the
//! worker (every later one): the next attempt is due after the CRM's `Retry-After`, or
//! else after an exponential backoff from `delivery.retry_base_ms` to
//! `delivery.retry_max_ms` with ±20 % jitter (so replicas do not retry in step), and
//! never later than the entry's give-up time (first seen + `delivery.retry_buffer_ttl_s`):
//! an absurd `Retry-After` must not park a conversation until its keys expire.

use std::time::Duration;

use crate::config::DeliverySettings;

/// Exponential backoff for the `attempt`-th retry, ±20 % jitter.
pub fn backoff(attempt: u32, base_ms: u64, max_ms: u64) -> Duration {
    let shift = attempt.saturating_sub(1).min(30);
    let exp = base_ms.saturating_mul(1u64 << shift).min(max_ms.max(1));
    let jitter: f64 = rand::random_range(0.8..=1.2);
    Duration::from_millis((exp as f64 * jitter) as u64)
}

/// When the `attempts`-th failed attempt of an entry first seen at `first` (Unix ms)
/// is tried again, counted from `now` (Unix ms).
pub fn next_due(
    now: i64,
    first: i64,
    attempts: u32,
    retry_after: Option<Duration>,
    delivery: &DeliverySettings,
) -> i64 {
    let wait = retry_after
        .unwrap_or_else(|| backoff(attempts, delivery.retry_base_ms, delivery.retry_max_ms));
    let ttl_ms = i64::try_from(delivery.retry_buffer_ttl_s)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000);
    now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
        .min(first.saturating_add(ttl_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        for attempt in 1..=5u32 {
            let d = backoff(attempt, 1000, 600_000).as_millis() as f64;
            let nominal = 1000.0 * f64::from(1u32 << (attempt - 1));
            assert!(
                d >= nominal * 0.8 - 1.0 && d <= nominal * 1.2 + 1.0,
                "{attempt}: {d}"
            );
        }
        assert!(backoff(60, 1000, 5000).as_millis() <= 6000);
    }
}
