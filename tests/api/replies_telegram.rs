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
            "voice note",
            json!({"kind": "audio", "media_id": "AwACAgIAAxkBAAIC", "voice": true, "caption": "listen"}),
            Some((
                "sendVoice",
                json!({"chat_id": 218485655, "voice": "AwACAgIAAxkBAAIC", "caption": "listen"}),
            )),
        ),
        (
            "location (the Bot API's has no name or address)",
            json!({"kind": "location", "latitude": 37.44216251868683, "longitude": -122.16153582049394,
                   "name": "Philz Coffee", "address": "101 Forest Ave"}),
            Some((
                "sendLocation",
                json!({"chat_id": 218485655, "latitude": 37.44216251868683, "longitude": -122.16153582049394}),
            )),
        ),
        (
            "one contact, in WhatsApp's shape",
            json!({"kind": "contacts", "contacts": [{
                "name": {"formatted_name": "Barbara J. Johnson", "first_name": "Barbara", "last_name": "Johnson"},
                "phones": [{"phone": "+16505559999", "type": "WORK"}, {"phone": "+19175559999", "type": "HOME"}],
                "emails": [{"email": "bjohnson@luckyshrub.com", "type": "WORK"}]}]}),
            Some((
                "sendContact",
                json!({"chat_id": 218485655, "phone_number": "+16505559999", "first_name": "Barbara", "last_name": "Johnson"}),
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
            "an album of a photo and a video",
            json!({"kind": "media_group", "items": [
                {"kind": "image", "url": "https://crm.example.com/a.png", "caption": "Front"},
                {"kind": "video", "media_id": "BAACAgIAAxkBAAIC"}]}),
            Some((
                "sendMediaGroup",
                json!({"chat_id": 218485655, "media": [
                    {"type": "photo", "media": "https://crm.example.com/a.png", "caption": "Front"},
                    {"type": "video", "media": "BAACAgIAAxkBAAIC"}]}),
            )),
        ),
        (
            "a postback's callback answered",
            json!({"kind": "callback_answer", "callback_query_id": "4382bfdwdsb323b2d9", "text": "Saved", "show_alert": true}),
            Some((
                "answerCallbackQuery",
                json!({"callback_query_id": "4382bfdwdsb323b2d9", "text": "Saved", "show_alert": true}),
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
        (
            json!({"kind": "contacts", "contacts": [{"name": {"first_name": "A"}}]}),
            "message.contacts[0].phones",
        ),
        (
            json!({"kind": "interactive", "text": "t", "header": {"kind": "image", "media_id": "x"}, "buttons": [{"id": "a", "title": "A"}]}),
            "message.header",
        ),
        (
            json!({"kind": "callback_answer", "callback_query_id": "q", "text": "x".repeat(201)}),
            "message.text",
        ),
        (
            json!({"kind": "media_group", "items": [
                {"kind": "image", "media_id": "a"}, {"kind": "document", "media_id": "b"}]}),
            "message.items[1].kind",
        ),
        (
            json!({"kind": "contacts", "contacts": [
                {"name": {"first_name": "A"}, "phones": [{"phone": "+1"}]},
                {"name": {"last_name": "B"}, "phones": [{"phone": "+2"}]}]}),
            "message.contacts[1].name.first_name",
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

#[tokio::test]
async fn telegram_contacts_are_one_send_contact_each_and_the_first_id_is_answered() {
    let app = replies_app().await;
    mount_success(&app).await;
    let m = json!({"kind": "contacts", "reply_to": "6557", "contacts": [
        {"name": {"formatted_name": "Lucía Gómez", "first_name": "Lucía"}, "phones": [{"phone": "+5215512345678"}]},
        {"name": {"formatted_name": "Kenji"}, "phones": [{"phone": "+81312345678", "wa_id": "81312345678"}]}]});
    let resp = send(&app, &message("telegram", BOT, CHAT, m)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["id"], "6558");
    let reqs = received(&app.telegram).await;
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(r.url.path(), format!("/bot{BOT_TOKEN}/sendContact"));
    }
    // Only the first card quotes; a card without first_name uses formatted_name.
    assert_eq!(
        body_json(&reqs[0]),
        json!({"chat_id": 218485655, "reply_parameters": {"message_id": 6557},
               "phone_number": "+5215512345678", "first_name": "Lucía"})
    );
    assert_eq!(
        body_json(&reqs[1]),
        json!({"chat_id": 218485655, "phone_number": "+81312345678", "first_name": "Kenji"})
    );
}

/// A reply to a `business_message` names its connection: every send method carries it,
/// and `read` becomes `readBusinessMessage`.
#[tokio::test]
async fn telegram_business_replies_carry_the_business_connection_id() {
    let app = replies_app().await;
    mount_success(&app).await;
    let bc = "AbCdEfGh_business1";
    let cases = [
        (
            json!({"kind": "text", "text": "Hello"}),
            "sendMessage",
            json!({"business_connection_id": bc, "chat_id": 218485655, "text": "Hello"}),
        ),
        (
            json!({"kind": "image", "url": "https://crm.example.com/a.png"}),
            "sendPhoto",
            json!({"business_connection_id": bc, "chat_id": 218485655, "photo": "https://crm.example.com/a.png"}),
        ),
        (
            json!({"kind": "audio", "url": "https://crm.example.com/v.ogg", "voice": true}),
            "sendVoice",
            json!({"business_connection_id": bc, "chat_id": 218485655, "voice": "https://crm.example.com/v.ogg"}),
        ),
        (
            json!({"kind": "location", "latitude": 1.5, "longitude": 2.5}),
            "sendLocation",
            json!({"business_connection_id": bc, "chat_id": 218485655, "latitude": 1.5, "longitude": 2.5}),
        ),
        (
            json!({"kind": "contacts", "contacts": [{"name": {"first_name": "A"}, "phones": [{"phone": "+1"}]}]}),
            "sendContact",
            json!({"business_connection_id": bc, "chat_id": 218485655, "phone_number": "+1", "first_name": "A"}),
        ),
        (
            json!({"kind": "typing"}),
            "sendChatAction",
            json!({"business_connection_id": bc, "chat_id": 218485655, "action": "typing"}),
        ),
        (
            json!({"kind": "read", "message_id": "6557"}),
            "readBusinessMessage",
            json!({"business_connection_id": bc, "chat_id": 218485655, "message_id": 6557}),
        ),
    ];
    for (i, (m, method, expected)) in cases.into_iter().enumerate() {
        let mut body = message("telegram", BOT, CHAT, m.clone());
        body["business_connection_id"] = bc.into();
        let resp = send(&app, &body).await;
        assert_eq!(resp.status(), 200, "{m}: {}", resp.text().await.unwrap());
        let reqs = received(&app.telegram).await;
        assert_eq!(reqs.len(), i + 1, "{m}");
        let r = reqs.last().unwrap();
        assert_eq!(r.url.path(), format!("/bot{BOT_TOKEN}/{method}"), "{m}");
        assert_eq!(body_json(r), expected, "{m}");
    }
    // Where it cannot go: a reaction (setMessageReaction takes none), a raw body (sent as
    // given), another channel.
    let refused = [
        message(
            "telegram",
            BOT,
            CHAT,
            json!({"kind": "reaction", "message_id": "1", "emoji": "👍"}),
        ),
        json!({"channel": {"kind": "telegram", "id": BOT}, "method": "sendDice", "raw": {"chat_id": 1}}),
        message(
            "whatsapp",
            WA,
            "15551234567",
            json!({"kind": "text", "text": "x"}),
        ),
        message("messenger", PAGE, "1", json!({"kind": "text", "text": "x"})),
    ];
    for mut body in refused {
        body["business_connection_id"] = bc.into();
        let resp = send(&app, &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        assert_eq!(
            problem(resp).await["field"],
            "business_connection_id",
            "{body}"
        );
    }
    assert_eq!(received(&app.telegram).await.len(), 7);
    assert!(received(&app.graph).await.is_empty());
}

#[tokio::test]
async fn telegram_contacts_failing_after_the_first_are_not_retried_and_answer_504() {
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, ResponseTemplate};
    let app = replies_app().await;
    mount_success(&app).await;
    // The first card goes through; the Bot API then fails with a 5xx, which alone
    // would be retried.
    Mock::given(method("POST"))
        .and(path_regex(r"/sendContact$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "result": {"message_id": 7001, "chat": {"id": 218485655, "type": "private"}, "date": 1700000000}
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.telegram)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"/sendContact$"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .with_priority(2)
        .mount(&app.telegram)
        .await;
    let m = json!({"kind": "contacts", "contacts": [
        {"name": {"first_name": "A"}, "phones": [{"phone": "+1"}]},
        {"name": {"first_name": "B"}, "phones": [{"phone": "+2"}]}]});
    let resp = send(&app, &message("telegram", BOT, CHAT, m)).await;
    assert_eq!(resp.status(), 504);
    assert_eq!(problem(resp).await["code"], "upstream_unavailable");
    assert_eq!(
        received(&app.telegram).await.len(),
        2,
        "the first card is never sent twice"
    );
}

#[tokio::test]
async fn telegram_media_group_answers_the_first_message_id() {
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, ResponseTemplate};
    let app = replies_app().await;
    // sendMediaGroup answers the array of the messages it made.
    Mock::given(method("POST"))
        .and(path_regex(r"/sendMediaGroup$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": [
            {"message_id": 9001, "media_group_id": "13572468", "chat": {"id": 218485655, "type": "private"}, "date": 1700000000},
            {"message_id": 9002, "media_group_id": "13572468", "chat": {"id": 218485655, "type": "private"}, "date": 1700000000}]})))
        .mount(&app.telegram)
        .await;
    let m = json!({"kind": "media_group", "items": [
        {"kind": "document", "media_id": "BQAC1"}, {"kind": "document", "media_id": "BQAC2", "caption": "Both invoices"}]});
    let resp = send(&app, &message("telegram", BOT, CHAT, m)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["id"], "9001");
    let r = received(&app.telegram).await.pop().unwrap();
    assert_eq!(
        body_json(&r),
        json!({"chat_id": 218485655, "media": [
            {"type": "document", "media": "BQAC1"},
            {"type": "document", "media": "BQAC2", "caption": "Both invoices"}]})
    );
}
