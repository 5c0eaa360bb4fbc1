//! The flow cookie is `Secure` when `server.public_url` is https; and no token, code,
//! PIN or secret reaches the logs of the real binary running a connect flow (with a
//! refused code exchange and a failed step on the way).

use super::*;

#[tokio::test]
async fn the_flow_cookie_is_secure_when_the_public_url_is_https() {
    let app = TestApp::builder()
        .public_url("https://relay.test")
        .spawn()
        .await;
    let link = new_link(&app, "telegram").await;
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with("https://relay.test/connect/"), "{url}");
    let (status, _, browser) = open(&app, url).await;
    assert_eq!(status, 200);
    let attrs: Vec<&str> = browser.set_cookie.split(';').map(str::trim).collect();
    assert!(attrs[0].starts_with("switchboard_connect="), "{attrs:?}");
    for a in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/connect"] {
        assert!(attrs.contains(&a), "{a} missing: {attrs:?}");
    }
    let max_age: u64 = attrs
        .iter()
        .find_map(|a| a.strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1800).contains(&max_age), "{max_age}");
}

#[tokio::test]
async fn a_connect_flow_through_the_binary_logs_no_token_code_pin_or_secret() {
    let relay = TestApp::builder().log_level("trace").spawn_process().await;
    let graph = &relay.peers.graph;
    let http = &relay.peers.http;
    // A refused exchange whose error message echoes the code, then a flow whose first
    // registration fails (the retry resumes without a code).
    Mock::given(method("GET"))
        .and(path("/v23.0/oauth/access_token"))
        .and(query_param("code", "wa-code-refused"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": {"message": "Invalid verification code wa-code-refused", "code": 100}}),
        ))
        .mount(graph)
        .await;
    mock_whatsapp_graph(graph, true).await;
    let mut secrets: Vec<String> = vec![
        "wa-code-refused".into(),
        "wa-code-1".into(),
        "EAAbusiness-token".into(),
        APP_SECRET.into(),
    ];
    let mut last = Value::Null;
    for code in ["wa-code-refused", "wa-code-1"] {
        let link: Value = http
            .post(relay.url("/v1/connect-links"))
            .bearer_auth(API_KEY)
            .json(&json!({"kind": "whatsapp"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = link["url"].as_str().unwrap();
        secrets.push(url.rsplit('/').next().unwrap().to_owned());
        let resp = http
            .get(url.replace("http://relay.test", &relay.address))
            .send()
            .await
            .unwrap();
        let cookie = resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        secrets.push(cookie.split_once('=').unwrap().1.to_owned());
        let html = resp.text().await.unwrap();
        let form = attr(&html, "id=\"signup\"", "data-form").to_owned();
        secrets.push(form.clone());
        let ids = |code: Option<&str>| json!({"form": form, "code": code, "waba_id": "102290129340398", "phone_number_id": "106540352249999"});
        for body in [ids(Some(code)), ids(None)] {
            let resp = http
                .post(relay.url("/connect/flow/whatsapp"))
                .header("cookie", &cookie)
                .json(&body)
                .send()
                .await
                .unwrap();
            last = resp.json().await.unwrap();
            if code == "wa-code-refused" {
                break;
            }
        }
    }
    assert_eq!(last["next"], "/connect/flow/done", "{last}");
    relay.wait_for_log("Channel connected.", 1).await;
    relay
        .wait_for_log("Connect flow: provider step failed.", 2)
        .await;
    for r in graph.received_requests().await.unwrap() {
        if r.url.path().ends_with("/register") {
            let b: Value = serde_json::from_slice(&r.body).unwrap();
            // Quoted or as a field: six digits alone may occur by chance (a timestamp).
            let pin = b["pin"].as_str().unwrap().to_owned();
            for shape in [
                format!("\"{pin}\""),
                format!("pin={pin}"),
                format!("pin: {pin}"),
            ] {
                secrets.push(shape);
            }
        }
    }
    let logs = relay.logs();
    assert!(
        logs.contains("106540352249999"),
        "the logs were captured: {logs}"
    );
    for s in &secrets {
        assert!(s.len() >= 6, "{s}");
        assert!(!logs.contains(s.as_str()), "{s} appears in the logs");
    }
}
