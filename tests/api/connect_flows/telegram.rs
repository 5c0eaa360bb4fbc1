//! Telegram: a bot token connects the bot (getMe, getWebhookInfo, setWebhook with a fresh secret); a wrong token, a bot pointing elsewhere, a channel another tenant owns.

use super::*;

#[tokio::test]
async fn telegram_link_connects_the_bot_and_tells_the_crm() {
    let app = TestApp::builder().toml(HOSTS).spawn().await;
    mock_telegram(&app, "").await;
    let link: Value = create_link(&app, API_KEY, json!({"kind": "telegram", "external_ref": "draft-7", "return_url": "https://crm.example.com/channels"}))
        .await
        .json()
        .await
        .unwrap();
    let url = link["url"].as_str().unwrap();
    let (status, html, browser) = open(&app, url).await;
    assert_eq!(status, 200);
    assert!(html.contains("name=\"token\""), "{html}");
    // The only cookie: the flow's, HttpOnly and SameSite=Lax (not Secure on http).
    let sc = &browser.set_cookie;
    assert!(sc.starts_with("switchboard_connect="), "{sc}");
    assert!(
        sc.contains("HttpOnly") && sc.contains("SameSite=Lax") && sc.contains("Max-Age="),
        "{sc}"
    );
    assert!(!sc.contains("Secure"), "{sc}");
    let secret = url.rsplit('/').next().unwrap();
    assert_clean(&html, &[secret]);

    let form = form_token(&html);
    let (status, done) = post_form(
        &app,
        &browser,
        "/connect/flow/telegram",
        &[("form", &form), ("token", BOT_TOKEN)],
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("id=\"done\""), "{done}");
    assert!(done.contains("https://crm.example.com/channels"), "{done}");
    assert_clean(&done, &[BOT_TOKEN, secret]);

    // Telegram got setWebhook with the relay's URL and a fresh secret.
    let set = app
        .telegram
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path().ends_with("/setWebhook"))
        .unwrap();
    let body: Value = serde_json::from_slice(&set.body).unwrap();
    assert_eq!(
        body["url"],
        format!("http://relay.test/webhooks/telegram/{BOT_ID}")
    );
    let ws = body["secret_token"].as_str().unwrap();
    assert!(ws.len() >= 32);
    assert_eq!(
        body["allowed_updates"],
        json!(switchboard::channels::telegram::inbound::UPDATE_KINDS)
    );
    for kind in ["message_reaction", "chat_member", "message_reaction_count"] {
        assert!(body["allowed_updates"]
            .as_array()
            .unwrap()
            .contains(&json!(kind)));
    }

    // Redis: the channel, Fernet-encrypted.
    let key = format!("switchboard:channel:telegram:{BOT_ID}");
    assert_eq!(hget(&app, &key, "tenant"), "acme");
    assert_eq!(
        &*app.keyring.decrypt(&hget(&app, &key, "token")).unwrap(),
        BOT_TOKEN.as_bytes()
    );
    assert_eq!(
        &*app
            .keyring
            .decrypt(&hget(&app, &key, "webhook_secret"))
            .unwrap(),
        ws.as_bytes()
    );
    assert_clean(&app.redis().dump_all(), &[BOT_TOKEN, ws, secret]);

    let got = link_status(&app, link["id"].as_str().unwrap()).await;
    assert_eq!(got["status"], "connected");
    assert_eq!(got["channel"], json!({"kind": "telegram", "id": BOT_ID}));

    let event = connected_event(&app).await;
    assert_eq!(event["tenant"], "acme");
    assert_eq!(event["channel"], json!({"kind": "telegram", "id": BOT_ID}));
    assert_eq!(event["data"]["connect_link"]["id"], link["id"]);
    assert_eq!(event["data"]["external_ref"], "draft-7");
    assert_eq!(event["data"]["display"]["username"], "acme_support_bot");
    assert_clean(&event.to_string(), &[BOT_TOKEN, ws]);
    crate::event_schema::assert_events_match_schema(std::slice::from_ref(&event));

    // The link is used up.
    let (status, html) = get_page(&app, None, url).await;
    assert_eq!(status, 410, "{html}");
    assert!(html.contains("already used"), "{html}");
    // And the inbound webhook now works with the stored secret.
    let resp = app
        .http
        .post(app.url(&format!("/webhooks/telegram/{BOT_ID}")))
        .header("X-Telegram-Bot-Api-Secret-Token", ws)
        .header("content-type", "application/json")
        .body(r#"{"update_id":1,"message":{"message_id":1,"date":1700000000,"chat":{"id":5,"type":"private"},"from":{"id":5,"is_bot":false,"first_name":"A"},"text":"hi"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn telegram_wrong_token_says_so_and_stores_nothing() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path_regex("/bot.*/getMe"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
            ),
        )
        .mount(&app.telegram)
        .await;
    let link = new_link(&app, "telegram").await;
    let (_, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    let form = form_token(&html);
    let (status, page) = post_form(
        &app,
        &browser,
        "/connect/flow/telegram",
        &[("form", &form), ("token", BOT_TOKEN)],
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("does not accept this token"), "{page}");
    assert_clean(&page, &[BOT_TOKEN]);
    let (status, page) = post_form(
        &app,
        &browser,
        "/connect/flow/telegram",
        &[("form", &form), ("token", "hello")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("not a bot token"), "{page}");
    // Without the cookie, or with another flow's form token: refused.
    let stranger = Visit {
        cookie: None,
        set_cookie: String::new(),
    };
    let (status, _) = post_form(
        &app,
        &stranger,
        "/connect/flow/telegram",
        &[("form", &form), ("token", BOT_TOKEN)],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post_form(
        &app,
        &browser,
        "/connect/flow/telegram",
        &[("form", "forged"), ("token", BOT_TOKEN)],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        app.redis()
            .cli(&["EXISTS", &format!("switchboard:channel:telegram:{BOT_ID}")])
            .trim(),
        "0"
    );
    assert_eq!(
        link_status(&app, link["id"].as_str().unwrap()).await["status"],
        "pending"
    );
    assert!(app
        .telegram
        .received_requests()
        .await
        .unwrap()
        .iter()
        .all(|r| !r.url.path().ends_with("setWebhook")));
}

#[tokio::test]
async fn telegram_bot_pointing_elsewhere_is_taken_over_only_when_confirmed() {
    let app = spawn_app().await;
    mock_telegram(&app, "https://other-crm.example.net/tg/hook").await;
    let link = new_link(&app, "telegram").await;
    let (_, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    let form = form_token(&html);
    let (status, page) = post_form(
        &app,
        &browser,
        "/connect/flow/telegram",
        &[("form", &form), ("token", BOT_TOKEN)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"warning\"") && page.contains("other-crm.example.net"),
        "{page}"
    );
    assert_clean(&page, &[BOT_TOKEN]);
    assert!(app
        .telegram
        .received_requests()
        .await
        .unwrap()
        .iter()
        .all(|r| !r.url.path().ends_with("setWebhook")));
    let (status, page) = post_form(
        &app,
        &browser,
        "/connect/flow/telegram",
        &[("form", &form), ("token", BOT_TOKEN), ("confirm", "1")],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"done\""), "{page}");
}

#[tokio::test]
async fn a_channel_of_another_tenant_is_not_taken_over() {
    let app = spawn_app().await;
    mock_telegram(&app, "").await;
    app.put_channel(
        switchboard::channels::ChannelKind::Telegram,
        BOT_ID,
        "globex",
        BOT_TOKEN,
    )
    .await;
    let before = hget(
        &app,
        &format!("switchboard:channel:telegram:{BOT_ID}"),
        "token",
    );
    let link = new_link(&app, "telegram").await;
    let (_, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    let (status, page) = post_form(
        &app,
        &browser,
        "/connect/flow/telegram",
        &[("form", &form_token(&html)), ("token", BOT_TOKEN)],
    )
    .await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("another organisation"), "{page}");
    let key = format!("switchboard:channel:telegram:{BOT_ID}");
    assert_eq!(hget(&app, &key, "tenant"), "globex");
    assert_eq!(hget(&app, &key, "token"), before);
    let got = link_status(&app, link["id"].as_str().unwrap()).await;
    assert_eq!(got["status"], "failed");
    assert_eq!(got["error"]["code"], "channel_taken");
    assert!(app
        .telegram
        .received_requests()
        .await
        .unwrap()
        .iter()
        .all(|r| !r.url.path().ends_with("setWebhook")));
}
