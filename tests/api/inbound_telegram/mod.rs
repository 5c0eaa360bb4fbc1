//! Telegram updates through `POST /webhooks/telegram/{bot_id}` to a real CRM server,
//! one file per suite: `fields` (every fixture field by field), `senders` (who sent
//! it, business updates, the update kinds asked for), `input` (secret, bad input,
//! outages), `set_webhook` (`set-webhook`, `webhook-info`, the CLI). The helpers they
//! share are here.

mod fields;
mod input;
mod senders;
mod set_webhook;

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
