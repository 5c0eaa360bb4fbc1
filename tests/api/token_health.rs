//! Token health (contract "Token health"): `POST /admin/v1/tokens/check`, the periodic
//! round and the per-channel lock, against wiremock peers (Instagram Graph, Graph
//! API, Bot API, CRM) and a real redis-server. Stored tokens are read back from Redis
//! and opened with Python's `cryptography`.

use std::process::Command;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{json, Value};
use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::store::{ChannelRecord, StoreBackend};
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::*;

const IG: &str = "17841400000000088";
const IG_TOKEN: &str = "IGAAT-old-long-lived-token";
const IG_NEW_TOKEN: &str = "IGAAT-refreshed-long-lived-token";
const PAGE: &str = "104000000000077";
const PAGE_TOKEN: &str = "EAAG-page-token-that-expired";
const GOOD_PAGE: &str = "104000000000078";
const GOOD_PAGE_TOKEN: &str = "EAAG-page-token-still-good";
const BOT: &str = "7000000077";
const BOT_TOKEN: &str = "7000000077:AAH-bot-token-secret";
const META_APP_ID: &str = "1234567890";

fn rfc3339_in(secs: i64) -> String {
    switchboard::time::format_rfc3339((switchboard::time::now_s() + secs) * 1000)
}

/// An app with Instagram Graph on its own mock; `tokens` is extra `[tokens]` TOML.
async fn app_with(tokens: &str) -> (TestApp, MockServer) {
    let ig = MockServer::start().await;
    let app = TestApp::builder()
        .without_fixture_channels()
        .toml(&format!(
            "[instagram]\ngraph_base = \"{}\"\n[tokens]\n{tokens}\n",
            ig.uri()
        ))
        .spawn()
        .await;
    // `meta.app_id` (for debug_token's app token) goes into the existing `[meta]` table.
    let text = std::fs::read_to_string(&app.config_path).unwrap().replacen(
        "[meta]\n",
        &format!("[meta]\napp_id = \"{META_APP_ID}\"\n"),
        1,
    );
    app.reload(&text, |l| l.settings.meta.app_id == META_APP_ID)
        .await;
    (app, ig)
}

async fn put_record(app: &TestApp, kind: ChannelKind, id: &str, record: ChannelRecord) {
    app.state
        .store
        .put_channel(&ChannelRef::parse(kind, id).unwrap(), &record)
        .await
        .unwrap();
}

fn sealed(app: &TestApp, s: &str) -> SecretString {
    SecretString::from(app.keyring.encrypt(s.as_bytes()))
}

/// An Instagram Login channel expiring in `expires_in_s`, stored `age_s` ago.
async fn put_ig(app: &TestApp, id: &str, token: &str, expires_in_s: i64, age_s: i64) {
    let record = ChannelRecord {
        tenant: "acme".into(),
        token: sealed(app, token),
        graph: Some("instagram".into()),
        expires_at: Some(rfc3339_in(expires_in_s)),
        updated_at: Some(rfc3339_in(-age_s)),
        ..Default::default()
    };
    put_record(app, ChannelKind::Instagram, id, record).await;
}

async fn check(app: &TestApp) -> Value {
    let resp = app
        .http
        .post(app.url("/admin/v1/tokens/check"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    resp.json().await.unwrap()
}

fn hget(app: &TestApp, key: &str, field: &str) -> String {
    app.redis().cli(&["HGET", key, field]).trim().to_owned()
}

/// Opens a Fernet token with Python's `cryptography` (an implementation we did not write).
fn python_decrypt(key: &str, token: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; from cryptography.fernet import Fernet; print(Fernet(sys.argv[1].encode()).decrypt(sys.argv[2].encode()).decode())",
            key,
            token,
        ])
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn reauth_events(app: &TestApp, n: usize) -> Vec<Value> {
    app.wait_for_crm(CRM_PATH, n)
        .await
        .iter()
        .map(|r| verify_standard_webhook(SIGNING_SECRET, r))
        .filter(|e| e["type"] == "channel.reauth_required")
        .collect()
}

#[tokio::test]
async fn token_check_needs_the_admin_token() {
    let (app, _ig) = app_with("").await;
    for auth in [None, Some("wrong")] {
        let mut req = app.http.post(app.url("/admin/v1/tokens/check"));
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
    }
    assert_eq!(
        check(&app).await,
        json!({"checked": 0, "refreshed": 0, "invalid": 0, "skipped": 0, "unchecked": 0, "pages": 1, "largest_page": 0})
    );
}

#[tokio::test]
async fn instagram_login_token_near_expiry_is_refreshed_and_stored_encrypted() {
    let (app, ig) = app_with("").await;
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .and(query_param("grant_type", "ig_refresh_token"))
        .and(query_param("access_token", IG_TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": IG_NEW_TOKEN, "token_type": "bearer", "expires_in": 5_184_000
        })))
        .expect(1)
        .mount(&ig)
        .await;
    // Due: expires in 5 days, stored 2 days ago.
    put_ig(&app, IG, IG_TOKEN, 5 * 86400, 2 * 86400).await;
    // Not due: expires in 30 days; too young: stored an hour ago.
    put_ig(
        &app,
        "17841400000000089",
        "IGAAT-far",
        30 * 86400,
        2 * 86400,
    )
    .await;
    put_ig(&app, "17841400000000090", "IGAAT-young", 5 * 86400, 3600).await;

    let report = check(&app).await;
    assert_eq!(report["checked"], 3, "{report}");
    assert_eq!(report["refreshed"], 1, "{report}");
    assert_eq!(report["invalid"], 0, "{report}");

    let key = format!("switchboard:channel:instagram:{IG}");
    let stored = hget(&app, &key, "token");
    assert!(stored.starts_with("gAAAAA"), "Fernet at rest");
    assert!(
        !app.redis().dump_all().contains(IG_NEW_TOKEN),
        "never plaintext"
    );
    assert_eq!(python_decrypt(&app.vault_key, &stored), IG_NEW_TOKEN);
    let expires = humantime::parse_rfc3339(&hget(&app, &key, "expires_at")).unwrap();
    let left = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap()
        .as_secs();
    assert!((5_184_000 - 120..=5_184_000).contains(&left), "{left}");
    assert_eq!(hget(&app, &key, "graph"), "instagram");

    // The new token is what replies use now; a second check refreshes nothing.
    let report = check(&app).await;
    assert_eq!(report["refreshed"], 0, "{report}");
    assert!(
        app.crm_requests().await.is_empty(),
        "nothing to tell the CRM"
    );
}

#[tokio::test]
async fn instagram_refresh_refused_with_190_or_an_expired_token_asks_to_reconnect() {
    let (app, ig) = app_with("").await;
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"message": format!("Error validating access token {IG_TOKEN}: Session has expired"),
                      "type": "OAuthException", "code": 190}
        })))
        .mount(&ig)
        .await;
    put_ig(&app, IG, IG_TOKEN, 86400, 2 * 86400).await;
    put_ig(&app, "17841400000000091", "IGAAT-expired", -60, 90 * 86400).await;

    let report = check(&app).await;
    assert_eq!(report["invalid"], 2, "{report}");
    assert_eq!(report["refreshed"], 0, "{report}");
    let events = reauth_events(&app, 2).await;
    assert_eq!(events.len(), 2, "{events:#?}");
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| e["channel"]["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, [IG, "17841400000000091"]);
    for e in &events {
        let reason = e["data"]["reason"].as_str().unwrap();
        assert!(!reason.contains(IG_TOKEN), "{reason}");
    }
    // The old token stays (nothing half-written).
    let stored = hget(
        &app,
        &format!("switchboard:channel:instagram:{IG}"),
        "token",
    );
    assert_eq!(python_decrypt(&app.vault_key, &stored), IG_TOKEN);
}

#[tokio::test]
async fn meta_token_that_debug_token_calls_invalid_raises_reauth_once_an_hour() {
    let (app, _ig) = app_with("").await;
    let app_token = format!("{META_APP_ID}|{APP_SECRET}");
    Mock::given(method("GET"))
        .and(path("/v23.0/debug_token"))
        .and(query_param("input_token", PAGE_TOKEN))
        .and(query_param("access_token", app_token.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "app_id": META_APP_ID, "type": "PAGE", "is_valid": false,
            "error": {"code": 190, "subcode": 460, "message": "The session has been invalidated because the user changed their password."}
        }})))
        .mount(&app.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v23.0/debug_token"))
        .and(query_param("input_token", GOOD_PAGE_TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "app_id": META_APP_ID, "type": "PAGE", "is_valid": true, "expires_at": 0
        }})))
        .mount(&app.graph)
        .await;
    app.put_channel(ChannelKind::Messenger, PAGE, "acme", PAGE_TOKEN)
        .await;
    app.put_channel(ChannelKind::Messenger, GOOD_PAGE, "acme", GOOD_PAGE_TOKEN)
        .await;

    let report = check(&app).await;
    assert_eq!(report["checked"], 2, "{report}");
    assert_eq!(report["invalid"], 1, "{report}");
    let events = reauth_events(&app, 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["channel"],
        json!({"kind": "messenger", "id": PAGE})
    );
    assert!(events[0]["data"]["reason"]
        .as_str()
        .unwrap()
        .contains("password"));

    // Still invalid an instant later: counted, but the tenant is not told twice.
    let report = check(&app).await;
    assert_eq!(report["invalid"], 1, "{report}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.crm_requests().await.len(), 1, "once an hour at most");
}

/// Answers getWebhookInfo for any bot with the relay's URL for that bot.
struct RelayWebhook;

impl Respond for RelayWebhook {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let bot = req
            .url
            .path()
            .trim_start_matches("/bot")
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {
            "url": format!("http://relay.test/webhooks/telegram/{bot}"),
            "has_custom_certificate": false, "pending_update_count": 0
        }}))
    }
}

#[tokio::test]
async fn telegram_webhook_pointing_elsewhere_is_webhook_replaced() {
    let (app, _ig) = app_with("").await;
    Mock::given(method("POST"))
        .and(path(format!("/bot{BOT_TOKEN}/getWebhookInfo")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {
                "url": "https://other-crm.example/telegram", "has_custom_certificate": false,
                "pending_update_count": 3
            }})),
        )
        .mount(&app.telegram)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/bot[0-9]+:.*/getWebhookInfo$"))
        .respond_with(RelayWebhook)
        .with_priority(10)
        .mount(&app.telegram)
        .await;
    app.put_channel(ChannelKind::Telegram, BOT, "acme", BOT_TOKEN)
        .await;
    app.put_channel(
        ChannelKind::Telegram,
        "7000000078",
        "acme",
        "7000000078:AAH-fine-bot",
    )
    .await;

    let report = check(&app).await;
    assert_eq!(report["checked"], 2, "{report}");
    assert_eq!(report["invalid"], 1, "{report}");
    let events = reauth_events(&app, 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["channel"], json!({"kind": "telegram", "id": BOT}));
    assert_eq!(events[0]["data"]["reason"], "webhook_replaced");
}

#[tokio::test]
async fn a_channel_another_replica_is_checking_is_skipped() {
    let (app, _ig) = app_with("").await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/bot[0-9]+:.*/getWebhookInfo$"))
        .respond_with(RelayWebhook)
        .mount(&app.telegram)
        .await;
    app.put_channel(ChannelKind::Telegram, BOT, "acme", BOT_TOKEN)
        .await;
    app.put_channel(
        ChannelKind::Telegram,
        "7000000078",
        "acme",
        "7000000078:AAH-fine-bot",
    )
    .await;
    // Another replica holds BOT's lock.
    app.redis().cli(&[
        "SET",
        &format!("switchboard:tokens:lock:telegram:{BOT}"),
        "1",
        "EX",
        "60",
    ]);
    let report = check(&app).await;
    assert_eq!(report["checked"], 1, "{report}");
    assert_eq!(report["skipped"], 1, "{report}");
    let calls = app.telegram.received_requests().await.unwrap();
    assert_eq!(calls.len(), 1);
    assert!(!calls[0].url.path().contains(BOT_TOKEN));
    // Our own locks are freed after the check.
    let left = app
        .redis()
        .cli(&["EXISTS", "switchboard:tokens:lock:telegram:7000000078"]);
    assert_eq!(left.trim(), "0");
}

#[tokio::test]
async fn the_periodic_round_runs_by_itself_once_per_interval_across_replicas() {
    let (app, _ig) = app_with("check_interval_s = 2").await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/bot[0-9]+:.*/getWebhookInfo$"))
        .respond_with(RelayWebhook)
        .mount(&app.telegram)
        .await;
    app.put_channel(ChannelKind::Telegram, BOT, "acme", BOT_TOKEN)
        .await;
    let _replica = app.replica().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.telegram.received_requests().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no periodic check ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Two replicas wake about every 2 s; the round marker lets one round run per interval.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let n = app.telegram.received_requests().await.unwrap().len();
    assert!(
        (2..=3).contains(&n),
        "{n} rounds in 4.5 s after the first, with a 2 s interval"
    );
}

#[tokio::test]
async fn token_check_works_on_the_memory_store() {
    let ig = MockServer::start().await;
    let app = TestApp::builder()
        .memory()
        .without_fixture_channels()
        .toml(&format!("[instagram]\ngraph_base = \"{}\"\n", ig.uri()))
        .spawn()
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/bot[0-9]+:.*/getWebhookInfo$"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {"url": ""}})),
        )
        .mount(&app.telegram)
        .await;
    for i in 0..5 {
        let id = format!("70000001{i:02}");
        app.put_channel(ChannelKind::Telegram, &id, "acme", &format!("{id}:AAH-x"))
            .await;
    }
    let report = check(&app).await;
    assert_eq!(report["checked"], 5, "{report}");
    assert_eq!(report["invalid"], 5, "{report}");
}

/// Stores `n` Telegram bots straight into Redis (as another writer would), in batches.
fn seed_bots(app: &TestApp, n: usize) {
    let mut script = String::new();
    for i in 0..n {
        let id = 8_000_000_000u64 + i as u64;
        let token = app
            .keyring
            .encrypt(format!("{id}:AAH-seed-token").as_bytes());
        script.push_str(&format!(
            "HSET switchboard:channel:telegram:{id} tenant acme token {token}\n"
        ));
    }
    let mut child = Command::new("redis-cli")
        .args(["-p", &app.redis().port.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

async fn check_many(n: usize, page_size: usize) -> (Value, Duration) {
    let (app, _ig) = app_with(&format!("page_size = {page_size}\nconcurrency = 16")).await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/bot[0-9]+:.*/getWebhookInfo$"))
        .respond_with(RelayWebhook)
        .mount(&app.telegram)
        .await;
    seed_bots(&app, n);
    let started = Instant::now();
    let report = check(&app).await;
    (report, started.elapsed())
}

#[tokio::test]
async fn token_check_walks_a_thousand_channels_in_scan_pages() {
    let (report, took) = check_many(1000, 50).await;
    assert_eq!(report["checked"], 1000, "{report}");
    assert_eq!(report["invalid"], 0, "{report}");
    // SCAN pages of COUNT 50: at least 1000 / 50 of them (SCAN may return fewer a page).
    assert!(report["pages"].as_u64().unwrap() >= 20, "{report}");
    // A page at a time: never the thousand at once.
    assert!(report["largest_page"].as_u64().unwrap() <= 200, "{report}");
    println!("token check: 1000 channels in {took:?} ({report})");
}

/// The measured run over 10,000 channels on Redis (debug build):
/// `cargo test -j2 --test api token_check_10000 -- --ignored --nocapture`; the release
/// measurement, on the memory store and Redis, is `cargo bench --bench token_health`.
#[tokio::test]
#[ignore = "a measured run (about 10,000 provider calls); run it on purpose"]
async fn token_check_10000_channels_measured() {
    let (report, took) = check_many(10_000, 100).await;
    assert_eq!(report["checked"], 10_000, "{report}");
    assert_eq!(report["invalid"], 0, "{report}");
    assert!(report["pages"].as_u64().unwrap() >= 100, "{report}");
    assert!(report["largest_page"].as_u64().unwrap() <= 1000, "{report}");
    println!("token check: 10000 channels in {took:?} ({report})");
}

#[tokio::test]
async fn cli_tokens_check_runs_the_same_check_and_delivers_the_notice() {
    let (app, _ig) = app_with("").await;
    Mock::given(method("POST"))
        .and(path(format!("/bot{BOT_TOKEN}/getWebhookInfo")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {"url": ""}})),
        )
        .mount(&app.telegram)
        .await;
    app.put_channel(ChannelKind::Telegram, BOT, "acme", BOT_TOKEN)
        .await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "--config",
            app.config_path.to_str().unwrap(),
            "tokens",
            "check",
            "--json",
        ])
        .env_remove("SWITCHBOARD_CONFIG")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["checked"], 1, "{report}");
    assert_eq!(report["invalid"], 1, "{report}");
    assert!(!stdout.contains(BOT_TOKEN));
    // The CLI waited for the notice: it is at the CRM already.
    let events = reauth_events(&app, 1).await;
    assert_eq!(events[0]["data"]["reason"], "webhook_replaced");
}
