//! Who may send (401/403/404) and which bodies are refused (400, the field named).

use super::*;

#[tokio::test]
async fn replies_without_a_valid_api_key_are_401() {
    let app = replies_app().await;
    for key in [None, Some("wrong-key"), Some("")] {
        let resp = post_message(&app, key, &wa_text(), None).await;
        assert_eq!(resp.status(), 401, "{key:?}");
        assert_eq!(problem(resp).await["code"], "unauthorized");
    }
    // A scheme other than Bearer.
    let resp = app
        .http
        .post(app.url("/v1/messages"))
        .header("authorization", format!("Basic {API_KEY}"))
        .json(&wa_text())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(received(&app.graph).await.is_empty());
}

#[tokio::test]
async fn replies_to_another_tenants_channel_are_403_and_unknown_channels_404() {
    let app = replies_app().await;
    mount_success(&app).await;
    let resp = post_message(&app, Some(OTHER_API_KEY), &wa_text(), None).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(problem(resp).await["code"], "forbidden");
    let theirs = message(
        "whatsapp",
        OTHER_WA,
        "1",
        json!({"kind": "text", "text": "x"}),
    );
    let resp = send(&app, &theirs).await;
    assert_eq!(resp.status(), 403);
    let unknown = message("telegram", "123", "1", json!({"kind": "text", "text": "x"}));
    let resp = send(&app, &unknown).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(problem(resp).await["code"], "channel_not_found");
    assert!(received(&app.graph).await.is_empty());
    assert!(received(&app.telegram).await.is_empty());
    // The other tenant may use its own channel.
    let resp = post_message(&app, Some(OTHER_API_KEY), &theirs, None).await;
    assert_eq!(resp.status(), 200);
    let r = received(&app.graph).await.pop().unwrap();
    assert_eq!(auth_header(&r).as_deref(), Some("Bearer globex-token"));
}

#[tokio::test]
async fn replies_with_invalid_bodies_are_400_naming_the_field() {
    let app = replies_app().await;
    let cases = [
        (
            json!({"channel": {"kind": "whatsapp", "id": WA}, "to": "1"}),
            "message",
        ),
        (
            json!({"channel": {"kind": "whatsapp"}, "to": "1", "message": {"kind": "text", "text": "a"}}),
            "channel.id",
        ),
        (
            message("whatsapp", WA, "1", json!({"kind": "text"})),
            "message.text",
        ),
        (
            message(
                "whatsapp",
                WA,
                "1",
                json!({"kind": "image", "url": "https://x", "media_id": "1"}),
            ),
            "message.media_id",
        ),
        (
            message(
                "whatsapp",
                WA,
                "1",
                json!({"kind": "template", "language": "en"}),
            ),
            "message.name",
        ),
        (
            message(
                "whatsapp",
                WA,
                "1",
                json!({"kind": "reaction", "emoji": "x"}),
            ),
            "message.message_id",
        ),
        (
            json!({"channel": {"kind": "whatsapp", "id": WA}, "to": "1", "message": {"kind": "text", "text": "a"}, "extra": 1}),
            "extra",
        ),
        (
            message(
                "whatsapp",
                WA,
                "1",
                json!({"kind": "location", "latitude": 91, "longitude": 0}),
            ),
            "message.latitude",
        ),
        (
            message(
                "whatsapp",
                WA,
                "1",
                json!({"kind": "location", "latitude": "1.5", "longitude": 0}),
            ),
            "message.latitude",
        ),
        (
            message(
                "whatsapp",
                WA,
                "1",
                json!({"kind": "location", "latitude": 1.5}),
            ),
            "message.longitude",
        ),
        (
            message(
                "whatsapp",
                WA,
                "1",
                json!({"kind": "contacts", "contacts": []}),
            ),
            "message.contacts",
        ),
        (
            message(
                "whatsapp",
                WA,
                "1",
                json!({"kind": "contacts", "contacts": [{"phones": [{"phone": "+1"}]}]}),
            ),
            "message.contacts[0].name",
        ),
        (
            message(
                "whatsapp",
                WA,
                "1",
                json!({"kind": "contacts", "contacts": [{"name": {"formatted_name": "A"}, "phones": ["+1"]}]}),
            ),
            "message.contacts[0].phones[0]",
        ),
        (
            message(
                "whatsapp",
                WA,
                "1",
                json!({"kind": "image", "url": "https://x.example/a.png", "voice": true}),
            ),
            "message.voice",
        ),
    ];
    for (body, field) in cases {
        let resp = send(&app, &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        let p = problem(resp).await;
        assert_eq!(p["code"], "invalid_request");
        assert_eq!(p["field"], field, "{body}: {p}");
    }
    let resp = app
        .http
        .post(app.url("/v1/messages"))
        .header("authorization", format!("Bearer {API_KEY}"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(problem(resp).await["field"], "body");
    let resp = post_message(&app, Some(API_KEY), &wa_text(), Some("has space")).await;
    assert_eq!(problem(resp).await["field"], "Idempotency-Key");
}
