//! The periodic token health check, one loop per replica: wake every
//! `min(tokens.check_interval_s, 600)` seconds (±10 % jitter), and run a round when this
//! replica takes the round marker (`{prefix}tokens:round`, `SET NX PX
//! tokens.check_interval_s`), so rounds run once per interval across the deployment,
//! and a restart does not start one early. The loop is a thin shell around
//! [`tick`], which tests call directly.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::{CheckReport, TokenHealth};
use crate::live::Live;
use crate::store::{StoreBackend, StoreError};

/// The longest a replica sleeps between looks at the round marker.
const MAX_WAKE: Duration = Duration::from_secs(600);

/// One wake-up: a round if this replica takes the marker (`Some(report)`), else `None`.
pub async fn tick(
    health: &TokenHealth,
    live: &Arc<Live>,
) -> Result<Option<CheckReport>, StoreError> {
    let interval = Duration::from_secs(live.settings.tokens.check_interval_s.max(1));
    let round = health.store.keys().named("tokens:round");
    if !health.store.set_nx_ex(&round, "1", interval).await? {
        return Ok(None);
    }
    let report = health.check_all(live).await;
    if report.is_err() {
        // A round cut short is run again at the next wake-up, not an interval later.
        let _ = health.store.del(&round).await;
    }
    report.map(Some)
}

fn wake_period(live: &Live) -> Duration {
    let interval = Duration::from_secs(live.settings.tokens.check_interval_s.max(1));
    let base = interval.min(MAX_WAKE);
    base.mul_f64(0.9 + rand::random::<f64>() * 0.2)
}

/// Spawns the loop on the current runtime; it ends when the handle is aborted.
pub fn spawn(health: TokenHealth, live: Arc<ArcSwap<Live>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(wake_period(&live.load())).await;
            let current = live.load_full();
            match tick(&health, &current).await {
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, stage = "processing", "Token health check stopped: the store is unavailable; the next wake-up tries again.");
                }
            }
        }
    })
}
