//! `POST /v1/messages`: who may send (401/403/404), bad bodies (400, field named), every
//! provider error mapping, retries of what cannot have been delivered (and never of what
//! may have been), and `channel.reauth_required` at most once an hour per channel.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{fixture, verify_standard_webhook, API_KEY, OTHER_API_KEY, SIGNING_SECRET};
use crate::replies_support::*;

fn wa_text() -> Value {
    message(
        "whatsapp",
        WA,
        "15551234567",
        json!({"kind": "text", "text": "Hello!"}),
    )
}

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

async fn graph_answers(app: &crate::helpers::TestApp, status: u16, body: Value) {
    app.graph.reset().await;
    Mock::given(method("POST"))
        .and(path(format!("/v23.0/{WA}/messages")))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(&app.graph)
        .await;
}

fn graph_error(code: i64, message: &str) -> Value {
    json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}})
}

#[tokio::test]
async fn graph_errors_map_to_the_contract_codes_with_provider_details() {
    let app = replies_app().await;
    let fixture_json = |rel: &str| -> Value { serde_json::from_slice(&fixture(rel)).unwrap() };
    // (HTTP status, Graph body, our status, code, Retry-After)
    let cases: Vec<(u16, Value, u16, &str, Option<&str>)> = vec![
        (
            401,
            fixture_json("meta/graph_error_190_invalid_token.json"),
            424,
            "token_invalid",
            None,
        ),
        (
            400,
            graph_error(131047, "Re-engagement message"),
            422,
            "outside_window",
            None,
        ),
        (
            400,
            fixture_json("meta/graph_error_4_app_rate_limit.json"),
            429,
            "rate_limited",
            Some("60"),
        ),
        (
            400,
            fixture_json("meta/graph_error_80007_waba_rate_limit.json"),
            429,
            "rate_limited",
            Some("60"),
        ),
        (
            400,
            fixture_json("meta/graph_error_130429_whatsapp_throughput.json"),
            429,
            "rate_limited",
            Some("60"),
        ),
        (
            400,
            graph_error(17, "User request limit reached"),
            429,
            "rate_limited",
            Some("60"),
        ),
        (
            400,
            graph_error(32, "Page request limit reached"),
            429,
            "rate_limited",
            Some("60"),
        ),
        (
            400,
            graph_error(613, "Calls to this api have exceeded the rate limit."),
            429,
            "rate_limited",
            Some("60"),
        ),
        (
            400,
            graph_error(
                131056,
                "(Business Account, Consumer Account) pair rate limit hit",
            ),
            429,
            "rate_limited",
            Some("6"),
        ),
        (
            400,
            fixture_json("meta/graph_error_100_invalid_param.json"),
            502,
            "provider_error",
            None,
        ),
        // A permission error on a WhatsApp send: the token cannot reach the number.
        (
            403,
            fixture_json("meta/graph_error_200_permission.json"),
            424,
            "token_invalid",
            None,
        ),
        (
            400,
            fixture_json("meta/graph_error_10_permission.json"),
            424,
            "token_invalid",
            None,
        ),
        (
            400,
            fixture_json("meta/graph_error_551_person_unavailable.json"),
            422,
            "recipient_unavailable",
            None,
        ),
    ];
    for (status, body, ours, code, retry_after) in cases {
        graph_answers(&app, status, body.clone()).await;
        let resp = send(&app, &wa_text()).await;
        assert_eq!(resp.status(), ours, "{body}");
        assert_eq!(
            resp.headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap()),
            retry_after,
            "{body}"
        );
        let p = problem(resp).await;
        assert_eq!(p["code"], code, "{body}");
        assert_eq!(p["provider"]["name"], "graph");
        assert_eq!(p["provider"]["code"], body["error"]["code"], "{p}");
        assert!(
            p["provider"]["message"]
                .as_str()
                .unwrap()
                .starts_with(body["error"]["message"].as_str().unwrap()),
            "{p}"
        );
        assert_eq!(p["provider"]["fbtrace_id"], body["error"]["fbtrace_id"]);
        // Refusals are not retried.
        assert_eq!(received(&app.graph).await.len(), 1, "{body}");
    }
}

#[tokio::test]
async fn whatsapp_permission_errors_say_why_the_token_is_refused() {
    let app = replies_app().await;
    graph_answers(
        &app,
        403,
        fixture_json("meta/graph_error_200_permission.json"),
    )
    .await;
    let resp = send(&app, &wa_text()).await;
    assert_eq!(resp.status(), 424);
    let p = problem(resp).await;
    assert_eq!(p["code"], "token_invalid");
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("cannot reach this WhatsApp phone number"),
        "{p}"
    );
    assert!(detail.contains("200"), "{p}");
    // The tenant is told too, with the same reason.
    let deadline = Instant::now() + Duration::from_secs(10);
    let reason = loop {
        let found = app
            .crm_requests()
            .await
            .iter()
            .map(|r| verify_standard_webhook(SIGNING_SECRET, r))
            .find(|e| e["type"] == "channel.reauth_required");
        if let Some(e) = found {
            break e["data"]["reason"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no channel.reauth_required");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        reason.contains("cannot reach this WhatsApp phone number"),
        "{reason}"
    );
    assert!(reason.contains("code 200"), "{reason}");
}

/// Messenger and Instagram: the window refusal (Graph 10 with the product's subcode) is
/// `outside_window`, Graph 551 is `recipient_unavailable`, as each provider sends them.
#[tokio::test]
async fn messenger_and_instagram_window_and_recipient_errors_map_to_the_contract_codes() {
    let app = replies_app().await;
    // (channel kind, id, Graph path, HTTP status, fixture, our status, code)
    let cases = [
        (
            "messenger",
            PAGE,
            format!("/v23.0/{PAGE}/messages"),
            400u16,
            "meta/graph_error_10_2018278_messenger_outside_window.json",
            422u16,
            "outside_window",
        ),
        (
            "instagram",
            IG,
            "/v23.0/me/messages".to_owned(),
            403,
            "meta/graph_error_10_2534022_instagram_outside_window.json",
            422,
            "outside_window",
        ),
        (
            "messenger",
            PAGE,
            format!("/v23.0/{PAGE}/messages"),
            400,
            "meta/graph_error_551_person_unavailable.json",
            422,
            "recipient_unavailable",
        ),
        (
            "instagram",
            IG,
            "/v23.0/me/messages".to_owned(),
            400,
            "meta/graph_error_551_person_unavailable.json",
            422,
            "recipient_unavailable",
        ),
        // Code 10 without a window subcode stays a provider refusal off WhatsApp.
        (
            "messenger",
            PAGE,
            format!("/v23.0/{PAGE}/messages"),
            400,
            "meta/graph_error_10_permission.json",
            502,
            "provider_error",
        ),
    ];
    for (kind, id, graph_path, status, rel, ours, code) in cases {
        app.graph.reset().await;
        let body = fixture_json(rel);
        Mock::given(method("POST"))
            .and(path(graph_path.as_str()))
            .respond_with(ResponseTemplate::new(status).set_body_json(body.clone()))
            .mount(&app.graph)
            .await;
        let m = message(
            kind,
            id,
            "6547891234567890",
            json!({"kind": "text", "text": "Hello!"}),
        );
        let resp = send(&app, &m).await;
        assert_eq!(resp.status(), ours, "{kind} {rel}");
        let p = problem(resp).await;
        assert_eq!(p["code"], code, "{kind} {rel}: {p}");
        assert_eq!(p["provider"]["code"], body["error"]["code"], "{p}");
        assert_eq!(
            p["provider"]["subcode"], body["error"]["error_subcode"],
            "{p}"
        );
        assert_eq!(received(&app.graph).await.len(), 1, "{rel}: not retried");
    }
}

#[tokio::test]
async fn graph_retry_after_header_is_passed_on() {
    let app = replies_app().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("retry-after", "17")
                .set_body_json(graph_error(613, "slow down")),
        )
        .mount(&app.graph)
        .await;
    let resp = send(&app, &wa_text()).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "17");
}

#[tokio::test]
async fn telegram_errors_map_to_the_contract_codes() {
    let app = replies_app().await;
    let cases = [
        (
            "telegram/api_error_429_retry_after.json",
            429u16,
            429u16,
            "rate_limited",
            Some("5"),
        ),
        (
            "telegram/api_error_403_blocked.json",
            403,
            422,
            "recipient_unavailable",
            None,
        ),
        (
            "telegram/api_error_403_deactivated.json",
            403,
            422,
            "recipient_unavailable",
            None,
        ),
        (
            "telegram/api_error_400_migrated.json",
            400,
            502,
            "provider_error",
            None,
        ),
    ];
    for (rel, status, ours, code, retry_after) in cases {
        app.telegram.reset().await;
        let body: Value = serde_json::from_slice(&fixture(rel)).unwrap();
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body.clone()))
            .mount(&app.telegram)
            .await;
        let m = message(
            "telegram",
            BOT,
            "218485655",
            json!({"kind": "text", "text": "hi"}),
        );
        let resp = send(&app, &m).await;
        assert_eq!(resp.status(), ours, "{rel}");
        assert_eq!(
            resp.headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap()),
            retry_after
        );
        let text = resp.text().await.unwrap();
        assert!(
            !text.contains(BOT_TOKEN),
            "the bot token never reaches the CRM"
        );
        let p: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(p["code"], code, "{rel}");
        assert_eq!(p["provider"]["name"], "telegram");
        assert_eq!(p["provider"]["code"], body["error_code"]);
        assert_eq!(p["provider"]["message"], body["description"]);
        assert_eq!(received(&app.telegram).await.len(), 1, "{rel}: not retried");
    }
    // The group moved: the new chat id is given to the CRM.
    let resp = send(
        &app,
        &message("telegram", BOT, "1", json!({"kind": "text", "text": "hi"})),
    )
    .await;
    assert_eq!(
        problem(resp).await["provider"]["migrate_to_chat_id"],
        -1001234567890i64
    );
}

#[tokio::test]
async fn provider_5xx_is_retried_until_it_succeeds_with_one_delivery() {
    let app = replies_app().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(graph_error(2, "Service temporarily unavailable")),
        )
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&app.graph)
        .await;
    mount_success(&app).await;
    let resp = send(&app, &wa_text()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(received(&app.graph).await.len(), 3);

    // Telegram too.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.telegram)
        .await;
    let resp = send(
        &app,
        &message("telegram", BOT, "1", json!({"kind": "text", "text": "hi"})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(received(&app.telegram).await.len(), 2);
}

#[tokio::test]
async fn provider_5xx_past_the_deadline_is_503_upstream_unavailable() {
    let app = replies_app_with(
        crate::helpers::TestApp::builder().toml("[replies]\nretry_deadline_ms = 600\n"),
    )
    .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.graph)
        .await;
    let started = Instant::now();
    let resp = send(&app, &wa_text()).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(problem(resp).await["code"], "upstream_unavailable");
    assert!(started.elapsed() < Duration::from_secs(3));
    let n = received(&app.graph).await.len();
    assert!(
        (2..=6).contains(&n),
        "retried with backoff inside the deadline: {n} calls"
    );
}

#[tokio::test]
async fn timeout_after_sending_is_not_retried_and_answers_504() {
    let app = replies_app().await;
    // The test config gives Graph calls 3 s.
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_json("whatsapp/outbound/send_response.json"))
                .set_delay(Duration::from_millis(4500)),
        )
        .mount(&app.graph)
        .await;
    let resp = send(&app, &wa_text()).await;
    assert_eq!(resp.status(), 504);
    let p = problem(resp).await;
    assert_eq!(p["code"], "upstream_unavailable");
    assert!(p["detail"].as_str().unwrap().contains("may have been sent"));
    assert_eq!(received(&app.graph).await.len(), 1, "never sent twice");
}

#[tokio::test]
async fn token_invalid_sends_reauth_required_once_an_hour_per_channel() {
    let app = replies_app().await;
    graph_answers(
        &app,
        401,
        serde_json::from_slice(&fixture("meta/graph_error_190_invalid_token.json")).unwrap(),
    )
    .await;
    for _ in 0..3 {
        let resp = send(&app, &wa_text()).await;
        assert_eq!(resp.status(), 424);
        assert_eq!(problem(resp).await["code"], "token_invalid");
    }
    let reauth = |reqs: Vec<wiremock::Request>| -> Vec<Value> {
        reqs.iter()
            .map(|r| verify_standard_webhook(SIGNING_SECRET, r))
            .filter(|e| e["type"] == "channel.reauth_required")
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut events = Vec::new();
    while Instant::now() < deadline {
        events = reauth(app.crm_requests().await);
        if !events.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(events.len(), 1, "one notice for three refusals");
    let e = &events[0];
    assert_eq!(e["tenant"], "acme");
    assert_eq!(e["channel"], json!({"kind": "whatsapp", "id": WA}));
    assert!(e["data"]["reason"].as_str().unwrap().contains("190"));
    // The marker lives an hour, in the store (so every replica sees it).
    let key = app.state.store.keys().reauth_notice(
        &switchboard::channels::ChannelRef::parse(switchboard::channels::ChannelKind::Whatsapp, WA)
            .unwrap(),
    );
    let ttl: i64 = app.redis().cli(&["TTL", &key]).trim().parse().unwrap();
    assert!((3500..=3600).contains(&ttl), "{ttl}");
    // Still one, a moment later.
    let resp = send(&app, &wa_text()).await;
    assert_eq!(resp.status(), 424);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(reauth(app.crm_requests().await).len(), 1);
}

#[tokio::test]
async fn token_comes_from_the_vault_on_every_send_so_a_change_applies_at_once() {
    let app = replies_app().await;
    mount_success(&app).await;
    assert_eq!(send(&app, &wa_text()).await.status(), 200);
    app.put_channel(
        switchboard::channels::ChannelKind::Whatsapp,
        WA,
        "acme",
        "wa-token-rotated",
    )
    .await;
    assert_eq!(send(&app, &wa_text()).await.status(), 200);
    let reqs = received(&app.graph).await;
    assert_eq!(
        auth_header(&reqs[0]).as_deref(),
        Some("Bearer wa-token-secret")
    );
    assert_eq!(
        auth_header(&reqs[1]).as_deref(),
        Some("Bearer wa-token-rotated")
    );
    // Deleted: 404 at once.
    use switchboard::store::StoreBackend;
    app.state
        .store
        .delete_channel(
            &switchboard::channels::ChannelRef::parse(
                switchboard::channels::ChannelKind::Whatsapp,
                WA,
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(send(&app, &wa_text()).await.status(), 404);
}

#[tokio::test]
async fn a_token_echoed_in_a_graph_error_never_reaches_the_crm_or_the_reauth_event() {
    let app = replies_app().await;
    // Graph quotes a token it cannot parse in its message.
    graph_answers(
        &app,
        400,
        json!({"error": {
            "message": format!("Malformed access token {WA_TOKEN}"),
            "type": "OAuthException", "code": 190, "fbtrace_id": "AbC"
        }}),
    )
    .await;
    let resp = send(&app, &wa_text()).await;
    assert_eq!(resp.status(), 424);
    let body = resp.text().await.unwrap();
    assert!(
        !body.contains(WA_TOKEN),
        "the token reached the CRM: {body}"
    );
    assert!(body.contains("[REDACTED]"), "{body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reqs = app.crm_requests().await;
        if !reqs.is_empty() || Instant::now() > deadline {
            for r in &reqs {
                let text = String::from_utf8_lossy(&r.body);
                assert!(
                    !text.contains(WA_TOKEN),
                    "the token reached an event: {text}"
                );
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
