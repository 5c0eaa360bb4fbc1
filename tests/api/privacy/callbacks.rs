//! Deauthorize and data-deletion callbacks: signatures, malformed requests, what is removed, the status page.

use super::*;

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
    let reauth =
        keys.reauth_notice(&ChannelRef::parse(ChannelKind::Whatsapp, "5550001001").unwrap());
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

#[tokio::test]
async fn data_deletion_replayed_gets_the_same_code_and_no_second_notice() {
    let app = spawn_app().await;
    put_user_channel(
        &app,
        ChannelKind::Whatsapp,
        "5550001001",
        "acme",
        Some(USER),
    )
    .await;
    let request = signed(user_payload(USER, 1_763_800_000));
    let first: Value = post_form(&app, "/meta/data-deletion", form(&request))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(app.wait_for_crm(CRM_PATH, 1).await.len(), 1);

    // Meta retries the same request, on this replica and on another.
    let replica = app.replica().await;
    for base in [app.address.clone(), replica.address()] {
        let resp = app
            .http
            .post(format!("{base}/meta/data-deletion"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&request))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let again: Value = resp.json().await.unwrap();
        assert_eq!(again, first, "the same request, the same answer");
    }
    // The status page still answers for that code; no second notice went out.
    let code = first["confirmation_code"].as_str().unwrap();
    let status = app
        .http
        .get(app.url(&format!("/meta/data-deletion/{code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    // (A notice is delivered or buffered before its callback is answered.)
    assert_eq!(app.crm_requests().await.len(), 1, "no re-emitted notice");

    // Another request of the same user (issued later) is a new request: a new code.
    let later: Value = post_form(
        &app,
        "/meta/data-deletion",
        form(&signed(user_payload(USER, 1_763_800_100))),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_ne!(later["confirmation_code"], first["confirmation_code"]);
}
