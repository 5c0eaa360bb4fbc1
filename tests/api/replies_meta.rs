//! `POST /v1/messages` on Messenger and Instagram: every kind, checked at the wiremock
//! Graph API against the documented Send API shapes (`tests/fixtures/messenger/outbound`).

use serde_json::{json, Value};

use crate::replies_support::*;

const PSID: &str = "6547891234567890";

/// (name, message, Send API body without `recipient`, whether a message id comes back)
fn cases() -> Vec<(&'static str, Value, Value, bool)> {
    vec![
        (
            "text",
            json!({"kind": "text", "text": "hello, world!"}),
            fixture_json("messenger/outbound/send_text_request.json"),
            true,
        ),
        (
            "image by url",
            json!({"kind": "image", "url": "https://crm.example.com/files/invoice.png"}),
            fixture_json("messenger/outbound/send_image_url_request.json"),
            true,
        ),
        (
            "text with a human agent tag",
            json!({"kind": "text", "text": "Following up on your request", "tag": "HUMAN_AGENT"}),
            fixture_json("messenger/outbound/send_message_tag_request.json"),
            true,
        ),
        (
            "update",
            json!({"kind": "text", "text": "Your order shipped", "messaging_type": "UPDATE"}),
            json!({"recipient": {"id": PSID}, "messaging_type": "UPDATE", "message": {"text": "Your order shipped"}}),
            true,
        ),
        (
            "audio by attachment id",
            json!({"kind": "audio", "media_id": "1857777774821032"}),
            json!({"recipient": {"id": PSID}, "messaging_type": "RESPONSE",
                   "message": {"attachment": {"type": "audio", "payload": {"attachment_id": "1857777774821032"}}}}),
            true,
        ),
        (
            "video by url",
            json!({"kind": "video", "url": "https://crm.example.com/v.mp4"}),
            json!({"recipient": {"id": PSID}, "messaging_type": "RESPONSE",
                   "message": {"attachment": {"type": "video", "payload": {"url": "https://crm.example.com/v.mp4", "is_reusable": true}}}}),
            true,
        ),
        (
            "document as file",
            json!({"kind": "document", "url": "https://crm.example.com/d.pdf", "filename": "d.pdf"}),
            json!({"recipient": {"id": PSID}, "messaging_type": "RESPONSE",
                   "message": {"attachment": {"type": "file", "payload": {"url": "https://crm.example.com/d.pdf", "is_reusable": true}}}}),
            true,
        ),
        (
            "quick replies",
            json!({"kind": "interactive", "text": "Pick a color", "quick_replies": [
                {"id": "RED", "title": "Red"}, {"id": "GREEN", "title": "Green"}]}),
            json!({"recipient": {"id": PSID}, "messaging_type": "RESPONSE",
                   "message": {"text": "Pick a color", "quick_replies": [
                       {"content_type": "text", "title": "Red", "payload": "RED"},
                       {"content_type": "text", "title": "Green", "payload": "GREEN"}]}}),
            true,
        ),
        (
            "button template",
            json!({"kind": "interactive", "text": "What next?", "buttons": [
                {"id": "TALK", "title": "Talk to us"}, {"url": "https://shop.example.com", "title": "Shop"}]}),
            json!({"recipient": {"id": PSID}, "messaging_type": "RESPONSE",
                   "message": {"attachment": {"type": "template", "payload": {
                       "template_type": "button", "text": "What next?", "buttons": [
                           {"type": "postback", "title": "Talk to us", "payload": "TALK"},
                           {"type": "web_url", "url": "https://shop.example.com", "title": "Shop"}]}}}}),
            true,
        ),
        (
            "reaction",
            json!({"kind": "reaction", "message_id": "m_abc", "emoji": "❤️"}),
            json!({"recipient": {"id": PSID}, "sender_action": "react", "payload": {"message_id": "m_abc", "reaction": "❤️"}}),
            false,
        ),
        (
            "reaction removed",
            json!({"kind": "reaction", "message_id": "m_abc", "emoji": ""}),
            json!({"recipient": {"id": PSID}, "sender_action": "unreact", "payload": {"message_id": "m_abc"}}),
            false,
        ),
        (
            "read",
            json!({"kind": "read", "message_id": "m_abc"}),
            fixture_json("messenger/outbound/sender_action_mark_seen_request.json"),
            false,
        ),
        (
            "typing",
            json!({"kind": "typing"}),
            fixture_json("messenger/outbound/sender_action_typing_on_request.json"),
            false,
        ),
        (
            "typing off",
            json!({"kind": "typing", "on": false}),
            json!({"recipient": {"id": PSID}, "sender_action": "typing_off"}),
            false,
        ),
    ]
}

async fn every_kind(kind: &str, channel: &str, token: &str, path: &str) {
    let app = replies_app().await;
    mount_success(&app).await;
    let mid = fixture_json("messenger/outbound/send_response.json")["message_id"].clone();
    for (i, (name, m, expected, has_id)) in cases().into_iter().enumerate() {
        let resp = send(&app, &message(kind, channel, PSID, m)).await;
        assert_eq!(
            resp.status(),
            200,
            "{kind} {name}: {}",
            resp.text().await.unwrap()
        );
        let answer: Value = resp.json().await.unwrap();
        if has_id {
            assert_eq!(answer["id"], mid, "{kind} {name}");
        } else {
            assert!(answer["id"].is_null(), "{kind} {name}");
        }
        let reqs = received(&app.graph).await;
        assert_eq!(reqs.len(), i + 1, "{kind} {name}: one Graph call");
        let r = reqs.last().unwrap();
        assert_eq!(r.url.path(), path, "{kind} {name}");
        assert!(
            r.url.query().is_none(),
            "{kind} {name}: no token in the URL"
        );
        assert_eq!(auth_header(r).as_deref(), Some(&*format!("Bearer {token}")));
        assert_eq!(body_json(r), expected, "{kind} {name}");
    }
}

#[tokio::test]
async fn messenger_every_kind_reaches_graph_in_the_documented_shape() {
    every_kind(
        "messenger",
        PAGE,
        PAGE_TOKEN,
        &format!("/v23.0/{PAGE}/messages"),
    )
    .await;
}

#[tokio::test]
async fn instagram_every_kind_reaches_graph_in_the_documented_shape() {
    every_kind("instagram", IG, IG_TOKEN, "/v23.0/me/messages").await;
}

#[tokio::test]
async fn private_reply_to_a_comment_uses_comment_id_recipient() {
    let app = replies_app().await;
    mount_success(&app).await;
    for (kind, id) in [("instagram", IG), ("messenger", PAGE)] {
        let body = json!({"channel": {"kind": kind, "id": id}, "comment_id": "17900000000000001",
                          "message": {"kind": "text", "text": "Thanks! Check your inbox."}});
        let resp = send(&app, &body).await;
        assert_eq!(resp.status(), 200, "{kind}");
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer["to"], "17900000000000001");
        let r = received(&app.graph).await.pop().unwrap();
        assert_eq!(
            body_json(&r),
            json!({"recipient": {"comment_id": "17900000000000001"}, "messaging_type": "RESPONSE",
                   "message": {"text": "Thanks! Check your inbox."}}),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn messenger_and_instagram_refuse_what_they_cannot_do_naming_the_field() {
    let app = replies_app().await;
    mount_success(&app).await;
    let cases = [
        (
            json!({"kind": "image", "url": "https://x.example/a.png", "caption": "c"}),
            "message.caption",
        ),
        (json!({"kind": "sticker", "media_id": "1"}), "message.kind"),
        (
            json!({"kind": "template", "name": "n", "language": "en"}),
            "message.kind",
        ),
        (
            json!({"kind": "text", "text": "t", "reply_to": "m_1"}),
            "message.reply_to",
        ),
        (
            json!({"kind": "interactive", "text": "t", "list": {"button": "b", "sections": [{"rows": [{"id": "1", "title": "x"}]}]}}),
            "message.list",
        ),
        (
            json!({"kind": "text", "text": "t", "messaging_type": "MESSAGE_TAG"}),
            "message.tag",
        ),
        (
            json!({"kind": "location", "latitude": 1.5, "longitude": 2.5}),
            "message.kind",
        ),
        (
            json!({"kind": "callback_answer", "callback_query_id": "q"}),
            "message.kind",
        ),
        (
            json!({"kind": "contacts", "contacts": [{"name": {"formatted_name": "A"}, "phones": [{"phone": "+1"}]}]}),
            "message.kind",
        ),
    ];
    for (kind, id) in [("messenger", PAGE), ("instagram", IG)] {
        for (m, field) in &cases {
            let resp = send(&app, &message(kind, id, PSID, m.clone())).await;
            assert_eq!(resp.status(), 400, "{kind} {m}");
            let p = problem(resp).await;
            assert_eq!(p["field"], *field, "{kind} {m}: {p}");
        }
    }
    assert!(received(&app.graph).await.is_empty());
}
