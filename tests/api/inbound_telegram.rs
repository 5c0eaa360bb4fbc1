//! Telegram updates through `POST /webhooks/telegram/{bot_id}` to a real CRM server:
//! the secret header, every fixture field by field, bad input, and `set-webhook`
//! against a wiremock Telegram server.

use secrecy::ExposeSecret;
use serde_json::{json, Value};
use switchboard::channels::telegram::webhook;
use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::store::StoreBackend;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

const BOT: &str = "5000000001";
const BOT_TOKEN: &str = "5000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const SECRET: &str = "cRm-Relay_7f3a9c2e1b4d";

async fn spawn_telegram_app(builder: TestAppBuilder) -> TestApp {
    let app = builder.spawn().await;
    app.put_channel_with_secret(ChannelKind::Telegram, BOT, "acme", BOT_TOKEN, Some(SECRET))
        .await;
    app
}

async fn post_update(
    app: &TestApp,
    bot: &str,
    secret: Option<&str>,
    body: &[u8],
) -> reqwest::Response {
    let mut req = app
        .http
        .post(app.url(&format!("/webhooks/telegram/{bot}")))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = secret {
        req = req.header("x-telegram-bot-api-secret-token", s);
    }
    req.send().await.unwrap()
}

async fn events_for(app: &TestApp, body: &[u8]) -> Vec<Value> {
    app.forget_dedupe().await;
    let before = app.crm_requests().await.len();
    let resp = post_update(app, BOT, Some(SECRET), body).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    app.crm_requests().await[before..]
        .iter()
        .map(|r| verify_standard_webhook(SIGNING_SECRET, r))
        .collect()
}

async fn only(app: &TestApp, name: &str) -> Value {
    let events = events_for(app, &fixture(name)).await;
    assert_eq!(events.len(), 1, "{name}: {events:#?}");
    events.into_iter().next().unwrap()
}

fn media_url(file_id: &str) -> String {
    format!("http://relay.test/v1/media/telegram/{BOT}/{file_id}")
}

fn assert_envelope(e: &Value, event_type: &str, name: &str) {
    assert_eq!(e["type"], event_type, "{name}: {e:#}");
    assert_eq!(e["tenant"], "acme", "{name}");
    assert_eq!(
        e["channel"],
        json!({"kind": "telegram", "id": BOT}),
        "{name}"
    );
    assert!(e["id"].as_str().unwrap().starts_with("evt_"), "{name}");
}

async fn problem(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if status >= 400 {
        assert_eq!(ct.as_deref(), Some("application/problem+json"), "{v}");
    }
    (status, v)
}

#[tokio::test]
async fn every_telegram_fixture_is_normalized_field_by_field() {
    let app = spawn_telegram_app(TestApp::builder()).await;

    // text in a private chat
    let e = only(&app, "telegram/message_text.json").await;
    assert_envelope(&e, "message.received", "text");
    assert_eq!(e["timestamp"], "2019-09-26T17:19:02Z");
    let d = &e["data"];
    assert_eq!(d["conversation"]["id"], "218485655");
    assert_eq!(d["conversation"]["type"], "private");
    assert_eq!(d["sender"]["id"], "218485655");
    assert_eq!(d["sender"]["name"], "Waffle");
    assert_eq!(d["sender"]["username"], "WaffleLapkin");
    assert_eq!(d["message"]["id"], "6557");
    assert_eq!(d["message"]["kind"], "text");
    assert_eq!(d["message"]["text"], "hello there");
    assert!(d.get("raw").is_none());

    // /start
    let e = only(&app, "telegram/official_message_start.json").await;
    assert_envelope(&e, "message.received", "start");
    assert_eq!(e["timestamp"], "2015-09-07T17:05:32Z");
    let d = &e["data"];
    assert_eq!(d["message"]["text"], "/start");
    assert_eq!(d["message"]["command"], "/start");
    assert_eq!(d["message"]["id"], "1365");
    assert_eq!(d["conversation"]["id"], "1111111");
    assert_eq!(d["sender"]["name"], "Test Firstname Test Lastname");
    assert_eq!(d["sender"]["username"], "Testusername");

    // group command replying to a story message: reply_to, thread, group conversation
    let e = only(&app, "telegram/message_group_command_reply.json").await;
    assert_envelope(&e, "message.received", "group");
    assert_eq!(e["timestamp"], "2024-07-21T20:09:40Z");
    let d = &e["data"];
    assert_eq!(d["conversation"]["id"], "-1001293752024");
    assert_eq!(d["conversation"]["type"], "supergroup");
    assert_eq!(d["conversation"]["title"], "CryptoInside Chat");
    assert_eq!(d["sender"]["id"], "5964236329");
    assert_eq!(d["message"]["text"], "/report");
    assert_eq!(d["message"]["command"], "/report");
    assert_eq!(d["message"]["reply_to"], "134545");
    assert_eq!(d["message"]["thread_id"], "134545");

    // photo: the largest size; Cyrillic names byte-exact
    let e = only(&app, "telegram/message_photo_unicode_names.json").await;
    assert_envelope(&e, "message.received", "photo");
    let d = &e["data"];
    assert_eq!(d["sender"]["name"], "Андрей Власов");
    assert_eq!(d["sender"]["username"], "aka_dude");
    assert_eq!(d["message"]["kind"], "image");
    let big = "AgADAgAD36sxG-PX0UvQSXIn9rccdw-ACA4ABAEAAwIAA3kAAyTcBAABFgQ";
    assert_eq!(d["message"]["media"]["id"], big);
    assert_eq!(d["message"]["media"]["url"], media_url(big));
    assert_eq!(d["message"]["media"]["width"], 962);
    assert_eq!(d["message"]["media"]["mime_type"], "image/jpeg");
    assert!(d["message"].get("text").is_none());

    // document
    let e = only(&app, "telegram/official_message_document.json").await;
    assert_envelope(&e, "message.received", "document");
    let m = &e["data"]["message"];
    assert_eq!(m["kind"], "document");
    assert_eq!(m["media"]["id"], "AwADBAADbXXXXXXXXXXXGBdhD2l6_XX");
    assert_eq!(
        m["media"]["url"],
        media_url("AwADBAADbXXXXXXXXXXXGBdhD2l6_XX")
    );
    assert_eq!(m["media"]["mime_type"], "application/pdf");
    assert_eq!(m["media"]["filename"], "Testfile.pdf");
    assert_eq!(m["media"]["file_size"], 536392);

    // voice
    let e = only(&app, "telegram/official_message_voice.json").await;
    assert_envelope(&e, "message.received", "voice");
    let m = &e["data"]["message"];
    assert_eq!(m["kind"], "audio");
    assert_eq!(m["media"]["voice"], true);
    assert_eq!(m["media"]["mime_type"], "audio/ogg");
    assert_eq!(m["media"]["duration"], 5);
    assert_eq!(
        m["media"]["url"],
        media_url("AwADBAADbXXXXXXXXXXXGBdhD2l6_XX")
    );

    // dice: unsupported, with the raw update
    let e = only(&app, "telegram/message_dice.json").await;
    assert_envelope(&e, "message.received", "dice");
    assert_eq!(e["timestamp"], "2020-07-29T09:22:30Z");
    let d = &e["data"];
    assert_eq!(d["message"]["kind"], "unsupported");
    assert_eq!(d["message"]["provider_type"], "dice");
    assert_eq!(d["message"]["id"], "35410");
    assert_eq!(d["conversation"]["id"], "-1001276785818");
    assert_eq!(d["raw"]["message"]["dice"]["emoji"], "🎲");
    assert_eq!(d["raw"]["update_id"], 573255266);

    // edited message
    let e = only(&app, "telegram/official_edited_message.json").await;
    assert_envelope(&e, "message.edited", "edited");
    assert_eq!(e["timestamp"], "2015-09-07T17:23:20Z");
    let m = &e["data"]["message"];
    assert_eq!(m["id"], "1365");
    assert_eq!(m["kind"], "text");
    assert_eq!(m["text"], "Edited text");
    assert_eq!(e["data"]["conversation"]["id"], "1111111");

    // callback query on a message: the button's data and text
    let e = only(&app, "telegram/callback_query_with_message.json").await;
    assert_envelope(&e, "postback", "callback");
    let d = &e["data"];
    assert_eq!(d["payload"], "csat:yes:case-1042");
    assert_eq!(d["title"], "👍 Yes");
    assert_eq!(d["sender"]["id"], "218485655");
    assert_eq!(d["conversation"]["id"], "218485655");
    assert_eq!(d["message"]["id"], "6560");
    assert_eq!(d["callback_query_id"], "938403894834209123");

    // callback query on an inline message: no chat, the person's own
    let e = only(&app, "telegram/official_callback_query_inline.json").await;
    assert_envelope(&e, "postback", "inline");
    let d = &e["data"];
    assert_eq!(d["payload"], "Data from button callback");
    assert_eq!(d["sender"]["id"], "1111111");
    assert_eq!(d["conversation"]["id"], "1111111");
    assert_eq!(d["inline_message_id"], "1234csdbsk4839");
    assert!(d.get("title").is_none());

    // reaction
    let e = only(&app, "telegram/message_reaction.json").await;
    assert_envelope(&e, "message.reaction", "reaction");
    assert_eq!(e["timestamp"], "2024-07-18T12:34:42Z");
    let d = &e["data"];
    assert_eq!(d["message"]["id"], "35");
    assert_eq!(d["sender"]["id"], "1459074222");
    assert_eq!(d["conversation"]["id"], "-1002184233434");
    assert_eq!(d["emoji"], "🌭");
    assert_eq!(d["reactions"], json!([{"type": "emoji", "emoji": "🌭"}]));

    // the person blocked the bot
    let e = only(&app, "telegram/my_chat_member_kicked.json").await;
    assert_envelope(&e, "provider.event", "kicked");
    assert_eq!(e["timestamp"], "2022-02-12T14:55:26Z");
    let d = &e["data"];
    assert_eq!(d["kind"], "my_chat_member");
    assert_eq!(d["status"], "kicked");
    assert_eq!(d["old_status"], "member");
    assert_eq!(d["action"], "blocked");
    assert_eq!(d["conversation"]["id"], "0");
    assert_eq!(
        d["raw"]["my_chat_member"]["new_chat_member"]["status"],
        "kicked"
    );

    // an update kind from the future
    let e = only(&app, "telegram/unknown_update_kind.json").await;
    assert_envelope(&e, "provider.event", "unknown");
    assert_eq!(e["data"]["kind"], "new_update_kind");
    assert_eq!(e["data"]["raw"]["new_update_kind"]["some_field_idk"], 1);
}

#[tokio::test]
async fn every_telegram_update_fixture_yields_an_event() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    let mut n = 0;
    for name in fixture_names("telegram") {
        let body = fixture(&name);
        let v: Value = serde_json::from_slice(&body).unwrap();
        if v.get("update_id").is_none() {
            continue; // API answers and the secret cases, not updates
        }
        n += 1;
        let events = events_for(&app, &body).await;
        assert_eq!(events.len(), 1, "{name}");
        assert_eq!(events[0]["channel"]["id"], BOT, "{name}");
    }
    assert_eq!(n, 13);
}

#[tokio::test]
async fn telegram_media_kinds_and_unicode_are_normalized() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    let chat = json!({"id": 250918540, "type": "private", "first_name": "Zoë"});
    let from = json!({"id": 250918540, "is_bot": false, "first_name": "Zoë"});
    let update = |id: i64, fields: Value| {
        let mut m = json!({"message_id": id, "date": 1568290622, "chat": chat, "from": from});
        for (k, v) in fields.as_object().unwrap() {
            m[k] = v.clone();
        }
        json!({"update_id": 1000 + id, "message": m})
            .to_string()
            .into_bytes()
    };
    let f = |id: &str| json!({"file_id": id, "file_unique_id": format!("u{id}")});
    let cases = [
        (
            json!({"audio": {"file_id": "A1", "mime_type": "audio/mpeg", "title": "Song", "performer": "Me"}, "caption": "ça va? 🎵"}),
            "audio",
            "A1",
            Some("ça va? 🎵"),
        ),
        (
            json!({"video": f("V1"), "caption": "clip"}),
            "video",
            "V1",
            Some("clip"),
        ),
        (json!({"video_note": f("VN1")}), "video", "VN1", None),
        (
            json!({"sticker": {"file_id": "S1", "emoji": "😀", "is_animated": true}}),
            "sticker",
            "S1",
            None,
        ),
        (
            json!({"animation": f("G1"), "document": f("G1")}),
            "video",
            "G1",
            None,
        ),
        (
            json!({"document": f("D1"), "caption": "the file"}),
            "document",
            "D1",
            Some("the file"),
        ),
    ];
    for (i, (fields, kind, file_id, text)) in cases.into_iter().enumerate() {
        let e = &events_for(&app, &update(i as i64 + 1, fields)).await[0];
        let m = &e["data"]["message"];
        assert_eq!(m["kind"], kind, "{file_id}");
        assert_eq!(m["media"]["id"], file_id);
        assert_eq!(m["media"]["url"], media_url(file_id));
        assert_eq!(m["text"].as_str(), text, "{file_id}");
    }
    let e = &events_for(
        &app,
        &update(
            20,
            json!({"sticker": {"file_id": "S1", "emoji": "😀", "is_animated": true}}),
        ),
    )
    .await[0];
    assert_eq!(e["data"]["message"]["media"]["emoji"], "😀");
    assert_eq!(e["data"]["message"]["media"]["animated"], true);
    let e = &events_for(&app, &update(21, json!({"video_note": f("VN1")}))).await[0];
    assert_eq!(e["data"]["message"]["media"]["video_note"], true);
    // location, venue, contact
    let e = &events_for(
        &app,
        &update(
            30,
            json!({"location": {"latitude": 52.52, "longitude": 13.405}}),
        ),
    )
    .await[0];
    assert_eq!(e["data"]["message"]["kind"], "location");
    assert_eq!(
        e["data"]["message"]["location"],
        json!({"latitude": 52.52, "longitude": 13.405})
    );
    let e = &events_for(
        &app,
        &update(31, json!({"location": {"latitude": 1.5, "longitude": 2.5},
            "venue": {"location": {"latitude": 1.5, "longitude": 2.5}, "title": "Café Zoë", "address": "Straße 1"}})),
    )
    .await[0];
    assert_eq!(e["data"]["message"]["kind"], "location");
    assert_eq!(e["data"]["message"]["location"]["name"], "Café Zoë");
    assert_eq!(e["data"]["message"]["location"]["address"], "Straße 1");
    let e = &events_for(
        &app,
        &update(32, json!({"contact": {"phone_number": "+4915112345678", "first_name": "Jürgen", "last_name": "Groß", "user_id": 42}})),
    )
    .await[0];
    assert_eq!(e["data"]["message"]["kind"], "contacts");
    let c = &e["data"]["message"]["contacts"][0];
    assert_eq!(c["name"]["formatted_name"], "Jürgen Groß");
    assert_eq!(c["phones"][0]["phone"], "+4915112345678");
    assert_eq!(c["user_id"], "42");
    // a channel post has no `from`: the channel is the sender
    let body = json!({"update_id": 77, "channel_post": {"message_id": 5, "date": 1568290622,
        "chat": {"id": -1001000000001i64, "type": "channel", "title": "News 📰"},
        "sender_chat": {"id": -1001000000001i64, "type": "channel", "title": "News 📰"}, "text": "Breaking"}});
    let e = &events_for(&app, body.to_string().as_bytes()).await[0];
    assert_eq!(e["type"], "message.received");
    assert_eq!(e["data"]["sender"]["id"], "-1001000000001");
    assert_eq!(e["data"]["sender"]["name"], "News 📰");
    assert_eq!(e["data"]["conversation"]["type"], "channel");
    // an edited channel post
    let body = json!({"update_id": 78, "edited_channel_post": {"message_id": 5, "date": 1568290622, "edit_date": 1568290700,
        "chat": {"id": -1001000000001i64, "type": "channel", "title": "News"}, "text": "Breaking (fixed)"}});
    let e = &events_for(&app, body.to_string().as_bytes()).await[0];
    assert_eq!(e["type"], "message.edited");
    assert_eq!(e["data"]["message"]["text"], "Breaking (fixed)");
    // every reaction removed: emoji empty
    let body = json!({"update_id": 79, "message_reaction": {"chat": {"id": 5, "type": "private"}, "message_id": 9,
        "user": {"id": 5, "is_bot": false, "first_name": "A"}, "date": 1721306082,
        "old_reaction": [{"type": "emoji", "emoji": "👍"}], "new_reaction": []}});
    let e = &events_for(&app, body.to_string().as_bytes()).await[0];
    assert_eq!(e["type"], "message.reaction");
    assert_eq!(e["data"]["emoji"], "");
    // unblocked
    let body = json!({"update_id": 80, "my_chat_member": {"chat": {"id": 5, "type": "private"},
        "from": {"id": 5, "is_bot": false, "first_name": "A"}, "date": 1644677726,
        "old_chat_member": {"status": "kicked", "user": {"id": 1, "is_bot": true, "first_name": "b"}},
        "new_chat_member": {"status": "member", "user": {"id": 1, "is_bot": true, "first_name": "b"}}}});
    let e = &events_for(&app, body.to_string().as_bytes()).await[0];
    assert_eq!(e["data"]["action"], "unblocked");
    assert_eq!(e["data"]["status"], "member");
}

#[tokio::test]
async fn telegram_wrong_or_missing_secret_is_401_and_nothing_is_forwarded() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    let cases: Value =
        serde_json::from_slice(&fixture("telegram/webhook_secret_token_cases.json")).unwrap();
    assert_eq!(cases["configured_secret"], SECRET);
    let body = fixture("telegram/message_text.json");
    for case in cases["requests"].as_array().unwrap() {
        let header = case["header_value"].as_str();
        if header.is_some_and(|h| h.trim() != h) {
            // HTTP strips whitespace around header values (RFC 9110 §5.5), so the relay
            // never sees it; the comparison itself is exact (see the unit tests of
            // `verify_secret`).
            continue;
        }
        let accept = case["expect"] == "accept";
        let resp = post_update(&app, BOT, header, &body).await;
        if accept {
            assert_eq!(resp.status(), 200, "{case}");
        } else {
            let (status, v) = problem(resp).await;
            assert_eq!(status, 401, "{case}");
            assert_eq!(v["code"], "unauthorized");
        }
    }
    for bad in [
        "",
        "another-secret",
        "cRm-Relay_7f3a9c2e1b4",
        "cRm-Relay_7f3a9c2e1b4dX",
    ] {
        let (status, _) = problem(post_update(&app, BOT, Some(bad), &body).await).await;
        assert_eq!(status, 401, "{bad:?}");
    }
    // Only the accepted case was forwarded.
    assert_eq!(app.crm_requests().await.len(), 1);
}

#[tokio::test]
async fn telegram_channel_without_a_secret_refuses_everything() {
    let app = spawn_app().await;
    app.put_channel(ChannelKind::Telegram, BOT, "acme", BOT_TOKEN)
        .await;
    let body = fixture("telegram/message_text.json");
    for header in [None, Some(""), Some(SECRET)] {
        let (status, _) = problem(post_update(&app, BOT, header, &body).await).await;
        assert_eq!(status, 401, "{header:?}");
    }
    assert!(app.crm_requests().await.is_empty());
}

#[tokio::test]
async fn telegram_unknown_bot_is_404_channel_not_found() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    let body = fixture("telegram/message_text.json");
    for bot in [
        "5000000002",
        "abc",
        "5000000001x",
        "-1",
        "99999999999999999999999",
    ] {
        let (status, v) = problem(post_update(&app, bot, Some(SECRET), &body).await).await;
        assert_eq!(status, 404, "{bot}");
        assert_eq!(v["code"], "channel_not_found", "{bot}");
    }
    // Another kind's channel of the same id is not a Telegram bot.
    app.put_channel(ChannelKind::Messenger, "5000000003", "acme", "t")
        .await;
    let (status, _) = problem(post_update(&app, "5000000003", Some(SECRET), &body).await).await;
    assert_eq!(status, 404);
    assert!(app.crm_requests().await.is_empty());
}

#[tokio::test]
async fn telegram_bad_bodies_get_a_clear_4xx_and_the_server_keeps_serving() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    let nested = "[".repeat(10_000) + &"]".repeat(10_000);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("malformed", b"{\"update_id\": ".to_vec(), 400),
        ("not utf-8", vec![0xff, 0xfe, 0x00, 0x7b], 400),
        ("garbage", b"hello there".to_vec(), 400),
        ("deeply nested", nested.into_bytes(), 400),
        ("an array", b"[1,2,3]".to_vec(), 400),
        ("no update_id", b"{\"message\":{}}".to_vec(), 400),
        (
            "update_id not an integer",
            b"{\"update_id\":\"x\"}".to_vec(),
            400,
        ),
        ("update_id a float", b"{\"update_id\":1.5}".to_vec(), 400),
        ("empty", Vec::new(), 400),
    ];
    for (name, body, expected) in cases {
        let (status, v) = problem(post_update(&app, BOT, Some(SECRET), &body).await).await;
        assert_eq!(status, expected, "{name}: {v}");
        assert_eq!(v["code"], "invalid_request", "{name}");
    }
    // Wrong content type.
    let resp = app
        .http
        .post(app.url(&format!("/webhooks/telegram/{BOT}")))
        .header("content-type", "text/plain")
        .header("x-telegram-bot-api-secret-token", SECRET)
        .body(fixture("telegram/message_text.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp).await.0, 415);
    // Too large.
    let big = vec![b' '; 1_048_577];
    let (status, v) = problem(post_update(&app, BOT, Some(SECRET), &big).await).await;
    assert_eq!(status, 413);
    assert_eq!(v["code"], "payload_too_large");
    assert!(app.crm_requests().await.is_empty());
    // A known kind with a shape nobody expected is still delivered, not refused.
    let e = &events_for(&app, br#"{"update_id":5,"message":{"surprise":true}}"#).await[0];
    assert_eq!(e["type"], "provider.event");
    assert_eq!(e["data"]["kind"], "message");
    // Still serving.
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
async fn telegram_crm_failure_is_buffered_and_a_redelivered_update_is_not_delivered_twice() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    app.crm_fails_once().await;
    let body = fixture("telegram/message_photo_unicode_names.json");
    let (status, v) = problem(post_update(&app, BOT, Some(SECRET), &body).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["buffered"], 1);
    let reqs = app.wait_for_crm(CRM_PATH, 2).await;
    assert_eq!(
        reqs.len(),
        2,
        "one failed attempt, then the buffered delivery"
    );
    assert_eq!(
        reqs[0].headers.get("webhook-id"),
        reqs[1].headers.get("webhook-id")
    );
    // Telegram redelivering the update, once the worker has recorded the acceptance,
    // reaches the CRM no more.
    assert!(app.wait_drained(std::time::Duration::from_secs(10)).await);
    for _ in 0..3 {
        let (status, v) = problem(post_update(&app, BOT, Some(SECRET), &body).await).await;
        assert_eq!(status, 200);
        assert_eq!(v["duplicates"], 1);
    }
    assert_eq!(app.crm_requests().await.len(), 2);
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
    for u in [
        "message",
        "edited_message",
        "channel_post",
        "callback_query",
        "my_chat_member",
        "message_reaction",
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
async fn every_event_from_every_telegram_fixture_matches_the_published_schema() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    let mut sent = 0;
    for name in fixture_names("telegram") {
        let body = fixture(&name);
        let v: Value = serde_json::from_slice(&body).unwrap();
        if v.get("update_id").is_none() {
            continue;
        }
        app.forget_dedupe().await;
        let resp = post_update(&app, BOT, Some(SECRET), &body).await;
        assert_eq!(resp.status(), 200, "{name}");
        sent += 1;
    }
    let events = app.crm_events().await;
    assert_eq!(events.len(), sent);
    crate::event_schema::assert_events_match_schema(&events);
}

#[tokio::test]
async fn telegram_store_outage_is_503_then_recovers_without_restart() {
    let mut app = spawn_telegram_app(TestApp::builder()).await;
    let body = fixture("telegram/message_text.json");
    app.redis_mut().stop();
    let (status, v) = problem(post_update(&app, BOT, Some(SECRET), &body).await).await;
    assert_eq!(status, 503);
    assert_eq!(v["code"], "upstream_unavailable");
    assert!(app.crm_requests().await.is_empty());
    app.redis_mut().restart();
    // Redis came back empty: the operator writes the channel again; then it flows.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ok = app.state.store.ping().await.is_ok();
        if ok || std::time::Instant::now() > deadline {
            assert!(ok, "redis did not come back");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.put_channel_with_secret(ChannelKind::Telegram, BOT, "acme", BOT_TOKEN, Some(SECRET))
        .await;
    assert_eq!(
        post_update(&app, BOT, Some(SECRET), &body).await.status(),
        200
    );
    assert_eq!(app.crm_requests().await.len(), 1);
}

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
