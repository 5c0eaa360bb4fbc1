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

#[tokio::test]
async fn the_crm_request_is_signed_names_the_relay_and_sends_the_urls_credentials() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CRM_PATH))
        .respond_with(ResponseTemplate::new(204))
        .mount(&crm)
        .await;
    let with_user = crm.uri().replacen("http://", "http://relay:s%40cret@", 1);
    let app = TestApp::builder().crm_url(with_user).spawn().await;
    let v: serde_json::Value = app
        .post_meta(&wa_webhook(WA_ACME, &[("4915110000051", 1)]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["delivered"], 1, "{v}");
    let got = crm.received_requests().await.unwrap();
    assert_eq!(got.len(), 1);
    let req = &got[0];
    let header = |name: &str| {
        req.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    // relay:s@cret, Basic-encoded; the credentials never travel in the request line.
    assert_eq!(header("authorization"), "Basic cmVsYXk6c0BjcmV0");
    assert_eq!(req.url.username(), "");
    assert!(header("user-agent").starts_with("switchboard/"));
    assert_eq!(header("content-type"), "application/json");
    assert!(header("webhook-id").starts_with("evt_"));
    let event = verify_standard_webhook(SIGNING_SECRET, req);
    assert_eq!(event["type"], "message.received");
}

#[tokio::test]
async fn at_debug_each_log_line_of_a_request_carries_its_span_and_below_info_none_is_built() {
    let relay = TestApp::builder().log_level("debug").spawn_process().await;
    let body = wa_webhook(WA_ACME, &[("4915110000061", 1)]);
    assert_eq!(relay.post_meta_status(&body).await, 200);
    relay.wait_for_log("Meta webhook normalized.", 1).await;
    let line = relay
        .logs()
        .lines()
        .find(|l| l.contains("Meta webhook normalized."))
        .unwrap()
        .to_owned();
    let v: serde_json::Value = serde_json::from_str(&line).expect(&line);
    let span = &v["span"];
    assert_eq!(span["name"], "request", "{line}");
    assert_eq!(span["method"], "POST", "{line}");
    assert_eq!(span["route"], "/webhooks/meta", "{line}");
    let id = span["request_id"].as_str().unwrap_or_default();
    assert!(
        id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{line}"
    );
    // Never the path's query (a verify token) nor the body.
    assert!(!relay.logs().contains("4915110000061"), "{}", relay.logs());

    let quiet = TestApp::builder().log_level("warn").spawn_process().await;
    assert_eq!(quiet.post_meta_status(&body).await, 200);
    assert!(!quiet.logs().contains("request_id"), "{}", quiet.logs());
}
