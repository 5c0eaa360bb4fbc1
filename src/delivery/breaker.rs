//! A circuit breaker per tenant, per replica. After `delivery.breaker_failures`
//! consecutive failed attempts a tenant's breaker opens for `breaker_cooldown_ms`: its
//! new events go straight to the retry buffer (the webhook is answered at once instead of
//! after a timeout per event) and the worker postpones its buffered ones. When the
//! cooldown ends, one attempt is let through as a probe; its success closes the breaker,
//! its failure opens it again. Other tenants are never affected.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Whether an attempt for a tenant may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: attempt.
    Closed,
    /// The cooldown is over: this attempt is the probe.
    Probe,
    /// Open: do not attempt before `until`.
    Open { until: Instant },
}

impl Admission {
    pub fn allows(self) -> bool {
        !matches!(self, Admission::Open { .. })
    }
}

#[derive(Debug, Default)]
struct State {
    consecutive: u32,
    open_until: Option<Instant>,
    probe_started: Option<Instant>,
}

/// Every tenant's breaker. Locks are never held across an `.await`.
#[derive(Debug)]
pub struct Breakers {
    states: Mutex<HashMap<String, State>>,
    threshold: u32,
    cooldown: Duration,
    /// A probe that never reported back (its task was cancelled) stops blocking others
    /// after this long.
    probe_timeout: Duration,
}

impl Breakers {
    pub fn new(threshold: u32, cooldown: Duration, probe_timeout: Duration) -> Self {
        Self {
            states: Mutex::new(HashMap::new()),
            threshold: threshold.max(1),
            cooldown,
            probe_timeout,
        }
    }

    fn states(&self) -> std::sync::MutexGuard<'_, HashMap<String, State>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks to attempt a delivery for `tenant`.
    pub fn admit(&self, tenant: &str) -> Admission {
        let now = Instant::now();
        let mut states = self.states();
        let Some(s) = states.get_mut(tenant) else {
            return Admission::Closed;
        };
        match s.open_until {
            None => Admission::Closed,
            Some(until) if now < until => Admission::Open { until },
            Some(_) => match s.probe_started {
                Some(p) if now.duration_since(p) < self.probe_timeout => Admission::Open {
                    until: p + self.probe_timeout,
                },
                _ => {
                    s.probe_started = Some(now);
                    Admission::Probe
                }
            },
        }
    }

    /// Reports an attempt's result.
    pub fn record(&self, tenant: &str, ok: bool) {
        let mut states = self.states();
        if ok {
            if let Some(s) = states.remove(tenant) {
                if s.open_until.is_some() {
                    metrics::gauge!("switchboard_circuit_open", "tenant" => tenant.to_owned())
                        .set(0.0);
                    tracing::info!(
                        tenant,
                        stage = "sending",
                        "Circuit breaker closed: the CRM accepts events again."
                    );
                }
            }
            return;
        }
        let s = states.entry(tenant.to_owned()).or_default();
        s.consecutive = s.consecutive.saturating_add(1);
        s.probe_started = None;
        if s.consecutive >= self.threshold {
            if s.open_until.is_none() {
                metrics::gauge!("switchboard_circuit_open", "tenant" => tenant.to_owned()).set(1.0);
                metrics::counter!("switchboard_circuit_opened_total", "tenant" => tenant.to_owned())
                    .increment(1);
                tracing::warn!(
                    tenant,
                    failures = s.consecutive,
                    cooldown_ms = self.cooldown.as_millis() as u64,
                    stage = "sending",
                    "Circuit breaker opened: new events go straight to the retry buffer."
                );
            }
            s.open_until = Some(Instant::now() + self.cooldown);
        }
    }

    pub fn is_open(&self, tenant: &str) -> bool {
        self.states()
            .get(tenant)
            .is_some_and(|s| s.open_until.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_probes_once_and_closes_on_success() {
        let b = Breakers::new(2, Duration::from_millis(0), Duration::from_secs(60));
        assert_eq!(b.admit("a"), Admission::Closed);
        b.record("a", false);
        assert_eq!(b.admit("a"), Admission::Closed);
        b.record("a", false);
        assert!(b.is_open("a"));
        // Cooldown 0: the next caller probes, the one after waits for the probe.
        assert_eq!(b.admit("a"), Admission::Probe);
        assert!(!b.admit("a").allows());
        assert_eq!(b.admit("other"), Admission::Closed);
        b.record("a", true);
        assert_eq!(b.admit("a"), Admission::Closed);
        assert!(!b.is_open("a"));
    }

    #[test]
    fn an_open_breaker_refuses_until_the_cooldown_ends() {
        let b = Breakers::new(1, Duration::from_secs(60), Duration::from_secs(60));
        b.record("a", false);
        assert!(matches!(b.admit("a"), Admission::Open { .. }));
    }
}
