//! Building and running the relay: one [`Application::build`] used by `main` and by the
//! tests alike, so tests exercise the real wiring.
//!
//! Background tasks: the config reloader (SIGHUP, or the config file changing), the
//! writer of `[[channels]]` from the config into the store (retried until the store
//! answers), the retry worker ([`crate::delivery::worker`]) and the token health check
//! ([`crate::tokens::worker`]). Shutdown on
//! SIGTERM/SIGINT is graceful: the listener closes, requests in flight finish (up to
//! `server.shutdown_timeout_s`), then the worker stops taking entries and waits for its
//! attempts in flight, each of which ends delivered or back in the buffer.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use arc_swap::ArcSwap;

use crate::config::{Settings, StoreKind};
use crate::delivery::{CrmClient, Dispatcher};
use crate::live::Live;
use crate::state::AppState;
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisStore;
use crate::store::{Keys, Store};

/// A built relay, bound to its port, not yet running.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    /// The retry worker (`None` with `delivery.worker = false`); stopped after the server.
    worker: Option<crate::delivery::WorkerHandle>,
    /// The periodic token health check ([`crate::tokens::worker`]); aborted after the server.
    tokens: tokio::task::JoinHandle<()>,
}

/// Opens the configured store (lazily connected).
pub fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let keys = Keys::new(settings.store.key_prefix.clone());
    Ok(match settings.store.backend {
        StoreKind::Memory => Store::Memory(Arc::new(MemoryStore::new(keys))),
        StoreKind::Redis => Store::Redis(Box::new(
            RedisStore::new(
                keys,
                &settings.store.redis_url,
                &settings.store.cluster_nodes,
                Duration::from_millis(settings.store.timeout_ms),
            )?
            .with_channel_cache(Duration::from_millis(settings.store.channel_cache_ms)),
        )),
    })
}

impl Application {
    /// Binds `server.bind` (port 0 picks a free port) and wires everything.
    /// `config_path` is the file re-read on reload.
    pub async fn build(settings: Settings, config_path: Option<PathBuf>) -> anyhow::Result<Self> {
        // The recorder first: the live config registers each tenant's metric handles.
        let metrics = crate::telemetry::metrics_handle();
        let live = Live::new(settings)?;
        let settings = &live.settings;
        let store = open_store(settings)?;
        let client = CrmClient::new(
            Duration::from_millis(settings.delivery.timeout_ms),
            settings.delivery.max_response_bytes,
        )?;
        let dispatcher = Dispatcher::new(store.clone(), client, &settings.delivery);
        let listener = TcpListener::bind(&settings.server.bind)?;
        let port = listener.local_addr()?.port();
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let shutdown_timeout = settings.server.shutdown_timeout_s;
        let server_limits = &settings.server;
        let keep_alive = match server_limits.keep_alive_s {
            0 => actix_web::http::KeepAlive::Disabled,
            s => actix_web::http::KeepAlive::Timeout(Duration::from_secs(s)),
        };
        let header_timeout = Duration::from_millis(server_limits.header_timeout_ms);
        // actix counts connections per worker; the setting is per process.
        let per_worker = server_limits.max_connections.div_ceil(workers).max(1);

        let live = Arc::new(ArcSwap::from_pointee(live));
        let state = web::Data::new(AppState {
            live: live.clone(),
            store: store.clone(),
            dispatcher,
            metrics,
            providers: crate::replies::Providers::new()?,
            revoker: crate::privacy::revoke::Revoker::new()?,
            connect: crate::connect::provider::OAuthClient::new()?,
        });

        let server_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(crate::http::deadline::BodyDeadline)
                .wrap(crate::http::request_span::RequestSpan)
                .app_data(server_state.clone())
                .configure(crate::http::routes)
                .default_service(web::to(crate::http::not_found))
        })
        .workers(workers)
        .keep_alive(keep_alive)
        .client_request_timeout(header_timeout)
        .max_connections(per_worker)
        .shutdown_timeout(shutdown_timeout)
        .listen(listener)?
        .run();

        tokio::spawn(crate::reload::sync_config_channels_until_done(
            state.clone(),
        ));
        tokio::spawn(crate::reload::watch(state.clone(), config_path));
        let worker = live.load().settings.delivery.worker.then(|| {
            crate::delivery::worker::spawn(Arc::new(crate::delivery::Worker::new(
                live.clone(),
                state.dispatcher.clone(),
                crate::delivery::Worker::consumer_name(),
            )))
        });

        let tokens = crate::tokens::worker::spawn(state.token_health(), live.clone());

        Ok(Self {
            port,
            server,
            state,
            worker,
            tokens,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// A handle that stops the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT (or [`Application::handle`]`.stop`), then stops the
    /// retry worker: attempts in flight end delivered or back in the buffer.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.tokens.abort();
        if let Some(worker) = self.worker {
            worker.shutdown().await;
        }
        served
    }
}
