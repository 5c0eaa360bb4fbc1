//! Channel ids are parsed, not only checked: Graph ids are digits, Telegram ids digits
//! with an optional leading `-`; anything else is refused naming the field, and a
//! provider payload naming such a channel is unroutable, never a panic. Ids in provider
//! URLs are encoded, one segment each.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;
use crate::replies_support::*;

async fn admin_put(app: &TestApp, rel: &str, body: Value) -> reqwest::Response {
    app.http
        .put(app.url(rel))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// `PUT path` over raw TCP: no client normalizes a `..` out of it.
async fn raw_admin_put(app: &TestApp, rel: &str, body: &Value) -> String {
    let body = body.to_string();
    let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    let req = format!(
        "PUT {rel} HTTP/1.1\r\nhost: relay.test\r\nauthorization: Bearer {ADMIN_TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut got = String::new();
    stream.read_to_string(&mut got).await.unwrap();
    got
}

#[tokio::test]
async fn admin_put_with_a_channel_id_not_of_its_kind_is_400_naming_the_field() {
    let app = spawn_app().await;
    let body = json!({"tenant": "acme", "token": "EAAG-token"});
    let answer = raw_admin_put(&app, "/admin/v1/channels/whatsapp/..", &body).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains(r#""field":"id""#), "{answer}");
    for id in ["abc", "1.5", "-1", "1%2F2", &"1".repeat(33)] {
        let resp = admin_put(
            &app,
            &format!("/admin/v1/channels/whatsapp/{id}"),
            body.clone(),
        )
        .await;
        assert_eq!(resp.status(), 400, "{id}");
        let p = problem(resp).await;
        assert_eq!(p["field"], "id", "{id}: {p}");
        assert!(p["detail"].as_str().unwrap().contains("digits"), "{p}");
    }
    // Telegram ids may be negative; a bot's token begins with it.
    let resp = admin_put(
        &app,
        "/admin/v1/channels/telegram/-1001234567890",
        json!({"tenant": "acme", "token": "-1001234567890:AAH-negative"}),
    )
    .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(
        app.redis()
            .cli(&[
                "HGET",
                "switchboard:channel:telegram:-1001234567890",
                "tenant"
            ])
            .trim(),
        "acme"
    );
}

#[tokio::test]
async fn a_send_naming_a_bad_channel_id_is_400_and_a_negative_telegram_id_parses() {
    let app = replies_app().await;
    for (kind, id) in [
        ("whatsapp", "abc"),
        ("messenger", ".."),
        ("telegram", "1-2"),
    ] {
        let resp = send(
            &app,
            &message(kind, id, "1", json!({"kind": "text", "text": "hi"})),
        )
        .await;
        assert_eq!(resp.status(), 400, "{kind}/{id}");
        assert_eq!(problem(resp).await["field"], "channel.id", "{kind}/{id}");
    }
    // A negative Telegram id is an id: not refused as one, only not connected here.
    let resp = send(
        &app,
        &message(
            "telegram",
            "-100123",
            "1",
            json!({"kind": "text", "text": "hi"}),
        ),
    )
    .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(problem(resp).await["code"], "channel_not_found");
    assert!(received(&app.graph).await.is_empty());
    assert!(received(&app.telegram).await.is_empty());
}

#[tokio::test]
async fn a_webhook_naming_a_non_digit_channel_is_unroutable_not_a_panic() {
    let app = spawn_app().await;
    let mut body: Value = serde_json::from_slice(&fixture("whatsapp/text.json")).unwrap();
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "../admin".into();
    let resp = app.post_meta(&serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(resp.status(), 200);
    let mut page: Value = serde_json::from_slice(&fixture("messenger/text_reply_to.json")).unwrap();
    page["entry"][0]["id"] = "page?x".into();
    let resp = app.post_meta(&serde_json::to_vec(&page).unwrap()).await;
    assert_eq!(resp.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(app.crm_requests().await.is_empty(), "nothing routed");
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("switchboard_events_unroutable_total")),
        "{text}"
    );
}

#[tokio::test]
async fn media_ids_reach_graph_and_telegram_as_one_encoded_segment() {
    let app = replies_app().await;
    let media_id = "a/b?c=1#..d";
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(
                json!({"error": {"message": "Unsupported get request", "code": 100}}),
            ),
        )
        .mount(&app.graph)
        .await;
    let resp = app
        .http
        .get(app.url(&format!(
            "/v1/media/whatsapp/{WA}/{}",
            switchboard::channels::urlencode_path_segment(media_id)
        )))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error() || resp.status().is_server_error());
    let reqs = received(&app.graph).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].url.path(), "/v23.0/a%2Fb%3Fc=1%23..d");
    let segments: Vec<_> = reqs[0].url.path_segments().unwrap().collect();
    assert_eq!(segments.len(), 2, "{segments:?}");
    assert_eq!(reqs[0].url.query(), Some(&*format!("phone_number_id={WA}")));
    // `..` alone cannot be a segment at all: refused, nothing called.
    let resp = app
        .http
        .get(app.url(&format!("/v1/media/whatsapp/{WA}/%2E%2E")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert_eq!(received(&app.graph).await.len(), 1);

    // Telegram: the file_path getFile gives is split on `/` only; `?` stays in its segment.
    Mock::given(method("POST"))
        .and(path(format!("/bot{BOT_TOKEN}/getFile")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true,
            "result": {"file_id": "F1", "file_unique_id": "U1", "file_path": "photos/x?y=1..jpg"}
        })))
        .mount(&app.telegram)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/file/bot{BOT_TOKEN}/photos/x%3Fy=1..jpg")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(b"jpg".to_vec(), "image/jpeg"))
        .expect(1)
        .mount(&app.telegram)
        .await;
    let resp = app
        .http
        .get(app.url(&format!("/v1/media/telegram/{BOT}/F1")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let download = received(&app.telegram).await.pop().unwrap();
    assert_eq!(download.url.query(), None, "the `?` did not start a query");
}
