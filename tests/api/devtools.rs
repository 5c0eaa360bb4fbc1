//! The developer tools through the real binary: `listen` verifies, prints and refuses on
//! demand; `simulate` sends signed fixtures that a relay on the memory store delivers
//! to `listen`, verified, once, even when `listen` makes it retry.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard::vault::Keyring;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A background CLI process with its output in a file; killed on drop.
pub(crate) struct Background {
    child: Child,
    out: PathBuf,
}

impl Background {
    pub(crate) fn spawn(cmd: &mut Command, out: PathBuf) -> Self {
        let file = std::fs::File::create(&out).unwrap();
        let child = cmd
            .env_remove("SWITCHBOARD_CONFIG")
            .env_remove("SWITCHBOARD_LISTEN_SECRET")
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        Self { child, out }
    }

    pub(crate) fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits until the output has `n` lines matching `pred`, or fails with the output.
    pub(crate) async fn wait_for(&mut self, what: &str, n: usize, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.output();
            if out.lines().filter(|l| pred(l)).count() >= n {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("exited ({status}) before {what}:\n{out}");
            }
            assert!(Instant::now() < deadline, "no {what} in time:\n{out}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_listen(dir: &Path, args: &[&str]) -> Background {
    let mut l = Background::spawn(
        Command::new(BIN).arg("listen").args(args),
        dir.join("listen.out"),
    );
    l.wait_for("start-up line", 1, |l| l.starts_with("Listening on"))
        .await;
    l
}

/// A Standard Webhooks request to `listen`, signed with `secret` (by the relay's own
/// signer) at `timestamp`.
async fn post_signed(
    port: u16,
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &str,
) -> reqwest::Response {
    let signer = switchboard::signing::Signer::new(&secret.to_owned().into(), &[]).unwrap();
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}{CRM_PATH}"))
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            signer.sign(id, timestamp, body.as_bytes()),
        )
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

fn now_s() -> i64 {
    switchboard::time::now_ms() / 1000
}

const EVENT: &str = r#"{"id":"evt_1","type":"message.received","timestamp":"2026-01-01T00:00:00Z","tenant":"acme","channel":{"kind":"telegram","id":"42"},"data":{"conversation":{"id":"7"},"sender":{"id":"7","name":"Ada"},"message":{"id":"99","kind":"text","text":"where is my order?"}}}"#;

#[tokio::test]
async fn listen_verifies_prints_and_explains_what_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut listen = start_listen(
        dir.path(),
        &["--port", &port.to_string(), "--secret", SIGNING_SECRET],
    )
    .await;

    let ok = post_signed(port, SIGNING_SECRET, "evt_1", now_s(), EVENT).await;
    assert_eq!(ok.status(), 200);
    listen
        .wait_for("the event", 1, |l| l.contains("VERIFIED"))
        .await;
    let out = listen.output();
    assert!(
        out.contains("VERIFIED message.received evt_1 telegram:42 (tenant acme"),
        "{out}"
    );
    assert!(out.contains("sender       Ada (7)"), "{out}");
    assert!(
        out.contains(r#"text         "where is my order?""#),
        "{out}"
    );

    // Signed with another secret, too old, no headers at all: 401 and the reason.
    let wrong = post_signed(port, OTHER_SIGNING_SECRET, "evt_2", now_s(), EVENT).await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.unwrap().contains("another one"));
    let old = post_signed(port, SIGNING_SECRET, "evt_3", now_s() - 3600, EVENT).await;
    assert_eq!(old.status(), 401);
    let bare = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/"))
        .body(EVENT)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 401);
    listen
        .wait_for("three rejections", 3, |l| l.contains("REJECTED 401"))
        .await;
    let out = listen.output();
    assert!(out.contains("matches this secret"), "{out}");
    assert!(out.contains("more than 5 minutes old"), "{out}");
    assert!(out.contains("the webhook-id header is missing"), "{out}");
    assert_eq!(out.matches("VERIFIED").count(), 1, "{out}");
}

#[tokio::test]
async fn listen_fail_every_refuses_then_accepts_the_retry_and_flags_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut listen = start_listen(
        dir.path(),
        &[
            "--port",
            &port.to_string(),
            "--secret",
            SIGNING_SECRET,
            "--fail-every",
            "2",
            "--status",
            "503",
        ],
    )
    .await;
    let first = post_signed(port, SIGNING_SECRET, "evt_1", now_s(), EVENT).await;
    assert_eq!(first.status(), 503);
    let retry = post_signed(port, SIGNING_SECRET, "evt_1", now_s(), EVENT).await;
    assert_eq!(retry.status(), 200);
    let next = post_signed(port, SIGNING_SECRET, "evt_1", now_s(), EVENT).await;
    assert_eq!(next.status(), 503, "the third request is refused again");
    let dup = post_signed(port, SIGNING_SECRET, "evt_1", now_s(), EVENT).await;
    assert_eq!(dup.status(), 200);
    listen
        .wait_for("two acceptances", 2, |l| l.contains("VERIFIED"))
        .await;
    let out = listen.output();
    assert!(
        out.contains("REFUSED 503 (--fail-every) message.received evt_1"),
        "{out}"
    );
    assert!(out.contains("(attempt 2: a retry)"), "{out}");
    assert!(out.contains("(attempt 4: a DUPLICATE"), "{out}");

    // Bad options are refused before listening.
    let bad = Command::new(BIN)
        .args(["listen", "--fail-every", "0", "--secret", SIGNING_SECRET])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let none = Command::new(BIN)
        .args(["listen", "--port", &free_port().to_string()])
        .env_remove("SWITCHBOARD_CONFIG")
        .env_remove("SWITCHBOARD_LISTEN_SECRET")
        .output()
        .unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("--secret"));
}

const TELEGRAM_BOT: &str = "5000000001";
const TELEGRAM_SECRET: &str = "test-telegram-webhook-secret";

/// A relay config on the memory store whose tenant sends to `listen_port`.
pub(crate) fn memory_config(dir: &Path, relay_port: u16, listen_port: u16) -> PathBuf {
    let key = Keyring::generate_key();
    let keyring = Keyring::new(&[key.clone().into()]).unwrap();
    let text = format!(
        r#"
[server]
bind = "127.0.0.1:{relay_port}"
public_url = "http://127.0.0.1:{relay_port}"
[store]
backend = "memory"
[vault]
keys = ["{key}"]
[meta]
app_secrets = ["{APP_SECRET}"]
verify_tokens = ["{VERIFY_TOKEN}"]
[admin]
tokens = ["{ADMIN_TOKEN}"]
[delivery]
retry_base_ms = 100
poll_ms = 50
[[tenants]]
id = "acme"
crm_url = "http://127.0.0.1:{listen_port}{CRM_PATH}"
signing_secret = "{SIGNING_SECRET}"
api_keys = ["{API_KEY}"]
[[channels]]
kind = "whatsapp"
id = "555000111"
tenant = "acme"
token = "{wa}"
waba_id = "555000999"
[[channels]]
kind = "telegram"
id = "{TELEGRAM_BOT}"
tenant = "acme"
token = "{tg}"
webhook_secret = "{secret}"
"#,
        wa = keyring.encrypt(b"wa-token"),
        tg = keyring.encrypt(b"5000000001:tg-token"),
        secret = keyring.encrypt(TELEGRAM_SECRET.as_bytes()),
    );
    let path = dir.join("relay.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn simulate(config: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("simulate")
        .args(args)
        .env_remove("SWITCHBOARD_CONFIG")
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn event_id_of(line: &str) -> String {
    line.split_whitespace()
        .find(|w| w.starts_with("evt_"))
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn simulated_events_reach_listen_through_the_relay_verified_once_despite_retries() {
    let dir = tempfile::tempdir().unwrap();
    let (relay_port, listen_port) = (free_port(), free_port());
    let config = memory_config(dir.path(), relay_port, listen_port);
    let relay = Binary::start(dir.path(), &config, relay_port, "trace").await;
    // Every other request refused, starting with the first: each event fails once.
    let mut listen = start_listen(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--port",
            &listen_port.to_string(),
            "--fail-every",
            "2",
        ],
    )
    .await;
    assert!(
        listen
            .output()
            .contains("verifying with tenant acme's signing_secret"),
        "{}",
        listen.output()
    );

    let (ok, out) = simulate(&config, &["whatsapp.text"]);
    assert!(ok, "{out}");
    assert!(out.contains("for whatsapp:555000111"), "{out}");
    listen
        .wait_for("the retried event", 1, |l| l.contains("VERIFIED"))
        .await;
    let (ok, out) = simulate(&config, &["telegram.message"]);
    assert!(ok, "{out}");
    listen
        .wait_for("the Telegram event", 2, |l| l.contains("VERIFIED"))
        .await;

    let out = listen.output();
    let verified: Vec<&str> = out.lines().filter(|l| l.contains("VERIFIED")).collect();
    let refused: Vec<&str> = out.lines().filter(|l| l.contains("REFUSED")).collect();
    assert_eq!(refused.len(), 2, "{out}");
    assert_eq!(verified.len(), 2, "{out}");
    for (r, v) in refused.iter().zip(&verified) {
        assert_eq!(event_id_of(r), event_id_of(v), "{out}");
        assert!(v.contains("(attempt 2: a retry)"), "{out}");
    }
    assert!(verified[0].contains("message.received") && verified[0].contains("whatsapp:555000111"));
    assert!(
        verified[1].contains(&format!("telegram:{TELEGRAM_BOT}")),
        "{out}"
    );
    assert!(out.contains(r#""Does it come in another color?""#), "{out}");
    assert!(
        !out.contains("DUPLICATE") && !out.contains("REJECTED"),
        "{out}"
    );

    // Fresh ids: the same kind again is a new event, not a duplicate the relay drops.
    let (ok, out) = simulate(&config, &["whatsapp.text"]);
    assert!(ok, "{out}");
    listen
        .wait_for("the second text", 3, |l| l.contains("VERIFIED"))
        .await;
    let out = listen.output();
    let ids: std::collections::HashSet<String> = out
        .lines()
        .filter(|l| l.contains("VERIFIED"))
        .map(event_id_of)
        .collect();
    assert_eq!(ids.len(), 3, "{out}");
    // The text is on the developer's terminal, never in the relay's logs.
    assert!(!relay.logs().contains("another color"), "{}", relay.logs());
}

#[tokio::test]
async fn simulate_lists_kinds_keeps_sign_webhook_and_refuses_what_it_cannot_sign() {
    let dir = tempfile::tempdir().unwrap();
    let (relay_port, listen_port) = (free_port(), free_port());
    let config = memory_config(dir.path(), relay_port, listen_port);

    let (ok, list) = simulate(&config, &["--list"]);
    assert!(ok, "{list}");
    for name in [
        "whatsapp.text",
        "whatsapp.status",
        "whatsapp.template_status",
        "instagram.comment",
        "messenger.postback",
        "telegram.callback",
        "telegram.edited",
    ] {
        assert!(list.contains(name), "{name} missing:\n{list}");
    }

    // --print shows what would be sent: the provider's signature over the exact body.
    let (ok, printed) = simulate(&config, &["whatsapp.text", "--print"]);
    assert!(ok, "{printed}");
    let (header, body) = printed.split_once('\n').unwrap();
    let expected = meta_signature(APP_SECRET, body.trim_end().as_bytes());
    assert_eq!(header, format!("X-Hub-Signature-256: {expected}"));
    let (ok, printed) = simulate(&config, &["telegram.callback", "--print"]);
    assert!(ok, "{printed}");
    assert!(
        printed.starts_with(&format!(
            "X-Telegram-Bot-Api-Secret-Token: {TELEGRAM_SECRET}\n"
        )),
        "{printed}"
    );

    // The old name and a file: sent as it is, to a relay that checks the signature.
    let relay = Binary::start(dir.path(), &config, relay_port, "trace").await;
    let file = dir.path().join("custom.json");
    std::fs::write(
        &file,
        String::from_utf8(fixture("whatsapp/text.json"))
            .unwrap()
            .replace("106540352242922", "555000111"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["sign-webhook", file.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("200 OK"), "{text}");

    // An account-level scenario goes to the WABA of the config's WhatsApp channel, so
    // its tenant gets it (it is not unroutable).
    let (ok, out) = simulate(&config, &["whatsapp.template_status"]);
    assert!(ok, "{out}");
    assert!(out.contains(r#""unroutable":0"#), "{out}");

    // Unknown names, and a relay that refuses the signature, fail with a reason.
    let (ok, out) = simulate(&config, &["whatsapp.txt"]);
    assert!(!ok);
    assert!(
        out.contains("did you mean") && out.contains("whatsapp.text"),
        "{out}"
    );
    let other = dir.path().join("other.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace(APP_SECRET, "not-the-relays-secret"),
    )
    .unwrap();
    let (ok, out) = simulate(&other, &["whatsapp.text", "--to", &relay.address]);
    assert!(!ok, "{out}");
    assert!(out.contains("401"), "{out}");
    let (ok, out) = simulate(&config, &["whatsapp.text", "--to", "http://127.0.0.1:1"]);
    assert!(!ok);
    assert!(out.contains("is it running?"), "{out}");
}

/// The README's quick-start lines, as written (`cargo run … --` becomes the binary
/// cargo built), on the example config and its fixed ports.
fn quick_start_lines() -> Vec<Vec<String>> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## Quick start\n")
        .nth(1)
        .expect("the README has a Quick start section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    block
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let rest = l
                .strip_prefix("cargo run --release --")
                .unwrap_or_else(|| panic!("not a `cargo run --release --` line: {l}"));
            rest.split_whitespace().map(str::to_owned).collect()
        })
        .collect()
}

#[tokio::test]
async fn the_readme_quick_start_works_as_written() {
    let lines = quick_start_lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for port in [8080, 9000] {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} (the example config's) is in use: stop what listens there"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let _relay = Background::spawn(
        Command::new(BIN).args(&lines[0]).current_dir(root),
        dir.path().join("relay.out"),
    );
    let mut listen = Background::spawn(
        Command::new(BIN).args(&lines[1]).current_dir(root),
        dir.path().join("listen.out"),
    );
    listen
        .wait_for("start-up line", 1, |l| l.starts_with("Listening on"))
        .await;
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http
        .get("http://127.0.0.1:8080/readyz")
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the relay did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = Command::new(BIN)
        .args(&lines[2])
        .current_dir(root)
        .env_remove("SWITCHBOARD_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    listen
        .wait_for("the event", 1, |l| l.contains("VERIFIED"))
        .await;
    let shown = listen.output();
    assert!(
        shown.contains("VERIFIED message.received") && shown.contains("whatsapp:106540352242922"),
        "{shown}"
    );
    assert!(
        shown.contains(r#""Does it come in another color?""#),
        "{shown}"
    );
    assert!(
        shown.contains("verifying with tenant demo's signing_secret"),
        "{shown}"
    );
}
