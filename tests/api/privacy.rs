//! The privacy lifecycle: Meta's deauthorize and data-deletion callbacks (signed here by
//! a second implementation, Python's `hmac`/`base64`), the deletion status page, and the
//! proof that no content is kept: every fixture through the real binary at trace level,
//! then a scan of its logs and of every Redis key and value.

use std::collections::{BTreeSet, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{json, Value};
use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::delivery::BufferBackend;
use switchboard::store::{ChannelRecord, StoreBackend};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

/// The Meta user who connected the test channels.
const USER: &str = "10158000000000001";
const OTHER_USER: &str = "10158000000000002";

/// Signs `payload` as Meta does, with Python (an implementation we did not write).
fn python_signed_request(secret: &str, payload: &str) -> String {
    let script = r#"
import base64, hashlib, hmac, sys
secret, payload = sys.argv[1].encode(), sys.argv[2].encode()
p = base64.urlsafe_b64encode(payload).rstrip(b"=")
s = base64.urlsafe_b64encode(hmac.new(secret, p, hashlib.sha256).digest()).rstrip(b"=")
print((s + b"." + p).decode())
"#;
    let out = Command::new("python3")
        .args(["-c", script, secret, payload])
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn signed(payload: Value) -> String {
    python_signed_request(APP_SECRET, &payload.to_string())
}

fn user_payload(user: &str, issued_at: i64) -> Value {
    json!({"algorithm": "HMAC-SHA256", "issued_at": issued_at, "user_id": user, "user": {"country": "de", "locale": "en_US"}})
}

/// Stores a channel connected by a Meta user.
async fn put_user_channel(
    app: &TestApp,
    kind: ChannelKind,
    id: &str,
    tenant: &str,
    user: Option<&str>,
) {
    let record = ChannelRecord {
        tenant: tenant.to_owned(),
        token: SecretString::from(app.keyring.encrypt(format!("token-of-{id}").as_bytes())),
        webhook_secret: None,
        updated_at: None,
        user_id: user.map(str::to_owned),
        ..Default::default()
    };
    app.state
        .store
        .put_channel(&ChannelRef::new(kind, id), &record)
        .await
        .unwrap();
}

async fn post_form(app: &TestApp, p: &str, body: String) -> reqwest::Response {
    app.http
        .post(app.url(p))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

fn form(signed_request: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("signed_request", signed_request)
        .finish()
}

async fn channel_exists(app: &TestApp, kind: ChannelKind, id: &str) -> bool {
    app.state
        .store
        .get_channel(&ChannelRef::new(kind, id))
        .await
        .unwrap()
        .is_some()
}

async fn problem_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    (status, v["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn deauthorize_signed_by_python_removes_the_users_tokens_and_tells_each_tenant() {
    let app = spawn_app().await;
    put_user_channel(
        &app,
        ChannelKind::Whatsapp,
        "5550001001",
        "acme",
        Some(USER),
    )
    .await;
    put_user_channel(
        &app,
        ChannelKind::Messenger,
        "5550002002",
        "globex",
        Some(USER),
    )
    .await;
    put_user_channel(
        &app,
        ChannelKind::Instagram,
        "5550003003",
        "acme",
        Some(OTHER_USER),
    )
    .await;

    let sr = signed(user_payload(USER, 1_763_800_000));
    let resp = post_form(&app, "/meta/deauthorize", form(&sr)).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["channels_removed"], 2, "{v}");

    assert!(!channel_exists(&app, ChannelKind::Whatsapp, "5550001001").await);
    assert!(!channel_exists(&app, ChannelKind::Messenger, "5550002002").await);
    assert!(channel_exists(&app, ChannelKind::Instagram, "5550003003").await);
    let dump = app.redis().dump_all();
    assert!(
        !dump.contains("5550001001") && !dump.contains("5550002002"),
        "{dump}"
    );

    let acme = app.wait_for_crm(CRM_PATH, 1).await;
    assert_eq!(acme.len(), 1);
    let ev = verify_standard_webhook(SIGNING_SECRET, &acme[0]);
    assert_eq!(ev["type"], "channel.deauthorized");
    assert_eq!(ev["tenant"], "acme");
    assert_eq!(
        ev["channel"],
        json!({"kind": "whatsapp", "id": "5550001001"})
    );
    assert_eq!(ev["data"]["user"]["id"], USER);
    assert_eq!(ev["timestamp"], "2025-11-22T08:26:40Z");
    let globex = app.wait_for_crm(OTHER_CRM_PATH, 1).await;
    assert_eq!(globex.len(), 1);
    let ev = verify_standard_webhook(OTHER_SIGNING_SECRET, &globex[0]);
    assert_eq!(
        ev["channel"],
        json!({"kind": "messenger", "id": "5550002002"})
    );

    // Meta redelivers the callback: nothing left to remove, nothing sent twice.
    let again = post_form(&app, "/meta/deauthorize", form(&sr)).await;
    assert_eq!(again.status(), 200);
    assert_eq!(app.crm_requests_at(CRM_PATH).await.len(), 1);
}

#[tokio::test]
async fn deauthorize_for_a_page_uninstall_removes_that_page_channel() {
    let app = spawn_app().await;
    put_user_channel(&app, ChannelKind::Messenger, "5550004004", "acme", None).await;
    let sr = signed(
        json!({"algorithm": "hmac-sha256", "issued_at": 1_763_800_000, "profile_id": "5550004004"}),
    );
    let resp = post_form(&app, "/meta/deauthorize", form(&sr)).await;
    assert_eq!(resp.status(), 200);
    assert!(!channel_exists(&app, ChannelKind::Messenger, "5550004004").await);
    let got = app.wait_for_crm(CRM_PATH, 1).await;
    let ev = verify_standard_webhook(SIGNING_SECRET, &got[0]);
    assert_eq!(ev["type"], "channel.deauthorized");
    assert_eq!(ev["data"]["profile"]["id"], "5550004004");
}

#[tokio::test]
async fn signed_request_with_a_wrong_signature_is_401_and_changes_nothing() {
    let app = spawn_app().await;
    put_user_channel(
        &app,
        ChannelKind::Whatsapp,
        "5550001001",
        "acme",
        Some(USER),
    )
    .await;
    let payload = user_payload(USER, 1_763_800_000).to_string();
    let wrong_secret = python_signed_request("not-the-app-secret", &payload);
    let (sig, body) = signed(user_payload(USER, 1_763_800_000))
        .split_once('.')
        .map(|(s, b)| (s.to_owned(), b.to_owned()))
        .unwrap();
    // The right signature over a different payload (the HMAC covers the payload as sent).
    let other_payload = signed(user_payload(OTHER_USER, 1_763_800_000));
    let swapped = format!("{sig}.{}", other_payload.split_once('.').unwrap().1);
    let flipped = format!(
        "{}{}.{body}",
        if sig.starts_with('A') { "B" } else { "A" },
        &sig[1..]
    );
    let truncated = format!("{}.{body}", &sig[..sig.len() - 3]);
    for sr in [wrong_secret, swapped, flipped, truncated] {
        for p in ["/meta/deauthorize", "/meta/data-deletion"] {
            let (status, code) = problem_code(post_form(&app, p, form(&sr)).await).await;
            assert_eq!((status, code.as_str()), (401, "unauthorized"), "{p} {sr}");
        }
    }
    assert!(channel_exists(&app, ChannelKind::Whatsapp, "5550001001").await);
    assert!(app.crm_requests().await.is_empty());
}

#[tokio::test]
async fn signed_request_that_is_malformed_or_of_another_algorithm_is_400() {
    let app = spawn_app().await;
    let cases = vec![
        (
            "algorithm",
            signed(json!({"algorithm": "HMAC-SHA1", "user_id": USER, "issued_at": 1})),
        ),
        (
            "no algorithm",
            signed(json!({"user_id": USER, "issued_at": 1})),
        ),
        ("not json", python_signed_request(APP_SECRET, "not json")),
        ("no dot", "abcdef".to_owned()),
        ("bad base64", "!!!!.eyJ9".to_owned()),
        ("empty", String::new()),
        (
            "no user",
            signed(json!({"algorithm": "HMAC-SHA256", "issued_at": 1})),
        ),
        (
            "user not an id",
            signed(json!({"algorithm": "HMAC-SHA256", "user_id": {"x": 1}})),
        ),
    ];
    for (what, sr) in cases {
        for p in ["/meta/deauthorize", "/meta/data-deletion"] {
            let (status, code) = problem_code(post_form(&app, p, form(&sr)).await).await;
            assert_eq!(
                (status, code.as_str()),
                (400, "invalid_request"),
                "{what} {p}"
            );
        }
    }
    // No signed_request field at all; a JSON body instead of a form.
    let (status, _) = problem_code(post_form(&app, "/meta/deauthorize", "x=1".into()).await).await;
    assert_eq!(status, 400);
    let resp = app
        .http
        .post(app.url("/meta/data-deletion"))
        .header("content-type", "application/json")
        .body(r#"{"signed_request":"a.b"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    // A body above server.max_body_bytes.
    let big = form(&"a".repeat(2 * 1024 * 1024));
    assert_eq!(
        post_form(&app, "/meta/deauthorize", big).await.status(),
        413
    );
    assert!(app.crm_requests().await.is_empty());
}

#[tokio::test]
async fn data_deletion_leaves_nothing_in_redis_that_names_the_user() {
    let app = spawn_app().await;
    let store = &app.state.store;
    let keys = store.keys().clone();
    put_user_channel(
        &app,
        ChannelKind::Whatsapp,
        "5550001001",
        "acme",
        Some(USER),
    )
    .await;
    put_user_channel(
        &app,
        ChannelKind::Messenger,
        "5550002002",
        "globex",
        Some(USER),
    )
    .await;
    put_user_channel(
        &app,
        ChannelKind::Instagram,
        "5550003003",
        "acme",
        Some(OTHER_USER),
    )
    .await;
    // Records that name the user's channels: an idempotency answer and a re-auth notice.
    let idem = keys.idempotency("acme", "key-1");
    store
        .set_ex(
            &idem,
            &json!({"status": 200, "body": {"id": "wamid.X", "channel": {"kind": "whatsapp", "id": "5550001001"}}}).to_string(),
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    let other_idem = keys.idempotency("acme", "key-2");
    store
        .set_ex(
            &other_idem,
            &json!({"status": 200, "body": {"channel": {"kind": "instagram", "id": "5550003003"}}})
                .to_string(),
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    let reauth = keys.reauth_notice(&ChannelRef::new(ChannelKind::Whatsapp, "5550001001"));
    store
        .set_ex(&reauth, "1", Duration::from_secs(600))
        .await
        .unwrap();
    assert!(app.redis().dump_all().contains(USER));

    let resp = post_form(
        &app,
        "/meta/data-deletion",
        form(&signed(user_payload(USER, 1_763_800_000))),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let code = v["confirmation_code"].as_str().unwrap().to_owned();
    assert!(
        code.len() >= 22 && code.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{code}"
    );
    assert_eq!(
        v["url"],
        format!("http://relay.test/meta/data-deletion/{code}")
    );

    // Each tenant is told (it holds the conversations).
    let acme = app.wait_for_crm(CRM_PATH, 1).await;
    let ev = verify_standard_webhook(SIGNING_SECRET, &acme[0]);
    assert_eq!(ev["type"], "data_deletion.requested");
    assert_eq!(ev["data"]["user"]["id"], USER);
    assert_eq!(ev["data"]["confirmation_code"], code.as_str());
    let globex = app.wait_for_crm(OTHER_CRM_PATH, 1).await;
    verify_standard_webhook(OTHER_SIGNING_SECRET, &globex[0]);

    let dump = app.redis().dump_all();
    for id in [USER, "5550001001", "5550002002"] {
        assert!(!dump.contains(id), "{id} is still in Redis:\n{dump}");
    }
    assert!(
        dump.contains("5550003003"),
        "another user's channel must stay"
    );
    assert!(store.get(&other_idem).await.unwrap().is_some());

    // Every key but the channel hashes expires; the status record within its retention.
    let redis = app.redis();
    for key in redis.cli(&["--scan"]).lines().filter(|k| !k.is_empty()) {
        let ttl: i64 = redis.cli(&["TTL", key]).trim().parse().unwrap();
        if key.starts_with(&format!("{}channel:", keys.prefix())) {
            continue;
        }
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
    let ttl: i64 = redis
        .cli(&["TTL", &keys.deletion(&code)])
        .trim()
        .parse()
        .unwrap();
    assert!(ttl > 2_500_000 && ttl <= 2_592_000, "{ttl}");
}

#[tokio::test]
async fn data_deletion_status_is_a_page_or_json_and_unknown_codes_are_404() {
    let app = spawn_app().await;
    put_user_channel(
        &app,
        ChannelKind::Whatsapp,
        "5550001001",
        "acme",
        Some(USER),
    )
    .await;
    let resp = post_form(
        &app,
        "/meta/data-deletion",
        form(&signed(user_payload(USER, 1_763_800_000))),
    )
    .await;
    let v: Value = resp.json().await.unwrap();
    let code = v["confirmation_code"].as_str().unwrap().to_owned();
    let status_path = format!("/meta/data-deletion/{code}");

    let page = app.http.get(app.url(&status_path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains(&code) && html.contains("completed"), "{html}");
    assert!(!html.contains(USER) && !html.contains("5550001001"));

    let j: Value = app
        .http
        .get(app.url(&status_path))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(j["status"], "completed");
    assert_eq!(j["channels_removed"], 1);
    assert_eq!(j["tenants_notified"], 1);

    let mut other = code.clone().into_bytes();
    other[0] = if other[0] == b'A' { b'B' } else { b'A' };
    for p in [
        format!("/meta/data-deletion/{}", String::from_utf8(other).unwrap()),
        "/meta/data-deletion/short".to_owned(),
        "/meta/data-deletion/..%2Fchannel".to_owned(),
    ] {
        let resp = app.http.get(app.url(&p)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{p}");
    }
    // Expired: the record is gone.
    app.state
        .store
        .del(&app.state.store.keys().deletion(&code))
        .await
        .unwrap();
    let resp = app.http.get(app.url(&status_path)).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

// ---------------------------------------------------------------------------------
// The whole-suite privacy scan.

/// Keys whose string values are message content, names or phone numbers.
const SENSITIVE_KEYS: &[&str] = &[
    "text",
    "body",
    "caption",
    "title",
    "name",
    "first_name",
    "last_name",
    "username",
    "formatted_name",
    "display_phone_number",
    "wa_id",
    "from",
    "phone",
    "recipient_id",
    "address",
    "description",
    "data",
    "payload",
    "user_id",
    "from_user_id",
    "parent_user_id",
    "filename",
    "file_name",
    "headline",
    "company",
    "first",
];

/// Subtrees that are provider error descriptions, not anyone's content.
const SKIP_UNDER: &[&str] = &["errors", "error_data"];

fn collect_sensitive(v: &Value, key: Option<&str>, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if SKIP_UNDER.contains(&k.as_str()) {
                    continue;
                }
                collect_sensitive(v, Some(k), out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_sensitive(v, key, out)),
        Value::String(s) => {
            let long_enough = if s.chars().all(|c| c.is_ascii_alphabetic()) {
                s.len() >= 6
            } else {
                s.chars().count() >= 4
            };
            if key.is_some_and(|k| SENSITIVE_KEYS.contains(&k)) && long_enough {
                out.insert(s.clone());
            }
        }
        _ => {}
    }
}

/// `s` as a JSON string with non-ASCII escaped (how raw Meta bodies carry it).
fn ascii_escaped(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// Every inbound webhook fixture: (relative path, JSON).
fn inbound_fixtures() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for dir in ["whatsapp", "instagram", "messenger", "telegram"] {
        for name in fixture_names(dir) {
            let v: Value = serde_json::from_slice(&fixture(&name)).unwrap();
            let inbound = v.get("object").is_some() || v.get("update_id").is_some();
            if inbound {
                out.push((name, v));
            }
        }
    }
    out
}

/// The channels the fixtures are addressed to: WhatsApp phone_number_ids and the
/// Instagram/Messenger entry ids.
fn fixture_channels(fixtures: &[(String, Value)]) -> HashSet<(ChannelKind, String)> {
    let mut out = HashSet::new();
    for (name, v) in fixtures {
        let kind = match name.split('/').next() {
            Some("whatsapp") => ChannelKind::Whatsapp,
            Some("instagram") => ChannelKind::Instagram,
            Some("messenger") => ChannelKind::Messenger,
            _ => continue,
        };
        for entry in v["entry"].as_array().into_iter().flatten() {
            if kind == ChannelKind::Whatsapp {
                for change in entry["changes"].as_array().into_iter().flatten() {
                    if let Some(id) = change["value"]["metadata"]["phone_number_id"].as_str() {
                        out.insert((kind, id.to_owned()));
                    }
                }
            } else if let Some(id) = entry["id"].as_str() {
                out.insert((kind, id.to_owned()));
            }
        }
    }
    out
}

/// A media file's bytes: streamed to the CRM, never logged or stored.
const MEDIA_BYTES: &[u8] = b"private-photo-bytes";
const TELEGRAM_BOT: &str = "7000000001";
const TELEGRAM_SECRET: &str = "tg-Webhook_Secret-4f1c9a";
const REPLY_TEXT: &str = "Private reply: your parcel code is 7731-KX";
const REPLY_TO: &str = "15557654321";

/// Every key, other than a channel hash, that has no TTL.
fn keys_without_ttl(redis: &RedisServer) -> Vec<String> {
    let mut out = Vec::new();
    for key in redis.cli(&["--scan"]).lines().filter(|k| !k.is_empty()) {
        let ttl: i64 = redis.cli(&["PTTL", key]).trim().parse().unwrap_or(-2);
        if ttl == -1 && !key.starts_with("switchboard:channel:") {
            out.push(key.to_owned());
        }
    }
    out
}

/// A running `switchboard serve` with its output going to files.
type Relay = RelayProcess;

/// Posts every inbound fixture; returns the statuses seen.
async fn post_all(http: &reqwest::Client, relay: &Relay, fixtures: &[(String, Value)]) -> Vec<u16> {
    let mut statuses = Vec::new();
    for (name, _) in fixtures {
        let body = fixture(name);
        let req = if name.starts_with("telegram/") {
            http.post(format!(
                "{}/webhooks/telegram/{TELEGRAM_BOT}",
                relay.address
            ))
            .header("x-telegram-bot-api-secret-token", TELEGRAM_SECRET)
        } else {
            http.post(format!("{}/webhooks/meta", relay.address))
                .header("x-hub-signature-256", meta_signature(APP_SECRET, &body))
        };
        let resp = req
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    statuses
}

/// Content in a place the relay does not expect it: error messages (serde's quote
/// the offending value) must not carry it into logs or answers.
const CANARY: &str = "LEAKCANARY-private words";

/// Signed bodies of the wrong shape, each carrying [`CANARY`]; returns the statuses.
async fn post_malformed(http: &reqwest::Client, relay: &Relay) -> Vec<u16> {
    let meta = [
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": WHATSAPP_FIXTURE_CHANNELS[0], "display_phone_number": "1"}, "messages": CANARY}}]}]}),
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": WHATSAPP_FIXTURE_CHANNELS[0], "display_phone_number": "1"}, "contacts": [{"wa_id": "1", "profile": {"name": CANARY}}], "messages": [{"from": "1", "id": "wamid.c", "timestamp": CANARY, "type": "text", "text": {"body": CANARY}}]}}]}]}),
        json!({"object": "instagram", "entry": [{"id": "17841400000000000", "time": 1, "messaging": [{"sender": {"id": "1"}, "recipient": {"id": "17841400000000000"}, "timestamp": CANARY, "message": {"mid": "m", "text": CANARY}}]}]}),
        json!({"object": "page", "entry": [{"id": "1", "time": 1, "messaging": CANARY}]}),
        json!({"object": CANARY, "entry": []}),
        json!({"object": "page", "entry": CANARY}),
    ];
    let mut statuses = Vec::new();
    let mut bodies: Vec<Vec<u8>> = meta.iter().map(|v| v.to_string().into_bytes()).collect();
    bodies.push(format!("{{\"object\": \"page\", \"entry\": [{CANARY}").into_bytes());
    for body in bodies {
        let resp = http
            .post(format!("{}/webhooks/meta", relay.address))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", meta_signature(APP_SECRET, &body))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert!(
            !text.contains("LEAKCANARY"),
            "the answer repeats content: {text}"
        );
        statuses.push(status);
    }
    let telegram = [
        json!({"update_id": CANARY, "message": {"text": CANARY}}),
        json!({"update_id": 1, "message": {"message_id": CANARY, "date": 1, "chat": {"id": 1, "type": "private"}, "text": CANARY}}),
        json!({"update_id": 2, "message": {"message_id": 2, "date": 1, "chat": {"id": CANARY, "type": "private"}, "from": {"id": 1, "is_bot": false, "first_name": CANARY}, "text": CANARY}}),
    ];
    for v in telegram {
        let resp = http
            .post(format!(
                "{}/webhooks/telegram/{TELEGRAM_BOT}",
                relay.address
            ))
            .header("x-telegram-bot-api-secret-token", TELEGRAM_SECRET)
            .header("content-type", "application/json")
            .body(v.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert!(
            !text.contains("LEAKCANARY"),
            "the answer repeats content: {text}"
        );
        statuses.push(status);
    }
    // A reply of the wrong shape.
    let resp = http
        .post(format!("{}/v1/messages", relay.address))
        .bearer_auth(API_KEY)
        .json(&json!({"channel": {"kind": "whatsapp", "id": WHATSAPP_FIXTURE_CHANNELS[0]}, "to": 5, "message": {"kind": CANARY, "text": CANARY}}))
        .send()
        .await
        .unwrap();
    // (The answer may name the CRM's own wrong value back to it; the logs may not.)
    statuses.push(resp.status().as_u16());
    for body in [
        json!({"channel": CANARY, "to": "1", "message": {"kind": "text", "text": "x"}}),
        json!({"channel": {"kind": "whatsapp", "id": WHATSAPP_FIXTURE_CHANNELS[0]}, "to": REPLY_TO, "message": {"kind": "text", "text": 5, "reply_to": CANARY}}),
        json!({"channel": {"kind": "whatsapp", "id": WHATSAPP_FIXTURE_CHANNELS[0]}, "to": REPLY_TO, "message": {"kind": "image", "url": CANARY}}),
    ] {
        let resp = http
            .post(format!("{}/v1/messages", relay.address))
            .bearer_auth(API_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    statuses
}

/// A reply through `POST /v1/messages` (with an Idempotency-Key), so the reply path's
/// logs and records are scanned too.
async fn send_reply(http: &reqwest::Client, relay: &Relay) -> u16 {
    http.post(format!("{}/v1/messages", relay.address))
        .bearer_auth(API_KEY)
        .header("idempotency-key", "privacy-scan-1")
        .json(&json!({
            "channel": {"kind": "whatsapp", "id": WHATSAPP_FIXTURE_CHANNELS[0]},
            "to": REPLY_TO,
            "message": {"kind": "text", "text": REPLY_TEXT}
        }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn every_fixture_through_the_binary_leaves_no_content_in_logs_or_redis() {
    let fixtures = inbound_fixtures();
    assert!(fixtures.len() >= 50, "{} fixtures", fixtures.len());
    let mut relay = TestApp::builder().log_level("trace").spawn_process().await;
    let (crm, graph, telegram) = (&relay.peers.crm, &relay.peers.graph, &relay.peers.telegram);
    let redis = relay.redis();
    let send_response: Value =
        serde_json::from_slice(&fixture("whatsapp/outbound/send_response.json")).unwrap();
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(send_response))
        .mount(graph)
        .await;
    // WhatsApp media: the Graph lookup, then the file (Bearer token, never in the URL).
    Mock::given(method("GET"))
        .and(path("/v23.0/2621233374848975"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "url": format!("{}/whatsapp-media/2621233374848975", graph.uri()),
            "mime_type": "image/jpeg",
            "sha256": "x",
            "file_size": "16",
            "id": "2621233374848975"
        })))
        .mount(graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/whatsapp-media/2621233374848975"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "image/jpeg")
                .set_body_bytes(MEDIA_BYTES.to_vec()),
        )
        .mount(graph)
        .await;
    // Telegram: getFile, the file download (token in the path), and every other call.
    let get_file: Value = serde_json::from_slice(&fixture("telegram/api_getfile_ok.json")).unwrap();
    Mock::given(wiremock::matchers::path_regex(r"/getFile$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(get_file))
        .with_priority(1)
        .mount(telegram)
        .await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex(r"^/file/bot"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/pdf")
                .set_body_bytes(b"%PDF-1.4 private file".to_vec()),
        )
        .with_priority(1)
        .mount(telegram)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": true, "result": {"message_id": 1}})),
        )
        .mount(telegram)
        .await;

    // Channels: every fixture's, written to Redis as an operator would, tokens encrypted.
    let vault_key = relay.peers.vault_key.clone();
    let mut tokens = vec![format!("{TELEGRAM_BOT}:AAH-telegram-bot-token-Secret")];
    let mut channels: Vec<(ChannelKind, String)> =
        fixture_channels(&fixtures).into_iter().collect();
    for id in WHATSAPP_FIXTURE_CHANNELS {
        channels.push((ChannelKind::Whatsapp, (*id).to_owned()));
    }
    channels.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    channels.dedup();
    for (i, (kind, id)) in channels.iter().enumerate() {
        let token = format!("EAAG-channel-token-{i}-Secret");
        let new = NewChannel {
            user_id: Some(USER),
            ..NewChannel::new("acme", &token)
        };
        relay.put(*kind, id, &new).await;
        tokens.push(token);
    }
    let new = NewChannel {
        webhook_secret: Some(TELEGRAM_SECRET),
        ..NewChannel::new("acme", &tokens[0])
    };
    relay.put(ChannelKind::Telegram, TELEGRAM_BOT, &new).await;
    // No pooled connections: the relay may close an idle one while the test waits
    // between steps, and a request on it then fails with IncompleteMessage.
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();

    // 1. The CRM is up.
    let up = post_all(&http, &relay, &fixtures).await;
    let reply = send_reply(&http, &relay).await;
    // Through Telegram too: a reply and a media download, both with the bot token in
    // the Bot API path.
    let tg_reply = http
        .post(format!("{}/v1/messages", relay.address))
        .bearer_auth(API_KEY)
        .json(&json!({"channel": {"kind": "telegram", "id": TELEGRAM_BOT}, "to": "123456789", "message": {"kind": "text", "text": REPLY_TEXT}}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    let tg_media = http
        .get(format!(
            "{}/v1/media/telegram/{TELEGRAM_BOT}/BQACAgIAAxkBAAIBCGXXXXXXXXXXXXXXXXXXXXXXXXXX",
            relay.address
        ))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    let tg_media_status = tg_media.status().as_u16();
    let tg_media_body = tg_media.bytes().await.unwrap();
    assert_eq!(
        (tg_reply, tg_media_status),
        (200, 200),
        "telegram reply and media"
    );
    assert_eq!(&tg_media_body[..], b"%PDF-1.4 private file");
    let wa_media = http
        .get(format!(
            "{}/v1/media/whatsapp/{}/2621233374848975",
            relay.address, WHATSAPP_FIXTURE_CHANNELS[0]
        ))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(wa_media.status(), 200);
    assert_eq!(&wa_media.bytes().await.unwrap()[..], MEDIA_BYTES);
    let refused = post_malformed(&http, &relay).await;
    let delivered = crm.received_requests().await.unwrap_or_default().len();
    assert!(
        delivered >= 40,
        "only {delivered} events reached the CRM; statuses {up:?}"
    );

    // 2. The CRM is down: events are buffered (encrypted) or refused, never kept in the clear.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(crm)
        .await;
    for key in redis
        .cli(&["--scan", "--pattern", "switchboard:dedupe:*"])
        .lines()
    {
        if !key.is_empty() {
            redis.cli(&["DEL", key]);
        }
    }
    let down = post_all(&http, &relay, &fixtures).await;
    let without_ttl = keys_without_ttl(redis);
    assert!(
        without_ttl.is_empty(),
        "keys without a TTL: {without_ttl:?}"
    );
    let redis_dump = redis.dump_all();

    // 3. Meta's callbacks, through the same binary.
    let deauth = http
        .post(format!("{}/meta/deauthorize", relay.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&signed(
            json!({"algorithm": "HMAC-SHA256", "issued_at": 1, "profile_id": "0"}),
        )))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(deauth, 200);
    // The user who connected every channel asks for deletion: the buffer is emptied of
    // their channels' events (the notices to the CRM, encrypted, stay until delivered).
    let deletion: Value = http
        .post(format!("{}/meta/data-deletion", relay.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&signed(user_payload(USER, 1_763_800_000))))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = deletion["confirmation_code"].as_str().unwrap();
    let status: Value = http
        .get(format!("{}/meta/data-deletion/{code}", relay.address))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        status["buffered_events_removed"].as_u64().unwrap() >= 40,
        "{status}"
    );
    assert_eq!(status["channels_removed"], channels.len(), "{status}");
    // Retention: every key but the channel hashes expires (buffer full, and after).
    let without_ttl = keys_without_ttl(redis);
    assert!(
        without_ttl.is_empty(),
        "keys without a TTL: {without_ttl:?}"
    );
    let after_deletion = redis.dump_all();
    assert!(!after_deletion.contains(USER), "{after_deletion}");
    let redis_dump = format!("{redis_dump}\n{after_deletion}");
    // Metrics and the admin listing are scanned with the logs.
    let metrics = http
        .get(format!("{}/metrics", relay.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("switchboard_"), "{metrics}");
    let listing = http
        .get(format!("{}/admin/v1/channels", relay.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let logs = {
        let _ = relay.binary.child.kill();
        let _ = relay.binary.child.wait();
        format!("{}\n{metrics}\n{listing}", relay.logs())
    };
    assert!(
        logs.contains("\"level\":\"TRACE\""),
        "trace logs expected:\n{logs}"
    );
    // With the CRM down the retry buffer filled: its (encrypted) entries were scanned.
    assert!(
        down.iter().filter(|s| **s == 200).count() >= 40,
        "statuses with the CRM down: {down:?}"
    );
    assert!(redis_dump.contains("retry:"), "the retry buffer is empty");

    // What must never be seen in the clear.
    let mut needles = BTreeSet::new();
    for (_, v) in &fixtures {
        collect_sensitive(v, None, &mut needles);
    }
    let channel_ids: BTreeSet<&str> = channels.iter().map(|(_, id)| id.as_str()).collect();
    needles.retain(|n| !channel_ids.contains(n.as_str()));
    needles.extend(tokens.iter().cloned());
    for s in [
        APP_SECRET,
        SIGNING_SECRET,
        OTHER_SIGNING_SECRET,
        ADMIN_TOKEN,
        API_KEY,
        TELEGRAM_SECRET,
        REPLY_TEXT,
        REPLY_TO,
        CANARY,
        "private-photo-bytes",
        "%PDF-1.4 private file",
        vault_key.as_str(),
    ] {
        needles.insert(s.to_owned());
    }
    assert!(needles.len() >= 60, "{} needles", needles.len());

    // The scan can fail: the CRM did receive content (that is its job).
    let crm_bodies: String = crm
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    let seen_by_crm = needles
        .iter()
        .filter(|n| crm_bodies.contains(n.as_str()))
        .count();
    assert!(
        seen_by_crm >= 20,
        "only {seen_by_crm} needles reached the CRM"
    );

    let mut leaks = Vec::new();
    for n in &needles {
        for form in [n.clone(), ascii_escaped(n)] {
            if logs.contains(&form) {
                let line = logs.lines().find(|l| l.contains(&form)).unwrap_or_default();
                leaks.push(format!("log: {n:?} in {}", &line[..line.len().min(400)]));
            }
            if redis_dump.contains(&form) {
                leaks.push(format!("redis: {n:?}"));
            }
        }
    }
    leaks.dedup();
    println!(
        "privacy scan: {} fixtures, {} needles, {} log lines, {} bytes of Redis; statuses up {:?} down {:?}; reply {}; malformed {:?}",
        fixtures.len(),
        needles.len(),
        logs.lines().count(),
        redis_dump.len(),
        up,
        down,
        reply,
        refused
    );
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

// ---------------------------------------------------------------------------------
// Revocation at the provider.

#[tokio::test]
async fn revoke_calls_graph_permissions_and_telegram_delete_webhook_with_the_channel_token() {
    use switchboard::privacy::revoke::{RevokeError, Revoker};
    use wiremock::matchers::{body_json, header};

    let app = spawn_app().await;
    let live = app.state.live.load_full();
    let revoker = Revoker::new().unwrap();
    let record = |user: Option<&str>, token: &str| ChannelRecord {
        tenant: "acme".into(),
        token: SecretString::from(app.keyring.encrypt(token.as_bytes())),
        webhook_secret: None,
        updated_at: None,
        user_id: user.map(str::to_owned),
        ..Default::default()
    };

    Mock::given(method("DELETE"))
        .and(path(format!("/v23.0/{USER}/permissions")))
        .and(header("authorization", "Bearer EAAG-page-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&app.graph)
        .await;
    let page = ChannelRef::new(ChannelKind::Messenger, "5550002002");
    revoker
        .revoke(&live, &page, &record(Some(USER), "EAAG-page-token"))
        .await
        .unwrap();

    // No user_id: Graph cannot be told whose permissions; nothing is called.
    let err = revoker
        .revoke(&live, &page, &record(None, "EAAG-page-token"))
        .await
        .unwrap_err();
    assert!(matches!(err, RevokeError::NoUserId), "{err}");

    // A token Graph already refuses (code 190) counts as revoked; a 5xx does not.
    Mock::given(method("DELETE"))
        .and(path(format!("/v23.0/{OTHER_USER}/permissions")))
        .and(header("authorization", "Bearer EAAG-expired"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": {"message": "Error validating access token", "code": 190}}),
        ))
        .mount(&app.graph)
        .await;
    revoker
        .revoke(&live, &page, &record(Some(OTHER_USER), "EAAG-expired"))
        .await
        .unwrap();
    Mock::given(method("DELETE"))
        .and(path(format!("/v23.0/{OTHER_USER}/permissions")))
        .and(header("authorization", "Bearer EAAG-flaky"))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"error": {"message": "Service temporarily unavailable", "code": 2}}),
        ))
        .mount(&app.graph)
        .await;
    let err = revoker
        .revoke(&live, &page, &record(Some(OTHER_USER), "EAAG-flaky"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");

    let bot_token = "7000000001:AAH-bot-token-secret";
    Mock::given(method("POST"))
        .and(path(format!("/bot{bot_token}/deleteWebhook")))
        .and(body_json(json!({"drop_pending_updates": true})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": true})))
        .expect(1)
        .mount(&app.telegram)
        .await;
    let bot = ChannelRef::new(ChannelKind::Telegram, "7000000001");
    revoker
        .revoke(&live, &bot, &record(None, bot_token))
        .await
        .unwrap();

    // Telegram unreachable: the error must not carry the URL (it holds the token).
    let mut settings = live.settings.clone();
    settings.telegram.api_base = format!("http://127.0.0.1:{}", free_port());
    let offline = switchboard::live::Live::new(settings).unwrap();
    let err = revoker
        .revoke(&offline, &bot, &record(None, bot_token))
        .await
        .unwrap_err();
    assert!(matches!(err, RevokeError::Unreachable(_)), "{err}");
    assert!(
        !format!("{err} {err:?}").contains("AAH-bot-token"),
        "{err:?}"
    );
}

async fn admin_delete(app: &TestApp, p: &str) -> reqwest::Response {
    app.http
        .delete(app.url(p))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn admin_delete_with_revoke_revokes_at_the_provider_first_and_keeps_the_channel_on_failure() {
    use wiremock::matchers::header;
    let app = spawn_app().await;
    put_user_channel(
        &app,
        ChannelKind::Messenger,
        "5550002002",
        "acme",
        Some(USER),
    )
    .await;
    put_user_channel(&app, ChannelKind::Instagram, "5550003003", "acme", None).await;
    put_user_channel(
        &app,
        ChannelKind::Whatsapp,
        "5550001001",
        "acme",
        Some(OTHER_USER),
    )
    .await;

    // The provider fails: 503, nothing deleted.
    Mock::given(method("DELETE"))
        .and(path(format!("/v23.0/{USER}/permissions")))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(
                json!({"error": {"message": "An unknown error occurred", "code": 1}}),
            ),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.graph)
        .await;
    let resp = admin_delete(&app, "/admin/v1/channels/messenger/5550002002?revoke=true").await;
    assert_eq!(resp.status(), 503);
    assert!(channel_exists(&app, ChannelKind::Messenger, "5550002002").await);

    // The provider agrees: revoked with the channel's own token, then deleted.
    Mock::given(method("DELETE"))
        .and(path(format!("/v23.0/{USER}/permissions")))
        .and(header("authorization", "Bearer token-of-5550002002"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&app.graph)
        .await;
    let resp = admin_delete(&app, "/admin/v1/channels/messenger/5550002002?revoke=true").await;
    assert_eq!(resp.status(), 204);
    assert!(!channel_exists(&app, ChannelKind::Messenger, "5550002002").await);

    // No user_id: Graph cannot be asked; 400 naming the field, nothing deleted.
    let resp = admin_delete(&app, "/admin/v1/channels/instagram/5550003003?revoke=true").await;
    let (status, code) = problem_code(resp).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    assert!(channel_exists(&app, ChannelKind::Instagram, "5550003003").await);
    // Without revoke, a plain delete.
    let resp = admin_delete(&app, "/admin/v1/channels/instagram/5550003003").await;
    assert_eq!(resp.status(), 204);
    assert!(!channel_exists(&app, ChannelKind::Instagram, "5550003003").await);
    // Unknown channel.
    let resp = admin_delete(&app, "/admin/v1/channels/messenger/5550009999?revoke=true").await;
    assert_eq!(resp.status(), 404);

    // The CLI does the same: `switchboard channels delete --revoke`.
    Mock::given(method("DELETE"))
        .and(path(format!("/v23.0/{OTHER_USER}/permissions")))
        .and(header("authorization", "Bearer token-of-5550001001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&app.graph)
        .await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--config", app.config_path.to_str().unwrap()])
        .args(["channels", "delete", "whatsapp", "5550001001", "--revoke"])
        .env_remove("SWITCHBOARD_CONFIG")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!channel_exists(&app, ChannelKind::Whatsapp, "5550001001").await);
}

#[tokio::test]
async fn deauthorize_while_the_crm_is_down_removes_tokens_now_and_delivers_the_notice_later() {
    let app = spawn_app().await;
    put_user_channel(
        &app,
        ChannelKind::Messenger,
        "5550002002",
        "acme",
        Some(USER),
    )
    .await;
    app.crm_fails(503, 1).await;
    let resp = post_form(
        &app,
        "/meta/deauthorize",
        form(&signed(user_payload(USER, 1_763_800_000))),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["tenants_pending"], 1, "{v}");
    // The token is gone at once; the notice waits, encrypted, in the retry buffer.
    assert!(!channel_exists(&app, ChannelKind::Messenger, "5550002002").await);
    assert!(!app.redis().dump_all().contains(USER));
    // The worker delivers it once the CRM answers, though the channel no longer exists.
    let got = app.wait_for_crm(CRM_PATH, 2).await;
    assert_eq!(got.len(), 2, "the buffered notice was not redelivered");
    let ev = verify_standard_webhook(SIGNING_SECRET, &got[1]);
    assert_eq!(ev["type"], "channel.deauthorized");
    assert_eq!(ev["data"]["user"]["id"], USER);
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);
}

#[tokio::test]
async fn data_deletion_purges_the_users_events_waiting_in_the_retry_buffer() {
    use wiremock::matchers::body_string_contains;
    let app = spawn_app().await;
    // The user's channel is the one whatsapp/text.json is addressed to.
    let channel = "106540352242922";
    put_user_channel(&app, ChannelKind::Whatsapp, channel, "acme", Some(USER)).await;
    // The CRM refuses messages (so they wait in the buffer) but takes the notice.
    Mock::given(method("POST"))
        .and(path(CRM_PATH))
        .and(body_string_contains("message.received"))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(&app.crm)
        .await;
    let resp = app.post_meta(&fixture("whatsapp/text.json")).await;
    assert_eq!(resp.status(), 200, "buffered, so accepted");
    let before = app.redis().dump_all();
    assert!(before.contains(&format!("whatsapp:{channel}")), "{before}");

    let resp = post_form(
        &app,
        "/meta/data-deletion",
        form(&signed(user_payload(USER, 1_763_800_000))),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let code = resp.json::<Value>().await.unwrap()["confirmation_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let status: Value = app
        .http
        .get(app.url(&format!("/meta/data-deletion/{code}")))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["buffered_events_removed"], 1, "{status}");
    assert_eq!(status["tenants_notified"], 1, "{status}");

    let dump = app.redis().dump_all();
    for id in [USER, channel] {
        assert!(!dump.contains(id), "{id} is still in Redis:\n{dump}");
    }
    // The purged event is never delivered: the notice is the last thing the CRM got.
    let got = app.crm_requests().await;
    let last = verify_standard_webhook(SIGNING_SECRET, got.last().unwrap());
    assert_eq!(last["type"], "data_deletion.requested");
    let depth = app
        .state
        .dispatcher
        .buffer()
        .depths(&["acme".to_owned()])
        .await
        .unwrap();
    assert_eq!(depth[0].depth, 0, "{depth:?}");
}

#[tokio::test]
async fn buffer_purge_removes_scheduled_parked_and_in_flight_entries_of_one_channel_only() {
    use switchboard::delivery::buffer::{Entry, Pushed, ReadSlot, RedisBuffer, RetryBuffer};
    use switchboard::store::redis::RedisStore;
    use switchboard::store::Keys;

    let redis = RedisServer::start();
    let store = RedisStore::new(
        Keys::new("purgetest:"),
        &SecretString::from(redis.url()),
        &[],
        Duration::from_secs(2),
    )
    .unwrap();
    let buffer = RetryBuffer::Redis(RedisBuffer::new(store, 2, Duration::from_secs(30)));
    let ttl = Duration::from_secs(600);
    buffer.prepare(ttl).await.unwrap();
    let now = switchboard::time::now_ms();
    let entry = |id: &str, channel: &str, conv: &str| Entry {
        id: id.into(),
        tenant: "acme".into(),
        channel: channel.into(),
        conv: conv.into(),
        attempts: 1,
        due: now - 1000,
        first: now - 1000,
        payload: "gAAAAAciphertext".into(),
    };
    // Channel A: a conversation with a head and a parked event, and one without a
    // conversation; channel B: one conversation.
    let pushes = [
        entry("evt_a1", "whatsapp:A", "convA"),
        entry("evt_a2", "whatsapp:A", "convA"),
        entry("evt_a3", "whatsapp:A", ""),
        entry("evt_keep", "whatsapp:A", ""),
        entry("evt_b1", "whatsapp:B", "convB"),
    ];
    for e in &pushes {
        buffer.push(e, true, ttl).await.unwrap();
    }
    assert_eq!(
        buffer.push(&pushes[1], true, ttl).await.unwrap(),
        Pushed::AlreadyBuffered
    );
    // A worker holds one of A's entries in flight (the others it took go back, due
    // later).
    let mut taken = None;
    for shard in 0..buffer.shards() {
        let mut slot = ReadSlot::default();
        while let Some(t) = buffer
            .take(shard, "w1", Duration::ZERO, ttl, &mut slot)
            .await
            .unwrap()
        {
            if t.entry.id == "evt_a3" {
                taken = Some(t);
                continue;
            }
            let mut next = t.entry.clone();
            next.due = now + 60_000;
            buffer.reschedule(&t, &next, ttl).await.unwrap();
        }
    }
    let taken = taken.expect("evt_a3 is due and was taken");

    let removed = buffer
        .purge_channel("whatsapp:A", &["evt_keep".to_owned()])
        .await
        .unwrap();
    assert_eq!(removed, 3, "a1 (head), a2 (parked), a3");
    // The worker's later reschedule of a purged entry does not bring it back.
    let next = taken.entry.clone();
    buffer.reschedule(&taken, &next, ttl).await.unwrap();
    let dump = redis.dump_all();
    for id in ["evt_a1", "evt_a2", "evt_a3", "convA"] {
        assert!(!dump.contains(id), "{id} left:\n{dump}");
    }
    assert!(
        dump.contains("evt_keep") && dump.contains("evt_b1"),
        "{dump}"
    );
    let depth = buffer.depths(&["acme".to_owned()]).await.unwrap();
    assert_eq!(depth[0].depth, 2, "{depth:?}");
    // A redelivered webhook of a purged event may be buffered again (no stale marker).
    assert_eq!(
        buffer.push(&pushes[0], true, ttl).await.unwrap(),
        Pushed::Scheduled
    );
}

/// Validates events with Python's `jsonschema` against docs/event.schema.json.
fn assert_schema_valid(events: &[Value]) {
    crate::event_schema::assert_events_match_schema(events);
}

#[tokio::test]
async fn privacy_events_match_the_published_schema() {
    let app = spawn_app().await;
    put_user_channel(
        &app,
        ChannelKind::Whatsapp,
        "5550001001",
        "acme",
        Some(USER),
    )
    .await;
    put_user_channel(&app, ChannelKind::Messenger, "5550004004", "acme", None).await;
    put_user_channel(
        &app,
        ChannelKind::Instagram,
        "5550003003",
        "acme",
        Some(OTHER_USER),
    )
    .await;
    let page = signed(
        json!({"algorithm": "HMAC-SHA256", "issued_at": 1_763_800_000, "profile_id": "5550004004"}),
    );
    assert_eq!(
        post_form(&app, "/meta/deauthorize", form(&page))
            .await
            .status(),
        200
    );
    let user = signed(user_payload(USER, 1_763_800_000));
    assert_eq!(
        post_form(&app, "/meta/deauthorize", form(&user))
            .await
            .status(),
        200
    );
    let other = signed(user_payload(OTHER_USER, 1_763_800_000));
    assert_eq!(
        post_form(&app, "/meta/data-deletion", form(&other))
            .await
            .status(),
        200
    );
    let events = app.crm_events().await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "channel.deauthorized",
            "channel.deauthorized",
            "data_deletion.requested"
        ]
    );
    assert_eq!(events[0]["data"]["user"]["id"], "5550004004");
    assert_eq!(events[0]["data"]["reason"], "page_uninstalled");
    assert_eq!(events[1]["data"]["reason"], "user_deauthorized");
    assert!(events[2]["data"]["status_url"]
        .as_str()
        .unwrap()
        .starts_with("http://relay.test/meta/data-deletion/"));
    assert_schema_valid(&events);
}

/// An Instagram message webhook (from the text fixture) with its own mid and text, or
/// its unsend (`is_deleted`).
fn instagram_message(mid: &str, text: Option<&str>) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture("instagram/text.json")).unwrap();
    let message = &mut v["entry"][0]["messaging"][0]["message"];
    message["mid"] = json!(mid);
    match text {
        Some(t) => message["text"] = json!(t),
        None => {
            message.as_object_mut().unwrap().remove("text");
            message["is_deleted"] = json!(true);
        }
    }
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test]
async fn unsend_drops_the_buffered_message_and_the_next_one_of_the_conversation_moves_up() {
    use wiremock::matchers::body_string_contains;
    let app = spawn_app().await;
    app.put_channel(ChannelKind::Instagram, "17841405822304914", "acme", "t")
        .await;
    // The CRM refuses messages (they wait in the buffer) but takes deletions.
    Mock::given(method("POST"))
        .and(path(CRM_PATH))
        .and(body_string_contains("message.received"))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(&app.crm)
        .await;
    for (mid, text) in [
        ("mid.first", "first, taken back"),
        ("mid.second", "second, kept"),
    ] {
        let resp = app.post_meta(&instagram_message(mid, Some(text))).await;
        assert_eq!(resp.status(), 200);
    }
    let buffer = app.state.dispatcher.buffer();
    let depth = || async { buffer.depths(&["acme".to_owned()]).await.unwrap()[0].depth };
    assert_eq!(depth().await, 2);
    let first = switchboard::event::EventId::derive(&[
        "instagram",
        "17841405822304914",
        "message",
        "mid.first",
    ]);
    let second = switchboard::event::EventId::derive(&[
        "instagram",
        "17841405822304914",
        "message",
        "mid.second",
    ]);
    let dump = app.redis().dump_all();
    assert!(
        dump.contains(first.as_str()) && dump.contains(second.as_str()),
        "{dump}"
    );

    // The customer unsends the first message.
    let resp = app.post_meta(&instagram_message("mid.first", None)).await;
    assert_eq!(resp.status(), 200);
    // The second message waits, and the deletion behind it (same conversation).
    assert_eq!(depth().await, 2);
    let dump = app.redis().dump_all();
    assert!(!dump.contains(first.as_str()), "{dump}");
    assert!(dump.contains(second.as_str()), "{dump}");
    // The deletion reaches the CRM once the second message (now the conversation's
    // head) is through: let the CRM take messages again.
    app.crm.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&app.crm)
        .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let types = loop {
        let types: Vec<String> = app
            .crm_events()
            .await
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["type"].as_str().unwrap(),
                    e["data"]["message"]["id"].as_str().unwrap_or_default()
                )
            })
            .collect();
        if types.len() >= 2 || Instant::now() > deadline {
            break types;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        types,
        ["message.received mid.second", "message.deleted mid.first"],
        "the unsent message is never delivered; order is kept"
    );
}

#[test]
fn privacy_retention_defaults_and_a_zero_ttl_is_refused() {
    let key = switchboard::vault::Keyring::generate_key();
    let s = switchboard::config::Settings::from_toml(&format!(
        "[vault]\nkeys = [\"{key}\"]\n[store]\nbackend = \"memory\"\n"
    ))
    .unwrap();
    assert_eq!(s.privacy.deletion_status_ttl_s, 30 * 24 * 3600);
    let err = switchboard::config::Settings::from_toml(&format!(
        "[vault]\nkeys = [\"{key}\"]\n[store]\nbackend = \"memory\"\n[privacy]\ndeletion_status_ttl_s = 0\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("privacy.deletion_status_ttl_s"), "{err}");
    let err = switchboard::config::Settings::from_toml(&format!(
        "[vault]\nkeys = [\"{key}\"]\n[privacy]\nkeep_forever = true\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("keep_forever"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_deletion_purges_the_buffer_on_a_redis_cluster() {
    use crate::helpers::{wa_webhook, WA_ACME};
    use wiremock::matchers::body_string_contains;
    let cluster = RedisCluster::start(3);
    let app = TestApp::builder().cluster(cluster.urls()).spawn().await;
    put_user_channel(&app, ChannelKind::Whatsapp, WA_ACME, "acme", Some(USER)).await;
    Mock::given(method("POST"))
        .and(path(CRM_PATH))
        .and(body_string_contains("message.received"))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(&app.crm)
        .await;
    // Eight conversations of two messages each: heads and parked events, on every shard.
    let convs: Vec<String> = (1..=8).map(|i| format!("49151100000{i:02}")).collect();
    for c in &convs {
        let resp = app.post_meta(&wa_webhook(WA_ACME, &[(c, 1), (c, 2)])).await;
        assert_eq!(resp.status(), 200);
    }
    let depth = app
        .state
        .dispatcher
        .buffer()
        .depths(&["acme".to_owned()])
        .await
        .unwrap();
    assert_eq!(depth[0].depth, 16);

    let resp = post_form(
        &app,
        "/meta/data-deletion",
        form(&signed(user_payload(USER, 1_763_800_000))),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let code = resp.json::<Value>().await.unwrap()["confirmation_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let status: Value = app
        .http
        .get(app.url(&format!("/meta/data-deletion/{code}")))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["buffered_events_removed"], 16, "{status}");
    // What is left is the notice itself, if the tenant's circuit breaker (opened by the
    // refusals) sent it to the buffer.
    let depth = app
        .state
        .dispatcher
        .buffer()
        .depths(&["acme".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        depth[0].depth,
        status["tenants_pending"].as_u64().unwrap(),
        "{status}"
    );
    // No node holds anything naming the user or a conversation (the notice, encrypted,
    // names only the business's channel).
    for port in &cluster.ports {
        let keys = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "--scan"])
            .output()
            .unwrap();
        let keys = String::from_utf8_lossy(&keys.stdout).into_owned();
        for key in keys.lines().filter(|k| !k.is_empty()) {
            let ty = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "TYPE", key])
                .output()
                .unwrap();
            let ty = String::from_utf8_lossy(&ty.stdout).trim().to_owned();
            let dump_args: Vec<&str> = match ty.as_str() {
                "string" => vec!["GET", key],
                "hash" => vec!["HGETALL", key],
                "zset" => vec!["ZRANGE", key, "0", "-1"],
                "list" => vec!["LRANGE", key, "0", "-1"],
                "stream" => vec!["XRANGE", key, "-", "+"],
                _ => vec!["TYPE", key],
            };
            let v = Command::new("redis-cli")
                .args(["-p", &port.to_string()])
                .args(&dump_args)
                .output()
                .unwrap();
            let text = format!("{key} {}", String::from_utf8_lossy(&v.stdout));
            assert!(!text.contains(USER), "node {port}: {text}");
            assert!(
                !key.contains(&format!("channel:whatsapp:{WA_ACME}")),
                "node {port}: {key}"
            );
            assert!(
                !convs.iter().any(|c| text.contains(c.as_str())),
                "node {port}: {text}"
            );
        }
    }
}
