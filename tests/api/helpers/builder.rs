//! [`TestAppBuilder`]: what varies between test apps (the store, the peers, the config
//! tables, the channels stored up front), and starting one: [`TestAppBuilder::spawn`]
//! in this process, [`TestAppBuilder::spawn_process`] as the real binary.

use secrecy::SecretString;
use switchboard::channels::ChannelKind;
use switchboard::config::Settings;
use switchboard::vault::Keyring;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::app::{test_client, InProcess, Peers, TestApp};
use super::channels::{put_channel_into, NewChannel};
use super::config::{StoreConfig, TestConfig, CRM_PATH, OTHER_CRM_PATH};
use super::redis::RedisServer;
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
}
