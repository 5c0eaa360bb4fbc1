//! `POST /v1/messages` on WhatsApp: every kind, checked at the wiremock Graph API
//! (path, `Authorization`, body) against the documented request shapes
//! (`tests/fixtures/whatsapp/outbound/*.json`, from Meta's OpenAPI examples).

use serde_json::{json, Value};

use crate::replies_support::*;

const TO: &str = "{{Recipient-Phone-Number}}";

fn wa(m: Value) -> Value {
    message("whatsapp", WA, TO, m)
}

fn patched(rel: &str, pointer: &str, value: &str) -> Value {
    let mut v = fixture_json(rel);
    *v.pointer_mut(pointer).unwrap() = value.into();
    v
}

/// (what the CRM sends, what Graph must receive, whether a message id comes back)
fn cases() -> Vec<(&'static str, Value, Value, bool)> {
    vec![
        (
            "text",
            wa(json!({"kind": "text", "text": "text-message-content"})),
            fixture_json("whatsapp/outbound/send_text_request.json"),
            true,
        ),
        (
            "text with link preview and reply_to",
            wa(
                json!({"kind": "text", "text": "see https://example.com", "preview_url": true, "reply_to": "wamid.ABC"}),
            ),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO,
                   "context": {"message_id": "wamid.ABC"}, "type": "text",
                   "text": {"body": "see https://example.com", "preview_url": true}}),
            true,
        ),
        (
            "image by media id",
            wa(json!({"kind": "image", "media_id": "<IMAGE_OBJECT_ID>"})),
            fixture_json("whatsapp/outbound/send_image_by_id_request.json"),
            true,
        ),
        (
            "image by link",
            wa(json!({"kind": "image", "url": "https://crm.example.com/a.png"})),
            patched(
                "whatsapp/outbound/send_image_by_link_request.json",
                "/image/link",
                "https://crm.example.com/a.png",
            ),
            true,
        ),
        (
            "document by link with caption, as a reply",
            wa(
                json!({"kind": "document", "url": "https://crm.example.com/doc.pdf",
                      "caption": "<DOCUMENT_CAPTION_TEXT>", "reply_to": "<MSGID_OF_MSG_YOU_ARE_REPLYING_TO>"}),
            ),
            patched(
                "whatsapp/outbound/send_document_link_reply_request.json",
                "/document/link",
                "https://crm.example.com/doc.pdf",
            ),
            true,
        ),
        (
            "document with filename",
            wa(
                json!({"kind": "document", "media_id": "123", "filename": "invoice.pdf", "caption": "Your invoice"}),
            ),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "document",
                   "document": {"id": "123", "filename": "invoice.pdf", "caption": "Your invoice"}}),
            true,
        ),
        (
            "audio",
            wa(json!({"kind": "audio", "media_id": "456"})),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "audio", "audio": {"id": "456"}}),
            true,
        ),
        (
            "video with caption",
            wa(json!({"kind": "video", "url": "https://crm.example.com/v.mp4", "caption": "clip"})),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "video",
                   "video": {"link": "https://crm.example.com/v.mp4", "caption": "clip"}}),
            true,
        ),
        (
            "sticker",
            wa(json!({"kind": "sticker", "media_id": "789"})),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "sticker", "sticker": {"id": "789"}}),
            true,
        ),
        (
            "template",
            wa(
                json!({"kind": "template", "name": "template-name", "language": "language-and-locale-code",
                      "components": fixture_json("whatsapp/outbound/send_template_request.json")["template"]["components"].clone()}),
            ),
            fixture_json("whatsapp/outbound/send_template_request.json"),
            true,
        ),
        (
            "reply buttons",
            wa(
                json!({"kind": "interactive", "text": "<BUTTON_TEXT>", "buttons": [
                {"id": "<UNIQUE_BUTTON_ID_1>", "title": "<BUTTON_TITLE_1>"},
                {"id": "<UNIQUE_BUTTON_ID_2>", "title": "<BUTTON_TITLE_2>"}]}),
            ),
            fixture_json("whatsapp/outbound/send_interactive_buttons_request.json"),
            true,
        ),
        (
            "list",
            wa(
                json!({"kind": "interactive", "text": "Pick a slot", "header": "Booking", "footer": "Reply anytime",
                      "list": {"button": "Slots", "sections": [{"title": "Today", "rows": [
                          {"id": "t1", "title": "10:00", "description": "Morning"}, {"id": "t2", "title": "15:00"}]}]}}),
            ),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "interactive",
                   "interactive": {"type": "list", "header": {"type": "text", "text": "Booking"},
                                   "body": {"text": "Pick a slot"}, "footer": {"text": "Reply anytime"},
                                   "action": {"button": "Slots", "sections": [{"title": "Today", "rows": [
                                       {"id": "t1", "title": "10:00", "description": "Morning"},
                                       {"id": "t2", "title": "15:00"}]}]}}}),
            true,
        ),
        (
            "location",
            wa(
                json!({"kind": "location", "latitude": 37.44216251868683, "longitude": -122.16153582049394,
                      "name": "Philz Coffee", "address": "101 Forest Ave, Palo Alto, CA 94301"}),
            ),
            fixture_json("whatsapp/outbound/send_location_request.json"),
            true,
        ),
        (
            "location without labels",
            wa(json!({"kind": "location", "latitude": -33.8568, "longitude": 151.2153})),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "location",
                   "location": {"latitude": -33.8568, "longitude": 151.2153}}),
            true,
        ),
        (
            "contacts, passed as given",
            wa(json!({"kind": "contacts",
                      "contacts": fixture_json("whatsapp/outbound/send_contacts_request.json")["contacts"]})),
            fixture_json("whatsapp/outbound/send_contacts_request.json"),
            true,
        ),
        (
            "voice note",
            wa(json!({"kind": "audio", "media_id": "1013859600285441", "voice": true})),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "audio",
                   "audio": {"id": "1013859600285441", "voice": true}}),
            true,
        ),
        (
            "one link button: a call-to-action URL message, with an image header",
            wa(
                json!({"kind": "interactive", "text": "Tap the button below to see available dates.",
                      "header": {"kind": "image", "url": "https://www.luckyshrub.com/assets/lucky-shrub-banner-logo-v1.png"},
                      "footer": "Dates subject to change.",
                      "buttons": [{"url": "https://www.luckyshrub.com?clickID=kqDGWd24Q5TRwoEQTICY7W1JKoXvaZOXWAS7h1P76s0R7Paec4", "title": "See Dates"}]}),
            ),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "interactive",
                   "interactive": {"type": "cta_url",
                                   "header": {"type": "image", "image": {"link": "https://www.luckyshrub.com/assets/lucky-shrub-banner-logo-v1.png"}},
                                   "body": {"text": "Tap the button below to see available dates."},
                                   "footer": {"text": "Dates subject to change."},
                                   "action": {"name": "cta_url", "parameters": {"display_text": "See Dates",
                                              "url": "https://www.luckyshrub.com?clickID=kqDGWd24Q5TRwoEQTICY7W1JKoXvaZOXWAS7h1P76s0R7Paec4"}}}}),
            true,
        ),
        (
            "reply buttons with a document header",
            wa(json!({"kind": "interactive", "text": "Your invoice",
                      "header": {"kind": "document", "media_id": "1013859600285441", "filename": "invoice.pdf"},
                      "buttons": [{"id": "pay", "title": "Pay"}]})),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "interactive",
                   "interactive": {"type": "button",
                                   "header": {"type": "document", "document": {"id": "1013859600285441", "filename": "invoice.pdf"}},
                                   "body": {"text": "Your invoice"},
                                   "action": {"buttons": [{"type": "reply", "reply": {"id": "pay", "title": "Pay"}}]}}}),
            true,
        ),
        (
            "reaction",
            wa(json!({"kind": "reaction", "message_id": "wamid.HBgLM...", "emoji": "😀"})),
            fixture_json("whatsapp/outbound/send_reaction_request.json"),
            true,
        ),
        (
            "read",
            wa(
                json!({"kind": "read", "message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUYzMjEzNDM2RTZGQ0MzMDJBRgA="}),
            ),
            fixture_json("whatsapp/outbound/mark_read_request.json"),
            false,
        ),
        (
            "typing",
            wa(
                json!({"kind": "typing", "message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUYzMjEzNDM2RTZGQ0MzMDJBRgA="}),
            ),
            fixture_json("whatsapp/outbound/mark_read_and_typing_request.json"),
            false,
        ),
        (
            // Cloud API interactive `flow` (WhatsApp Flows, "Sending a Flow"):
            // flow_message_version 3, navigate to the first screen with its data.
            "flow, navigate by id",
            wa(
                json!({"kind": "interactive", "text": "Book your appointment", "footer": "It takes a minute",
                      "flow": {"id": "1197715005513101", "cta": "Book now", "token": "booking-42",
                               "screen": "BOOKING", "data": {"available_dates": ["2024-01-15"]}}}),
            ),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "interactive",
                   "interactive": {"type": "flow", "body": {"text": "Book your appointment"},
                                   "footer": {"text": "It takes a minute"},
                                   "action": {"name": "flow", "parameters": {
                                       "flow_message_version": "3", "flow_token": "booking-42",
                                       "flow_id": "1197715005513101", "flow_cta": "Book now",
                                       "flow_action": "navigate",
                                       "flow_action_payload": {"screen": "BOOKING", "data": {"available_dates": ["2024-01-15"]}}}}}}),
            true,
        ),
        (
            "flow, data_exchange by name, draft",
            wa(json!({"kind": "interactive", "text": "Tell us more",
                      "flow": {"name": "my_welcome_flow", "cta": "Start", "action": "data_exchange", "mode": "draft"}})),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "interactive",
                   "interactive": {"type": "flow", "body": {"text": "Tell us more"},
                                   "action": {"name": "flow", "parameters": {
                                       "flow_message_version": "3", "flow_name": "my_welcome_flow",
                                       "flow_cta": "Start", "mode": "draft", "flow_action": "data_exchange"}}}}),
            true,
        ),
    ]
}

#[tokio::test]
async fn whatsapp_a_business_scoped_user_id_is_sent_to_in_recipient_not_to() {
    let app = replies_app().await;
    mount_success(&app).await;
    for (to, field) in [
        ("US.13491208655302741918", "recipient"),
        ("US.ENT.11815799212886844830", "recipient"),
        ("16505551234", "to"),
    ] {
        let resp = send(
            &app,
            &message("whatsapp", WA, to, json!({"kind": "text", "text": "hi"})),
        )
        .await;
        assert_eq!(resp.status(), 200, "{to}");
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer["to"], to);
        let body = body_json(received(&app.graph).await.last().unwrap());
        assert_eq!(body[field], to, "{body}");
        let other = if field == "to" { "recipient" } else { "to" };
        assert!(body.get(other).is_none(), "{body}");
        assert_eq!(body["text"]["body"], "hi");
    }
}

#[tokio::test]
async fn a_flow_on_another_channel_is_a_400_naming_message_flow() {
    let app = replies_app().await;
    mount_success(&app).await;
    let flow = json!({"kind": "interactive", "text": "t", "flow": {"id": "1", "cta": "Go", "screen": "S"}});
    for (kind, id) in [("messenger", PAGE), ("instagram", IG), ("telegram", BOT)] {
        let resp = send(&app, &message(kind, id, "123", flow.clone())).await;
        assert_eq!(resp.status(), 400, "{kind}");
        let p = problem(resp).await;
        assert_eq!(p["code"], "invalid_request", "{kind}");
        assert_eq!(p["field"], "message.flow", "{kind}: {p}");
    }
    assert!(received(&app.graph).await.is_empty());
    assert!(received(&app.telegram).await.is_empty());
}

#[tokio::test]
async fn whatsapp_every_kind_reaches_graph_in_the_documented_shape() {
    let app = replies_app().await;
    mount_success(&app).await;
    let wamid = fixture_json("whatsapp/outbound/send_response.json")["messages"][0]["id"].clone();
    for (i, (name, input, expected, has_id)) in cases().into_iter().enumerate() {
        let resp = send(&app, &input).await;
        assert_eq!(resp.status(), 200, "{name}: {}", resp.text().await.unwrap());
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(
            answer["channel"],
            json!({"kind": "whatsapp", "id": WA}),
            "{name}"
        );
        assert_eq!(answer["to"], TO, "{name}");
        if has_id {
            assert_eq!(answer["id"], wamid, "{name}");
        } else {
            assert!(answer["id"].is_null(), "{name}");
        }
        let reqs = received(&app.graph).await;
        assert_eq!(reqs.len(), i + 1, "{name}: exactly one Graph call");
        let r = reqs.last().unwrap();
        assert_eq!(r.method.as_str(), "POST");
        assert_eq!(r.url.path(), format!("/v23.0/{WA}/messages"), "{name}");
        assert!(
            r.url.query().is_none(),
            "{name}: nothing in the query (no token in the URL)"
        );
        assert_eq!(
            auth_header(r).as_deref(),
            Some(&*format!("Bearer {WA_TOKEN}")),
            "{name}"
        );
        assert_eq!(body_json(r), expected, "{name}");
    }
}

#[tokio::test]
async fn whatsapp_raw_body_is_sent_byte_for_byte() {
    let app = replies_app().await;
    mount_success(&app).await;
    let raw = r#"{"messaging_product":"whatsapp","to":"15551234567","type":"location","location":{"latitude":"1.5","longitude":"2.5"}}"#;
    let body = format!(
        r#"{{"channel":{{"kind":"whatsapp","id":"{WA}"}},"message":{{"kind":"raw","raw":{raw}}}}}"#
    );
    let resp = app
        .http
        .post(app.url("/v1/messages"))
        .header(
            "authorization",
            format!("Bearer {}", crate::helpers::API_KEY),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let reqs = received(&app.graph).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(std::str::from_utf8(&reqs[0].body).unwrap(), raw);
}

#[tokio::test]
async fn whatsapp_what_it_cannot_do_is_a_400_naming_the_field_and_nothing_is_sent() {
    let app = replies_app().await;
    mount_success(&app).await;
    let cases = [
        (
            wa(
                json!({"kind": "interactive", "text": "t", "quick_replies": [{"id": "a", "title": "A"}]}),
            ),
            "message.quick_replies",
        ),
        (
            json!({"channel": {"kind": "whatsapp", "id": WA}, "comment_id": "1", "message": {"kind": "text", "text": "hi"}}),
            "comment_id",
        ),
        (
            wa(json!({"kind": "sticker", "media_id": "1", "caption": "no"})),
            "message.caption",
        ),
        (
            wa(json!({"kind": "text", "text": "t", "tag": "HUMAN_AGENT"})),
            "message.tag",
        ),
        (wa(json!({"kind": "typing"})), "message.message_id"),
        (
            wa(
                json!({"kind": "interactive", "text": "t", "buttons": [{"id": "a", "title": "A"}, {"url": "https://x.example", "title": "Go"}]}),
            ),
            "message.buttons[1].url",
        ),
        (
            wa(
                json!({"kind": "interactive", "text": "t", "buttons": [{"url": "https://x.example", "title": "Go"}, {"url": "https://y.example", "title": "Or"}]}),
            ),
            "message.buttons[1]",
        ),
        (
            wa(
                json!({"kind": "interactive", "text": "t", "header": {"kind": "image", "url": "https://x.example/a.png"},
                      "list": {"button": "b", "sections": [{"rows": [{"id": "1", "title": "x"}]}]}}),
            ),
            "message.header",
        ),
        (
            wa(json!({"kind": "callback_answer", "callback_query_id": "4382bfdwdsb323b2d9"})),
            "message.kind",
        ),
        (
            wa(
                json!({"kind": "media_group", "items": [{"kind": "image", "media_id": "1"}, {"kind": "image", "media_id": "2"}]}),
            ),
            "message.kind",
        ),
    ];
    for (body, field) in cases {
        let resp = send(&app, &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        let p = problem(resp).await;
        assert_eq!(p["code"], "invalid_request", "{body}");
        assert_eq!(p["field"], field, "{body}: {p}");
        assert!(p["detail"].as_str().unwrap().contains("WhatsApp"), "{p}");
    }
    assert!(received(&app.graph).await.is_empty());
}
