//! Retries of what cannot have been delivered (never of what may have been), the
//! deadlines, the token read from the vault on every send, and
//! `channel.reauth_required` at most once an hour per channel.

use super::*;

#[tokio::test]
async fn provider_5xx_is_retried_until_it_succeeds_with_one_delivery() {
    let app = replies_app().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(graph_error(2, "Service temporarily unavailable")),
        )
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&app.graph)
        .await;
    mount_success(&app).await;
    let resp = send(&app, &wa_text()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(received(&app.graph).await.len(), 3);

    // Telegram too.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.telegram)
        .await;
    let resp = send(
        &app,
        &message("telegram", BOT, "1", json!({"kind": "text", "text": "hi"})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(received(&app.telegram).await.len(), 2);
}

#[tokio::test]
async fn provider_5xx_past_the_deadline_is_503_upstream_unavailable() {
    let app = replies_app_with(
        crate::helpers::TestApp::builder().toml("[replies]\nretry_deadline_ms = 600\n"),
    )
    .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.graph)
        .await;
    let started = Instant::now();
    let resp = send(&app, &wa_text()).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(problem(resp).await["code"], "upstream_unavailable");
    assert!(started.elapsed() < Duration::from_secs(3));
    let n = received(&app.graph).await.len();
    assert!(
        (2..=6).contains(&n),
        "retried with backoff inside the deadline: {n} calls"
    );
}

#[tokio::test]
async fn timeout_after_sending_is_not_retried_and_answers_504() {
    let app = replies_app().await;
    // The test config gives Graph calls 3 s.
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_json("whatsapp/outbound/send_response.json"))
                .set_delay(Duration::from_millis(4500)),
        )
        .mount(&app.graph)
        .await;
    let resp = send(&app, &wa_text()).await;
    assert_eq!(resp.status(), 504);
    let p = problem(resp).await;
    assert_eq!(p["code"], "upstream_unavailable");
    assert!(p["detail"].as_str().unwrap().contains("may have been sent"));
    assert_eq!(received(&app.graph).await.len(), 1, "never sent twice");
}

#[tokio::test]
async fn token_invalid_sends_reauth_required_once_an_hour_per_channel() {
    let app = replies_app().await;
    graph_answers(
        &app,
        401,
        serde_json::from_slice(&fixture("meta/graph_error_190_invalid_token.json")).unwrap(),
    )
    .await;
    for _ in 0..3 {
        let resp = send(&app, &wa_text()).await;
        assert_eq!(resp.status(), 424);
        assert_eq!(problem(resp).await["code"], "token_invalid");
    }
    let reauth = |reqs: Vec<wiremock::Request>| -> Vec<Value> {
        reqs.iter()
            .map(|r| verify_standard_webhook(SIGNING_SECRET, r))
            .filter(|e| e["type"] == "channel.reauth_required")
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut events = Vec::new();
    while Instant::now() < deadline {
        events = reauth(app.crm_requests().await);
        if !events.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(events.len(), 1, "one notice for three refusals");
    let e = &events[0];
    assert_eq!(e["tenant"], "acme");
    assert_eq!(e["channel"], json!({"kind": "whatsapp", "id": WA}));
    assert!(e["data"]["reason"].as_str().unwrap().contains("190"));
    // The marker lives an hour, in the store (so every replica sees it).
    let key = app.state.store.keys().reauth_notice(
        &switchboard::channels::ChannelRef::parse(switchboard::channels::ChannelKind::Whatsapp, WA)
            .unwrap(),
    );
    let ttl: i64 = app.redis().cli(&["TTL", &key]).trim().parse().unwrap();
    assert!((3500..=3600).contains(&ttl), "{ttl}");
    // Still one, a moment later.
    let resp = send(&app, &wa_text()).await;
    assert_eq!(resp.status(), 424);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(reauth(app.crm_requests().await).len(), 1);
}

#[tokio::test]
async fn token_comes_from_the_vault_on_every_send_so_a_change_applies_at_once() {
    let app = replies_app().await;
    mount_success(&app).await;
    assert_eq!(send(&app, &wa_text()).await.status(), 200);
    app.put_channel(
        switchboard::channels::ChannelKind::Whatsapp,
        WA,
        "acme",
        "wa-token-rotated",
    )
    .await;
    assert_eq!(send(&app, &wa_text()).await.status(), 200);
    let reqs = received(&app.graph).await;
    assert_eq!(
        auth_header(&reqs[0]).as_deref(),
        Some("Bearer wa-token-secret")
    );
    assert_eq!(
        auth_header(&reqs[1]).as_deref(),
        Some("Bearer wa-token-rotated")
    );
    // Deleted: 404 at once.
    use switchboard::store::StoreBackend;
    app.state
        .store
        .delete_channel(
            &switchboard::channels::ChannelRef::parse(
                switchboard::channels::ChannelKind::Whatsapp,
                WA,
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(send(&app, &wa_text()).await.status(), 404);
}

#[tokio::test]
async fn a_token_echoed_in_a_graph_error_never_reaches_the_crm_or_the_reauth_event() {
    let app = replies_app().await;
    // Graph quotes a token it cannot parse in its message.
    graph_answers(
        &app,
        400,
        json!({"error": {
            "message": format!("Malformed access token {WA_TOKEN}"),
            "type": "OAuthException", "code": 190, "fbtrace_id": "AbC"
        }}),
    )
    .await;
    let resp = send(&app, &wa_text()).await;
    assert_eq!(resp.status(), 424);
    let body = resp.text().await.unwrap();
    assert!(
        !body.contains(WA_TOKEN),
        "the token reached the CRM: {body}"
    );
    assert!(body.contains("[REDACTED]"), "{body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reqs = app.crm_requests().await;
        if !reqs.is_empty() || Instant::now() > deadline {
            for r in &reqs {
                let text = String::from_utf8_lossy(&r.body);
                assert!(
                    !text.contains(WA_TOKEN),
                    "the token reached an event: {text}"
                );
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
