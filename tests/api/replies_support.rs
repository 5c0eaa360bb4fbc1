//! What the reply and media tests share: channels of every kind, a helper that posts
//! `/v1/messages`, and access to what the wiremock providers received.

use serde_json::Value;
use switchboard::channels::ChannelKind;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, Request, ResponseTemplate};

use crate::helpers::{fixture, TestApp, TestAppBuilder, API_KEY};

/// Registered by `spawn_app` for tenant acme with token `wa-token-secret`.
pub const WA: &str = "106540352242922";
pub const WA_TOKEN: &str = "wa-token-secret";
pub const PAGE: &str = "104000000000001";
pub const PAGE_TOKEN: &str = "EAAG-page-token-secret";
pub const IG: &str = "17841400000000001";
pub const IG_TOKEN: &str = "IGAA-ig-token-secret";
pub const BOT: &str = "7000000001";
pub const BOT_TOKEN: &str = "7000000001:AAH-bot-token-secret";
/// A WhatsApp channel of the other tenant (globex).
pub const OTHER_WA: &str = "999000999000";

pub fn fixture_json(rel: &str) -> Value {
    serde_json::from_slice(&fixture(rel)).unwrap()
}

/// An app with one channel of each kind for acme, and one WhatsApp channel for globex.
pub async fn replies_app_with(builder: TestAppBuilder) -> TestApp {
    let app = builder.spawn().await;
    app.put_channel(ChannelKind::Messenger, PAGE, "acme", PAGE_TOKEN)
        .await;
    app.put_channel(ChannelKind::Instagram, IG, "acme", IG_TOKEN)
        .await;
    app.put_channel(ChannelKind::Telegram, BOT, "acme", BOT_TOKEN)
        .await;
    app.put_channel(ChannelKind::Whatsapp, OTHER_WA, "globex", "globex-token")
        .await;
    app
}

pub async fn replies_app() -> TestApp {
    replies_app_with(TestApp::builder()).await
}

/// Mounts the usual success answers: Graph sends answer with `send_response.json` of
/// the channel, the Bot API with a message.
pub async fn mount_success(app: &TestApp) {
    Mock::given(method("POST"))
        .and(path_regex(format!(r"^/v23\.0/{WA}/messages$")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_json("whatsapp/outbound/send_response.json")),
        )
        .with_priority(200)
        .mount(&app.graph)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v23\.0/[0-9a-z]+/messages$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_json("messenger/outbound/send_response.json")),
        )
        .with_priority(210)
        .mount(&app.graph)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/bot[^/]+/[A-Za-z]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "ok": true,
            "result": {"message_id": 6558, "chat": {"id": 218485655, "type": "private"}, "date": 1700000000}
        })))
        .with_priority(200)
        .mount(&app.telegram)
        .await;
}

/// POSTs `/v1/messages` with an API key and an optional `Idempotency-Key`.
pub async fn post_message(
    app: &TestApp,
    api_key: Option<&str>,
    body: &Value,
    idempotency_key: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .http
        .post(app.url("/v1/messages"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap());
    if let Some(k) = api_key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    if let Some(k) = idempotency_key {
        req = req.header("idempotency-key", k);
    }
    req.send().await.unwrap()
}

pub async fn send(app: &TestApp, body: &Value) -> reqwest::Response {
    post_message(app, Some(API_KEY), body, None).await
}

/// Every request a mock server received.
pub async fn received(server: &wiremock::MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

pub fn body_json(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

pub fn auth_header(r: &Request) -> Option<String> {
    r.headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// A request body for `channel` (`kind`, `id`) to `to` with `message`.
pub fn message(kind: &str, id: &str, to: &str, message: Value) -> Value {
    serde_json::json!({"channel": {"kind": kind, "id": id}, "to": to, "message": message})
}

/// The problem+json body of a response, checking its content type.
pub async fn problem(resp: reqwest::Response) -> Value {
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert_eq!(ct, "application/problem+json");
    resp.json().await.unwrap()
}
