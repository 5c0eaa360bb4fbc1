//! The admin API and the token vault against a real redis-server: channels put, listed
//! and deleted; secrets stored only as Fernet tokens; rotation under the primary key,
//! compare-and-set against concurrent writers; records written by another service
//! (Python's `cryptography` + redis-cli); a corrupted record hurting only its channel.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::registry;
use switchboard::store::{ChannelRecord, StoreBackend};
use switchboard::vault::{KeyMatch, Keyring};

use crate::helpers::*;

const TOKEN: &str = "EAAG-plaintext-access-token-7f3a";
const TELEGRAM_TOKEN: &str = "7001234567:AAH-telegram-bot-token-9x";
const TELEGRAM_SECRET: &str = "tg-webhook-secret_42";

async fn admin(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    admin_as(app, ADMIN_TOKEN, method, path, body).await
}

async fn admin_as(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

async fn problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    resp.json().await.unwrap()
}

async fn list(app: &TestApp) -> Vec<Value> {
    let resp = admin(app, reqwest::Method::GET, "/admin/v1/channels", None).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["count"], body["channels"].as_array().unwrap().len());
    body["channels"].as_array().unwrap().clone()
}

fn find<'a>(channels: &'a [Value], kind: &str, id: &str) -> &'a Value {
    channels
        .iter()
        .find(|c| c["kind"] == kind && c["id"] == id)
        .unwrap_or_else(|| panic!("{kind}:{id} not listed in {channels:#?}"))
}

fn hget(app: &TestApp, key: &str, field: &str) -> String {
    app.redis().cli(&["HGET", key, field]).trim().to_owned()
}

fn python_fernet(key: &str, plaintext: &str) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys\nfrom cryptography.fernet import Fernet\nprint(Fernet(sys.argv[1]).encrypt(sys.argv[2].encode()).decode())",
            key,
            plaintext,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn ring_of(key: &str) -> Keyring {
    Keyring::new(&[SecretString::from(key.to_owned())]).unwrap()
}

/// Rewrites the config with these vault keys and waits until the app runs with them.
async fn set_vault_keys(app: &TestApp, keys: &[&str]) {
    let mut config = app.config.clone();
    config.vault_keys = keys.iter().map(|k| (*k).to_owned()).collect();
    app.reload(&config.render(), |live| live.keyring.len() == keys.len())
        .await;
}

#[tokio::test]
async fn admin_api_without_or_with_a_wrong_token_is_401_problem_json() {
    let app = spawn_app().await;
    let routes = [
        (reqwest::Method::GET, "/admin/v1/channels"),
        (reqwest::Method::PUT, "/admin/v1/channels/whatsapp/555"),
        (
            reqwest::Method::DELETE,
            "/admin/v1/channels/whatsapp/106540352242922",
        ),
        (reqwest::Method::POST, "/admin/v1/vault/rotate"),
    ];
    for (m, p) in routes {
        let body = json!({"tenant": "acme", "token": TOKEN});
        let none = app
            .http
            .request(m.clone(), app.url(p))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(problem(none, 401).await["code"], "unauthorized", "{p}");
        for wrong in [
            "wrong-admin-token",
            "",
            &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1],
            API_KEY,
        ] {
            let resp = admin_as(&app, wrong, m.clone(), p, Some(body.clone())).await;
            assert_eq!(problem(resp, 401).await["code"], "unauthorized", "{p}");
        }
        let basic = app
            .http
            .request(m.clone(), app.url(p))
            .header("authorization", format!("Basic {ADMIN_TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), 401);
    }
    // Nothing was written or deleted by the refused calls.
    let ch = ChannelRef::new(ChannelKind::Whatsapp, "555");
    assert!(app.state.store.get_channel(&ch).await.unwrap().is_none());
    assert_eq!(list(&app).await.len(), WHATSAPP_FIXTURE_CHANNELS.len());
}

#[tokio::test]
async fn put_channel_stores_only_fernet_ciphertext_and_list_shows_no_secret() {
    let app = spawn_app().await;
    let path = "/admin/v1/channels/telegram/7001234567";
    let resp = admin(
        &app,
        reqwest::Method::PUT,
        path,
        Some(
            json!({"tenant": "globex", "token": TELEGRAM_TOKEN, "webhook_secret": TELEGRAM_SECRET}),
        ),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["kind"], "telegram");
    assert_eq!(created["tenant"], "globex");
    assert_eq!(created["token"], "primary_key");
    assert_eq!(created["webhook_secret"], "primary_key");
    assert_eq!(created["status"], "ok");

    // In Redis: the contract's hash, Fernet tokens that open to the plaintext.
    let key = "switchboard:channel:telegram:7001234567";
    assert_eq!(hget(&app, key, "tenant"), "globex");
    let stored = hget(&app, key, "token");
    assert!(stored.starts_with("gAAAAA"), "{stored}");
    assert_eq!(
        &*app.keyring.decrypt(&stored).unwrap(),
        TELEGRAM_TOKEN.as_bytes()
    );
    let ws = hget(&app, key, "webhook_secret");
    assert_eq!(
        &*app.keyring.decrypt(&ws).unwrap(),
        TELEGRAM_SECRET.as_bytes()
    );
    assert!(!hget(&app, key, "updated_at").is_empty());
    // The registry opens it for the code that sends.
    let opened = registry::open(
        &app.state.store,
        &app.keyring,
        &ChannelRef::new(ChannelKind::Telegram, "7001234567"),
    )
    .await
    .unwrap();
    assert_eq!(opened.token.expose(), TELEGRAM_TOKEN);
    assert!(!format!("{opened:?}").contains(TELEGRAM_TOKEN));

    // Replacing answers 200 and a new ciphertext.
    let resp = admin(
        &app,
        reqwest::Method::PUT,
        path,
        Some(json!({"tenant": "acme", "token": "7001234567:rotated-token"})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(hget(&app, key, "tenant"), "acme");
    assert_eq!(hget(&app, key, "webhook_secret"), "", "a PUT replaces");

    let listed = admin(&app, reqwest::Method::GET, "/admin/v1/channels", None)
        .await
        .text()
        .await
        .unwrap();
    for secret in [TELEGRAM_TOKEN, "rotated-token", "gAAAAA", &app.vault_key] {
        assert!(!listed.contains(secret), "list leaks {secret}: {listed}");
    }
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let channels = listed["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 4);
    let tg = find(channels, "telegram", "7001234567");
    assert_eq!(tg["tenant"], "acme");
    assert!(tg["webhook_secret"].is_null());

    let dump = app.redis().dump_all();
    for secret in [
        TELEGRAM_TOKEN,
        TELEGRAM_SECRET,
        "rotated-token",
        "wa-token-secret",
        &app.vault_key,
        ADMIN_TOKEN,
    ] {
        assert!(!dump.contains(secret), "Redis holds {secret}");
    }
}

#[tokio::test]
async fn put_channel_with_bad_input_is_400_naming_the_field() {
    let app = spawn_app().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/admin/v1/channels/fax/1",
            json!({"tenant": "acme", "token": TOKEN}),
            "kind",
        ),
        (
            "/admin/v1/channels/whatsapp/a%20b",
            json!({"tenant": "acme", "token": TOKEN}),
            "id",
        ),
        (
            "/admin/v1/channels/whatsapp/1",
            json!({"tenant": "nobody", "token": TOKEN}),
            "tenant",
        ),
        (
            "/admin/v1/channels/whatsapp/1",
            json!({"token": TOKEN}),
            "tenant",
        ),
        (
            "/admin/v1/channels/whatsapp/1",
            json!({"tenant": "acme"}),
            "token",
        ),
        (
            "/admin/v1/channels/whatsapp/1",
            json!({"tenant": "acme", "token": ""}),
            "token",
        ),
        (
            "/admin/v1/channels/whatsapp/1",
            json!({"tenant": "acme", "token": 42}),
            "token",
        ),
        (
            "/admin/v1/channels/whatsapp/1",
            json!({"tenant": "acme", "token": TOKEN, "tokn": 1}),
            "tokn",
        ),
        // A Fernet token where the plaintext belongs would be encrypted twice.
        (
            "/admin/v1/channels/whatsapp/1",
            json!({"tenant": "acme", "token": app.keyring.encrypt(b"x")}),
            "token",
        ),
        (
            "/admin/v1/channels/telegram/1",
            json!({"tenant": "acme", "token": TELEGRAM_TOKEN}),
            "token",
        ),
        (
            "/admin/v1/channels/telegram/7001234567",
            json!({"tenant": "acme", "token": TELEGRAM_TOKEN, "webhook_secret": "has space"}),
            "webhook_secret",
        ),
    ];
    for (path, body, field) in cases {
        let resp = admin(&app, reqwest::Method::PUT, path, Some(body.clone())).await;
        let p = problem(resp, 400).await;
        assert_eq!(p["code"], "invalid_request", "{path} {body}");
        assert_eq!(p["field"], field, "{path} {body}: {p}");
        assert!(p["detail"].as_str().unwrap().contains(field), "{p}");
        assert!(
            !p.to_string().contains(TOKEN),
            "the answer echoes the token: {p}"
        );
    }
    let not_json = app
        .http
        .put(app.url("/admin/v1/channels/whatsapp/1"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(not_json, 400).await["code"], "invalid_request");
    assert_eq!(list(&app).await.len(), WHATSAPP_FIXTURE_CHANNELS.len());
}

#[tokio::test]
async fn delete_channel_removes_it_then_answers_404() {
    let app = spawn_app().await;
    let path = "/admin/v1/channels/whatsapp/123456123";
    let revoke = admin(
        &app,
        reqwest::Method::DELETE,
        &format!("{path}?revoke=yes"),
        None,
    )
    .await;
    // `revoke` is true or false (revoke=true itself: tests/api/privacy.rs).
    assert_eq!(problem(revoke, 400).await["field"], "revoke");
    let resp = admin(&app, reqwest::Method::DELETE, path, None).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        app.redis()
            .cli(&["EXISTS", "switchboard:channel:whatsapp:123456123"])
            .trim(),
        "0"
    );
    let again = admin(&app, reqwest::Method::DELETE, path, None).await;
    assert_eq!(problem(again, 404).await["code"], "channel_not_found");
    let bad = admin(
        &app,
        reqwest::Method::DELETE,
        "/admin/v1/channels/fax/1",
        None,
    )
    .await;
    assert_eq!(problem(bad, 400).await["field"], "kind");
    assert_eq!(list(&app).await.len(), 2);
}

#[tokio::test]
async fn channel_written_by_another_service_with_python_routes_and_is_listed() {
    let app = spawn_app().await;
    let key = "switchboard:channel:whatsapp:106540352242922";
    app.redis().cli(&["DEL", key]);
    let token = python_fernet(&app.vault_key, "EAAG-from-onboarding");
    app.redis().cli(&[
        "HSET",
        key,
        "tenant",
        "acme",
        "token",
        &token,
        "updated_at",
        "2026-11-22T10:00:00Z",
    ]);

    let resp = app.post_meta(&fixture("whatsapp/text.json")).await;
    assert_eq!(resp.status(), 200);
    let reqs = app.wait_for_crm(CRM_PATH, 1).await;
    let event = verify_standard_webhook(SIGNING_SECRET, &reqs[0]);
    assert_eq!(event["channel"]["id"], "106540352242922");

    let channels = list(&app).await;
    let c = find(&channels, "whatsapp", "106540352242922");
    assert_eq!(c["token"], "primary_key");
    assert_eq!(c["status"], "ok");
    assert_eq!(c["updated_at"], "2026-11-22T10:00:00Z");
    let opened = registry::open(
        &app.state.store,
        &app.keyring,
        &ChannelRef::new(ChannelKind::Whatsapp, "106540352242922"),
    )
    .await
    .unwrap();
    assert_eq!(opened.token.expose(), "EAAG-from-onboarding");
}

#[tokio::test]
async fn corrupted_records_in_redis_are_reported_for_their_channel_only() {
    let app = spawn_app().await;
    let garbage = "switchboard:channel:whatsapp:1122334455667";
    let other_key = Keyring::generate_key();
    app.redis()
        .cli(&["HSET", garbage, "token", "gAAAAABnot-a-real-fernet-token=="]);
    let foreign = "switchboard:channel:messenger:999";
    app.redis().cli(&[
        "HSET",
        foreign,
        "tenant",
        "acme",
        "token",
        &python_fernet(&other_key, "EAAG-other-key"),
    ]);
    let no_tenant = "switchboard:channel:instagram:888";
    app.redis()
        .cli(&["HSET", no_tenant, "token", &app.keyring.encrypt(b"x")]);
    let wrong_type = "switchboard:channel:instagram:777";
    app.redis().cli(&["SET", wrong_type, "oops"]);
    let unknown_tenant = "switchboard:channel:instagram:666";
    app.redis().cli(&[
        "HSET",
        unknown_tenant,
        "tenant",
        "initech",
        "token",
        &app.keyring.encrypt(b"y"),
    ]);

    let channels = list(&app).await;
    assert_eq!(channels.len(), 7, "{channels:#?}");
    let c = find(&channels, "whatsapp", "1122334455667");
    assert_eq!(c["status"], "error");
    assert_eq!(c["token"], "undecryptable");
    assert!(c["error"]
        .as_str()
        .unwrap()
        .contains("no configured vault key"));
    let c = find(&channels, "messenger", "999");
    assert_eq!(c["token"], "undecryptable");
    let c = find(&channels, "instagram", "888");
    assert_eq!(c["status"], "error");
    assert!(c["error"].as_str().unwrap().contains("tenant"), "{c}");
    let c = find(&channels, "instagram", "777");
    assert!(c["error"].as_str().unwrap().contains("not a hash"), "{c}");
    let c = find(&channels, "instagram", "666");
    assert_eq!(c["tenant_configured"], false);
    assert_eq!(c["status"], "error");
    for id in ["106540352242922", "123456123"] {
        assert_eq!(find(&channels, "whatsapp", id)["status"], "ok");
    }

    // Webhooks of the healthy channels still work; so does the corrupted-token channel
    // (inbound needs only its tenant).
    for name in ["whatsapp/text.json", "whatsapp/audio_voice.json"] {
        let resp = app.post_meta(&fixture(name)).await;
        assert_eq!(resp.status(), 200, "{name}");
    }
    assert_eq!(app.wait_for_crm(CRM_PATH, 2).await.len(), 2);

    let err = registry::open(
        &app.state.store,
        &app.keyring,
        &ChannelRef::new(ChannelKind::Whatsapp, "1122334455667"),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("whatsapp:1122334455667"), "{err}");
    assert!(err.to_string().contains("token"), "{err}");

    // Rotation rotates nothing here, and reports exactly the broken records.
    let resp = admin(&app, reqwest::Method::POST, "/admin/v1/vault/rotate", None).await;
    assert_eq!(resp.status(), 200);
    let report: Value = resp.json().await.unwrap();
    assert_eq!(report["rotated"], 0);
    let failed: Vec<&str> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["channel"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        [
            "instagram:777",
            "instagram:888",
            "messenger:999",
            "whatsapp:1122334455667"
        ]
    );
}

#[tokio::test]
async fn old_key_token_works_and_rotation_moves_every_secret_to_the_new_key() {
    let app = spawn_app().await;
    let old = app.vault_key.clone();
    let new = Keyring::generate_key();
    let old_ring = app.keyring.clone();
    // A Telegram channel with a webhook secret, and one written by Python, under old.
    app.put_channel_with_secret(
        ChannelKind::Telegram,
        "7001234567",
        "acme",
        TELEGRAM_TOKEN,
        Some(TELEGRAM_SECRET),
    )
    .await;
    app.redis().cli(&[
        "HSET",
        "switchboard:channel:messenger:42",
        "tenant",
        "globex",
        "token",
        &python_fernet(&old, "EAAG-python-old"),
    ]);

    set_vault_keys(&app, &[&new, &old]).await;
    let channels = list(&app).await;
    assert_eq!(channels.len(), 5);
    for c in &channels {
        assert_eq!(c["status"], "needs_rotation", "{c}");
        assert_eq!(c["token"], "older_key");
    }
    // Under [new, old] a token under old works: for routing and for opening.
    let resp = app.post_meta(&fixture("whatsapp/text.json")).await;
    assert_eq!(resp.status(), 200);
    let live = app.state.live.load_full();
    let tg = ChannelRef::new(ChannelKind::Telegram, "7001234567");
    let opened = registry::open(&app.state.store, &live.keyring, &tg)
        .await
        .unwrap();
    assert_eq!(opened.token.expose(), TELEGRAM_TOKEN);
    let before_ts = hget(
        &app,
        "switchboard:channel:telegram:7001234567",
        "updated_at",
    );

    let resp = admin(&app, reqwest::Method::POST, "/admin/v1/vault/rotate", None).await;
    assert_eq!(resp.status(), 200);
    let report: Value = resp.json().await.unwrap();
    assert_eq!(report["rotated"], 5, "{report}");
    assert_eq!(
        report["primary_key_id"],
        ring_of(&new).primary_id(),
        "{report}"
    );
    assert_eq!(report["checked"], 5);
    assert!(report["failed"].as_array().unwrap().is_empty());

    // Every stored secret now opens under new alone, to the same plaintext, and not
    // under old.
    let new_only = Keyring::new(&[SecretString::from(new.clone())]).unwrap();
    for c in app.state.store.list_channels().await.unwrap() {
        let (channel, record) = c;
        assert_eq!(
            new_only.key_match(record.token.expose_secret()),
            KeyMatch::Primary,
            "{channel}"
        );
        assert!(old_ring.decrypt(record.token.expose_secret()).is_err());
        if let Some(ws) = &record.webhook_secret {
            assert_eq!(
                &*new_only.decrypt(ws.expose_secret()).unwrap(),
                TELEGRAM_SECRET.as_bytes()
            );
        }
    }
    let opened = registry::open(&app.state.store, &new_only, &tg)
        .await
        .unwrap();
    assert_eq!(opened.token.expose(), TELEGRAM_TOKEN);
    let py = registry::open(
        &app.state.store,
        &new_only,
        &ChannelRef::new(ChannelKind::Messenger, "42"),
    )
    .await
    .unwrap();
    assert_eq!(py.token.expose(), "EAAG-python-old");
    // Rotation keeps the record's other fields.
    assert_eq!(
        hget(
            &app,
            "switchboard:channel:telegram:7001234567",
            "updated_at"
        ),
        before_ts
    );

    // Idempotent: nothing left to do.
    let again: Value = admin(&app, reqwest::Method::POST, "/admin/v1/vault/rotate", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["rotated"], 0);
    assert_eq!(again["already_current"], 5);

    // Drop old: everything still opens and routes.
    set_vault_keys(&app, &[&new]).await;
    for c in list(&app).await {
        assert_eq!(c["status"], "ok", "{c}");
    }
    app.forget_dedupe().await;
    let resp = app.post_meta(&fixture("whatsapp/text.json")).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn rotation_never_overwrites_a_concurrent_write() {
    let app = spawn_app().await;
    let old = app.vault_key.clone();
    let new = Keyring::generate_key();
    let old_ring = app.keyring.clone();
    set_vault_keys(&app, &[&new, &old]).await;
    let channel = ChannelRef::new(ChannelKind::Whatsapp, "106540352242922");

    // The compare-and-set itself: a stale expectation changes nothing.
    let current = app
        .state
        .store
        .get_channel(&channel)
        .await
        .unwrap()
        .unwrap();
    let stale = ChannelRecord {
        token: SecretString::from(old_ring.encrypt(b"something else")),
        ..current.clone()
    };
    let replacement = ChannelRecord {
        token: SecretString::from("gAAAAA-would-be-lost".to_owned()),
        ..current.clone()
    };
    assert!(!app
        .state
        .store
        .replace_channel_secrets(&channel, &stale, &replacement)
        .await
        .unwrap());
    assert_eq!(
        hget(
            &app,
            "switchboard:channel:whatsapp:106540352242922",
            "token"
        ),
        current.token.expose_secret()
    );

    // Another replica (still on the old key) keeps writing while rotations run: the
    // last write must survive, and rotations must not resurrect an older value.
    let store = app.state.store.clone();
    let both = app.state.live.load().keyring.clone();
    let writer = {
        let old_ring = old_ring.clone();
        let channel = channel.clone();
        tokio::spawn(async move {
            for i in 0..200u32 {
                let record = ChannelRecord::new(
                    "acme",
                    SecretString::from(old_ring.encrypt(format!("token-{i}").as_bytes())),
                );
                store.put_channel(&channel, &record).await.unwrap();
                // Never older than what was just written.
                let back = store.get_channel(&channel).await.unwrap().unwrap();
                let plain = both.decrypt(back.token.expose_secret()).unwrap();
                let n: u32 = std::str::from_utf8(&plain).unwrap()["token-".len()..]
                    .parse()
                    .unwrap();
                assert!(n >= i, "a rotation brought back token-{n} after token-{i}");
            }
        })
    };
    let mut rotated = 0;
    while !writer.is_finished() {
        let resp = admin(&app, reqwest::Method::POST, "/admin/v1/vault/rotate", None).await;
        assert_eq!(resp.status(), 200);
        let report: Value = resp.json().await.unwrap();
        // A record that changes on every attempt is left for the next run, never
        // forced.
        for f in report["failed"].as_array().unwrap() {
            assert!(
                f["reason"].as_str().unwrap().contains("changed"),
                "{report}"
            );
        }
        rotated += report["rotated"].as_u64().unwrap();
    }
    writer.await.unwrap();
    assert!(rotated > 0);
    let live = app.state.live.load_full();
    let record = app
        .state
        .store
        .get_channel(&channel)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &*live.keyring.decrypt(record.token.expose_secret()).unwrap(),
        b"token-199"
    );
}

const VALIDATE_OPENAPI: &str = r##"
import json, sys, yaml
from jsonschema import Draft202012Validator
spec = yaml.safe_load(open(sys.argv[1]))
bad = 0
for line in sys.stdin:
    name, body = line.split(" ", 1)
    schema = {"$ref": "#/components/schemas/" + name, "components": spec["components"]}
    for err in Draft202012Validator(schema).iter_errors(json.loads(body)):
        bad += 1
        print(f"{name}: {err.message} at {list(err.absolute_path)}")
sys.exit(1 if bad else 0)
"##;

#[tokio::test]
async fn admin_answers_match_the_published_openapi_schemas() {
    use std::io::Write;
    let app = spawn_app().await;
    app.redis().cli(&[
        "HSET",
        "switchboard:channel:messenger:999",
        "tenant",
        "acme",
        "token",
        "gAAAAAbroken",
    ]);
    app.redis()
        .cli(&["SET", "switchboard:channel:instagram:777", "oops"]);
    let put: Value = admin(
        &app,
        reqwest::Method::PUT,
        "/admin/v1/channels/telegram/7001234567",
        Some(json!({"tenant": "acme", "token": TELEGRAM_TOKEN, "webhook_secret": TELEGRAM_SECRET, "user_id": "10150"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let listed: Value = admin(&app, reqwest::Method::GET, "/admin/v1/channels", None)
        .await
        .json()
        .await
        .unwrap();
    let report: Value = admin(&app, reqwest::Method::POST, "/admin/v1/vault/rotate", None)
        .await
        .json()
        .await
        .unwrap();
    let mut lines = vec![
        format!("ChannelView {put}"),
        format!("RotationReport {report}"),
    ];
    for c in listed["channels"].as_array().unwrap() {
        lines.push(format!("ChannelView {c}"));
    }
    assert_eq!(lines.len(), 2 + 6);

    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml");
    let mut child = std::process::Command::new("python3")
        .args(["-c", VALIDATE_OPENAPI, spec])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for l in &lines {
            writeln!(stdin, "{l}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn rotation_on_a_redis_cluster_reaches_every_master() {
    let cluster = RedisCluster::start(3);
    let app = TestApp::builder().cluster(cluster.urls()).spawn().await;
    for i in 0..30 {
        app.put_channel(ChannelKind::Messenger, &format!("80000{i}"), "acme", "t")
            .await;
    }
    let new = Keyring::generate_key();
    let mut config = app.config.clone();
    config.vault_keys = vec![new.clone(), app.vault_key.clone()];
    app.reload(&config.render(), |live| live.keyring.len() == 2)
        .await;
    let report: Value = admin(&app, reqwest::Method::POST, "/admin/v1/vault/rotate", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["rotated"], 33, "{report}");
    let channels = list(&app).await;
    assert_eq!(channels.len(), 33);
    assert!(channels.iter().all(|c| c["token"] == "primary_key"));
    let new_only = ring_of(&new);
    for (c, r) in app.state.store.list_channels().await.unwrap() {
        assert!(new_only.decrypt(r.token.expose_secret()).is_ok(), "{c}");
    }
    let again: Value = admin(&app, reqwest::Method::POST, "/admin/v1/vault/rotate", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["rotated"], 0);
}

#[test]
fn cli_puts_lists_deletes_and_rotates_with_secrets_only_from_stdin_or_files() {
    use crate::reload::cli;
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    // keygen needs no config.
    let (ok, key) = cli(Path::new("/nonexistent"), &["vault", "keygen"], "");
    assert!(ok, "{key}");
    let key = key.trim().to_owned();
    let mut seen = Vec::new();
    let keyring = ring_of(&key);
    let config = |backend: &str| {
        format!(
            "[store]\nbackend = \"{backend}\"\nredis_url = \"{}\"\n[vault]\nkeys = [\"{key}\"]\n[[tenants]]\nid = \"acme\"\ncrm_url = \"http://crm.test/\"\nsigning_secret = \"{SIGNING_SECRET}\"\n",
            redis.url()
        )
    };
    let path = dir.path().join("cli.toml");
    std::fs::write(&path, config("redis")).unwrap();
    let secret_file = dir.path().join("ws");
    std::fs::write(&secret_file, format!("{TELEGRAM_SECRET}\n")).unwrap();

    let (ok, out) = cli(
        &path,
        &[
            "channels",
            "put",
            "telegram",
            "7001234567",
            "--tenant",
            "acme",
            "--webhook-secret-file",
            secret_file.to_str().unwrap(),
        ],
        &format!("{TELEGRAM_TOKEN}\n"),
    );
    seen.push(out.clone());
    assert!(ok, "{out}");
    assert!(out.contains("created"), "{out}");
    let key_name = "switchboard:channel:telegram:7001234567";
    let hget = |f: &str| redis.cli(&["HGET", key_name, f]).trim().to_owned();
    assert_eq!(
        &*keyring.decrypt(&hget("token")).unwrap(),
        TELEGRAM_TOKEN.as_bytes()
    );
    assert_eq!(
        &*keyring.decrypt(&hget("webhook_secret")).unwrap(),
        TELEGRAM_SECRET.as_bytes()
    );

    // No secret on the command line: there is no such option.
    let (ok, out) = cli(
        &path,
        &[
            "channels", "put", "whatsapp", "1", "--tenant", "acme", "--token", "x",
        ],
        "",
    );
    seen.push(out.clone());
    assert!(!ok, "{out}");
    let (ok, out) = cli(
        &path,
        &["channels", "put", "whatsapp", "1", "--tenant", "nobody"],
        TOKEN,
    );
    seen.push(out.clone());
    assert!(!ok && out.contains("tenant"), "{out}");
    let (ok, out) = cli(
        &path,
        &["channels", "put", "whatsapp", "1", "--tenant", "acme"],
        "",
    );
    seen.push(out.clone());
    assert!(!ok && out.contains("empty"), "{out}");

    let (ok, out) = cli(&path, &["channels", "list", "--json"], "");
    seen.push(out.clone());
    assert!(ok, "{out}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["channels"][0]["webhook_secret"], "primary_key");

    let (ok, out) = cli(&path, &["vault", "rotate"], "");
    seen.push(out.clone());
    assert!(ok && out.contains("rotated 0 of 1"), "{out}");
    let (ok, out) = cli(&path, &["vault", "encrypt"], "some-token\n");
    seen.push(out.clone());
    assert!(ok, "{out}");
    assert_eq!(&*keyring.decrypt(out.trim()).unwrap(), b"some-token");

    let (ok, out) = cli(&path, &["channels", "delete", "telegram", "7001234567"], "");
    seen.push(out.clone());
    assert!(ok, "{out}");
    let (ok, out) = cli(&path, &["channels", "delete", "telegram", "7001234567"], "");
    seen.push(out.clone());
    assert!(!ok && out.contains("not in the store"), "{out}");
    assert_eq!(redis.cli(&["EXISTS", key_name]).trim(), "0");

    std::fs::write(&path, config("memory")).unwrap();
    let (ok, out) = cli(&path, &["channels", "list"], "");
    seen.push(out.clone());
    assert!(!ok && out.contains("memory"), "{out}");
    // Nothing the CLI printed holds a secret (the encrypt output is a Fernet token).
    for o in &seen {
        for secret in [TELEGRAM_TOKEN, TELEGRAM_SECRET, TOKEN, key.as_str()] {
            assert!(!o.contains(secret), "the CLI printed {secret}: {o}");
        }
    }
}
