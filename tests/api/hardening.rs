//! Hostile input against the running relay: timestamps no formatter can write, and
//! (with the property tests in `src/`) no input that panics a handler.

use serde_json::Value;
use switchboard::channels::ChannelKind;

use crate::helpers::*;

const BOT: &str = "5000000001";
const BOT_TOKEN: &str = "5000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const TG_SECRET: &str = "cRm-Relay_7f3a9c2e1b4d";

/// The year of an RFC 3339 timestamp, which must be this year's (the time of receipt).
fn assert_is_now(ts: &Value) {
    let ts = ts.as_str().unwrap_or_default();
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    assert_eq!(ts.get(..4), now.get(..4), "{ts} is not the time of receipt");
}

#[tokio::test]
async fn far_future_whatsapp_timestamp_becomes_the_time_of_receipt() {
    let app = spawn_app().await;
    let mut body: Value = serde_json::from_slice(&fixture("whatsapp/text.json")).unwrap();
    let msgs = &mut body["entry"][0]["changes"][0]["value"]["messages"];
    let mut second = msgs[0].clone();
    msgs[0]["timestamp"] = "300000000000000".into();
    second["id"] = "wamid.second-of-the-batch".into();
    msgs.as_array_mut().unwrap().push(second);
    let resp = app.post_meta(&serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(resp.status(), 200);
    let events: Vec<Value> = app
        .wait_for_crm(CRM_PATH, 2)
        .await
        .iter()
        .map(|r| verify_standard_webhook(SIGNING_SECRET, r))
        .collect();
    assert_eq!(events.len(), 2, "the whole batch is delivered");
    assert_is_now(&events[0]["timestamp"]);
    assert_eq!(events[1]["timestamp"], "2025-06-08T20:59:43Z");
}

#[tokio::test]
async fn far_future_telegram_date_becomes_the_time_of_receipt() {
    let app = spawn_app().await;
    app.put_channel_with_secret(
        ChannelKind::Telegram,
        BOT,
        "acme",
        BOT_TOKEN,
        Some(TG_SECRET),
    )
    .await;
    for (field, value) in [("date", 300_000_000_000_i64), ("edit_date", i64::MAX)] {
        let mut body: Value =
            serde_json::from_slice(&fixture("telegram/message_text.json")).unwrap();
        body["message"][field] = value.into();
        body["update_id"] = (892252934 + value % 1000).into();
        app.forget_dedupe().await;
        let before = app.crm_requests().await.len();
        let resp = app
            .http
            .post(app.url(&format!("/webhooks/telegram/{BOT}")))
            .header("content-type", "application/json")
            .header("x-telegram-bot-api-secret-token", TG_SECRET)
            .body(serde_json::to_vec(&body).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{field}");
        let reqs = app.wait_for_crm(CRM_PATH, before + 1).await;
        let e = verify_standard_webhook(SIGNING_SECRET, &reqs[before]);
        if field == "date" {
            assert_is_now(&e["timestamp"]);
        } else {
            assert_is_now(&e["data"]["message"]["edited_at"]);
        }
    }
}
