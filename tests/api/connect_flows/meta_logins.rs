//! The Meta flows: Facebook Login with the Page picker, Instagram Login, WhatsApp Embedded Signup (subscribe before register, the PIN encrypted, a retry without a new code).

use super::*;

#[tokio::test]
async fn messenger_login_with_several_pages_connects_the_picked_one() {
    let app = spawn_app().await;
    mock_messenger(
        &app,
        json!([
            {"id": "111", "name": "Acme Shoes", "access_token": "EAApage-111-token"},
            {"id": "222", "name": "Acme Hats", "access_token": "EAApage-222-token"}
        ]),
    )
    .await;
    let link = new_link(&app, "messenger").await;
    let (status, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let (dialog, state) = dialog_state(&html);
    assert_eq!(dialog.path(), "/v23.0/dialog/oauth");
    assert_eq!(dialog.host_str(), Some("www.facebook.com"));
    let q: std::collections::HashMap<_, _> = dialog.query_pairs().into_owned().collect();
    assert_eq!(
        q["redirect_uri"],
        "http://relay.test/connect/callback/facebook"
    );
    assert_eq!(q["response_type"], "code");
    assert!(q["scope"].contains("pages_messaging"), "{q:?}");

    let cb = format!(
        "/connect/callback/facebook?code=fb-code-123&state={}",
        urlencode(&state)
    );
    let (status, picker) = get_page(&app, Some(&browser), &cb).await;
    assert_eq!(status, 200, "{picker}");
    assert!(
        picker.contains("Acme Shoes") && picker.contains("Acme Hats"),
        "{picker}"
    );
    assert_clean(&picker, &["EAApage", "EAAlong", "fb-code-123"]);
    // The same state again: refused.
    let (status, _) = get_page(&app, Some(&browser), &cb).await;
    assert_eq!(status, 400);

    let (status, done) = post_form(
        &app,
        &browser,
        "/connect/flow/messenger/page",
        &[("form", &form_token(&picker)), ("page_id", "222")],
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("Acme Hats"), "{done}");
    let sub = app
        .graph
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.method.as_str() == "POST" && r.url.path() == "/v23.0/222/subscribed_apps")
        .unwrap();
    assert_eq!(
        sub.headers.get("authorization").unwrap().to_str().unwrap(),
        "Bearer EAApage-222-token"
    );
    let fields = sub
        .url
        .query_pairs()
        .find(|(k, _)| k == "subscribed_fields")
        .unwrap()
        .1
        .into_owned();
    for f in [
        "messages",
        "messaging_postbacks",
        "message_reactions",
        "message_reads",
        "message_deliveries",
        "messaging_optins",
        "messaging_referrals",
        "message_edits",
    ] {
        assert!(fields.split(',').any(|x| x == f), "{f} missing in {fields}");
    }
    let key = "switchboard:channel:messenger:222";
    assert_eq!(
        &*app.keyring.decrypt(&hget(&app, key, "token")).unwrap(),
        b"EAApage-222-token"
    );
    assert_eq!(hget(&app, key, "user_id"), "10158000000000001");
    assert_eq!(
        app.redis()
            .cli(&["EXISTS", "switchboard:channel:messenger:111"])
            .trim(),
        "0"
    );
    assert_clean(
        &app.redis().dump_all(),
        &["EAApage-222-token", "EAAlong-user-token", "EAAshort"],
    );
    let event = connected_event(&app).await;
    assert_eq!(event["channel"], json!({"kind": "messenger", "id": "222"}));
    assert_eq!(event["data"]["user"]["id"], "10158000000000001");
    assert_eq!(event["data"]["display"]["name"], "Acme Hats");
}

#[tokio::test]
async fn instagram_login_connects_with_the_instagram_graph_and_expiry() {
    let ig = MockServer::start().await;
    let extra = format!(
        "[instagram]\napp_id = \"ig-app-1\"\napp_secrets = [\"ig-secret-1\"]\noauth_base = \"{0}\"\napi_base = \"{0}\"\ngraph_base = \"{0}\"\n",
        ig.uri()
    );
    let app = TestApp::builder().toml(&extra).spawn().await;
    mock_instagram(&ig).await;
    let link = new_link(&app, "instagram").await;
    let (_, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    let (dialog, state) = dialog_state(&html);
    assert_eq!(dialog.path(), "/oauth/authorize");
    let q: std::collections::HashMap<_, _> = dialog.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "ig-app-1");
    assert_eq!(
        q["redirect_uri"],
        "http://relay.test/connect/callback/instagram"
    );
    assert_eq!(q["scope"], "instagram_business_basic,instagram_business_manage_messages,instagram_business_manage_comments");
    let (status, done) = get_page(
        &app,
        Some(&browser),
        &format!(
            "/connect/callback/instagram?code=ig-code-9&state={}",
            urlencode(&state)
        ),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let key = "switchboard:channel:instagram:17841400000000099";
    assert_eq!(hget(&app, key, "graph"), "instagram");
    assert_eq!(
        &*app.keyring.decrypt(&hget(&app, key, "token")).unwrap(),
        b"IGlong-token"
    );
    let expires = humantime::parse_rfc3339(&hget(&app, key, "expires_at")).unwrap();
    let left = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap()
        .as_secs();
    assert!((5_183_000..=5_184_000).contains(&left), "{left}");
    let sub = ig
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path() == "/v23.0/me/subscribed_apps")
        .unwrap();
    assert_eq!(
        sub.headers.get("authorization").unwrap().to_str().unwrap(),
        "Bearer IGlong-token"
    );
    let event = connected_event(&app).await;
    assert_eq!(event["data"]["display"]["username"], "acme.shop");
    assert_clean(&event.to_string(), &["IGlong", "IGshort"]);
}

#[tokio::test]
async fn whatsapp_signup_subscribes_before_registering_and_stores_the_pin_encrypted() {
    let app = spawn_app().await;
    mock_whatsapp_signup(&app, true).await;
    let link = new_link(&app, "whatsapp").await;
    let (status, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("src=\"/connect/assets/whatsapp.js\"")
            && html.contains("src=\"https://connect.facebook.net/en_US/sdk.js\""),
        "{html}"
    );
    assert_eq!(
        attr(&html, "id=\"signup\"", "data-origin"),
        "https://www.facebook.com"
    );
    let form = attr(&html, "id=\"signup\"", "data-form").to_owned();
    let post = |body: Value| {
        let mut req = app.http.post(app.url("/connect/flow/whatsapp")).json(&body);
        if let Some(c) = &browser.cookie {
            req = req.header("cookie", c);
        }
        req.send()
    };
    let body = json!({"form": form, "code": "wa-code-1", "waba_id": "102290129340398", "phone_number_id": "106540352249999"});
    let first = post(body.clone()).await.unwrap();
    assert_eq!(first.status(), 502);
    let again = post(json!({"form": form, "code": "already-used", "waba_id": "102290129340398", "phone_number_id": "106540352249999"})).await.unwrap();
    assert_eq!(again.status(), 200);
    let next: Value = again.json().await.unwrap();
    assert_eq!(next["next"], "/connect/flow/done");
    let (status, done) = get_page(&app, Some(&browser), "/connect/flow/done").await;
    assert_eq!(status, 200, "{done}");

    let reqs = app.graph.received_requests().await.unwrap();
    let order: Vec<String> = reqs
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect();
    let sub = order
        .iter()
        .position(|o| o == "POST /v23.0/102290129340398/subscribed_apps")
        .unwrap();
    let reg = order
        .iter()
        .position(|o| o == "POST /v23.0/106540352249999/register")
        .unwrap();
    assert!(sub < reg, "{order:?}");
    assert_eq!(
        order
            .iter()
            .filter(|o| o.contains("oauth/access_token"))
            .count(),
        1,
        "{order:?}"
    );
    let pins: Vec<String> = reqs
        .iter()
        .filter(|r| r.url.path().ends_with("/register"))
        .map(|r| {
            let b: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(b["messaging_product"], "whatsapp");
            b["pin"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(pins.len(), 2);
    assert_eq!(pins[0], pins[1], "a retry keeps the PIN");
    assert!(pins[0].len() == 6 && pins[0].bytes().all(|b| b.is_ascii_digit()));
    let key = "switchboard:channel:whatsapp:106540352249999";
    assert_eq!(hget(&app, key, "waba_id"), "102290129340398");
    // Who signed up, read once with the business token (deauthorize and data deletion
    // match on it).
    assert_eq!(hget(&app, key, "user_id"), WA_USER_ID);
    assert_eq!(count(&app.graph, "GET", "/v23.0/me").await, 1);
    assert_eq!(
        &*app.keyring.decrypt(&hget(&app, key, "pin")).unwrap(),
        pins[0].as_bytes()
    );
    assert_eq!(
        &*app.keyring.decrypt(&hget(&app, key, "token")).unwrap(),
        b"EAAbusiness-token"
    );
    assert_clean(&app.redis().dump_all(), &["EAAbusiness-token"]);
    let event = connected_event(&app).await;
    assert_eq!(event["data"]["display"]["phone"], "+1 555 010 9999");
    assert_clean(&event.to_string(), &["EAAbusiness", &pins[0]]);
    assert_eq!(event["data"]["waba_id"], "102290129340398");
    assert_eq!(event["data"]["user"]["id"], WA_USER_ID);
    crate::event_schema::assert_events_match_schema(std::slice::from_ref(&event));
}
