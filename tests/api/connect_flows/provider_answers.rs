//! Providers' answers: Instagram's flat code-exchange shape, and code exchanges refused
//! by Instagram and by Graph (Embedded Signup): a clear answer, nothing stored.

use super::*;

async fn instagram_app(ig: &MockServer) -> TestApp {
    TestApp::builder()
        .toml(&format!(
            "[instagram]\napp_id = \"ig-app-1\"\napp_secrets = [\"ig-secret-1\"]\noauth_base = \"{0}\"\napi_base = \"{0}\"\ngraph_base = \"{0}\"\n",
            ig.uri()
        ))
        .spawn()
        .await
}

/// Opens an Instagram link and comes back from the dialog with `code`.
async fn instagram_callback(app: &TestApp, code: &str) -> (u16, String, Value) {
    let link: Value = create_link(app, API_KEY, json!({"kind": "instagram"}))
        .await
        .json()
        .await
        .unwrap();
    let (_, html, browser) = open(app, link["url"].as_str().unwrap()).await;
    let (_, state) = dialog_state(&html);
    let (status, page) = get_page(
        app,
        Some(&browser),
        &format!(
            "/connect/callback/instagram?code={code}&state={}",
            urlencode(&state)
        ),
    )
    .await;
    (status, page, link)
}

#[tokio::test]
async fn instagram_flat_code_exchange_answer_connects() {
    let ig = MockServer::start().await;
    let app = instagram_app(&ig).await;
    // Chatwoot and Botpress read a top-level `access_token`: the flat shape.
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .and(body_string_contains("code=ig-code-flat"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "IGshort-token", "user_id": 17841400000000002u64, "permissions": ["instagram_business_basic"]})))
        .mount(&ig)
        .await;
    mock_instagram(&ig).await;
    let (status, page, _) = instagram_callback(&app, "ig-code-flat").await;
    assert_eq!(status, 200, "{page}");
    let key = "switchboard:channel:instagram:17841400000000099";
    assert_eq!(
        &*app.keyring.decrypt(&hget(&app, key, "token")).unwrap(),
        b"IGlong-token"
    );
    // The flat answer's (numeric) user_id, not the wrapped mock's.
    assert_eq!(hget(&app, key, "user_id"), "17841400000000002");
}

#[tokio::test]
async fn instagram_code_exchange_refused_is_a_clear_page_and_stores_nothing() {
    let ig = MockServer::start().await;
    let app = instagram_app(&ig).await;
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error_type": "OAuthException", "code": 400, "error_message": "Matching code was not found or was already used: ig-code-9"})))
        .mount(&ig)
        .await;
    mock_instagram(&ig).await;
    let (status, page, link) = instagram_callback(&app, "ig-code-9").await;
    assert_eq!(status, 502, "{page}");
    assert!(
        page.contains("Matching code was not found") && page.contains("Nothing was connected"),
        "{page}"
    );
    // "Try again" is a new login (the code is spent): a link to the dialog.
    let retry = attr(&page, "id=\"retry\"", "href").replace("&amp;", "&");
    assert!(
        retry.starts_with(&format!("{}/oauth/authorize?", ig.uri())),
        "{retry}"
    );
    assert_clean(&page, &["ig-code-9", "ig-secret-1"]);
    assert_eq!(count(&ig, "GET", "/access_token").await, 0);
    assert!(app
        .redis()
        .cli(&["KEYS", "switchboard:channel:instagram:*"])
        .trim()
        .is_empty());
    assert_eq!(
        link_status(&app, link["id"].as_str().unwrap()).await["status"],
        "pending"
    );
}

#[tokio::test]
async fn whatsapp_code_exchange_refused_is_a_clear_answer_and_stores_nothing() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/v23.0/oauth/access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"message": "This authorization code has expired. code wa-code-1", "type": "OAuthException", "code": 100}})))
        .with_priority(1)
        .mount(&app.graph)
        .await;
    mock_whatsapp_signup(&app, false).await;
    let link = new_link(&app, "whatsapp").await;
    let (_, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    let form = attr(&html, "id=\"signup\"", "data-form").to_owned();
    let (status, answer) = wa_post(
        &app,
        &browser,
        json!({"form": form, "code": "wa-code-1", "waba_id": "102290129340398", "phone_number_id": "106540352249999"}),
    )
    .await;
    assert_eq!(status, 502, "{answer}");
    // Not resumable: the page's "Try again" starts a new login.
    assert_eq!(answer["resume"], false, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("code exchange") && message.contains("Nothing was connected"),
        "{message}"
    );
    assert_clean(&answer.to_string(), &["wa-code-1", APP_SECRET]);
    let graph: Vec<String> = app
        .graph
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    assert_eq!(graph, ["/v23.0/oauth/access_token"], "{graph:?}");
    assert!(app
        .redis()
        .cli(&["KEYS", "switchboard:channel:whatsapp:106540352249999"])
        .trim()
        .is_empty());
}
