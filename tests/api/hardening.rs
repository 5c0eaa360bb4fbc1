//! Hostile input against the running relay: timestamps no formatter can write, and
//! (with the property tests in `src/`) no input that panics a handler.

use serde_json::Value;
use switchboard::channels::ChannelKind;

use crate::helpers::*;

const TG_BOT: &str = "5000000001";
const TG_BOT_TOKEN: &str = "5000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const TG_SECRET: &str = "cRm-Relay_7f3a9c2e1b4d";

/// The year of an RFC 3339 timestamp, which must be this year's (the time of receipt).
fn assert_is_now(ts: &Value) {
    let ts = ts.as_str().unwrap_or_default();
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    assert_eq!(ts.get(..4), now.get(..4), "{ts} is not the time of receipt");
}

#[tokio::test]
async fn far_future_whatsapp_timestamp_becomes_the_time_of_receipt() {
    let app = spawn_app().await;
    let mut body: Value = serde_json::from_slice(&fixture("whatsapp/text.json")).unwrap();
    let msgs = &mut body["entry"][0]["changes"][0]["value"]["messages"];
    let mut second = msgs[0].clone();
    msgs[0]["timestamp"] = "300000000000000".into();
    second["id"] = "wamid.second-of-the-batch".into();
    msgs.as_array_mut().unwrap().push(second);
    let resp = app.post_meta(&serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(resp.status(), 200);
    let events: Vec<Value> = app
        .wait_for_crm(CRM_PATH, 2)
        .await
        .iter()
        .map(|r| verify_standard_webhook(SIGNING_SECRET, r))
        .collect();
    assert_eq!(events.len(), 2, "the whole batch is delivered");
    assert_is_now(&events[0]["timestamp"]);
    assert_eq!(events[1]["timestamp"], "2025-06-08T20:59:43Z");
}

#[tokio::test]
async fn far_future_telegram_date_becomes_the_time_of_receipt() {
    let app = spawn_app().await;
    app.put_channel_with_secret(
        ChannelKind::Telegram,
        TG_BOT,
        "acme",
        TG_BOT_TOKEN,
        Some(TG_SECRET),
    )
    .await;
    for (field, value) in [("date", 300_000_000_000_i64), ("edit_date", i64::MAX)] {
        let mut body: Value =
            serde_json::from_slice(&fixture("telegram/message_text.json")).unwrap();
        body["message"][field] = value.into();
        body["update_id"] = (892252934 + value % 1000).into();
        app.forget_dedupe().await;
        let before = app.crm_requests().await.len();
        let resp = app
            .http
            .post(app.url(&format!("/webhooks/telegram/{TG_BOT}")))
            .header("content-type", "application/json")
            .header("x-telegram-bot-api-secret-token", TG_SECRET)
            .body(serde_json::to_vec(&body).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{field}");
        let reqs = app.wait_for_crm(CRM_PATH, before + 1).await;
        let e = verify_standard_webhook(SIGNING_SECRET, &reqs[before]);
        if field == "date" {
            assert_is_now(&e["timestamp"]);
        } else {
            assert_is_now(&e["data"]["message"]["edited_at"]);
        }
    }
}

/// The provider quotes the token (whole, `\u`-escaped, or cut short): no answer shows
/// any long piece of it.
fn assert_no_token(answer: &str, token: &str) {
    let t: Vec<char> = token.chars().collect();
    for w in t.windows(10) {
        let piece: String = w.iter().collect();
        assert!(
            !answer.contains(&piece),
            "token piece {piece:?} in {answer}"
        );
    }
}

/// `s` with every character `\u`-escaped, as a JSON string body.
fn escaped(s: &str) -> String {
    s.chars().map(|c| format!("\\u{:04x}", c as u32)).collect()
}

#[tokio::test]
async fn telegram_errors_quoting_the_bot_token_are_redacted() {
    use crate::replies_support::*;
    use wiremock::matchers::method;
    use wiremock::{Mock, ResponseTemplate};
    let app = replies_app().await;
    for description in [
        format!("Bad Request: bot{BOT_TOKEN} is not allowed"),
        format!("Bad Request: {}", escaped(BOT_TOKEN)),
        format!("Bad Request: {}", &BOT_TOKEN[..20]),
    ] {
        app.telegram.reset().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(400).set_body_raw(
                format!(r#"{{"ok":false,"error_code":400,"description":"{description}"}}"#),
                "application/json",
            ))
            .mount(&app.telegram)
            .await;
        let resp = send(
            &app,
            &message(
                "telegram",
                BOT,
                "42",
                serde_json::json!({"kind": "text", "text": "hi"}),
            ),
        )
        .await;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert!(status >= 400, "{status} {text}");
        assert!(text.contains("[REDACTED]"), "{text}");
        assert_no_token(&text, BOT_TOKEN);
    }
}

#[tokio::test]
async fn graph_errors_quoting_the_token_escaped_are_redacted() {
    use crate::replies_support::*;
    use wiremock::matchers::method;
    use wiremock::{Mock, ResponseTemplate};
    let app = replies_app().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            format!(
                r#"{{"error":{{"message":"Malformed access token {}","type":"OAuthException","code":100}}}}"#,
                escaped(PAGE_TOKEN)
            ),
            "application/json",
        ))
        .mount(&app.graph)
        .await;
    let resp = send(
        &app,
        &message(
            "messenger",
            PAGE,
            "24",
            serde_json::json!({"kind": "text", "text": "hi"}),
        ),
    )
    .await;
    let text = resp.text().await.unwrap();
    assert!(text.contains("[REDACTED]"), "{text}");
    assert_no_token(&text, PAGE_TOKEN);
}

#[tokio::test]
async fn whatsapp_media_download_errors_quoting_the_token_are_redacted() {
    use crate::replies_support::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let app = replies_app().await;
    let mut lookup = fixture_json("whatsapp/outbound/media_url_response.json");
    lookup["url"] = format!("{}/whatsapp-cdn/file-1", app.graph.uri()).into();
    Mock::given(method("GET"))
        .and(path("/v23.0/555"))
        .respond_with(ResponseTemplate::new(200).set_body_json(lookup))
        .mount(&app.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/whatsapp-cdn/file-1"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            format!(r#"{{"error":{{"message":"Bad token {WA_TOKEN}","code":100}}}}"#),
            "application/json",
        ))
        .mount(&app.graph)
        .await;
    let resp = app
        .http
        .get(app.url(&format!("/v1/media/whatsapp/{WA}/555")))
        .header("authorization", format!("Bearer {API_KEY}"))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert!(status >= 400, "{status} {text}");
    assert!(text.contains("[REDACTED]"), "{text}");
    assert_no_token(&text, WA_TOKEN);
}

#[tokio::test]
async fn telegram_raw_calls_only_message_methods() {
    use crate::replies_support::*;
    use serde_json::json;
    let app = replies_app().await;
    mount_success(&app).await;
    for m in [
        "setWebhook",
        "deleteWebhook",
        "logOut",
        "close",
        "SETWEBHOOK",
        "setMyCommands",
        "getUpdates",
        "getMe",
        // Management that a prefix `edit…` / `send…` would have let through.
        "editChatInviteLink",
        "EDITCHATINVITELINK",
        "editChatSubscriptionInviteLink",
        "editForumTopic",
        "editGeneralForumTopic",
        "editStory",
        "sendGift",
    ] {
        for body in [
            json!({"channel": {"kind": "telegram", "id": BOT}, "method": m, "raw": {"url": "https://evil.test/"}}),
            message(
                "telegram",
                BOT,
                "42",
                json!({"kind": "raw", "method": m, "raw": {"url": "https://evil.test/"}}),
            ),
        ] {
            let resp = send(&app, &body).await;
            assert_eq!(resp.status(), 400, "{m}");
            assert_eq!(problem(resp).await["code"], "invalid_request", "{m}");
        }
    }
    assert!(
        received(&app.telegram).await.is_empty(),
        "a refused method was called"
    );
    for m in [
        "sendDice",
        "editMessageText",
        "deleteMessage",
        "setMessageReaction",
        "sendChatAction",
    ] {
        let body = json!({"channel": {"kind": "telegram", "id": BOT}, "method": m, "raw": {"chat_id": 42}});
        assert_eq!(send(&app, &body).await.status(), 200, "{m}");
    }
    let called: Vec<String> = received(&app.telegram)
        .await
        .iter()
        .map(|r| {
            r.url
                .path()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        called,
        [
            "sendDice",
            "editMessageText",
            "deleteMessage",
            "setMessageReaction",
            "sendChatAction"
        ]
    );
}
