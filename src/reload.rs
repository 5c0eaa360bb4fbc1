//! Live reload: on SIGHUP, or when the config file changes, the configuration is loaded
//! again, checked whole, and swapped in atomically. A broken new config is refused with a
//! log line naming the problem, and the running one stays. Settings that need a restart
//! (`server.bind`, `server.workers`, `store.*`) are reported, not applied.
//!
//! A request loads the live config once, when it starts, and keeps that `Arc` to the
//! end: a reload never changes the rules under a request in flight, and never blocks
//! one. Write the file atomically (write a temporary file, then rename it; Kubernetes
//! does so for mounted ConfigMaps and Secrets): a half-written file is refused like any
//! broken one, and the complete one is applied when it lands.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::channels::ChannelRef;
use crate::config::Settings;
use crate::live::Live;
use crate::state::AppState;
use crate::store::{ChannelRecord, Store, StoreBackend};

/// Loads and applies the config at `path`. Returns whether the new config was applied.
pub async fn reload(state: &web::Data<AppState>, path: Option<&Path>) -> bool {
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
        || old.settings.server.workers != live.settings.server.workers
        || old.settings.store.backend != live.settings.store.backend
        || old.settings.store.key_prefix != live.settings.store.key_prefix
        || old.settings.store.redis_url.expose_secret()
            != live.settings.store.redis_url.expose_secret()
        || old.settings.store.cluster_nodes.len() != live.settings.store.cluster_nodes.len()
        || old
            .settings
            .store
            .cluster_nodes
            .iter()
            .zip(&live.settings.store.cluster_nodes)
            .any(|(a, b)| a.expose_secret() != b.expose_secret())
    {
        tracing::warn!(
            "server.bind, server.workers and store.* changes take effect only after a restart."
        );
    }
    let live = Arc::new(live);
    // Config channels are written before the new config is visible: a request still
    // running on the old config never meets a record it cannot open (the new config's
    // tokens open under the old keys too when keys are rotated in the documented order).
    let synced = sync_config_channels(&state.store, &live).await;
    state.live.store(live.clone());
    metrics::counter!("switchboard_config_reloads_total", "outcome" => "applied").increment(1);
    tracing::info!(
        tenants = live.tenants.len(),
        vault_keys = live.keyring.len(),
        vault_primary_key_id = live.keyring.primary_id(),
        app_secrets = live.settings.meta.app_secrets.len(),
        channels = live.settings.channels.len(),
        "Config reloaded."
    );
    if let Err(e) = synced {
        metrics::counter!("switchboard_config_channel_sync_failures_total").increment(1);
        tracing::warn!(error = %e, "Config channels not written on reload; retrying.");
        tokio::spawn(sync_until_done(state.clone(), live));
    }
    true
}

/// Writes the config's channels once the store answers again, unless a newer config has
/// been applied meanwhile (its own reload writes them).
async fn sync_until_done(state: web::Data<AppState>, live: Arc<Live>) {
    let mut delay = Duration::from_millis(200);
    loop {
        tokio::time::sleep(delay).await;
        if !Arc::ptr_eq(&state.live.load_full(), &live) {
            return;
        }
        match sync_config_channels(&state.store, &live).await {
            Ok(()) => {
                tracing::info!("Config channels written after the store came back.");
                return;
            }
            Err(e) => {
                metrics::counter!("switchboard_config_channel_sync_failures_total").increment(1);
                tracing::debug!(error = %e, "Config channels still not written; retrying.");
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Writes the channels declared in the config into the store, retrying while the store
/// is unreachable.
pub async fn sync_config_channels_until_done(state: web::Data<AppState>) {
    let mut delay = Duration::from_millis(200);
    loop {
        let live = state.live.load_full();
        match sync_config_channels(&state.store, &live).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "Config channels not written yet; retrying.");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Writes `[[channels]]` into the store (at start and on every reload).
pub async fn sync_config_channels(
    store: &Store,
    live: &Live,
) -> Result<(), crate::store::StoreError> {
    for c in &live.settings.channels {
        // Checked when the config was loaded (`Settings::validate`).
        let Ok(channel) = ChannelRef::parse(c.kind, c.id.as_str()) else {
            tracing::error!(kind = %c.kind, "A [[channels]] id is not one of its kind; skipped.");
            continue;
        };
        let record = ChannelRecord {
            tenant: c.tenant.clone(),
            token: c.token.clone(),
            webhook_secret: c.webhook_secret.clone(),
            updated_at: None,
            user_id: c.user_id.clone(),
            waba_id: c.waba_id.clone(),
            graph: c.graph.clone(),
            expires_at: c.expires_at.clone(),
            pin: c.pin.clone(),
        };
        // Skip a record that already holds the same secrets (perhaps re-encrypted by a
        // rotation): a reload must not undo a rotation or bump `updated_at` for nothing.
        if let Ok(Some(cur)) = store.get_channel(&channel).await {
            let same =
                |a: Option<&secrecy::SecretString>, b: Option<&secrecy::SecretString>| match (a, b)
                {
                    (None, None) => true,
                    (Some(a), Some(b)) => {
                        match (
                            live.keyring.decrypt(a.expose_secret()),
                            live.keyring.decrypt(b.expose_secret()),
                        ) {
                            (Ok(x), Ok(y)) => *x == *y,
                            _ => false,
                        }
                    }
                    _ => false,
                };
            if cur.tenant == record.tenant
                && cur.user_id == record.user_id
                && cur.waba_id == record.waba_id
                && cur.graph == record.graph
                && cur.expires_at == record.expires_at
                && same(cur.pin.as_ref(), record.pin.as_ref())
                && same(Some(&cur.token), Some(&record.token))
                && same(cur.webhook_secret.as_ref(), record.webhook_secret.as_ref())
            {
                continue;
            }
        }
        store.put_channel(&channel, &record).await?;
        tracing::info!(channel = %channel, tenant = %c.tenant, "Channel from config written to the store.");
    }
    Ok(())
}

/// A fingerprint of the file's content: a change of content (not of the modification
/// time, whose granularity can hide a quick second write) triggers a reload.
fn fingerprint(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path).ok().map(|b| Sha256::digest(&b).into())
}

/// Waits for SIGHUP or a change of the file's content, and reloads. The file is
/// fingerprinted and the signal handler installed now, when the watch is set up (inside
/// the runtime), not when the task first runs: a change made right after start is not
/// missed, and an early SIGHUP does not kill the process.
pub fn watch(
    state: web::Data<AppState>,
    path: Option<PathBuf>,
) -> impl std::future::Future<Output = ()> {
    let mut last = path.as_deref().and_then(fingerprint);
    // Registered now, not when the task first runs: until a handler is installed, a
    // SIGHUP would terminate the process.
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP reload unavailable.");
            None
        }
    };
    async move {
        loop {
            // Read each time: a reload may change it.
            let interval =
                Duration::from_millis(state.live.load().settings.reload.watch_interval_ms);
            let poll = async {
                if interval.is_zero() || path.is_none() {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(interval).await;
            };
            let by_signal = tokio::select! {
                _ = async {
                    match hup.as_mut() {
                        Some(h) => { h.recv().await; }
                        None => std::future::pending().await,
                    }
                } => true,
                _ = poll => false,
            };
            if by_signal {
                tracing::info!("SIGHUP: reloading the config.");
                last = path.as_deref().and_then(fingerprint);
                reload(&state, path.as_deref()).await;
            } else if let Some(p) = path.as_deref() {
                // An unreadable file (being replaced) is looked at again next time.
                let now = fingerprint(p);
                if now.is_some() && now != last {
                    // A file being written (truncate, then write) may be caught half
                    // way: reload only once it reads the same twice, a moment apart.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if fingerprint(p) != now {
                        continue;
                    }
                    last = now;
                    tracing::info!("Config file changed: reloading.");
                    reload(&state, Some(p)).await;
                }
            }
        }
    }
}
