//! The admin channel API: authentication, what a PUT stores (only Fernet ciphertext), bad input, delete, records other services wrote or corrupted, the published schemas.

use super::*;

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
    let ch = ChannelRef::parse(ChannelKind::Whatsapp, "555").unwrap();
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
        &ChannelRef::parse(ChannelKind::Telegram, "7001234567").unwrap(),
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
        &ChannelRef::parse(ChannelKind::Whatsapp, "106540352242922").unwrap(),
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
        &ChannelRef::parse(ChannelKind::Whatsapp, "1122334455667").unwrap(),
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
async fn admin_answers_match_the_published_openapi_schemas() {
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
    let mut answers = vec![("ChannelView", &put), ("RotationReport", &report)];
    for c in listed["channels"].as_array().unwrap() {
        answers.push(("ChannelView", c));
    }
    assert_eq!(answers.len(), 2 + 6);
    assert_match_openapi(&answers);
}
