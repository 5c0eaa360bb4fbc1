//! Revocation at the provider when a channel is deleted.

use super::*;

#[tokio::test]
async fn revoke_calls_graph_permissions_and_telegram_delete_webhook_with_the_channel_token() {
    use switchboard::privacy::revoke::{RevokeError, Revoker};
    use wiremock::matchers::{body_json, header};

    let app = spawn_app().await;
    let live = app.state.live.load_full();
    let revoker = Revoker::new().unwrap();
    let record = |user: Option<&str>, token: &str| ChannelRecord {
        tenant: "acme".into(),
        token: SecretString::from(app.keyring.encrypt(token.as_bytes())),
        webhook_secret: None,
        updated_at: None,
        user_id: user.map(str::to_owned),
        ..Default::default()
    };

    Mock::given(method("DELETE"))
        .and(path(format!("/v23.0/{USER}/permissions")))
        .and(header("authorization", "Bearer EAAG-page-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&app.graph)
        .await;
    let page = ChannelRef::parse(ChannelKind::Messenger, "5550002002").unwrap();
    revoker
        .revoke(&live, &page, &record(Some(USER), "EAAG-page-token"))
        .await
        .unwrap();

    // No user_id: Graph cannot be told whose permissions; nothing is called.
    let err = revoker
        .revoke(&live, &page, &record(None, "EAAG-page-token"))
        .await
        .unwrap_err();
    assert!(matches!(err, RevokeError::NoUserId), "{err}");

    // A token Graph already refuses (code 190) counts as revoked; a 5xx does not.
    Mock::given(method("DELETE"))
        .and(path(format!("/v23.0/{OTHER_USER}/permissions")))
        .and(header("authorization", "Bearer EAAG-expired"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": {"message": "Error validating access token", "code": 190}}),
        ))
        .mount(&app.graph)
        .await;
    revoker
        .revoke(&live, &page, &record(Some(OTHER_USER), "EAAG-expired"))
        .await
        .unwrap();
    Mock::given(method("DELETE"))
        .and(path(format!("/v23.0/{OTHER_USER}/permissions")))
        .and(header("authorization", "Bearer EAAG-flaky"))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"error": {"message": "Service temporarily unavailable", "code": 2}}),
        ))
        .mount(&app.graph)
        .await;
    let err = revoker
        .revoke(&live, &page, &record(Some(OTHER_USER), "EAAG-flaky"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");

    let bot_token = "7000000001:AAH-bot-token-secret";
    Mock::given(method("POST"))
        .and(path(format!("/bot{bot_token}/deleteWebhook")))
        .and(body_json(json!({"drop_pending_updates": true})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": true})))
        .expect(1)
        .mount(&app.telegram)
        .await;
    let bot = ChannelRef::parse(ChannelKind::Telegram, "7000000001").unwrap();
    revoker
        .revoke(&live, &bot, &record(None, bot_token))
        .await
        .unwrap();

    // Telegram unreachable: the error must not carry the URL (it holds the token).
    let mut settings = live.settings.clone();
    settings.telegram.api_base = format!("http://127.0.0.1:{}", free_port());
    let offline = switchboard::live::Live::new(settings).unwrap();
    let err = revoker
        .revoke(&offline, &bot, &record(None, bot_token))
        .await
        .unwrap_err();
    assert!(matches!(err, RevokeError::Unreachable(_)), "{err}");
    assert!(
        !format!("{err} {err:?}").contains("AAH-bot-token"),
        "{err:?}"
    );
}

async fn admin_delete(app: &TestApp, p: &str) -> reqwest::Response {
    app.http
        .delete(app.url(p))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn admin_delete_with_revoke_revokes_at_the_provider_first_and_keeps_the_channel_on_failure() {
    use wiremock::matchers::header;
    let app = spawn_app().await;
    put_user_channel(
        &app,
        ChannelKind::Messenger,
        "5550002002",
        "acme",
        Some(USER),
    )
    .await;
    put_user_channel(&app, ChannelKind::Instagram, "5550003003", "acme", None).await;
    put_user_channel(
        &app,
        ChannelKind::Whatsapp,
        "5550001001",
        "acme",
        Some(OTHER_USER),
    )
    .await;

    // The provider fails: 503, nothing deleted.
    Mock::given(method("DELETE"))
        .and(path(format!("/v23.0/{USER}/permissions")))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(
                json!({"error": {"message": "An unknown error occurred", "code": 1}}),
            ),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.graph)
        .await;
    let resp = admin_delete(&app, "/admin/v1/channels/messenger/5550002002?revoke=true").await;
    assert_eq!(resp.status(), 503);
    assert!(channel_exists(&app, ChannelKind::Messenger, "5550002002").await);

    // The provider agrees: revoked with the channel's own token, then deleted.
    Mock::given(method("DELETE"))
        .and(path(format!("/v23.0/{USER}/permissions")))
        .and(header("authorization", "Bearer token-of-5550002002"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&app.graph)
        .await;
    let resp = admin_delete(&app, "/admin/v1/channels/messenger/5550002002?revoke=true").await;
    assert_eq!(resp.status(), 204);
    assert!(!channel_exists(&app, ChannelKind::Messenger, "5550002002").await);

    // No user_id: Graph cannot be asked; 400 naming the field, nothing deleted.
    let resp = admin_delete(&app, "/admin/v1/channels/instagram/5550003003?revoke=true").await;
    let (status, code) = problem_code(resp).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    assert!(channel_exists(&app, ChannelKind::Instagram, "5550003003").await);
    // Without revoke, a plain delete.
    let resp = admin_delete(&app, "/admin/v1/channels/instagram/5550003003").await;
    assert_eq!(resp.status(), 204);
    assert!(!channel_exists(&app, ChannelKind::Instagram, "5550003003").await);
    // Unknown channel.
    let resp = admin_delete(&app, "/admin/v1/channels/messenger/5550009999?revoke=true").await;
    assert_eq!(resp.status(), 404);

    // The CLI does the same: `switchboard channels delete --revoke`.
    Mock::given(method("DELETE"))
        .and(path(format!("/v23.0/{OTHER_USER}/permissions")))
        .and(header("authorization", "Bearer token-of-5550001001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&app.graph)
        .await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--config", app.config_path.to_str().unwrap()])
        .args(["channels", "delete", "whatsapp", "5550001001", "--revoke"])
        .env_remove("SWITCHBOARD_CONFIG")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!channel_exists(&app, ChannelKind::Whatsapp, "5550001001").await);
}

/// `s` with every character `\u`-escaped, as inside a JSON string.
fn escaped(s: &str) -> String {
    s.chars().map(|c| format!("\\u{:04x}", c as u32)).collect()
}

/// No run of ten characters of `token` in `text`.
fn assert_no_token(text: &str, token: &str) {
    let t: Vec<char> = token.chars().collect();
    for w in t.windows(10) {
        let piece: String = w.iter().collect();
        assert!(!text.contains(&piece), "token piece {piece:?} in {text}");
    }
}

#[tokio::test]
async fn a_refused_revocation_quoting_the_token_shows_and_logs_none_of_it() {
    let page_token = "EAAGm0PX4ZCpsBAOqZBrevokeZCtokenZBquotedZCx7";
    let bot_token = "7000000002:AAH-revoke-quoted-bot-token";
    let relay = TestApp::builder().log_level("trace").spawn_process().await;
    let (graph, telegram) = (&relay.peers.graph, &relay.peers.telegram);
    for (kind, id, token, user) in [
        (ChannelKind::Messenger, "5550002002", page_token, Some(USER)),
        (ChannelKind::Telegram, "7000000002", bot_token, None),
    ] {
        let mut new = NewChannel::new("acme", token);
        new.user_id = user;
        put_channel_into(&relay.store, &relay.peers.keyring, kind, id, &new).await;
    }
    for quoted in [
        page_token.to_owned(),
        escaped(page_token),
        page_token[..24].to_owned(),
    ] {
        graph.reset().await;
        Mock::given(method("DELETE"))
            .and(path(format!("/v23.0/{USER}/permissions")))
            .respond_with(ResponseTemplate::new(400).set_body_raw(
                format!(
                    r#"{{"error":{{"message":"Malformed access token {quoted}","code":100}}}}"#
                ),
                "application/json",
            ))
            .expect(1)
            .mount(graph)
            .await;
        let resp = relay
            .peers
            .http
            .delete(relay.url("/admin/v1/channels/messenger/5550002002?revoke=true"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert!(status >= 400, "{status} {text}");
        assert_no_token(&text, page_token);
    }
    Mock::given(method("POST"))
        .and(path(format!("/bot{bot_token}/deleteWebhook")))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            format!(
                r#"{{"ok":false,"error_code":400,"description":"Bad Request: bot {}"}}"#,
                escaped(bot_token)
            ),
            "application/json",
        ))
        .expect(1)
        .mount(telegram)
        .await;
    let resp = relay
        .peers
        .http
        .delete(relay.url("/admin/v1/channels/telegram/7000000002?revoke=true"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert!(status >= 400, "{status} {text}");
    // The bot id before the `:` is the channel's id, shown on purpose.
    let bot_secret = bot_token.split_once(':').unwrap().1;
    assert_no_token(&text, bot_secret);
    relay.wait_for_log("Access could not be revoked", 4).await;
    let logs = relay.logs();
    assert_no_token(&logs, page_token);
    assert_no_token(&logs, bot_secret);
    assert!(
        logs.contains("[REDACTED]"),
        "the refusal is logged, redacted"
    );
}
