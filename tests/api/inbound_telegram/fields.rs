//! Every Telegram fixture, field by field, through `POST /webhooks/telegram/{bot_id}` to
//! a real CRM server, and every event against the published schema.

use super::*;

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
        // One event per update, but one per message id for deleted business messages.
        let expected = v["deleted_business_messages"]["message_ids"]
            .as_array()
            .map_or(1, Vec::len);
        assert_eq!(events.len(), expected, "{name}");
        assert_eq!(events[0]["channel"]["id"], BOT, "{name}");
    }
    assert_eq!(n, 25);
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
        // One event per update; deleted business messages give one per message id.
        sent += v["deleted_business_messages"]["message_ids"]
            .as_array()
            .map_or(1, Vec::len);
    }
    let events = app.crm_events().await;
    assert_eq!(events.len(), sent);
    crate::event_schema::assert_events_match_schema(&events);
}
