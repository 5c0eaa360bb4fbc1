//! What the privacy callbacks and unsend remove from the retry buffer (one server and a cluster), the events' schema, the retention defaults.

use super::*;

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
        buffer.push(e, true, ttl, 0).await.unwrap();
    }
    assert_eq!(
        buffer.push(&pushes[1], true, ttl, 0).await.unwrap(),
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
        buffer.push(&pushes[0], true, ttl, 0).await.unwrap(),
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
