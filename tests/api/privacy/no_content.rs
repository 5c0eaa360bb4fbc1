//! The whole-suite privacy scan: every fixture through the real binary at trace level, then its logs and every Redis key and value.

use super::*;

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
            // Telegram's service account (777000, "Telegram": the placeholder sender of
            // a linked channel's forwards) is nobody's personal data, and its name is
            // the word the relay's own log lines use.
            if m.get("id").and_then(Value::as_i64) == Some(777000) {
                return;
            }
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
