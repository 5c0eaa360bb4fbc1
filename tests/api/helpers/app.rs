//! `TestApp`: the real application built by `Application::build`, exactly as `main`
//! builds it, on a real `redis-server` (or the memory store, or a cluster), with
//! wiremock servers as its CRM, Graph API and Telegram peers. [`TestAppBuilder`] says
//! what varies; [`TestAppBuilder::spawn_process`] runs the real binary instead.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use switchboard::app::Application;
use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::config::Settings;
use switchboard::live::Live;
use switchboard::state::AppState;
use switchboard::store::{ChannelRecord, Store, StoreBackend};
use switchboard::vault::Keyring;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::config::{StoreConfig, TestConfig, APP_SECRET, CRM_PATH, OTHER_CRM_PATH};
use super::redis::RedisServer;
use super::signing::meta_signature;
use super::{FIXTURE_WABA, WHATSAPP_FIXTURE_CHANNELS};

/// Where a test app keeps its state.
enum StoreChoice {
    /// A redis-server of its own.
    OwnRedis,
    /// A redis-server (or cluster) the test owns and shares between relays.
    Url(StoreConfig),
}

/// A channel to store before the test starts.
struct Preset {
    kind: ChannelKind,
    id: String,
    tenant: String,
    token: String,
    waba_id: Option<String>,
}

/// What varies between test apps; [`TestApp::builder`] starts one with the defaults:
/// an own redis-server, wiremock peers, the fixtures' WhatsApp channels for acme.
pub struct TestAppBuilder {
    store: StoreChoice,
    crm_url: Option<String>,
    vault_key: Option<String>,
    include_raw: bool,
    delivery_timeout_ms: u64,
    delivery: String,
    server: String,
    meta: String,
    log_level: String,
    extra_toml: String,
    fixture_channels: bool,
    /// A port chosen up front, so that `server.public_url` names it (see [`Self::reachable`]).
    port: Option<u16>,
    /// `server.public_url` when set (e.g. an https one; not reachable by a browser).
    public_url: Option<String>,
    channels: Vec<Preset>,
}

impl TestAppBuilder {
    /// The memory store instead of Redis.
    pub fn memory(mut self) -> Self {
        self.store = StoreChoice::Url(StoreConfig::Memory);
        self
    }

    /// A redis-server the test owns (several relays may share it).
    pub fn redis_url(mut self, url: String) -> Self {
        self.store = StoreChoice::Url(StoreConfig::Redis(url));
        self
    }

    /// A Redis Cluster's nodes.
    pub fn cluster(mut self, nodes: Vec<String>) -> Self {
        self.store = StoreChoice::Url(StoreConfig::Cluster(nodes));
        self
    }

    /// Delivers to a CRM elsewhere (e.g. a [`super::crm::ScriptedCrm`]) instead of
    /// the wiremock CRM.
    pub fn crm_url(mut self, uri: String) -> Self {
        self.crm_url = Some(uri);
        self
    }

    /// The vault key (relays that share a store share their key).
    pub fn vault_key(mut self, key: &str) -> Self {
        self.vault_key = Some(key.to_owned());
        self
    }

    /// Tenant acme gets `include_raw = true`.
    pub fn include_raw(mut self) -> Self {
        self.include_raw = true;
        self
    }

    pub fn delivery_timeout_ms(mut self, ms: u64) -> Self {
        self.delivery_timeout_ms = ms;
        self
    }

    /// Extra lines of the `[delivery]` table (see [`super::delivery_toml`]).
    pub fn delivery(mut self, lines: &str) -> Self {
        self.delivery = lines.to_owned();
        self
    }

    /// Extra lines of the `[meta]` table.
    pub fn meta(mut self, lines: &str) -> Self {
        self.meta.push_str(lines);
        self.meta.push('\n');
        self
    }

    /// Extra lines of the `[server]` table (`body_timeout_ms = 1000`, …).
    pub fn server(mut self, lines: &str) -> Self {
        self.server = lines.to_owned();
        self
    }

    /// `[log] level`, and `RUST_LOG` of the binary.
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.to_owned();
        self
    }

    /// Extra TOML tables appended to the config.
    pub fn toml(mut self, extra: &str) -> Self {
        self.extra_toml.push_str(extra);
        self
    }

    /// `server.public_url` is the relay's real address (a free port chosen now), so a
    /// browser can follow the URLs the relay builds (connect links, OAuth redirects).
    pub fn reachable(mut self) -> Self {
        self.port = Some(super::free_port());
        self
    }

    /// `server.public_url` (e.g. `https://relay.test`, for what the relay builds from it).
    pub fn public_url(mut self, url: &str) -> Self {
        self.public_url = Some(url.to_owned());
        self
    }

    /// Stores none of the fixtures' WhatsApp channels.
    pub fn without_fixture_channels(mut self) -> Self {
        self.fixture_channels = false;
        self
    }

    /// One more channel stored before the test starts (token Fernet-encrypted).
    pub fn channel(mut self, kind: ChannelKind, id: &str, tenant: &str, token: &str) -> Self {
        self.channels.push(Preset {
            kind,
            id: id.to_owned(),
            tenant: tenant.to_owned(),
            token: token.to_owned(),
            waba_id: None,
        });
        self
    }

    /// Starts the peers and writes the config file.
    async fn prepare(self, port: u16) -> Prepared {
        let (redis, store) = match self.store {
            StoreChoice::OwnRedis => {
                let r = RedisServer::start();
                let url = r.url();
                (Some(r), StoreConfig::Redis(url))
            }
            StoreChoice::Url(store) => (None, store),
        };
        let crm = MockServer::start().await;
        let graph = MockServer::start().await;
        let telegram = MockServer::start().await;
        for p in [CRM_PATH, OTHER_CRM_PATH] {
            Mock::given(method("POST"))
                .and(path(p))
                .respond_with(ResponseTemplate::new(200))
                .with_priority(u8::MAX)
                .mount(&crm)
                .await;
        }
        let vault_key = self.vault_key.unwrap_or_else(Keyring::generate_key);
        let public_url = match (self.public_url, self.port) {
            (Some(u), _) => u,
            (None, Some(p)) => format!("http://127.0.0.1:{p}"),
            (None, None) => "http://relay.test".to_owned(),
        };
        let config = TestConfig {
            store,
            port,
            public_url,
            vault_keys: vec![vault_key.clone()],
            crm: self.crm_url.unwrap_or_else(|| crm.uri()),
            graph: graph.uri(),
            telegram: telegram.uri(),
            include_raw: self.include_raw,
            delivery_timeout_ms: self.delivery_timeout_ms,
            delivery: self.delivery,
            server: self.server,
            meta: self.meta,
            log_level: self.log_level,
            extra_toml: self.extra_toml,
        };
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("switchboard.toml");
        std::fs::write(&config_path, config.render()).unwrap();
        let keyring = Keyring::new(&[SecretString::from(vault_key.clone())]).unwrap();
        let fixture_channels = if self.fixture_channels {
            WHATSAPP_FIXTURE_CHANNELS
        } else {
            &[]
        };
        let mut channels: Vec<Preset> = fixture_channels
            .iter()
            .map(|id| Preset {
                kind: ChannelKind::Whatsapp,
                id: (*id).to_owned(),
                tenant: "acme".into(),
                token: "wa-token-secret".into(),
                // The fixtures' first number is on the WABA of Meta's account-level
                // examples.
                waba_id: (*id == WHATSAPP_FIXTURE_CHANNELS[0]).then(|| FIXTURE_WABA.to_owned()),
            })
            .collect();
        channels.extend(self.channels);
        Prepared {
            peers: Peers {
                redis,
                crm,
                graph,
                telegram,
                vault_key,
                keyring,
                http: test_client(),
                config,
                config_path,
                dir,
            },
            channels,
        }
    }

    /// The application in this process (its timers run on the test's runtime).
    pub async fn spawn(self) -> TestApp {
        let port = self.port.unwrap_or(0);
        let Prepared { peers, channels } = self.prepare(port).await;
        let running = InProcess::start(&peers.config_path).await;
        let app = TestApp {
            address: running.address(),
            state: running.state.clone(),
            running,
            peers,
        };
        for c in &channels {
            let new = NewChannel {
                waba_id: c.waba_id.as_deref(),
                ..NewChannel::new(&c.tenant, &c.token)
            };
            app.put(c.kind, &c.id, &new).await;
        }
        app
    }

    /// The real `switchboard` binary on a free port, its output captured (see
    /// [`super::process::RelayProcess`]); the channels are stored before it starts.
    pub async fn spawn_process(self) -> super::process::RelayProcess {
        self.spawn_process_with(TestConfig::render).await
    }

    /// The binary on a config file of the test's own, written from the peers' config.
    pub async fn spawn_process_with(
        self,
        config: impl FnOnce(&TestConfig) -> String,
    ) -> super::process::RelayProcess {
        let port = self.port.unwrap_or_else(super::free_port);
        let Prepared { peers, channels } = self.prepare(port).await;
        let text = config(&peers.config);
        std::fs::write(&peers.config_path, &text).unwrap();
        let settings = Settings::from_toml(&text).unwrap();
        let store = switchboard::app::open_store(&settings).unwrap();
        for c in &channels {
            let record = NewChannel {
                waba_id: c.waba_id.as_deref(),
                ..NewChannel::new(&c.tenant, &c.token)
            };
            put_channel_into(&store, &peers.keyring, c.kind, &c.id, &record).await;
        }
        super::process::RelayProcess::start(peers, store).await
    }
}

struct Prepared {
    peers: Peers,
    channels: Vec<Preset>,
}

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
    async fn start(config_path: &std::path::Path) -> Self {
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
    running: InProcess,
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

/// A channel as an operator stores it.
pub struct NewChannel<'a> {
    pub tenant: &'a str,
    pub token: &'a str,
    pub webhook_secret: Option<&'a str>,
    /// The Meta user who connected it.
    pub user_id: Option<&'a str>,
    /// WhatsApp: its WhatsApp Business Account.
    pub waba_id: Option<&'a str>,
}

impl<'a> NewChannel<'a> {
    pub fn new(tenant: &'a str, token: &'a str) -> Self {
        Self {
            tenant,
            token,
            webhook_secret: None,
            user_id: None,
            waba_id: None,
        }
    }
}

/// Stores a channel with its secrets Fernet-encrypted, retrying while the store is
/// unreachable (deadline 10 s).
pub async fn put_channel_into(
    store: &Store,
    keyring: &Keyring,
    kind: ChannelKind,
    id: &str,
    new: &NewChannel<'_>,
) {
    let encrypt = |s: &str| SecretString::from(keyring.encrypt(s.as_bytes()));
    let record = ChannelRecord {
        tenant: new.tenant.to_owned(),
        token: encrypt(new.token),
        webhook_secret: new.webhook_secret.map(encrypt),
        updated_at: None,
        user_id: new.user_id.map(str::to_owned),
        waba_id: new.waba_id.map(str::to_owned),
        ..Default::default()
    };
    let channel = ChannelRef::parse(kind, id).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = store.put_channel(&channel, &record).await {
        assert!(Instant::now() < deadline, "store unreachable: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// POSTs a body to `url` signed with the app secret, as Meta does.
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
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            store: StoreChoice::OwnRedis,
            crm_url: None,
            vault_key: None,
            include_raw: false,
            delivery_timeout_ms: 2000,
            delivery: String::new(),
            server: String::new(),
            meta: String::new(),
            log_level: "info".into(),
            extra_toml: String::new(),
            fixture_channels: true,
            port: None,
            public_url: None,
            channels: Vec::new(),
        }
    }

    /// Stores a channel with its token Fernet-encrypted (as an operator would).
    pub async fn put_channel(&self, kind: ChannelKind, id: &str, tenant: &str, token: &str) {
        self.put(kind, id, &NewChannel::new(tenant, token)).await;
    }

    pub async fn put_channel_with_secret(
        &self,
        kind: ChannelKind,
        id: &str,
        tenant: &str,
        token: &str,
        webhook_secret: Option<&str>,
    ) {
        let new = NewChannel {
            webhook_secret,
            ..NewChannel::new(tenant, token)
        };
        self.put(kind, id, &new).await;
    }

    /// Stores a channel described in full.
    pub async fn put(&self, kind: ChannelKind, id: &str, new: &NewChannel<'_>) {
        put_channel_into(&self.state.store, &self.keyring, kind, id, new).await;
    }

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
