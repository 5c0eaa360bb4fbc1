//! What the Telegram webhook refuses (secret, unknown bot, bad bodies) and how it
//! keeps what it accepted (CRM down → buffer, store down → 503).

use super::*;

#[tokio::test]
async fn telegram_wrong_or_missing_secret_is_401_and_nothing_is_forwarded() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    let cases: Value =
        serde_json::from_slice(&fixture("telegram/webhook_secret_token_cases.json")).unwrap();
    assert_eq!(cases["configured_secret"], SECRET);
    let body = fixture("telegram/message_text.json");
    for case in cases["requests"].as_array().unwrap() {
        let header = case["header_value"].as_str();
        if header.is_some_and(|h| h.trim() != h) {
            // HTTP strips whitespace around header values (RFC 9110 §5.5), so the relay
            // never sees it; the comparison itself is exact (see the unit tests of
            // `verify_secret`).
            continue;
        }
        let accept = case["expect"] == "accept";
        let resp = post_update(&app, BOT, header, &body).await;
        if accept {
            assert_eq!(resp.status(), 200, "{case}");
        } else {
            let (status, v) = status_and_problem(resp).await;
            assert_eq!(status, 401, "{case}");
            assert_eq!(v["code"], "unauthorized");
        }
    }
    for bad in [
        "",
        "another-secret",
        "cRm-Relay_7f3a9c2e1b4",
        "cRm-Relay_7f3a9c2e1b4dX",
    ] {
        let (status, _) = status_and_problem(post_update(&app, BOT, Some(bad), &body).await).await;
        assert_eq!(status, 401, "{bad:?}");
    }
    // Only the accepted case was forwarded.
    assert_eq!(app.crm_requests().await.len(), 1);
}

#[tokio::test]
async fn telegram_channel_without_a_secret_refuses_everything() {
    let app = spawn_app().await;
    app.put_channel(ChannelKind::Telegram, BOT, "acme", BOT_TOKEN)
        .await;
    let body = fixture("telegram/message_text.json");
    for header in [None, Some(""), Some(SECRET)] {
        let (status, _) = status_and_problem(post_update(&app, BOT, header, &body).await).await;
        assert_eq!(status, 401, "{header:?}");
    }
    assert!(app.crm_requests().await.is_empty());
}

#[tokio::test]
async fn telegram_unknown_bot_is_404_channel_not_found() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    let body = fixture("telegram/message_text.json");
    for bot in [
        "5000000002",
        "abc",
        "5000000001x",
        "-1",
        "99999999999999999999999",
    ] {
        let (status, v) =
            status_and_problem(post_update(&app, bot, Some(SECRET), &body).await).await;
        assert_eq!(status, 404, "{bot}");
        assert_eq!(v["code"], "channel_not_found", "{bot}");
    }
    // Another kind's channel of the same id is not a Telegram bot.
    app.put_channel(ChannelKind::Messenger, "5000000003", "acme", "t")
        .await;
    let (status, _) =
        status_and_problem(post_update(&app, "5000000003", Some(SECRET), &body).await).await;
    assert_eq!(status, 404);
    assert!(app.crm_requests().await.is_empty());
}

#[tokio::test]
async fn telegram_bad_bodies_get_a_clear_4xx_and_the_server_keeps_serving() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    let nested = "[".repeat(10_000) + &"]".repeat(10_000);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("malformed", b"{\"update_id\": ".to_vec(), 400),
        ("not utf-8", vec![0xff, 0xfe, 0x00, 0x7b], 400),
        ("garbage", b"hello there".to_vec(), 400),
        ("deeply nested", nested.into_bytes(), 400),
        ("an array", b"[1,2,3]".to_vec(), 400),
        ("no update_id", b"{\"message\":{}}".to_vec(), 400),
        (
            "update_id not an integer",
            b"{\"update_id\":\"x\"}".to_vec(),
            400,
        ),
        ("update_id a float", b"{\"update_id\":1.5}".to_vec(), 400),
        ("empty", Vec::new(), 400),
    ];
    for (name, body, expected) in cases {
        let (status, v) =
            status_and_problem(post_update(&app, BOT, Some(SECRET), &body).await).await;
        assert_eq!(status, expected, "{name}: {v}");
        assert_eq!(v["code"], "invalid_request", "{name}");
    }
    // Wrong content type.
    let resp = app
        .http
        .post(app.url(&format!("/webhooks/telegram/{BOT}")))
        .header("content-type", "text/plain")
        .header("x-telegram-bot-api-secret-token", SECRET)
        .body(fixture("telegram/message_text.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_problem(resp).await.0, 415);
    // Too large.
    let big = vec![b' '; 1_048_577];
    let (status, v) = status_and_problem(post_update(&app, BOT, Some(SECRET), &big).await).await;
    assert_eq!(status, 413);
    assert_eq!(v["code"], "payload_too_large");
    assert!(app.crm_requests().await.is_empty());
    // A known kind with a shape nobody expected is still delivered, not refused.
    let e = &events_for(&app, br#"{"update_id":5,"message":{"surprise":true}}"#).await[0];
    assert_eq!(e["type"], "provider.event");
    assert_eq!(e["data"]["kind"], "message");
    // Still serving.
    assert_eq!(
        post_update(
            &app,
            BOT,
            Some(SECRET),
            &fixture("telegram/message_text.json")
        )
        .await
        .status(),
        200
    );
}

#[tokio::test]
async fn telegram_crm_failure_is_buffered_and_a_redelivered_update_is_not_delivered_twice() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    app.crm_fails_once().await;
    let body = fixture("telegram/message_photo_unicode_names.json");
    let (status, v) = status_and_problem(post_update(&app, BOT, Some(SECRET), &body).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["buffered"], 1);
    let reqs = app.wait_for_crm(CRM_PATH, 2).await;
    assert_eq!(
        reqs.len(),
        2,
        "one failed attempt, then the buffered delivery"
    );
    assert_eq!(
        reqs[0].headers.get("webhook-id"),
        reqs[1].headers.get("webhook-id")
    );
    // Telegram redelivering the update, once the worker has recorded the acceptance,
    // reaches the CRM no more.
    assert!(app.wait_drained(std::time::Duration::from_secs(10)).await);
    for _ in 0..3 {
        let (status, v) =
            status_and_problem(post_update(&app, BOT, Some(SECRET), &body).await).await;
        assert_eq!(status, 200);
        assert_eq!(v["duplicates"], 1);
    }
    assert_eq!(app.crm_requests().await.len(), 2);
}

#[tokio::test]
async fn telegram_store_outage_is_503_then_recovers_without_restart() {
    let mut app = spawn_telegram_app(TestApp::builder()).await;
    let body = fixture("telegram/message_text.json");
    app.redis_mut().stop();
    let (status, v) = status_and_problem(post_update(&app, BOT, Some(SECRET), &body).await).await;
    assert_eq!(status, 503);
    assert_eq!(v["code"], "upstream_unavailable");
    assert!(app.crm_requests().await.is_empty());
    app.redis_mut().restart();
    // Redis came back empty: the operator writes the channel again; then it flows.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ok = app.state.store.ping().await.is_ok();
        if ok || std::time::Instant::now() > deadline {
            assert!(ok, "redis did not come back");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.put_channel_with_secret(ChannelKind::Telegram, BOT, "acme", BOT_TOKEN, Some(SECRET))
        .await;
    assert_eq!(
        post_update(&app, BOT, Some(SECRET), &body).await.status(),
        200
    );
    assert_eq!(app.crm_requests().await.len(), 1);
}
