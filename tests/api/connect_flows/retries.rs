//! A failure after the code exchange is retried from the flow's saved state, without a
//! new login (Messenger's Page, Instagram's token, WhatsApp's steps), within limits;
//! a replayed callback and a cancelled Embedded Signup store nothing.

use super::*;

/// The "Try again" form of a failure page: its action and hidden fields.
fn resume_form(page: &str) -> (String, Vec<(String, String)>) {
    assert!(page.contains("id=\"retry\""), "no Try again: {page}");
    let action = attr(page, "method=\"post\"", "action").to_owned();
    let form = &page[page.find("method=\"post\"").unwrap()..];
    let form = &form[..form.find("</form>").unwrap()];
    let fields = form
        .split("<input ")
        .skip(1)
        .map(|i| {
            (
                attr(i, "name=", "name").to_owned(),
                attr(i, "name=", "value").to_owned(),
            )
        })
        .collect();
    (action, fields)
}

async fn submit(app: &TestApp, b: &Visit, page: &str) -> (u16, String) {
    let (action, fields) = resume_form(page);
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    post_form(app, b, &action, &fields).await
}

async fn code_exchanges(graph: &MockServer, code: &str) -> usize {
    graph
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.query().unwrap_or_default().contains(code))
        .count()
}

/// No channel key matches `pattern` (`messenger:*`, `whatsapp:{id}`).
fn no_channels(app: &TestApp, pattern: &str) {
    let keys = app
        .redis()
        .cli(&["KEYS", &format!("switchboard:channel:{pattern}")]);
    assert!(keys.trim().is_empty(), "{keys}");
}

#[tokio::test]
async fn messenger_subscribe_and_read_back_failures_are_retried_without_a_new_login() {
    let app = spawn_app().await;
    // The first subscribe fails; then the first read-back lacks fields; then all is well.
    Mock::given(method("POST"))
        .and(path("/v23.0/111/subscribed_apps"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"error": {"message": "temporary", "code": 2}})),
        )
        .up_to_n_times(1)
        .mount(&app.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v23.0/111/subscribed_apps"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [{"id": "", "subscribed_fields": ["messages"]}]})),
        )
        .up_to_n_times(1)
        .mount(&app.graph)
        .await;
    mock_messenger(
        &app,
        json!([{"id": "111", "name": "Acme Shoes", "access_token": "EAApage-111-token"}]),
    )
    .await;
    let link = new_link(&app, "messenger").await;
    let (_, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    let (_, state) = dialog_state(&html);
    let cb = format!(
        "/connect/callback/facebook?code=fb-code-123&state={}",
        urlencode(&state)
    );
    let (status, failed) = get_page(&app, Some(&browser), &cb).await;
    assert_eq!(status, 502, "{failed}");
    assert!(
        failed.contains("subscribing the Page") && failed.contains("will not have to log in again"),
        "{failed}"
    );
    let (action, fields) = resume_form(&failed);
    assert_eq!(action, "/connect/flow/messenger/page");
    assert!(
        fields.contains(&("page_id".into(), "111".into())),
        "{fields:?}"
    );
    assert_clean(&failed, &["EAApage", "EAAlong", "fb-code-123"]);
    no_channels(&app, "messenger:*");

    let (status, failed_again) = submit(&app, &browser, &failed).await;
    assert_eq!(status, 502, "{failed_again}");
    assert!(failed_again.contains("checking the Page"), "{failed_again}");
    no_channels(&app, "messenger:*");
    assert_eq!(
        link_status(&app, link["id"].as_str().unwrap()).await["status"],
        "pending"
    );

    let (status, done) = submit(&app, &browser, &failed_again).await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("Acme Shoes"), "{done}");
    assert_eq!(
        &*app
            .keyring
            .decrypt(&hget(&app, "switchboard:channel:messenger:111", "token"))
            .unwrap(),
        b"EAApage-111-token"
    );
    // One login: the code exchanged once, the Page subscribed on each of the 3 tries.
    assert_eq!(code_exchanges(&app.graph, "code=fb-code-123").await, 1);
    assert_eq!(
        count(&app.graph, "POST", "/v23.0/111/subscribed_apps").await,
        3
    );
    assert_eq!(count(&app.graph, "GET", "/v23.0/me/accounts").await, 1);
    assert_eq!(
        link_status(&app, link["id"].as_str().unwrap()).await["status"],
        "connected"
    );
}

#[tokio::test]
async fn instagram_subscribe_failure_is_retried_from_the_saved_token() {
    let ig = MockServer::start().await;
    let app = TestApp::builder()
        .toml(&format!(
            "[instagram]\napp_id = \"ig-app-1\"\napp_secrets = [\"ig-secret-1\"]\noauth_base = \"{0}\"\napi_base = \"{0}\"\ngraph_base = \"{0}\"\n",
            ig.uri()
        ))
        .spawn()
        .await;
    Mock::given(method("POST"))
        .and(path("/v23.0/me/subscribed_apps"))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"error": {"message": "Service temporarily unavailable", "code": 2}}),
        ))
        .up_to_n_times(1)
        .mount(&ig)
        .await;
    mock_instagram(&ig).await;
    let link = new_link(&app, "instagram").await;
    let (_, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    let (_, state) = dialog_state(&html);
    let (status, failed) = get_page(
        &app,
        Some(&browser),
        &format!(
            "/connect/callback/instagram?code=ig-code-9&state={}",
            urlencode(&state)
        ),
    )
    .await;
    assert_eq!(status, 502, "{failed}");
    let (action, _) = resume_form(&failed);
    assert_eq!(action, "/connect/flow/instagram/resume");
    assert_clean(&failed, &["IGlong", "IGshort", "ig-code-9", "ig-secret-1"]);
    no_channels(&app, "instagram:*");
    // A form of another flow is refused.
    let (status, _) = post_form(
        &app,
        &browser,
        "/connect/flow/instagram/resume",
        &[("form", "bm90LXRoaXMtZmxvdw")],
    )
    .await;
    assert_eq!(status, 400);

    let (status, done) = submit(&app, &browser, &failed).await;
    assert_eq!(status, 200, "{done}");
    let key = "switchboard:channel:instagram:17841400000000099";
    assert_eq!(
        &*app.keyring.decrypt(&hget(&app, key, "token")).unwrap(),
        b"IGlong-token"
    );
    assert_eq!(hget(&app, key, "user_id"), "17841400000000001");
    // One login: one code exchange, one long-lived token, `/me` read once (saved).
    assert_eq!(count(&ig, "POST", "/oauth/access_token").await, 1);
    assert_eq!(count(&ig, "GET", "/access_token").await, 1);
    assert_eq!(count(&ig, "GET", "/v23.0/me").await, 1);
    assert_eq!(count(&ig, "POST", "/v23.0/me/subscribed_apps").await, 2);
    let event = connected_event(&app).await;
    assert_eq!(event["data"]["display"]["username"], "acme.shop");
}

#[tokio::test]
async fn whatsapp_register_attempts_are_limited_per_flow() {
    let app = TestApp::builder()
        .toml("[connect]\nmax_register_attempts = 2\n")
        .spawn()
        .await;
    Mock::given(method("POST"))
        .and(path("/v23.0/106540352249999/register"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": {"message": "Two step verification PIN Mismatch", "code": 133005}}),
        ))
        .with_priority(1)
        .mount(&app.graph)
        .await;
    mock_whatsapp_signup(&app, false).await;
    let link = new_link(&app, "whatsapp").await;
    let (_, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    let form = attr(&html, "id=\"signup\"", "data-form").to_owned();
    let ids = |code: Option<&str>| json!({"form": form, "code": code, "waba_id": "102290129340398", "phone_number_id": "106540352249999"});
    let (status, first) = wa_post(&app, &browser, ids(Some("wa-code-1"))).await;
    assert_eq!(status, 502, "{first}");
    assert_eq!(first["resume"], true, "{first}");
    // The page's "Try again" posts the same ids without a code.
    let (status, second) = wa_post(&app, &browser, ids(None)).await;
    assert_eq!((status, &second["resume"]), (502, &json!(true)), "{second}");
    let (status, third) = wa_post(&app, &browser, ids(None)).await;
    assert_eq!(status, 429, "{third}");
    let message = third["message"].as_str().unwrap();
    assert!(message.contains("10 attempts in 72 hours"), "{message}");
    assert_eq!(
        count(&app.graph, "POST", "/v23.0/106540352249999/register").await,
        2
    );
    assert_eq!(code_exchanges(&app.graph, "code=wa-code-1").await, 1);
    no_channels(&app, "whatsapp:106540352249999");
    assert_clean(&app.redis().dump_all(), &["EAAbusiness-token"]);
    assert_eq!(
        link_status(&app, link["id"].as_str().unwrap()).await["status"],
        "pending"
    );
}

#[tokio::test]
async fn whatsapp_cancel_or_error_fails_the_link_and_stores_nothing() {
    let app = spawn_app().await;
    for (event, code) in [("CANCEL", "cancelled"), ("ERROR", "provider_error")] {
        let link = new_link(&app, "whatsapp").await;
        let id = link["id"].as_str().unwrap();
        let (_, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
        let form = attr(&html, "id=\"signup\"", "data-form").to_owned();
        assert_eq!(link_status(&app, id).await["status"], "pending");
        let mut req = app
            .http
            .post(app.url("/connect/flow/whatsapp/cancel"))
            .json(&json!({"form": form, "event": event}));
        if let Some(c) = &browser.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let next: Value = resp.json().await.unwrap();
        assert_eq!(next["next"], "/connect/flow/ended");
        let status = link_status(&app, id).await;
        assert_eq!(status["status"], "failed", "{event}: {status}");
        assert_eq!(status["error"]["code"], code, "{event}: {status}");
    }
    assert!(app.graph.received_requests().await.unwrap().is_empty());
    no_channels(&app, "whatsapp:106540352249999");
}

#[tokio::test]
async fn a_replayed_callback_stores_nothing_the_second_time() {
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
    let (_, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    let (_, state) = dialog_state(&html);
    let cb = format!(
        "/connect/callback/facebook?code=fb-code-123&state={}",
        urlencode(&state)
    );
    let (status, picker) = get_page(&app, Some(&browser), &cb).await;
    assert_eq!(status, 200, "{picker}");
    let (status, replay) = get_page(&app, Some(&browser), &cb).await;
    assert_eq!(status, 400, "{replay}");
    assert!(
        replay.contains("does not match this connect session")
            && replay.contains("Nothing was connected"),
        "{replay}"
    );
    assert_clean(&replay, &["fb-code-123", "EAA"]);
    assert_eq!(code_exchanges(&app.graph, "code=fb-code-123").await, 1);
    no_channels(&app, "messenger:*");
    // The flow is still the first callback's: its picker connects the Page.
    let (status, _) = post_form(
        &app,
        &browser,
        "/connect/flow/messenger/page",
        &[("form", &form_token(&picker)), ("page_id", "111")],
    )
    .await;
    assert_eq!(status, 200);
    // Replayed after the link is used up: a page that says so, nothing more stored.
    let (status, used) = get_page(&app, Some(&browser), &cb).await;
    assert!(status == 400 || status == 410, "{status}: {used}");
    assert_eq!(code_exchanges(&app.graph, "code=fb-code-123").await, 1);
    assert_eq!(
        app.redis()
            .cli(&["KEYS", "switchboard:channel:messenger:*"])
            .trim(),
        "switchboard:channel:messenger:111"
    );
}
