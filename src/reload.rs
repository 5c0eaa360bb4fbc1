//! Live reload: on SIGHUP, or when the config file changes, the configuration is loaded
//! again, checked whole, and swapped in atomically. A broken new config is refused with a
//! log line naming the problem, and the running one stays. Settings that need a restart
//! (`server.bind`, `store.*`) are reported, not applied.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::web;
use secrecy::ExposeSecret;

use crate::app::{sync_config_channels, AppState};
use crate::config::Settings;
use crate::live::Live;

/// Loads and applies the config at `path`. Returns whether the new config was applied.
pub async fn reload(state: &AppState, path: Option<&std::path::Path>) -> bool {
    let settings = match Settings::load(path) {
        Ok(s) => s,
        Err(e) => {
            metrics::counter!("switchboard_config_reloads_total", "outcome" => "refused")
                .increment(1);
            tracing::error!(error = %e, "Config reload refused; the running config stays.");
            return false;
        }
    };
    let live = match Live::new(settings) {
        Ok(l) => l,
        Err(e) => {
            metrics::counter!("switchboard_config_reloads_total", "outcome" => "refused")
                .increment(1);
            tracing::error!(error = %e, "Config reload refused; the running config stays.");
            return false;
        }
    };
    let old = state.live.load();
    if old.settings.server.bind != live.settings.server.bind
        || old.settings.store.backend != live.settings.store.backend
        || old.settings.store.key_prefix != live.settings.store.key_prefix
        || old.settings.store.redis_url.expose_secret()
            != live.settings.store.redis_url.expose_secret()
    {
        tracing::warn!("server.bind and store.* changes take effect only after a restart.");
    }
    let live = Arc::new(live);
    state.live.store(live.clone());
    metrics::counter!("switchboard_config_reloads_total", "outcome" => "applied").increment(1);
    tracing::info!(tenants = live.tenants.len(), "Config reloaded.");
    if let Err(e) = sync_config_channels(&state.store, &live).await {
        tracing::warn!(error = %e, "Config channels not written on reload; they will be on the next one.");
    }
    true
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Waits for SIGHUP or a change of the file's modification time, and reloads.
pub async fn watch(state: web::Data<AppState>, path: Option<PathBuf>) {
    let interval = Duration::from_millis(state.live.load().settings.reload.watch_interval_ms);
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP reload unavailable.");
            None
        }
    };
    let mut last = path.as_deref().and_then(modified);
    loop {
        let poll = async {
            if interval.is_zero() || path.is_none() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(interval).await;
        };
        let by_signal = tokio::select! {
            _ = async { match hup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending().await } } => true,
            _ = poll => false,
        };
        if by_signal {
            tracing::info!("SIGHUP: reloading the config.");
            last = path.as_deref().and_then(modified);
            reload(&state, path.as_deref()).await;
        } else if let Some(p) = path.as_deref() {
            let now = modified(p);
            if now.is_some() && now != last {
                last = now;
                tracing::info!("Config file changed: reloading.");
                reload(&state, Some(p)).await;
            }
        }
    }
}
