//! `TestApp`: the real application built by `Application::build`, exactly as `main`
//! builds it, on a real `redis-server` (or the memory store, or a cluster), with
//! wiremock servers as its CRM, Graph API and Telegram peers, and its helpers (the CRM's
//! requests, signed Meta webhooks, reloads, replicas). [`super::TestAppBuilder`] says
//! what varies; [`super::TestAppBuilder::spawn_process`] runs the real binary instead.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchboard::app::Application;
use switchboard::config::Settings;
use switchboard::live::Live;
use switchboard::state::AppState;
use switchboard::store::StoreBackend;
use switchboard::vault::Keyring;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::config::{TestConfig, APP_SECRET, CRM_PATH};
use super::redis::RedisServer;
use super::signing::meta_signature;

/// What a relay talks to and runs on, shared by [`TestApp`] and the binary.
pub struct Peers {
    pub redis: Option<RedisServer>,
    pub crm: MockServer,
    pub graph: MockServer,
    pub telegram: MockServer,
    pub vault_key: String,
    pub keyring: Keyring,
    pub http: reqwest::Client,
    /// What the config file says; change a field and `render()` it to test reloads.
    pub config: TestConfig,
    pub config_path: PathBuf,
    pub dir: tempfile::TempDir,
}

/// An HTTP client for talking to the relay: no proxy, no redirects followed, and no
/// reuse of a connection idle long enough for the relay to have closed it (its
/// keep-alive is 5 s).
pub fn test_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// One application running in this process on a config file.
pub struct InProcess {
    pub port: u16,
    pub state: actix_web::web::Data<AppState>,
    handle: actix_web::dev::ServerHandle,
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl InProcess {
    pub(super) async fn start(config_path: &std::path::Path) -> Self {
        let settings = Settings::load_with_env(Some(config_path), false)
            .unwrap_or_else(|e| panic!("test config: {e}"));
        let app = Application::build(settings, Some(config_path.to_owned()))
            .await
            .unwrap();
        let (port, state, handle) = (app.port(), app.state(), app.handle());
        Self {
            port,
            state,
            handle,
            running: Some(tokio::spawn(app.run_until_stopped())),
        }
    }

    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server, then waits for the worker (graceful).
    pub async fn stop(&mut self) {
        self.handle.stop(true).await;
        if let Some(r) = self.running.take() {
            let _ = r.await;
        }
    }
}

/// The application in this process; its peers (`app.crm`, `app.redis`, ...) are
/// reached through [`Peers`].
pub struct TestApp {
    pub address: String,
    pub state: actix_web::web::Data<AppState>,
    pub peers: Peers,
    pub(super) running: InProcess,
}

impl std::ops::Deref for TestApp {
    type Target = Peers;

    fn deref(&self) -> &Peers {
        &self.peers
    }
}

/// A test app with the defaults.
pub async fn spawn_app() -> TestApp {
    TestApp::builder().spawn().await
}

/// POSTs a body to `url` signed with the app secret, as Meta does.
/// A response's status and JSON body (Null when there is none); an error (4xx/5xx) must
/// be `application/problem+json`.
pub async fn status_and_problem(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let v: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    if status >= 400 {
        assert_eq!(ct.as_deref(), Some("application/problem+json"), "{v}");
    }
    (status, v)
}

pub async fn post_meta_to(
    http: &reqwest::Client,
    url: &str,
    body: &[u8],
) -> reqwest::Result<reqwest::Response> {
    http.post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", meta_signature(APP_SECRET, body))
        .body(body.to_vec())
        .send()
        .await
}

impl TestApp {
    /// The CRM answers the next delivery to tenant acme with a 500, then as before.
    pub async fn crm_fails_once(&self) {
        self.crm_fails(500, 1).await;
    }

    /// The CRM answers the next `times` deliveries to tenant acme with `status`.
    pub async fn crm_fails(&self, status: u16, times: u64) {
        Mock::given(method("POST"))
            .and(path(CRM_PATH))
            .respond_with(ResponseTemplate::new(status))
            .up_to_n_times(times)
            .with_priority(1)
            .mount(&self.crm)
            .await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// POSTs a body to `/webhooks/meta` signed with the app secret.
    pub async fn post_meta(&self, body: &[u8]) -> reqwest::Response {
        post_meta_to(&self.http, &self.url("/webhooks/meta"), body)
            .await
            .unwrap()
    }

    /// The requests the CRM received on `path`.
    pub async fn crm_requests_at(&self, p: &str) -> Vec<Request> {
        self.crm
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path() == p && r.method.as_str() == "POST")
            .collect()
    }

    pub async fn crm_requests(&self) -> Vec<Request> {
        self.crm_requests_at(CRM_PATH).await
    }

    /// The JSON bodies the CRM received for tenant acme.
    pub async fn crm_events(&self) -> Vec<serde_json::Value> {
        self.crm_requests()
            .await
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }

    /// Polls until the CRM has received at least `n` requests at `p` (deadline 10 s).
    pub async fn wait_for_crm(&self, p: &str, n: usize) -> Vec<Request> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.crm_requests_at(p).await;
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Forgets every dedupe record (fixtures reuse message ids across files).
    pub async fn forget_dedupe(&self) {
        let keys = self
            .state
            .store
            .scan(&format!("{}dedupe:*", self.state.store.keys().prefix()))
            .await
            .unwrap();
        for k in keys {
            self.state.store.del(&k).await.unwrap();
        }
    }

    pub fn redis(&self) -> &RedisServer {
        self.redis.as_ref().expect("this app has no redis")
    }

    pub fn redis_mut(&mut self) -> &mut RedisServer {
        self.peers.redis.as_mut().expect("this app has no redis")
    }

    /// Writes `text` as the app's config file and polls until `applied` holds for the
    /// config it runs (deadline 10 s).
    pub async fn reload(&self, text: &str, applied: impl Fn(&Live) -> bool) {
        std::fs::write(&self.config_path, text).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !applied(&self.state.live.load()) {
            assert!(Instant::now() < deadline, "the config was not reloaded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A second replica: the same config file (same store, same peers), its own
    /// process state.
    pub async fn replica(&self) -> InProcess {
        InProcess::start(&self.config_path).await
    }

    /// Stops the server, then the worker (graceful).
    pub async fn stop(&mut self) {
        self.running.stop().await;
    }
}
