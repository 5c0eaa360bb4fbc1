#![allow(dead_code)]
//! The test harness: a real throwaway `redis-server` per app (killed on drop), wiremock
//! servers for the CRM, the Graph API and Telegram, and the real application built by
//! `Application::build`, exactly as `main` builds it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use switchboard::app::Application;
use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::config::Settings;
use switchboard::state::AppState;
use switchboard::store::{ChannelRecord, StoreBackend};
use switchboard::vault::Keyring;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const APP_SECRET: &str = "test-app-secret-0123456789";
pub const VERIFY_TOKEN: &str = "test-verify-token";
pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const API_KEY: &str = "test-api-key-acme";
pub const OTHER_API_KEY: &str = "test-api-key-globex";
/// 24 random bytes, as Standard Webhooks suggests.
pub const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const OTHER_SIGNING_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
pub const CRM_PATH: &str = "/hooks/switchboard";
pub const OTHER_CRM_PATH: &str = "/hooks/globex";

/// The WhatsApp phone_number_ids used by the fixtures; all belong to tenant `acme`.
pub const WHATSAPP_FIXTURE_CHANNELS: &[&str] = &["106540352242922", "1122334455667", "123456123"];

pub fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

pub fn fixture_names(dir: &str) -> Vec<String> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut names: Vec<String> = std::fs::read_dir(p)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy()))
        .collect();
    names.sort();
    names
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real `redis-server` on a free loopback port, with no persistence.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Self {
            port: free_port(),
            child: None,
            dir,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir.path().to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(out) = self.cli(&["PING"]) {
                if out.trim() == "PONG" {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs `redis-cli` against this server.
    pub fn cli(&self, args: &[&str]) -> std::io::Result<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Stops the server (as if it crashed).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (empty: no persistence).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Every key and its value (strings, hashes, streams), for privacy scans.
    pub fn dump_all(&self) -> String {
        let mut out = String::new();
        let keys = self.cli(&["--scan"]).unwrap_or_default();
        for key in keys.lines().filter(|k| !k.is_empty()) {
            out.push_str(key);
            out.push('\n');
            let ty = self.cli(&["TYPE", key]).unwrap_or_default();
            let v = match ty.trim() {
                "string" => self.cli(&["GET", key]),
                "hash" => self.cli(&["HGETALL", key]),
                "stream" => self.cli(&["XRANGE", key, "-", "+"]),
                "zset" => self.cli(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
                "set" => self.cli(&["SMEMBERS", key]),
                "list" => self.cli(&["LRANGE", key, "0", "-1"]),
                _ => Ok(String::new()),
            };
            out.push_str(&v.unwrap_or_default());
        }
        out
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How to build a test app.
pub struct TestOptions {
    /// `true`: a real redis-server; `false`: the memory backend.
    pub redis: bool,
    /// Extra TOML appended to the generated config.
    pub extra_toml: String,
    /// Whether tenant acme gets `include_raw = true`.
    pub include_raw: bool,
    pub delivery_timeout_ms: u64,
    /// Node URLs of a Redis Cluster to use instead (set `redis: false`).
    pub cluster_nodes: Vec<String>,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            redis: true,
            extra_toml: String::new(),
            include_raw: false,
            delivery_timeout_ms: 2000,
            cluster_nodes: Vec::new(),
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub redis: Option<RedisServer>,
    pub crm: MockServer,
    pub graph: MockServer,
    pub telegram: MockServer,
    pub vault_key: String,
    pub keyring: Keyring,
    pub http: reqwest::Client,
    pub state: actix_web::web::Data<AppState>,
    pub config_path: PathBuf,
    _config_dir: tempfile::TempDir,
    handle: actix_web::dev::ServerHandle,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestOptions::default()).await
}

/// The generated config for an app (for tests that rewrite it to test reloads).
pub fn render_config(
    opts: &TestOptions,
    redis_url: Option<&str>,
    crm: &str,
    graph: &str,
    telegram: &str,
    vault_keys: &[&str],
) -> String {
    let store = match redis_url {
        _ if !opts.cluster_nodes.is_empty() => format!(
            "backend = \"redis\"\ncluster_nodes = [{}]\ntimeout_ms = 2000",
            opts.cluster_nodes
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(url) => format!("backend = \"redis\"\nredis_url = \"{url}\"\ntimeout_ms = 2000"),
        None => "backend = \"memory\"".to_owned(),
    };
    let keys = vault_keys
        .iter()
        .map(|k| format!("\"{k}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
[server]
bind = "127.0.0.1:0"
public_url = "http://relay.test"
workers = 2
shutdown_timeout_s = 5

[store]
{store}

[vault]
keys = [{keys}]

[meta]
app_secrets = ["{APP_SECRET}"]
verify_tokens = ["{VERIFY_TOKEN}"]
graph_api_base = "{graph}"
timeout_ms = 3000

[telegram]
api_base = "{telegram}"
timeout_ms = 3000

[delivery]
timeout_ms = {timeout}

[admin]
tokens = ["{ADMIN_TOKEN}"]

[log]
format = "json"
level = "info"

[reload]
watch_interval_ms = 200

[[tenants]]
id = "acme"
crm_url = "{crm}{CRM_PATH}"
signing_secret = "{SIGNING_SECRET}"
api_keys = ["{API_KEY}"]
include_raw = {include_raw}

[[tenants]]
id = "globex"
crm_url = "{crm}{OTHER_CRM_PATH}"
signing_secret = "{OTHER_SIGNING_SECRET}"
api_keys = ["{OTHER_API_KEY}"]

{extra}
"#,
        timeout = opts.delivery_timeout_ms,
        include_raw = opts.include_raw,
        extra = opts.extra_toml,
    )
}

pub async fn spawn_app_with(opts: TestOptions) -> TestApp {
    let redis = opts.redis.then(RedisServer::start);
    let crm = MockServer::start().await;
    let graph = MockServer::start().await;
    let telegram = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CRM_PATH))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(u8::MAX)
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .and(path(OTHER_CRM_PATH))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(u8::MAX)
        .mount(&crm)
        .await;

    let vault_key = Keyring::generate_key();
    let text = render_config(
        &opts,
        redis.as_ref().map(|r| r.url()).as_deref(),
        &crm.uri(),
        &graph.uri(),
        &telegram.uri(),
        &[&vault_key],
    );
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("switchboard.toml");
    std::fs::write(&config_path, &text).unwrap();
    let settings = Settings::load_with_env(Some(&config_path), false)
        .unwrap_or_else(|e| panic!("test config: {e}"));
    let keyring = Keyring::new(&settings.vault.keys).unwrap();
    let app = Application::build(settings, Some(config_path.clone()))
        .await
        .unwrap();
    let port = app.port();
    let handle = app.handle();
    let state = app.state();
    tokio::spawn(app.run_until_stopped());

    let test_app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        redis,
        crm,
        graph,
        telegram,
        vault_key,
        keyring,
        http: reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        config_path,
        _config_dir: dir,
        handle,
    };
    for id in WHATSAPP_FIXTURE_CHANNELS {
        test_app
            .put_channel(ChannelKind::Whatsapp, id, "acme", "wa-token-secret")
            .await;
    }
    test_app
}

impl TestApp {
    /// Stores a channel with its token Fernet-encrypted (as an operator would).
    pub async fn put_channel(&self, kind: ChannelKind, id: &str, tenant: &str, token: &str) {
        self.put_channel_with_secret(kind, id, tenant, token, None)
            .await;
    }

    pub async fn put_channel_with_secret(
        &self,
        kind: ChannelKind,
        id: &str,
        tenant: &str,
        token: &str,
        webhook_secret: Option<&str>,
    ) {
        let record = ChannelRecord {
            tenant: tenant.to_owned(),
            token: SecretString::from(self.keyring.encrypt(token.as_bytes())),
            webhook_secret: webhook_secret
                .map(|s| SecretString::from(self.keyring.encrypt(s.as_bytes()))),
            updated_at: None,
            user_id: None,
            ..Default::default()
        };
        self.state
            .store
            .put_channel(&ChannelRef::new(kind, id), &record)
            .await
            .unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// POSTs a body to `/webhooks/meta` signed with the app secret.
    pub async fn post_meta(&self, body: &[u8]) -> reqwest::Response {
        self.http
            .post(self.url("/webhooks/meta"))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", meta_signature(APP_SECRET, body))
            .body(body.to_vec())
            .send()
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
        self.redis.as_mut().expect("this app has no redis")
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

/// `sha256=<hex>` as Meta computes it.
pub fn meta_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Verifies a CRM request with the `standardwebhooks` crate (an implementation we did
/// not write) and returns the JSON body.
pub fn verify_standard_webhook(secret: &str, req: &Request) -> serde_json::Value {
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let v = req
            .headers
            .get(name)
            .unwrap_or_else(|| panic!("missing {name}"));
        headers.insert(
            http::header::HeaderName::from_static(name),
            http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&req.body, &headers)
        .expect("the CRM signature must verify with the standardwebhooks crate");
    serde_json::from_slice(&req.body).unwrap()
}

/// The real `switchboard` binary serving a config file, with `RUST_LOG=trace` and its
/// stdout/stderr captured to files (for log scans); killed on drop.
pub struct LoggedRelay {
    pub child: std::process::Child,
    pub url: String,
    pub out: PathBuf,
    pub err: PathBuf,
}

impl LoggedRelay {
    /// Everything the process printed so far.
    pub fn logs(&self) -> String {
        let mut s = std::fs::read_to_string(&self.out).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(&self.err).unwrap_or_default());
        s
    }

    /// Sends SIGHUP (config reload).
    pub fn hup(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

impl Drop for LoggedRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on `config_path` (which binds `port`) and waits until `/readyz`.
pub async fn start_binary_relay(
    dir: &std::path::Path,
    config_path: &std::path::Path,
    port: u16,
) -> LoggedRelay {
    let out = dir.join("stdout.log");
    let err = dir.join("stderr.log");
    let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--config", config_path.to_str().unwrap(), "serve"])
        .env("RUST_LOG", "trace")
        .env_remove("SWITCHBOARD_CONFIG")
        .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&err).unwrap()))
        .spawn()
        .unwrap();
    let relay = LoggedRelay {
        child,
        url: format!("http://127.0.0.1:{port}"),
        out,
        err,
    };
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{}/readyz", relay.url)).send().await {
            if r.status().is_success() {
                return relay;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the relay did not become ready:\n{}",
            relay.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
