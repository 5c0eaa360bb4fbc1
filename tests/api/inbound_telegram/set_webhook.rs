//! `set-webhook` and `webhook-info` against a wiremock Telegram server, from the
//! library and from the CLI.

use super::*;

/// Runs the real binary against the test app's config (same Redis, same mocks).
async fn run_cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--config", app.config_path.to_str().unwrap()])
        .args(args)
        .env_remove("SWITCHBOARD_CONFIG")
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn set_webhook_registers_a_fresh_secret_and_both_secrets_work_during_the_switch() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    Mock::given(method("POST"))
        .and(path(format!("/bot{BOT_TOKEN}/setWebhook")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"ok": true, "result": true, "description": "Webhook was set"}),
            ),
        )
        .expect(1)
        .mount(&app.telegram)
        .await;
    let live = app.state.live.load_full();
    let reg = webhook::set_webhook(
        &app.state.store,
        &live.keyring,
        &live.settings.telegram,
        &live.public_url,
        BOT,
    )
    .await
    .unwrap();
    assert_eq!(
        reg.url,
        format!("http://relay.test/webhooks/telegram/{BOT}")
    );

    let reqs = app.telegram.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    let sent: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(
        sent["url"],
        format!("http://relay.test/webhooks/telegram/{BOT}")
    );
    let allowed: Vec<&str> = sent["allowed_updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // Exactly the kinds the inbound dispatch reads: one list for both.
    assert_eq!(
        allowed,
        switchboard::channels::telegram::inbound::UPDATE_KINDS
    );
    for u in [
        "message",
        "edited_message",
        "channel_post",
        "callback_query",
        "my_chat_member",
        "message_reaction",
        // Telegram sends these three only when asked for by name.
        "message_reaction_count",
        "chat_member",
        "chat_join_request",
        "business_connection",
        "business_message",
        "deleted_business_messages",
    ] {
        assert!(allowed.contains(&u), "{u} in {allowed:?}");
    }
    let new_secret = sent["secret_token"].as_str().unwrap().to_owned();
    assert!(webhook::is_valid_secret(&new_secret));
    assert_ne!(new_secret, SECRET);

    // Stored Fernet-encrypted with the channel, never in the clear.
    let record = app
        .state
        .store
        .get_channel(&ChannelRef::parse(ChannelKind::Telegram, BOT).unwrap())
        .await
        .unwrap()
        .unwrap();
    let stored = record.webhook_secret.unwrap();
    assert!(stored.expose_secret().starts_with("gAAAAA"));
    let opened = app.keyring.decrypt(stored.expose_secret()).unwrap();
    assert_eq!(opened.as_slice(), new_secret.as_bytes());
    let dump = app.redis().dump_all();
    assert!(
        !dump.contains(&new_secret),
        "the secret is not in Redis in the clear"
    );
    assert!(!dump.contains(SECRET));
    assert!(!dump.contains(BOT_TOKEN));

    // The new secret works; the old one still works while Telegram switches; others not.
    let body = fixture("telegram/message_text.json");
    assert_eq!(
        post_update(&app, BOT, Some(&new_secret), &body)
            .await
            .status(),
        200
    );
    app.forget_dedupe().await;
    assert_eq!(
        post_update(&app, BOT, Some(SECRET), &body).await.status(),
        200
    );
    assert_eq!(
        post_update(&app, BOT, Some("nope"), &body).await.status(),
        401
    );
    assert_eq!(post_update(&app, BOT, None, &body).await.status(), 401);
    // Once the grace key is gone, only the new secret is accepted.
    app.state
        .store
        .del(&webhook::previous_secret_key(app.state.store.keys(), BOT))
        .await
        .unwrap();
    assert_eq!(
        post_update(&app, BOT, Some(SECRET), &body).await.status(),
        401
    );
    app.forget_dedupe().await;
    assert_eq!(
        post_update(&app, BOT, Some(&new_secret), &body)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn set_webhook_refused_by_telegram_keeps_the_old_secret() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    Mock::given(method("POST"))
        .and(path(format!("/bot{BOT_TOKEN}/setWebhook")))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"ok": false, "error_code": 400, "description": "Bad Request: bad webhook: HTTPS url must be provided for webhook"}),
        ))
        .mount(&app.telegram)
        .await;
    let live = app.state.live.load_full();
    let err = webhook::set_webhook(
        &app.state.store,
        &live.keyring,
        &live.settings.telegram,
        &live.public_url,
        BOT,
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("HTTPS url must be provided"), "{msg}");
    assert!(
        !msg.contains(BOT_TOKEN),
        "the token never appears in errors"
    );
    let record = app
        .state
        .store
        .get_channel(&ChannelRef::parse(ChannelKind::Telegram, BOT).unwrap())
        .await
        .unwrap()
        .unwrap();
    let opened = app
        .keyring
        .decrypt(record.webhook_secret.unwrap().expose_secret())
        .unwrap();
    assert_eq!(opened.as_slice(), SECRET.as_bytes());
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
async fn set_webhook_errors_are_clear_and_never_show_the_token() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    let live = app.state.live.load_full();
    // unknown bot
    let err = webhook::set_webhook(
        &app.state.store,
        &live.keyring,
        &live.settings.telegram,
        &live.public_url,
        "123",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, webhook::SetWebhookError::ChannelNotFound(_)),
        "{err}"
    );
    // a token of another bot
    app.put_channel(ChannelKind::Telegram, "777", "acme", BOT_TOKEN)
        .await;
    let err = webhook::set_webhook(
        &app.state.store,
        &live.keyring,
        &live.settings.telegram,
        &live.public_url,
        "777",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, webhook::SetWebhookError::TokenMismatch(_)),
        "{err}"
    );
    // Telegram unreachable: the error has no URL (the URL holds the token)
    let settings_toml = std::fs::read_to_string(&app.config_path).unwrap().replace(
        &app.telegram.uri(),
        &format!("http://127.0.0.1:{}", free_port()),
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, settings_toml).unwrap();
    let settings = switchboard::config::Settings::load_with_env(Some(&p), false).unwrap();
    let live2 = switchboard::live::Live::new(settings).unwrap();
    let err = webhook::set_webhook(
        &app.state.store,
        &live2.keyring,
        &live2.settings.telegram,
        &live2.public_url,
        BOT,
    )
    .await
    .unwrap_err();
    let msg = format!("{err} {err:?}");
    assert!(
        matches!(err, webhook::SetWebhookError::Unreachable(_)),
        "{msg}"
    );
    assert!(!msg.contains("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"), "{msg}");
}

#[tokio::test]
async fn cli_telegram_set_webhook_and_meta_subscriptions_work_end_to_end() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    Mock::given(method("POST"))
        .and(path(format!("/bot{BOT_TOKEN}/setWebhook")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": true})))
        .expect(1)
        .mount(&app.telegram)
        .await;
    let out = run_cli(&app, &["telegram", "set-webhook", BOT]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("http://relay.test/webhooks/telegram/{BOT}")),
        "{stdout}"
    );
    assert!(!stdout.contains(BOT_TOKEN) && !stderr.contains(BOT_TOKEN));
    let sent: Value =
        serde_json::from_slice(&app.telegram.received_requests().await.unwrap()[0].body).unwrap();
    let new_secret = sent["secret_token"].as_str().unwrap();
    assert!(
        !stdout.contains(new_secret) && !stderr.contains(new_secret),
        "the secret is never printed"
    );
    // The relay (another process) accepts the secret the CLI stored.
    assert_eq!(
        post_update(
            &app,
            BOT,
            Some(new_secret),
            &fixture("telegram/message_text.json")
        )
        .await
        .status(),
        200
    );

    // An unknown bot: a clear error, exit status 1.
    let out = run_cli(&app, &["telegram", "set-webhook", "42"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no telegram channel `42`"));

    // Meta: a Page whose subscription lacks fields → listed, exit status 1.
    let page = "682498302938465";
    app.put_channel(ChannelKind::Messenger, page, "acme", "page-token")
        .await;
    let version = app
        .state
        .live
        .load()
        .settings
        .meta
        .graph_api_version
        .clone();
    Mock::given(method("GET"))
        .and(path(format!("/{version}/{page}/subscribed_apps")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "1517776481860111", "name": "Relay", "subscribed_fields": ["messages"]}]})))
        .mount(&app.graph)
        .await;
    let out = run_cli(&app, &["meta", "subscriptions", "messenger", page]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("app 1517776481860111 (Relay): messages"),
        "{stdout}"
    );
    assert!(
        stdout.contains("missing fields: messaging_postbacks"),
        "{stdout}"
    );
}

#[tokio::test]
async fn webhook_info_says_whether_telegram_points_at_this_relay() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    let info_path = format!("/bot{BOT_TOKEN}/getWebhookInfo");
    // Before set-webhook: another URL, Telegram's default updates, a delivery error.
    Mock::given(method("POST"))
        .and(path(info_path.as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {
            "url": "https://old.example.com/hook", "has_custom_certificate": false,
            "pending_update_count": 7, "last_error_date": 1721306082,
            "last_error_message": "Wrong response from the webhook: 401 Unauthorized"}})),
        )
        .up_to_n_times(2)
        .mount(&app.telegram)
        .await;
    let live = app.state.live.load_full();
    let info = webhook::webhook_info(
        &app.state.store,
        &live.keyring,
        &live.settings.telegram,
        &live.public_url,
        BOT,
    )
    .await
    .unwrap();
    assert_eq!(info.url, "https://old.example.com/hook");
    assert_eq!(
        info.expected_url,
        format!("http://relay.test/webhooks/telegram/{BOT}")
    );
    assert_eq!(info.pending_update_count, 7);
    assert_eq!(
        info.last_error,
        Some((
            1721306082,
            "Wrong response from the webhook: 401 Unauthorized".to_owned()
        ))
    );
    assert!(!info.is_complete());
    let out = run_cli(&app, &["telegram", "webhook-info", BOT]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("set-webhook"));

    // After: this relay, every update kind the relay asks for.
    Mock::given(method("POST"))
        .and(path(info_path.as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {
            "url": format!("http://relay.test/webhooks/telegram/{BOT}"),
            "pending_update_count": 0, "allowed_updates": webhook::ALLOWED_UPDATES}})),
        )
        .mount(&app.telegram)
        .await;
    let info = webhook::webhook_info(
        &app.state.store,
        &live.keyring,
        &live.settings.telegram,
        &live.public_url,
        BOT,
    )
    .await
    .unwrap();
    assert!(info.is_complete(), "{info:?}");
    let out = run_cli(&app, &["telegram", "webhook-info", BOT]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("pending updates: 0"), "{stdout}");
    assert!(!stdout.contains(BOT_TOKEN));
}
