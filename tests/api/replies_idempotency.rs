//! `Idempotency-Key`: the same key from the same tenant replays the first answer with
//! exactly one provider call, also when two requests race on two replicas sharing one
//! Redis; a key reused with another body is refused; a refusal frees the key.

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{API_KEY, OTHER_API_KEY};
use crate::replies_support::*;

fn wa_text(text: &str) -> Value {
    message(
        "whatsapp",
        WA,
        "15551234567",
        json!({"kind": "text", "text": text}),
    )
}

#[tokio::test]
async fn idempotency_key_replays_the_first_answer_with_one_provider_call() {
    let app = replies_app().await;
    mount_success(&app).await;
    let first = post_message(&app, Some(API_KEY), &wa_text("Hello!"), Some("order-42")).await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = post_message(&app, Some(API_KEY), &wa_text("Hello!"), Some("order-42")).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first, again);
    assert_eq!(again["to"], "15551234567");
    assert_eq!(received(&app.graph).await.len(), 1);

    // Stored under the key's name with a TTL of 24 h, holding the answer, not the message.
    let key = app.state.store.keys().idempotency("acme", "order-42");
    let ttl: i64 = app.redis().cli(&["TTL", &key]).trim().parse().unwrap();
    assert!((86_000..=86_400).contains(&ttl), "{ttl}");
    let stored = app.redis().cli(&["GET", &key]);
    assert!(stored.contains(first["id"].as_str().unwrap()));
    assert!(!stored.contains("Hello!"), "no message content: {stored}");
    assert!(!stored.contains("15551234567"), "no phone number: {stored}");

    // Another tenant's same key is its own.
    let theirs = message(
        "whatsapp",
        OTHER_WA,
        "1",
        json!({"kind": "text", "text": "x"}),
    );
    let resp = post_message(&app, Some(OTHER_API_KEY), &theirs, Some("order-42")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("idempotent-replayed").is_none());
    assert_eq!(received(&app.graph).await.len(), 2);
}

#[tokio::test]
async fn idempotency_record_holds_a_keyed_fingerprint_not_a_hash_of_the_body() {
    use sha2::{Digest, Sha256};
    let app = replies_app().await;
    mount_success(&app).await;
    let body = wa_text("Hello!");
    let resp = post_message(&app, Some(API_KEY), &body, Some("order-7")).await;
    assert_eq!(resp.status(), 200);
    let key = app.state.store.keys().idempotency("acme", "order-7");
    let stored: Value = serde_json::from_str(&app.redis().cli(&["GET", &key])).unwrap();
    let fp = stored["fp"].as_str().unwrap();
    // A plain hash would let a copy of Redis confirm a guessed phone number and text.
    let plain = hex::encode(Sha256::digest(serde_json::to_vec(&body).unwrap()));
    assert_eq!(fp.len(), 64);
    assert_ne!(fp, plain);
    // Another replica (same vault keys) recognises the body: a replay, not a 422.
    let replica = app.replica().await;
    let resp = app
        .http
        .post(format!("{}/v1/messages", replica.address()))
        .bearer_auth(API_KEY)
        .header("idempotency-key", "order-7")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["idempotent-replayed"], "true");
    assert_eq!(received(&app.graph).await.len(), 1);
}

#[tokio::test]
async fn idempotency_key_reused_with_another_body_is_422() {
    let app = replies_app().await;
    mount_success(&app).await;
    let resp = post_message(&app, Some(API_KEY), &wa_text("one"), Some("k1")).await;
    assert_eq!(resp.status(), 200);
    let resp = post_message(&app, Some(API_KEY), &wa_text("two"), Some("k1")).await;
    assert_eq!(resp.status(), 422);
    let p = problem(resp).await;
    assert_eq!(p["field"], "Idempotency-Key");
    assert_eq!(received(&app.graph).await.len(), 1);
}

#[tokio::test]
async fn idempotency_key_is_freed_when_the_provider_refused() {
    let app = replies_app().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": {"message": "Invalid parameter", "code": 100, "type": "OAuthException"}}),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.graph)
        .await;
    mount_success(&app).await;
    let resp = post_message(&app, Some(API_KEY), &wa_text("hi"), Some("k2")).await;
    assert_eq!(resp.status(), 502);
    // Nothing was sent: the same key may try again, and this time it goes through.
    let resp = post_message(&app, Some(API_KEY), &wa_text("hi"), Some("k2")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(received(&app.graph).await.len(), 2);
}

#[tokio::test]
async fn idempotency_two_concurrent_requests_on_two_replicas_make_one_provider_call() {
    let app = replies_app().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_json("whatsapp/outbound/send_response.json"))
                .set_delay(Duration::from_millis(600)),
        )
        .mount(&app.graph)
        .await;
    let mut replica = app.replica().await;
    let other = replica.address();
    let body = wa_text("Hello!");
    let post = |base: String| {
        let http = app.http.clone();
        let body = body.clone();
        async move {
            http.post(format!("{base}/v1/messages"))
                .header("authorization", format!("Bearer {API_KEY}"))
                .header("idempotency-key", "race-1")
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let (a, b) = tokio::join!(post(app.address.clone()), post(other.clone()));
    assert_eq!(a.status(), 200);
    assert_eq!(b.status(), 200);
    let replayed = [&a, &b]
        .iter()
        .filter(|r| r.headers().get("idempotent-replayed").is_some())
        .count();
    assert_eq!(replayed, 1, "one sent, the other waited for its answer");
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(a, b);
    assert_eq!(
        received(&app.graph).await.len(),
        1,
        "exactly one provider call"
    );
    replica.stop().await;
}

#[tokio::test]
async fn idempotency_waiting_request_gets_409_when_the_first_is_still_sending() {
    let app = replies_app_with(
        crate::helpers::TestApp::builder().toml("[replies]\nidempotency_wait_ms = 200\n"),
    )
    .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_json("whatsapp/outbound/send_response.json"))
                .set_delay(Duration::from_millis(1500)),
        )
        .mount(&app.graph)
        .await;
    let body = wa_text("Hello!");
    let first = post_message(&app, Some(API_KEY), &body, Some("slow-1"));
    let second = async {
        // Start once the first holds the key.
        let key = app.state.store.keys().idempotency("acme", "slow-1");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while app.redis().cli(&["EXISTS", &key]).trim() != "1"
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        post_message(&app, Some(API_KEY), &body, Some("slow-1")).await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 409);
    assert_eq!(second.headers()["retry-after"], "1");
    assert_eq!(problem(second).await["field"], "Idempotency-Key");
    assert_eq!(received(&app.graph).await.len(), 1);
    // Once done, the key replays.
    let third = post_message(&app, Some(API_KEY), &body, Some("slow-1")).await;
    assert_eq!(third.headers()["idempotent-replayed"], "true");
}
