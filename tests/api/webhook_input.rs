//! The Meta webhook endpoint under bad input, a failing CRM and a vanished Redis: each
//! gets a clear answer, nothing is forwarded unverified, nothing accepted is lost.

use std::time::Duration;

use serde_json::Value;
use switchboard::delivery::BufferBackend;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

/// [`status_and_problem`], and every refusal names its code.
async fn problem(resp: reqwest::Response) -> (u16, Value) {
    let (status, v) = status_and_problem(resp).await;
    if status >= 400 {
        assert!(v["code"].is_string(), "{v}");
    }
    (status, v)
}

#[tokio::test]
async fn handshake_echoes_the_challenge_only_for_a_configured_verify_token() {
    let app = spawn_app().await;
    let ok = app
        .http
        .get(app.url(&format!(
            "/webhooks/meta?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    for q in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=test-verify-token&hub.challenge=1",
        "hub.mode=subscribe&hub.challenge=1",
        "",
    ] {
        let resp = app
            .http
            .get(app.url(&format!("/webhooks/meta?{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{q}");
    }
}

#[tokio::test]
async fn missing_or_wrong_signature_is_401_and_nothing_is_forwarded() {
    let app = spawn_app().await;
    let body = fixture("whatsapp/text.json");
    let cases: Vec<Option<String>> = vec![
        None,
        Some("sha256=".into()),
        Some("sha1=abc".into()),
        Some(meta_signature("another-secret", &body)),
        Some(meta_signature(APP_SECRET, b"a different body")),
    ];
    for sig in cases {
        let mut req = app
            .http
            .post(app.url("/webhooks/meta"))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(s) = &sig {
            req = req.header("x-hub-signature-256", s);
        }
        let (status, v) = problem(req.send().await.unwrap()).await;
        assert_eq!(status, 401, "{sig:?}");
        assert_eq!(v["code"], "unauthorized");
    }
    assert!(app.crm_requests().await.is_empty());
}

#[tokio::test]
async fn bad_bodies_get_a_clear_4xx_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let nested = "[".repeat(10_000) + &"]".repeat(10_000);
    let huge_array = format!(
        "{{\"object\":\"whatsapp_business_account\",\"entry\":[{}]}}",
        vec!["1"; 100_000].join(",")
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("malformed", b"{\"object\": ".to_vec(), 400),
        ("not utf-8", vec![0xff, 0xfe, 0x00, 0x7b], 400),
        (
            "unknown object",
            b"{\"object\":\"user\",\"entry\":[]}".to_vec(),
            400,
        ),
        ("garbage", b"hello there".to_vec(), 400),
        ("deeply nested", nested.into_bytes(), 400),
        (
            "huge array of garbage entries",
            huge_array.into_bytes(),
            400,
        ),
        (
            "entry not a list",
            b"{\"object\":\"page\",\"entry\":7}".to_vec(),
            400,
        ),
    ];
    for (name, body, expected) in cases {
        let resp = app.post_meta(&body).await;
        let (status, _) = problem(resp).await;
        assert_eq!(status, expected, "{name}");
    }
    // Wrong content type, correctly signed.
    let body = fixture("whatsapp/text.json");
    let resp = app
        .http
        .post(app.url("/webhooks/meta"))
        .header("content-type", "text/plain")
        .header("x-hub-signature-256", meta_signature(APP_SECRET, &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp).await.0, 415);
    assert!(app.crm_requests().await.is_empty());
    // Still serving.
    assert_eq!(app.post_meta(&body).await.status(), 200);
    assert_eq!(app.crm_requests().await.len(), 1);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = TestApp::builder().spawn().await;
    let big = vec![b' '; 1_048_577];
    let resp = app.post_meta(&big).await;
    let (status, v) = problem(resp).await;
    assert_eq!(status, 413);
    assert_eq!(v["code"], "payload_too_large");
}

#[tokio::test]
async fn a_crm_failure_is_answered_200_buffered_and_delivered_later_once() {
    let app = spawn_app().await;
    app.crm_fails_once().await;
    let body = fixture("whatsapp/text.json");
    let (status, v) = problem(app.post_meta(&body).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["buffered"], 1);
    assert_eq!(v["delivered"], 0);
    // Not marked seen while it waits; the worker delivers it with the same webhook-id.
    let reqs = app.wait_for_crm(CRM_PATH, 2).await;
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[0].headers.get("webhook-id"),
        reqs[1].headers.get("webhook-id")
    );
    // Once the worker has recorded the acceptance (the event left the buffer), it is
    // seen: Meta redelivering the webhook reaches the CRM no more.
    assert!(app.wait_drained(Duration::from_secs(10)).await);
    let (status, v) = problem(app.post_meta(&body).await).await;
    assert_eq!(status, 200);
    assert_eq!(v["duplicates"], 1);
    assert_eq!(app.crm_requests().await.len(), 2);
}

#[tokio::test]
async fn a_slow_crm_times_out_into_the_buffer_and_is_answered_200_quickly() {
    let app = TestApp::builder().delivery_timeout_ms(200).spawn().await;
    Mock::given(method("POST"))
        .and(path(CRM_PATH))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .with_priority(1)
        .mount(&app.crm)
        .await;
    let started = std::time::Instant::now();
    let (status, v) = problem(app.post_meta(&fixture("whatsapp/text.json")).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["buffered"], 1);
    assert!(started.elapsed() < Duration::from_secs(2));
    let depth = app
        .state
        .dispatcher
        .buffer()
        .depths(&["acme".to_owned()])
        .await
        .unwrap();
    assert_eq!(depth[0].depth, 1, "kept in the retry buffer");
}

#[tokio::test]
async fn redis_down_means_503_and_not_ready_then_recovery_without_restart() {
    let mut app = spawn_app().await;
    let body = fixture("whatsapp/text.json");
    assert_eq!(
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.redis_mut().stop();
    let (status, v) = problem(app.post_meta(&body).await).await;
    assert_eq!(status, 503);
    assert_eq!(v["code"], "upstream_unavailable");
    assert_eq!(
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(app.crm_requests().await.is_empty());

    // Redis returns (empty: no persistence); the channel is written again by its owner.
    app.redis_mut().restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = app
            .http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status();
        if ready == 200 || std::time::Instant::now() > deadline {
            assert_eq!(ready, 200, "readyz did not recover");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.put_channel(
        switchboard::channels::ChannelKind::Whatsapp,
        "106540352242922",
        "acme",
        "t",
    )
    .await;
    assert_eq!(app.post_meta(&body).await.status(), 200);
    assert_eq!(app.crm_requests().await.len(), 1);
}

#[tokio::test]
async fn instagram_and_page_objects_do_not_crash() {
    let app = spawn_app().await;
    for name in ["instagram/text.json", "messenger/text_quick_reply.json"] {
        let resp = app.post_meta(&fixture(name)).await;
        assert!(resp.status().is_success(), "{name}: {}", resp.status());
    }
}

#[tokio::test]
async fn unknown_routes_are_problem_json_404() {
    let app = spawn_app().await;
    let (status, v) = problem(app.http.get(app.url("/nope")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert_eq!(v["code"], "not_found");
}

#[tokio::test]
async fn crm_signature_verifies_with_the_python_standardwebhooks_library() {
    let app = spawn_app().await;
    assert_eq!(
        app.post_meta(&fixture("whatsapp/image.json"))
            .await
            .status(),
        200
    );
    let req = &app.crm_requests().await[0];
    let header = |n: &str| req.headers.get(n).unwrap().to_str().unwrap().to_owned();
    let script = r#"
import sys, json
from standardwebhooks.webhooks import Webhook
secret, wid, ts, sig = sys.argv[1:5]
body = sys.stdin.buffer.read()
payload = Webhook(secret).verify(body, {"webhook-id": wid, "webhook-timestamp": ts, "webhook-signature": sig})
print(payload["id"])
"#;
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            SIGNING_SECRET,
            &header("webhook-id"),
            &header("webhook-timestamp"),
            &header("webhook-signature"),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&req.body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python standardwebhooks refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        header("webhook-id")
    );
}
