#![allow(dead_code)]
//! What the delivery tests share: a real HTTP CRM that can be switched between 200, 500,
//! slow, closed (connections dropped) and down (port closed), relays built on a shared
//! redis-server, and WhatsApp webhooks made to order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{json, Value};
use switchboard::app::Application;
use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::config::Settings;
use switchboard::delivery::BufferBackend;
use switchboard::state::AppState;
use switchboard::store::{ChannelRecord, StoreBackend};
use switchboard::vault::Keyring;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

/// How the CRM answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok,
    Fail,
    /// 503 with `Retry-After: n` seconds.
    RetryAfter(u64),
    /// Answers 200 after this long.
    Slow(Duration),
    /// Answers 500 after this long (a CRM that hangs, then fails).
    Hang(Duration),
    /// Accepts connections and drops them without an answer.
    Closed,
}

/// One request the CRM received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub webhook_id: String,
    pub body: Value,
    pub raw: Vec<u8>,
    pub headers: HashMap<String, String>,
    pub accepted: bool,
}

#[derive(Default)]
struct CrmState {
    modes: HashMap<String, Mode>,
    default: Option<Mode>,
    received: Vec<Received>,
}

/// A small HTTP/1.1 CRM on a fixed loopback port; [`Crm::down`] closes the port and
/// [`Crm::up`] opens it again.
pub struct Crm {
    pub port: u16,
    state: Arc<Mutex<CrmState>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Crm {
    pub async fn start() -> Self {
        let mut crm = Self {
            port: free_port(),
            state: Arc::new(Mutex::new(CrmState::default())),
            server: None,
        };
        crm.up().await;
        crm
    }

    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sets the mode of every path.
    pub fn set(&self, mode: Mode) {
        let mut s = self.state.lock().unwrap();
        s.modes.clear();
        s.default = Some(mode);
    }

    /// Sets the mode of one path (one tenant).
    pub fn set_path(&self, path: &str, mode: Mode) {
        self.state.lock().unwrap().modes.insert(path.into(), mode);
    }

    pub async fn up(&mut self) {
        if self.server.is_some() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("CRM port {}: {e}", self.port),
            }
        };
        let state = self.state.clone();
        self.server = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                conns.spawn(serve(stream, state.clone()));
                while conns.try_join_next().is_some() {}
            }
        }));
    }

    /// Closes the port (connections refused) and every open connection.
    pub async fn down(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
            let _ = s.await;
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The requests the CRM accepted (answered 2xx) on `path`.
    pub fn accepted_at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.accepted && r.path == path)
            .collect()
    }

    /// Polls until `n` requests were accepted on `path`.
    pub async fn wait_accepted(&self, path: &str, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.accepted_at(path);
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Crm {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<CrmState>>) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        // Head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_owned();
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut headers = HashMap::new();
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);

        let mode = {
            let s = state.lock().unwrap();
            s.modes
                .get(&path)
                .copied()
                .or(s.default)
                .unwrap_or(Mode::Ok)
        };
        let (status, extra) = match mode {
            Mode::Closed => return,
            Mode::Ok => (200, String::new()),
            Mode::Fail => (500, String::new()),
            Mode::RetryAfter(n) => (503, format!("Retry-After: {n}\r\n")),
            Mode::Slow(d) => {
                tokio::time::sleep(d).await;
                (200, String::new())
            }
            Mode::Hang(d) => {
                tokio::time::sleep(d).await;
                (500, String::new())
            }
        };
        let received = Received {
            path,
            webhook_id: headers.get("webhook-id").cloned().unwrap_or_default(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            raw: body,
            headers,
            accepted: status == 200,
        };
        // Recorded before answering, so the order of records is the order the relay
        // saw answers in.
        state.lock().unwrap().received.push(received);
        let resp = format!(
            "HTTP/1.1 {status} X\r\ncontent-length: 0\r\n{extra}connection: keep-alive\r\n\r\n"
        );
        if stream.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A relay built by `Application::build`, as `main` builds it.
pub struct Relay {
    pub address: String,
    pub state: actix_web::web::Data<AppState>,
    pub http: reqwest::Client,
    pub keyring: Keyring,
    pub vault_key: String,
    handle: actix_web::dev::ServerHandle,
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// The config of a delivery test relay: fast retries, a short visibility timeout.
/// Lines of `extra` replace the defaults of the same key.
pub fn delivery_toml(extra: &str) -> String {
    let defaults = [
        "retry_base_ms = 50",
        "retry_max_ms = 400",
        "claim_idle_ms = 1500",
        "poll_ms = 50",
        "breaker_failures = 3",
        "breaker_cooldown_ms = 300",
    ];
    let overridden = |line: &str| {
        let key = line.split('=').next().unwrap_or_default().trim();
        extra
            .lines()
            .any(|l| l.split('=').next().unwrap_or_default().trim() == key)
    };
    let mut out: Vec<&str> = defaults.into_iter().filter(|l| !overridden(l)).collect();
    out.extend(extra.lines());
    out.join("\n")
}

/// The full config text for a relay on `redis_url` (memory when `None`) and `crm`.
/// `delivery` is appended to `[delivery]`.
pub fn relay_config(
    redis_url: Option<&str>,
    crm: &str,
    vault_key: &str,
    timeout_ms: u64,
    delivery: &str,
) -> String {
    let opts = TestOptions {
        redis: redis_url.is_some(),
        delivery_timeout_ms: timeout_ms,
        ..Default::default()
    };
    let text = render_config(&opts, redis_url, crm, crm, crm, &[vault_key]);
    text.replacen(
        &format!("[delivery]\ntimeout_ms = {timeout_ms}\n"),
        &format!("[delivery]\ntimeout_ms = {timeout_ms}\n{delivery}\n"),
        1,
    )
}

impl Relay {
    pub async fn start(
        redis_url: Option<&str>,
        crm: &str,
        vault_key: &str,
        timeout_ms: u64,
        delivery: &str,
    ) -> Self {
        let text = relay_config(redis_url, crm, vault_key, timeout_ms, delivery);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, &text).unwrap();
        let settings = Settings::load_with_env(Some(&path), false)
            .unwrap_or_else(|e| panic!("test config: {e}"));
        let keyring = Keyring::new(&settings.vault.keys).unwrap();
        let app = Application::build(settings, Some(path)).await.unwrap();
        let port = app.port();
        let handle = app.handle();
        let state = app.state();
        let running = tokio::spawn(app.run_until_stopped());
        let relay = Self {
            address: format!("http://127.0.0.1:{port}"),
            state,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            keyring,
            vault_key: vault_key.to_owned(),
            handle,
            running: Some(running),
            _dir: dir,
        };
        relay.put_channel(WA_ACME, "acme").await;
        relay.put_channel(WA_GLOBEX, "globex").await;
        relay
    }

    pub async fn put_channel(&self, id: &str, tenant: &str) {
        let record = ChannelRecord {
            tenant: tenant.to_owned(),
            token: SecretString::from(self.keyring.encrypt(b"wa-token-secret")),
            webhook_secret: None,
            updated_at: None,
            user_id: None,
            ..Default::default()
        };
        let c = ChannelRef::new(ChannelKind::Whatsapp, id);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.state.store.put_channel(&c, &record).await.is_err() {
            assert!(Instant::now() < deadline, "store unreachable");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// POSTs a signed Meta webhook; the status (0 when the request itself failed).
    pub async fn post_meta(&self, body: &[u8]) -> u16 {
        self.http
            .post(format!("{}/webhooks/meta", self.address))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", meta_signature(APP_SECRET, body))
            .body(body.to_vec())
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// Total buffered events of both tenants.
    pub async fn depth(&self) -> u64 {
        self.state
            .dispatcher
            .buffer()
            .depths(&["acme".into(), "globex".into()])
            .await
            .map(|d| d.iter().map(|t| t.depth).sum())
            .unwrap_or(u64::MAX)
    }

    /// Polls until the buffer is empty.
    pub async fn wait_drained(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.depth().await == 0 {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server, then the worker (graceful).
    pub async fn stop(&mut self) {
        self.handle.stop(true).await;
        if let Some(r) = self.running.take() {
            let _ = r.await;
        }
    }
}

/// The WhatsApp business numbers (phone_number_id) of the two tenants.
pub const WA_ACME: &str = "106540352242922";
pub const WA_GLOBEX: &str = "555000111222333";

/// A WhatsApp webhook with one text message per `(wa_id, n)`: message id
/// `wamid.<wa_id>.<n>`, text `secret text <wa_id> #<n>`.
pub fn wa_webhook(phone_number_id: &str, messages: &[(&str, u32)]) -> Vec<u8> {
    let msgs: Vec<Value> = messages
        .iter()
        .map(|(wa, n)| {
            json!({
                "from": wa,
                "id": format!("wamid.{wa}.{n}"),
                "timestamp": (1_749_416_383 + *n as u64).to_string(),
                "type": "text",
                "text": {"body": format!("secret text {wa} #{n}")}
            })
        })
        .collect();
    let contacts: Vec<Value> = messages
        .iter()
        .map(|(wa, _)| json!({"profile": {"name": "Sheena Nelson"}, "wa_id": wa}))
        .collect();
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "419561257915477",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
                    "contacts": contacts,
                    "messages": msgs
                }
            }]
        }]
    }))
    .unwrap()
}

/// `(conversation, n)` of a message the CRM received, read from its text.
pub fn conv_and_n(body: &Value) -> (String, u32) {
    let text = body["data"]["message"]["text"].as_str().unwrap_or_default();
    let rest = text.strip_prefix("secret text ").unwrap_or_default();
    let (wa, n) = rest.split_once(" #").unwrap_or_default();
    (wa.to_owned(), n.parse().unwrap_or(0))
}

/// Checks that every `(conversation, n)` in `expected` arrived, and that each
/// conversation's first arrivals are in order. Returns how many requests repeated an
/// id (at-least-once duplicates).
pub fn assert_all_in_order(received: &[Received], expected: &[(String, u32)]) -> usize {
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut first: HashMap<(String, u32), ()> = HashMap::new();
    let mut dups = 0;
    for r in received {
        let key = conv_and_n(&r.body);
        if first.insert(key.clone(), ()).is_some() {
            dups += 1;
            continue;
        }
        let last = seen.entry(key.0.clone()).or_insert(0);
        assert!(
            key.1 > *last,
            "conversation {} got #{} after #{}",
            key.0,
            key.1,
            last
        );
        *last = key.1;
    }
    for e in expected {
        assert!(first.contains_key(e), "event {e:?} never arrived");
    }
    assert_eq!(first.len(), expected.len(), "unexpected events arrived");
    dups
}

/// A redis-server with an append-only file (fsync always), so a restart keeps what it
/// acknowledged: the production setup the retry buffer expects.
pub struct PersistentRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl PersistentRedis {
    pub fn start() -> Self {
        let mut r = Self {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                self.dir.path().to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn cli(&self, args: &[&str]) -> String {
        std::process::Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// SIGKILL: gone at once, like a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, from its append-only file.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for PersistentRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every key of a redis-server on `port`, its TTL and its value, for privacy scans.
pub fn dump_with_ttls(port: u16) -> (String, Vec<(String, i64)>) {
    let cli = |args: &[&str]| {
        std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "--raw"])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let mut out = String::new();
    let mut ttls = Vec::new();
    for key in cli(&["--scan"]).lines().filter(|k| !k.is_empty()) {
        out.push_str(key);
        out.push('\n');
        let v = match cli(&["TYPE", key]).trim() {
            "string" => cli(&["GET", key]),
            "hash" => cli(&["HGETALL", key]),
            "stream" => cli(&["XRANGE", key, "-", "+"]),
            "zset" => cli(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
            "list" => cli(&["LRANGE", key, "0", "-1"]),
            "set" => cli(&["SMEMBERS", key]),
            _ => String::new(),
        };
        out.push_str(&v);
        ttls.push((
            key.to_owned(),
            cli(&["PTTL", key]).trim().parse().unwrap_or(-9),
        ));
    }
    (out, ttls)
}

/// The number of entries in the pending lists of every retry stream.
pub fn pending_entries(port: u16) -> u64 {
    let cli = |args: &[&str]| {
        std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "--raw"])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    cli(&["--scan", "--pattern", "switchboard:retry:*:stream"])
        .lines()
        .filter(|k| !k.is_empty())
        .map(|k| {
            cli(&["XPENDING", k, "relay"])
                .lines()
                .next()
                .and_then(|n| n.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// Verifies a request with the `standardwebhooks` crate (code we did not write).
pub fn verify_received(secret: &str, r: &Received) {
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(
            http::header::HeaderName::from_static(name),
            http::HeaderValue::from_str(&r.headers[name]).unwrap(),
        );
    }
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&r.raw, &headers)
        .expect("the CRM signature must verify with the standardwebhooks crate");
    assert_eq!(r.body["id"], r.webhook_id.as_str());
}

/// The real binary, as a subprocess (so it can be SIGKILLed).
pub struct BinaryRelay {
    pub port: u16,
    pub child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl BinaryRelay {
    /// Starts `switchboard serve` with the config text (its bind is replaced by a free
    /// port) and waits until `/healthz` answers.
    pub async fn start(config: &str) -> Self {
        let port = free_port();
        let text = config.replacen(
            "bind = \"127.0.0.1:0\"",
            &format!("bind = \"127.0.0.1:{port}\""),
            1,
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, text).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--config", path.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the switchboard binary");
        let relay = Self {
            port,
            child,
            _dir: dir,
        };
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = http
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                return relay;
            }
            assert!(Instant::now() < deadline, "the binary did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Resident memory in kB (Linux).
    pub fn rss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// SIGTERM, then waits (up to `within`) for the exit status.
    pub async fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BinaryRelay {
    fn drop(&mut self) {
        self.kill();
    }
}

/// POSTs a signed Meta webhook to any relay URL; the status (0 if the request failed).
pub async fn post_meta_to(http: &reqwest::Client, url: &str, body: &[u8]) -> u16 {
    http.post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", meta_signature(APP_SECRET, body))
        .body(body.to_vec())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Writes the two tenants' channels straight into Redis (as another service may).
pub fn put_channels_with_cli(redis_port: u16, keyring: &Keyring) {
    for (id, tenant) in [(WA_ACME, "acme"), (WA_GLOBEX, "globex")] {
        let token = keyring.encrypt(b"wa-token-secret");
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &redis_port.to_string()])
            .args([
                "HSET",
                &format!("switchboard:channel:whatsapp:{id}"),
                "tenant",
                tenant,
                "token",
                &token,
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
}

/// The p-th percentile (0–100) of durations.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let i = ((samples.len() as f64 - 1.0) * p / 100.0).round() as usize;
    samples[i]
}
