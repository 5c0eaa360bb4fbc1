//! The webhook hot path's batching: the events of one webhook the CRM accepted are
//! marked seen together before the answer, and the same event twice in one webhook is
//! delivered once.

use crate::helpers::*;

#[tokio::test]
async fn every_event_of_a_batch_is_seen_before_the_answer_so_a_redelivery_is_all_duplicates() {
    let app = spawn_app().await;
    let body = wa_webhook(
        WA_ACME,
        &[
            ("4915110000031", 1),
            ("4915110000031", 2),
            ("4915110000032", 1),
        ],
    );
    let v: serde_json::Value = app.post_meta(&body).await.json().await.unwrap();
    assert_eq!(v["delivered"], 3, "{v}");
    let keys = app
        .redis()
        .cli(&["--scan", "--pattern", "switchboard:dedupe:*"]);
    assert_eq!(keys.lines().count(), 3, "{keys}");
    for key in keys.lines() {
        let ttl: i64 = app.redis().cli(&["TTL", key]).trim().parse().unwrap();
        assert!(ttl > 86_000, "{key} lives the dedupe window: {ttl}");
    }
    let v: serde_json::Value = app.post_meta(&body).await.json().await.unwrap();
    assert_eq!(v["duplicates"], 3, "{v}");
    assert_eq!(app.crm_requests().await.len(), 3);
}

#[tokio::test]
async fn the_same_event_twice_in_one_webhook_reaches_the_crm_once() {
    let app = spawn_app().await;
    let body = wa_webhook(WA_ACME, &[("4915110000041", 1), ("4915110000041", 1)]);
    let v: serde_json::Value = app.post_meta(&body).await.json().await.unwrap();
    assert_eq!(v["delivered"], 1, "{v}");
    assert_eq!(v["duplicates"], 1, "{v}");
    assert_eq!(app.crm_requests().await.len(), 1);
}
