//! `POST /v1/messages` on Telegram: every kind, checked at the wiremock Bot API (method
//! path with the token in it, JSON body) against the documented parameters
//! (`tests/fixtures/telegram/outbound/send_message_request.json`).

use serde_json::{json, Value};

use crate::replies_support::*;

const CHAT: &str = "218485655";

/// The Bot API method and body a message must become; `None`: no call is made.
type Call = Option<(&'static str, Value)>;

/// (name, message, call)
fn cases() -> Vec<(&'static str, Value, Call)> {
    vec![
        (
            "text as a reply",
            json!({"kind": "text", "text": "Olá! Recebemos sua mensagem 👋", "reply_to": "6557"}),
            Some((
                "sendMessage",
                fixture_json("telegram/outbound/send_message_request.json"),
            )),
        ),
        (
            "text without link preview",
            json!({"kind": "text", "text": "https://example.com", "preview_url": false}),
            Some((
                "sendMessage",
                json!({"chat_id": 218485655, "text": "https://example.com", "link_preview_options": {"is_disabled": true}}),
            )),
        ),
        (
            "photo by url with caption",
            json!({"kind": "image", "url": "https://crm.example.com/a.png", "caption": "look"}),
            Some((
                "sendPhoto",
                json!({"chat_id": 218485655, "photo": "https://crm.example.com/a.png", "caption": "look"}),
            )),
        ),
        (
            "audio by file_id",
            json!({"kind": "audio", "media_id": "CQACAgIAAxkBAAI"}),
            Some((
                "sendAudio",
                json!({"chat_id": 218485655, "audio": "CQACAgIAAxkBAAI"}),
            )),
        ),
        (
            "video",
            json!({"kind": "video", "url": "https://crm.example.com/v.mp4"}),
            Some((
                "sendVideo",
                json!({"chat_id": 218485655, "video": "https://crm.example.com/v.mp4"}),
            )),
        ),
        (
            "document",
            json!({"kind": "document", "media_id": "BQACAgIAAxkBAAIBCG", "caption": "invoice"}),
            Some((
                "sendDocument",
                json!({"chat_id": 218485655, "document": "BQACAgIAAxkBAAIBCG", "caption": "invoice"}),
            )),
        ),
        (
            "sticker",
            json!({"kind": "sticker", "media_id": "CAACAgIAAxkBAAE"}),
            Some((
                "sendSticker",
                json!({"chat_id": 218485655, "sticker": "CAACAgIAAxkBAAE"}),
            )),
        ),
        (
            "inline keyboard from buttons",
            json!({"kind": "interactive", "text": "Choose", "buttons": [
                {"id": "yes", "title": "Yes"}, {"url": "https://example.com", "title": "Site"}]}),
            Some((
                "sendMessage",
                json!({"chat_id": 218485655, "text": "Choose", "reply_markup": {"inline_keyboard": [
                [{"text": "Yes", "callback_data": "yes"}], [{"text": "Site", "url": "https://example.com"}]]}}),
            )),
        ),
        (
            "inline keyboard from a list",
            json!({"kind": "interactive", "text": "Slots", "list": {"button": "Pick", "sections": [
                {"title": "Today", "rows": [{"id": "t1", "title": "10:00"}, {"id": "t2", "title": "15:00"}]}]}}),
            Some((
                "sendMessage",
                json!({"chat_id": 218485655, "text": "Slots", "reply_markup": {"inline_keyboard": [
                [{"text": "10:00", "callback_data": "t1"}], [{"text": "15:00", "callback_data": "t2"}]]}}),
            )),
        ),
        (
            "inline keyboard from quick replies",
            json!({"kind": "interactive", "text": "Color?", "quick_replies": [{"id": "red", "title": "Red"}]}),
            Some((
                "sendMessage",
                json!({"chat_id": 218485655, "text": "Color?", "reply_markup": {"inline_keyboard": [
                [{"text": "Red", "callback_data": "red"}]]}}),
            )),
        ),
        (
            "reaction",
            json!({"kind": "reaction", "message_id": "6557", "emoji": "👍"}),
            Some((
                "setMessageReaction",
                json!({"chat_id": 218485655, "message_id": 6557, "reaction": [{"type": "emoji", "emoji": "👍"}]}),
            )),
        ),
        (
            "reaction removed",
            json!({"kind": "reaction", "message_id": 6557, "emoji": ""}),
            Some((
                "setMessageReaction",
                json!({"chat_id": 218485655, "message_id": 6557, "reaction": []}),
            )),
        ),
        (
            "typing",
            json!({"kind": "typing"}),
            Some((
                "sendChatAction",
                json!({"chat_id": 218485655, "action": "typing"}),
            )),
        ),
        (
            "read is a no-op",
            json!({"kind": "read", "message_id": "6557"}),
            None,
        ),
        (
            "raw with its method",
            json!({"kind": "raw", "method": "sendLocation", "raw": {"chat_id": 218485655, "latitude": 1.5, "longitude": 2.5}}),
            Some((
                "sendLocation",
                json!({"chat_id": 218485655, "latitude": 1.5, "longitude": 2.5}),
            )),
        ),
    ]
}

#[tokio::test]
async fn telegram_every_kind_reaches_the_bot_api_with_the_token_in_the_path() {
    let app = replies_app().await;
    mount_success(&app).await;
    let mut calls = 0;
    for (name, m, expected) in cases() {
        let resp = send(&app, &message("telegram", BOT, CHAT, m)).await;
        assert_eq!(resp.status(), 200, "{name}: {}", resp.text().await.unwrap());
        let text = resp.text().await.unwrap();
        assert!(
            !text.contains(BOT_TOKEN),
            "{name}: the bot token never reaches the CRM"
        );
        let answer: Value = serde_json::from_str(&text).unwrap();
        let reqs = received(&app.telegram).await;
        match expected {
            None => {
                assert_eq!(reqs.len(), calls, "{name}: no Bot API call");
                assert!(answer["id"].is_null());
            }
            Some((method, body)) => {
                calls += 1;
                assert_eq!(reqs.len(), calls, "{name}: one Bot API call");
                let r = reqs.last().unwrap();
                assert_eq!(r.method.as_str(), "POST");
                assert_eq!(r.url.path(), format!("/bot{BOT_TOKEN}/{method}"), "{name}");
                assert!(auth_header(r).is_none(), "{name}");
                assert_eq!(body_json(r), body, "{name}");
                if method.starts_with("send") && method != "sendChatAction" {
                    assert_eq!(answer["id"], "6558", "{name}");
                }
            }
        }
    }
}

#[tokio::test]
async fn telegram_refuses_what_it_cannot_do_naming_the_field() {
    let app = replies_app().await;
    mount_success(&app).await;
    let cases = [
        (
            json!({"kind": "template", "name": "n", "language": "en"}),
            "message.kind",
        ),
        (
            json!({"kind": "text", "text": "t", "reply_to": "not-a-number"}),
            "message.reply_to",
        ),
        (
            json!({"kind": "sticker", "media_id": "x", "caption": "c"}),
            "message.caption",
        ),
        (
            json!({"kind": "raw", "raw": {"chat_id": 1}}),
            "message.method",
        ),
        (
            json!({"kind": "interactive", "text": "t", "header": "h", "buttons": [{"id": "a", "title": "A"}]}),
            "message.header",
        ),
    ];
    for (m, field) in cases {
        let resp = send(&app, &message("telegram", BOT, CHAT, m.clone())).await;
        assert_eq!(resp.status(), 400, "{m}");
        let p = problem(resp).await;
        assert_eq!(p["field"], field, "{m}: {p}");
    }
    assert!(received(&app.telegram).await.is_empty());
}
