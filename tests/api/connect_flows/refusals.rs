//! What is refused and stores nothing: unknown, revoked and expired links; tampered, replayed, foreign and cookieless callbacks; a provider error half way.

use super::*;

#[tokio::test]
async fn unknown_revoked_and_expired_links_are_4xx_pages() {
    let app = spawn_app().await;
    let (status, html, b) = open(
        &app,
        "http://relay.test/connect/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    )
    .await;
    assert_eq!(status, 404);
    assert!(html.contains("not valid") && b.cookie.is_none(), "{html}");
    let link = new_link(&app, "messenger").await;
    app.http
        .delete(app.url(&format!(
            "/v1/connect-links/{}",
            link["id"].as_str().unwrap()
        )))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    let (status, _, _) = open(&app, link["url"].as_str().unwrap()).await;
    assert_eq!(status, 410);
    let link: Value = create_link(
        &app,
        API_KEY,
        json!({"kind": "telegram", "expires_in_s": 1}),
    )
    .await
    .json()
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, _) = open(&app, link["url"].as_str().unwrap()).await;
        if status != 200 {
            assert!(status == 404 || status == 410, "{status}");
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn tampered_replayed_foreign_and_cookieless_callbacks_store_nothing() {
    let app = spawn_app().await;
    mock_messenger(
        &app,
        json!([{"id": "111", "name": "Acme", "access_token": "EAApage-111-token"}]),
    )
    .await;
    let a = new_link(&app, "messenger").await;
    let b = new_link(&app, "messenger").await;
    let (_, html_a, browser_a) = open(&app, a["url"].as_str().unwrap()).await;
    let (_, html_b, browser_b) = open(&app, b["url"].as_str().unwrap()).await;
    let (_, state_a) = dialog_state(&html_a);
    let (_, state_b) = dialog_state(&html_b);
    let cb = |s: &str| {
        format!(
            "/connect/callback/facebook?code=fb-code-123&state={}",
            urlencode(s)
        )
    };
    let mut altered = state_a.clone();
    altered.pop();
    altered.push(if state_a.ends_with('A') { 'B' } else { 'A' });
    for (browser, state, why) in [
        (None, state_a.as_str(), "no cookie"),
        (Some(&browser_a), altered.as_str(), "altered"),
        (Some(&browser_a), state_b.as_str(), "another link's state"),
        (Some(&browser_b), state_a.as_str(), "another flow's state"),
        (Some(&browser_a), "", "empty state"),
    ] {
        let (status, page) = get_page(&app, browser, &cb(state)).await;
        assert_eq!(status, 400, "{why}: {page}");
        assert!(page.contains("Nothing was connected"), "{why}: {page}");
    }
    let (status, _) = get_page(
        &app,
        Some(&browser_a),
        "/connect/callback/facebook?code=fb-code-123",
    )
    .await;
    assert_eq!(status, 400);
    // Denied login: a clear page, nothing stored, a retry offered.
    let (status, page) = get_page(
        &app,
        Some(&browser_a),
        &format!(
            "/connect/callback/facebook?error=access_denied&error_reason=user_denied&state={}",
            urlencode(&state_a)
        ),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        page.contains("cancelled") && page.contains("id=\"retry\""),
        "{page}"
    );
    // Nothing reached Graph, nothing stored.
    assert!(app.graph.received_requests().await.unwrap().is_empty());
    assert_eq!(
        app.redis()
            .cli(&["EXISTS", "switchboard:channel:messenger:111"])
            .trim(),
        "0"
    );
    assert_eq!(
        link_status(&app, a["id"].as_str().unwrap()).await["status"],
        "pending"
    );
}

#[tokio::test]
async fn graph_error_during_messenger_login_is_a_clear_page_and_stores_nothing() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/v23.0/oauth/access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"message": "Error validating verification code fb-code-123", "type": "OAuthException", "code": 100}})))
        .mount(&app.graph)
        .await;
    let link = new_link(&app, "messenger").await;
    let (_, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    let (_, state) = dialog_state(&html);
    let (status, page) = get_page(
        &app,
        Some(&browser),
        &format!(
            "/connect/callback/facebook?code=fb-code-123&state={}",
            urlencode(&state)
        ),
    )
    .await;
    assert_eq!(status, 502, "{page}");
    assert!(page.contains("Nothing was connected"), "{page}");
    assert_clean(&page, &["fb-code-123", APP_SECRET]);
    assert!(app
        .redis()
        .cli(&["KEYS", "switchboard:channel:messenger:*"])
        .trim()
        .is_empty());
}
