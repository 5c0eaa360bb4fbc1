//! Who sent it (a chat, not the placeholder user, for messages on behalf of a chat),
//! Telegram Business updates (the business's own messages are echoes), and the update
//! kinds the relay asks for: each one is dispatched to its own normalization, never to
//! the fallback.

use super::*;
use switchboard::channels::telegram::inbound::UPDATE_KINDS;

#[tokio::test]
async fn a_message_sent_on_behalf_of_a_chat_is_credited_to_that_chat() {
    let app = spawn_telegram_app(TestApp::builder()).await;

    // An anonymous group admin: `from` is GroupAnonymousBot, the group is the sender.
    let e = only(&app, "telegram/message_anonymous_admin.json").await;
    assert_envelope(&e, "message.received", "anonymous admin");
    let d = &e["data"];
    assert_eq!(d["sender"]["id"], "-1001276785818");
    assert_eq!(d["sender"]["name"], "teloxide dev");
    assert_eq!(d["sender"]["username"], "teloxide_dev");
    assert_ne!(d["sender"]["id"], "1087968824");
    assert!(d["sender"].get("is_bot").is_none(), "{d}");
    assert_eq!(d["conversation"]["id"], "-1001276785818");
    assert_eq!(d["message"]["author_signature"], "Support");
    assert_eq!(d["message"]["text"], "We are looking into it.");

    // A linked channel's post forwarded into its discussion group: `from` is 777000.
    let e = only(&app, "telegram/message_automatic_forward.json").await;
    assert_envelope(&e, "message.received", "automatic forward");
    let d = &e["data"];
    assert_eq!(d["sender"]["id"], "-1002149282975");
    assert_eq!(d["sender"]["name"], "TON Spin");
    assert_eq!(d["sender"]["username"], "TONSpinChannel");
    assert_eq!(d["conversation"]["id"], "-1001293752024");
    assert_eq!(d["message"]["automatic_forward"], true);
    assert_eq!(d["message"]["forwarded"], true);

    // A channel post: the channel itself.
    let e = only(&app, "telegram/channel_post.json").await;
    assert_envelope(&e, "message.received", "channel post");
    assert_eq!(e["data"]["sender"]["id"], "-1002236736395");
    assert_eq!(e["data"]["sender"]["name"], "Test");
    assert_eq!(e["data"]["conversation"]["type"], "channel");

    // A person writing as themselves is still credited to `from`.
    let e = only(&app, "telegram/message_text.json").await;
    assert_eq!(e["data"]["sender"]["id"], "218485655");
}

#[tokio::test]
async fn business_updates_carry_their_connection() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    let conn = "Gk0Yt0kQ2EgBAAAAb1x6Ph9XzQo";

    let e = only(&app, "telegram/business_connection.json").await;
    assert_envelope(&e, "provider.event", "business_connection");
    assert_eq!(e["timestamp"], "2024-04-24T23:06:40Z");
    let d = &e["data"];
    assert_eq!(d["kind"], "business_connection");
    assert_eq!(d["business_connection_id"], conn);
    assert_eq!(d["sender"]["id"], "408258968");
    assert_eq!(d["user_chat_id"], "408258968");
    assert_eq!(d["enabled"], true);
    assert_eq!(d["can_reply"], true);

    let e = only(&app, "telegram/business_message.json").await;
    assert_envelope(&e, "message.received", "business_message");
    let d = &e["data"];
    assert_eq!(d["business_connection_id"], conn);
    assert_eq!(d["conversation"]["id"], "218485655");
    assert_eq!(d["sender"]["id"], "218485655");
    assert_eq!(d["message"]["id"], "812");
    assert_eq!(d["message"]["text"], "Is the shop open on Sunday?");

    let e = only(&app, "telegram/edited_business_message.json").await;
    assert_envelope(&e, "message.edited", "edited_business_message");
    assert_eq!(e["timestamp"], "2024-04-24T23:09:40Z");
    assert_eq!(e["data"]["business_connection_id"], conn);
    assert_eq!(
        e["data"]["message"]["text"],
        "Is the shop open on Sunday morning?"
    );

    let events = events_for(&app, &fixture("telegram/deleted_business_messages.json")).await;
    assert_eq!(events.len(), 2, "{events:#?}");
    for (e, id) in events.iter().zip(["812", "813"]) {
        assert_envelope(e, "message.deleted", "deleted_business_messages");
        assert_eq!(e["data"]["message"]["id"], id);
        assert_eq!(e["data"]["business_connection_id"], conn);
        assert_eq!(e["data"]["conversation"]["id"], "218485655");
    }
    assert_ne!(events[0]["id"], events[1]["id"]);
}

/// In a business chat (the business's private chat with a customer, chat id = the
/// customer's id) a message from anyone else is the business's own: `message.echo`.
#[tokio::test]
async fn a_business_message_written_by_the_business_is_an_echo() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    let conn = "Gk0Yt0kQ2EgBAAAAb1x6Ph9XzQo";

    // The business account replies from the Telegram app.
    let e = only(&app, "telegram/business_message_from_business.json").await;
    assert_envelope(&e, "message.echo", "business_message from the business");
    assert_eq!(e["timestamp"], "2024-04-24T23:09:10Z");
    let d = &e["data"];
    assert_eq!(d["business_connection_id"], conn);
    assert_eq!(d["conversation"]["id"], "218485655");
    assert_eq!(d["conversation"]["type"], "private");
    assert_eq!(d["sender"]["id"], "408258968");
    assert_eq!(d["sender"]["name"], "Hirrolot");
    assert_eq!(d["sender"]["username"], "hirrolot");
    assert_eq!(d["message"]["id"], "814");
    assert_eq!(d["message"]["kind"], "text");
    assert_eq!(d["message"]["text"], "Yes, from 10:00 to 14:00.");
    assert_eq!(d["message"]["reply_to"], "812");
    assert!(d.get("sent_by_relay").is_none(), "{d}");

    // The business edits its reply: still its own, at the time of the edit.
    let reply: Value =
        serde_json::from_slice(&fixture("telegram/business_message_from_business.json")).unwrap();
    let mut message = reply["business_message"].clone();
    message["edit_date"] = json!(1714000200);
    message["text"] = json!("Yes, from 10:00 to 15:00.");
    let edited = json!({"update_id": 306197415, "edited_business_message": message});
    let events = events_for(&app, edited.to_string().as_bytes()).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_envelope(
        e,
        "message.echo",
        "edited_business_message from the business",
    );
    assert_eq!(e["timestamp"], "2024-04-24T23:10:00Z");
    assert_eq!(e["data"]["sender"]["id"], "408258968");
    assert_eq!(e["data"]["conversation"]["id"], "218485655");
    assert_eq!(e["data"]["message"]["text"], "Yes, from 10:00 to 15:00.");

    // Sent by a bot on the business's behalf.
    let mut by_bot = reply.clone();
    by_bot["update_id"] = json!(306197416);
    by_bot["business_message"]["message_id"] = json!(815);
    by_bot["business_message"]["sender_business_bot"] = json!({"id": 5000000001_i64, "is_bot": true, "first_name": "Relay", "username": "relay_bot"});
    let events = events_for(&app, by_bot.to_string().as_bytes()).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_envelope(&events[0], "message.echo", "business_message sent by a bot");
    assert_eq!(events[0]["data"]["sender"]["id"], "408258968");

    // The customer's own message in the same chat stays received.
    let e = only(&app, "telegram/business_message.json").await;
    assert_envelope(&e, "message.received", "business_message from the customer");
    assert_eq!(e["data"]["sender"]["id"], "218485655");

    crate::event_schema::assert_events_match_schema(&app.crm_events().await);
}

#[tokio::test]
async fn member_join_and_reaction_count_updates_are_provider_events_with_their_fields() {
    let app = spawn_telegram_app(TestApp::builder()).await;

    let e = only(&app, "telegram/chat_member_joined.json").await;
    assert_envelope(&e, "provider.event", "chat_member");
    let d = &e["data"];
    assert_eq!(d["kind"], "chat_member");
    assert_eq!(d["action"], "added");
    assert_eq!(d["status"], "member");
    assert_eq!(d["old_status"], "left");
    assert_eq!(d["member"]["id"], "6962620676");
    assert_eq!(d["conversation"]["id"], "-1001276785818");

    let e = only(&app, "telegram/chat_join_request.json").await;
    assert_envelope(&e, "provider.event", "chat_join_request");
    assert_eq!(e["timestamp"], "2024-07-19T14:33:41Z");
    let d = &e["data"];
    assert_eq!(d["kind"], "chat_join_request");
    assert_eq!(d["sender"]["id"], "1459074222");
    assert_eq!(d["user_chat_id"], "1459074222");
    assert_eq!(d["bio"], "Rust and coffee");
    assert_eq!(d["invite_link"], "https://t.me/+AbCdEfGhIjKlMnOp");
    assert_eq!(d["conversation"]["id"], "-1002236736395");
    assert_eq!(d["raw"]["chat_join_request"]["user_chat_id"], 1459074222);

    let e = only(&app, "telegram/message_reaction_count.json").await;
    assert_envelope(&e, "provider.event", "message_reaction_count");
    assert_eq!(e["timestamp"], "2024-07-18T12:39:51Z");
    let d = &e["data"];
    assert_eq!(d["kind"], "message_reaction_count");
    assert_eq!(d["message"]["id"], "36");
    assert_eq!(
        d["reactions"],
        json!([
            {"type": "emoji", "emoji": "🗿", "total_count": 2},
            {"type": "emoji", "emoji": "🌭", "total_count": 1}
        ])
    );
}

#[tokio::test]
async fn every_update_kind_asked_for_has_a_fixture_and_its_own_normalization() {
    let app = spawn_telegram_app(TestApp::builder()).await;
    let mut fixtures: Vec<(String, Value)> = fixture_names("telegram")
        .into_iter()
        .map(|n| {
            let v: Value = serde_json::from_slice(&fixture(&n)).unwrap();
            (n, v)
        })
        .filter(|(_, v)| v.get("update_id").is_some())
        .collect();
    fixtures.sort_by(|a, b| a.0.cmp(&b.0));
    for kind in UPDATE_KINDS {
        let (name, _) = fixtures
            .iter()
            .find(|(_, v)| v.get(*kind).is_some())
            .unwrap_or_else(|| panic!("no fixture for the update kind {kind}"));
        let events = events_for(&app, &fixture(name)).await;
        assert!(!events.is_empty(), "{kind}: {name}");
        for e in &events {
            // The fallback for a shape not understood carries `kind` and nothing else.
            let d = e["data"].as_object().unwrap();
            let understood = e["type"] != "provider.event"
                || d.keys().any(|k| !matches!(k.as_str(), "kind" | "raw"));
            assert!(understood, "{kind}: {name} fell back: {e:#}");
            if e["type"] == "provider.event" {
                assert_eq!(e["data"]["kind"], *kind, "{name}");
            }
        }
    }
    // An update of a kind not asked for is still delivered, never dropped.
    let body = json!({"update_id": 9, "chat_boost": {"chat": {"id": -1, "type": "channel"}}});
    let events = events_for(&app, body.to_string().as_bytes()).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "provider.event");
    assert_eq!(events[0]["data"]["kind"], "chat_boost");
}
