//! Each provider's error answers, as the provider sends them, mapped to the contract's
//! codes with the provider's details.

use super::*;

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
