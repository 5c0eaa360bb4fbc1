//! The connect pages driven over HTTP as a browser would (the flow cookie carried by
//! hand), against wiremock peers for the Graph API, Instagram and Telegram: what the
//! peers received, what Redis holds, what the CRM received (verified with the
//! `standardwebhooks` crate), and every refusal storing nothing.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::connect_links::create_link;
use crate::helpers::*;

const BOT_TOKEN: &str = "7001234567:AAH-telegram-bot-token-9xyzabcdefgh";
const BOT_ID: &str = "7001234567";
const HOSTS: &str = "[connect]\nreturn_url_hosts = [\"crm.example.com\"]\n";

/// A browser's view of one flow: the cookie, the last page.
pub struct Browser {
    pub cookie: Option<String>,
    pub set_cookie: String,
}

fn local(app: &TestApp, url: &str) -> String {
    if url.starts_with('/') {
        app.url(url)
    } else {
        url.replace("http://relay.test", &app.address)
    }
}

/// Opens a link's URL: the page and its flow cookie.
pub async fn open(app: &TestApp, url: &str) -> (u16, String, Browser) {
    let resp = app.http.get(local(app, url)).send().await.unwrap();
    let status = resp.status().as_u16();
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let cookie = set_cookie
        .split(';')
        .next()
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    let body = resp.text().await.unwrap();
    (status, body, Browser { cookie, set_cookie })
}

fn attr<'a>(html: &'a str, marker: &str, name: &str) -> &'a str {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in {html}"));
    let rest = &html[at..];
    let start = rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    let end = rest[start..].find('"').unwrap();
    &rest[start..start + end]
}

fn form_token(html: &str) -> String {
    attr(html, "name=\"form\"", "value").to_owned()
}

async fn post_form(app: &TestApp, b: &Browser, p: &str, form: &[(&str, &str)]) -> (u16, String) {
    let mut req = app.http.post(app.url(p)).form(form);
    if let Some(c) = &b.cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn get_page(app: &TestApp, b: Option<&Browser>, p: &str) -> (u16, String) {
    let mut req = app.http.get(local(app, p));
    if let Some(c) = b.and_then(|b| b.cookie.as_ref()) {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

pub(crate) async fn link_status(app: &TestApp, id: &str) -> Value {
    app.http
        .get(app.url(&format!("/v1/connect-links/{id}")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub(crate) fn hget(app: &TestApp, key: &str, field: &str) -> String {
    app.redis().cli(&["HGET", key, field]).trim().to_owned()
}

pub(crate) async fn connected_event(app: &TestApp) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for r in app.crm_requests_at(CRM_PATH).await {
            let body = verify_standard_webhook(SIGNING_SECRET, &r);
            if body["type"] == "channel.connected" {
                return body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no channel.connected reached the CRM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn mock_telegram(app: &TestApp, webhook_url: &str) {
    Mock::given(method("POST"))
        .and(path(format!("/bot{BOT_TOKEN}/getMe")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {"id": 7001234567i64, "is_bot": true, "first_name": "Acme Support", "username": "acme_support_bot"}})))
        .mount(&app.telegram)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/bot{BOT_TOKEN}/getWebhookInfo")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {"url": webhook_url, "has_custom_certificate": false, "pending_update_count": 0}})))
        .mount(&app.telegram)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/bot{BOT_TOKEN}/setWebhook")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": true})))
        .mount(&app.telegram)
        .await;
}

pub(crate) fn assert_clean(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{s} appears in {text}");
    }
}

#[tokio::test]
async fn telegram_link_connects_the_bot_and_tells_the_crm() {
    let app = TestApp::builder().toml(HOSTS).spawn().await;
    mock_telegram(&app, "").await;
    let link: Value = create_link(&app, API_KEY, json!({"kind": "telegram", "external_ref": "draft-7", "return_url": "https://crm.example.com/channels"}))
        .await
        .json()
        .await
        .unwrap();
    let url = link["url"].as_str().unwrap();
    let (status, html, browser) = open(&app, url).await;
    assert_eq!(status, 200);
    assert!(html.contains("name=\"token\""), "{html}");
    // The only cookie: the flow's, HttpOnly and SameSite=Lax (not Secure on http).
    let sc = &browser.set_cookie;
    assert!(sc.starts_with("switchboard_connect="), "{sc}");
    assert!(
        sc.contains("HttpOnly") && sc.contains("SameSite=Lax") && sc.contains("Max-Age="),
        "{sc}"
    );
    assert!(!sc.contains("Secure"), "{sc}");
    let secret = url.rsplit('/').next().unwrap();
    assert_clean(&html, &[secret]);

    let form = form_token(&html);
    let (status, done) = post_form(
        &app,
        &browser,
        "/connect/flow/telegram",
        &[("form", &form), ("token", BOT_TOKEN)],
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("id=\"done\""), "{done}");
    assert!(done.contains("https://crm.example.com/channels"), "{done}");
    assert_clean(&done, &[BOT_TOKEN, secret]);

    // Telegram got setWebhook with the relay's URL and a fresh secret.
    let set = app
        .telegram
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path().ends_with("/setWebhook"))
        .unwrap();
    let body: Value = serde_json::from_slice(&set.body).unwrap();
    assert_eq!(
        body["url"],
        format!("http://relay.test/webhooks/telegram/{BOT_ID}")
    );
    let ws = body["secret_token"].as_str().unwrap();
    assert!(ws.len() >= 32);
    assert!(body["allowed_updates"]
        .as_array()
        .unwrap()
        .contains(&json!("message_reaction")));

    // Redis: the channel, Fernet-encrypted.
    let key = format!("switchboard:channel:telegram:{BOT_ID}");
    assert_eq!(hget(&app, &key, "tenant"), "acme");
    assert_eq!(
        &*app.keyring.decrypt(&hget(&app, &key, "token")).unwrap(),
        BOT_TOKEN.as_bytes()
    );
    assert_eq!(
        &*app
            .keyring
            .decrypt(&hget(&app, &key, "webhook_secret"))
            .unwrap(),
        ws.as_bytes()
    );
    assert_clean(&app.redis().dump_all(), &[BOT_TOKEN, ws, secret]);

    let got = link_status(&app, link["id"].as_str().unwrap()).await;
    assert_eq!(got["status"], "connected");
    assert_eq!(got["channel"], json!({"kind": "telegram", "id": BOT_ID}));

    let event = connected_event(&app).await;
    assert_eq!(event["tenant"], "acme");
    assert_eq!(event["channel"], json!({"kind": "telegram", "id": BOT_ID}));
    assert_eq!(event["data"]["connect_link"]["id"], link["id"]);
    assert_eq!(event["data"]["external_ref"], "draft-7");
    assert_eq!(event["data"]["display"]["username"], "acme_support_bot");
    assert_clean(&event.to_string(), &[BOT_TOKEN, ws]);
    crate::event_schema::assert_events_match_schema(std::slice::from_ref(&event));

    // The link is used up.
    let (status, html) = get_page(&app, None, url).await;
    assert_eq!(status, 410, "{html}");
    assert!(html.contains("already used"), "{html}");
    // And the inbound webhook now works with the stored secret.
    let resp = app
        .http
        .post(app.url(&format!("/webhooks/telegram/{BOT_ID}")))
        .header("X-Telegram-Bot-Api-Secret-Token", ws)
        .header("content-type", "application/json")
        .body(r#"{"update_id":1,"message":{"message_id":1,"date":1700000000,"chat":{"id":5,"type":"private"},"from":{"id":5,"is_bot":false,"first_name":"A"},"text":"hi"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn telegram_wrong_token_says_so_and_stores_nothing() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path_regex("/bot.*/getMe"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
            ),
        )
        .mount(&app.telegram)
        .await;
    let link: Value = create_link(&app, API_KEY, json!({"kind": "telegram"}))
        .await
        .json()
        .await
        .unwrap();
    let (_, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    let form = form_token(&html);
    let (status, page) = post_form(
        &app,
        &browser,
        "/connect/flow/telegram",
        &[("form", &form), ("token", BOT_TOKEN)],
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("does not accept this token"), "{page}");
    assert_clean(&page, &[BOT_TOKEN]);
    let (status, page) = post_form(
        &app,
        &browser,
        "/connect/flow/telegram",
        &[("form", &form), ("token", "hello")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("not a bot token"), "{page}");
    // Without the cookie, or with another flow's form token: refused.
    let stranger = Browser {
        cookie: None,
        set_cookie: String::new(),
    };
    let (status, _) = post_form(
        &app,
        &stranger,
        "/connect/flow/telegram",
        &[("form", &form), ("token", BOT_TOKEN)],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post_form(
        &app,
        &browser,
        "/connect/flow/telegram",
        &[("form", "forged"), ("token", BOT_TOKEN)],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        app.redis()
            .cli(&["EXISTS", &format!("switchboard:channel:telegram:{BOT_ID}")])
            .trim(),
        "0"
    );
    assert_eq!(
        link_status(&app, link["id"].as_str().unwrap()).await["status"],
        "pending"
    );
    assert!(app
        .telegram
        .received_requests()
        .await
        .unwrap()
        .iter()
        .all(|r| !r.url.path().ends_with("setWebhook")));
}

#[tokio::test]
async fn telegram_bot_pointing_elsewhere_is_taken_over_only_when_confirmed() {
    let app = spawn_app().await;
    mock_telegram(&app, "https://other-crm.example.net/tg/hook").await;
    let link: Value = create_link(&app, API_KEY, json!({"kind": "telegram"}))
        .await
        .json()
        .await
        .unwrap();
    let (_, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    let form = form_token(&html);
    let (status, page) = post_form(
        &app,
        &browser,
        "/connect/flow/telegram",
        &[("form", &form), ("token", BOT_TOKEN)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"warning\"") && page.contains("other-crm.example.net"),
        "{page}"
    );
    assert_clean(&page, &[BOT_TOKEN]);
    assert!(app
        .telegram
        .received_requests()
        .await
        .unwrap()
        .iter()
        .all(|r| !r.url.path().ends_with("setWebhook")));
    let (status, page) = post_form(
        &app,
        &browser,
        "/connect/flow/telegram",
        &[("form", &form), ("token", BOT_TOKEN), ("confirm", "1")],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"done\""), "{page}");
}

#[tokio::test]
async fn a_channel_of_another_tenant_is_not_taken_over() {
    let app = spawn_app().await;
    mock_telegram(&app, "").await;
    app.put_channel(
        switchboard::channels::ChannelKind::Telegram,
        BOT_ID,
        "globex",
        BOT_TOKEN,
    )
    .await;
    let before = hget(
        &app,
        &format!("switchboard:channel:telegram:{BOT_ID}"),
        "token",
    );
    let link: Value = create_link(&app, API_KEY, json!({"kind": "telegram"}))
        .await
        .json()
        .await
        .unwrap();
    let (_, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    let (status, page) = post_form(
        &app,
        &browser,
        "/connect/flow/telegram",
        &[("form", &form_token(&html)), ("token", BOT_TOKEN)],
    )
    .await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("another organisation"), "{page}");
    let key = format!("switchboard:channel:telegram:{BOT_ID}");
    assert_eq!(hget(&app, &key, "tenant"), "globex");
    assert_eq!(hget(&app, &key, "token"), before);
    let got = link_status(&app, link["id"].as_str().unwrap()).await;
    assert_eq!(got["status"], "failed");
    assert_eq!(got["error"]["code"], "channel_taken");
    assert!(app
        .telegram
        .received_requests()
        .await
        .unwrap()
        .iter()
        .all(|r| !r.url.path().ends_with("setWebhook")));
}

#[tokio::test]
async fn unknown_revoked_and_expired_links_are_4xx_pages() {
    let app = spawn_app().await;
    let (status, html, b) = open(
        &app,
        "http://relay.test/connect/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    )
    .await;
    assert_eq!(status, 404);
    assert!(html.contains("not valid") && b.cookie.is_none(), "{html}");
    let link: Value = create_link(&app, API_KEY, json!({"kind": "messenger"}))
        .await
        .json()
        .await
        .unwrap();
    app.http
        .delete(app.url(&format!(
            "/v1/connect-links/{}",
            link["id"].as_str().unwrap()
        )))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    let (status, _, _) = open(&app, link["url"].as_str().unwrap()).await;
    assert_eq!(status, 410);
    let link: Value = create_link(
        &app,
        API_KEY,
        json!({"kind": "telegram", "expires_in_s": 1}),
    )
    .await
    .json()
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, _) = open(&app, link["url"].as_str().unwrap()).await;
        if status != 200 {
            assert!(status == 404 || status == 410, "{status}");
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn mock_messenger(app: &TestApp, pages: Value) {
    Mock::given(method("GET"))
        .and(path("/v23.0/oauth/access_token"))
        .and(query_param("code", "fb-code-123"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "EAAshort-user-token", "token_type": "bearer", "expires_in": 3600})))
        .mount(&app.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v23.0/oauth/access_token"))
        .and(query_param("grant_type", "fb_exchange_token"))
        .and(query_param("fb_exchange_token", "EAAshort-user-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "EAAlong-user-token", "token_type": "bearer", "expires_in": 5183944})))
        .mount(&app.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v23.0/me"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "10158000000000001", "name": "Ada"})),
        )
        .mount(&app.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v23.0/me/accounts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": pages})))
        .mount(&app.graph)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v23.0/\d+/subscribed_apps$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(&app.graph)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/v23.0/\d+/subscribed_apps$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "", "name": "Switchboard", "subscribed_fields": ["messages","messaging_postbacks","message_reactions","message_reads","message_deliveries","messaging_optins","messaging_referrals","message_edits","message_echoes"]}]})))
        .mount(&app.graph)
        .await;
}

fn dialog_state(html: &str) -> (url::Url, String) {
    let href = attr(html, "id=\"login\"", "href").replace("&amp;", "&");
    let u = url::Url::parse(&href).unwrap();
    let state = u
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    (u, state)
}

#[tokio::test]
async fn messenger_login_with_several_pages_connects_the_picked_one() {
    let app = spawn_app().await;
    mock_messenger(
        &app,
        json!([
            {"id": "111", "name": "Acme Shoes", "access_token": "EAApage-111-token"},
            {"id": "222", "name": "Acme Hats", "access_token": "EAApage-222-token"}
        ]),
    )
    .await;
    let link: Value = create_link(&app, API_KEY, json!({"kind": "messenger"}))
        .await
        .json()
        .await
        .unwrap();
    let (status, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let (dialog, state) = dialog_state(&html);
    assert_eq!(dialog.path(), "/v23.0/dialog/oauth");
    assert_eq!(dialog.host_str(), Some("www.facebook.com"));
    let q: std::collections::HashMap<_, _> = dialog.query_pairs().into_owned().collect();
    assert_eq!(
        q["redirect_uri"],
        "http://relay.test/connect/callback/facebook"
    );
    assert_eq!(q["response_type"], "code");
    assert!(q["scope"].contains("pages_messaging"), "{q:?}");

    let cb = format!(
        "/connect/callback/facebook?code=fb-code-123&state={}",
        urlencode(&state)
    );
    let (status, picker) = get_page(&app, Some(&browser), &cb).await;
    assert_eq!(status, 200, "{picker}");
    assert!(
        picker.contains("Acme Shoes") && picker.contains("Acme Hats"),
        "{picker}"
    );
    assert_clean(&picker, &["EAApage", "EAAlong", "fb-code-123"]);
    // The same state again: refused.
    let (status, _) = get_page(&app, Some(&browser), &cb).await;
    assert_eq!(status, 400);

    let (status, done) = post_form(
        &app,
        &browser,
        "/connect/flow/messenger/page",
        &[("form", &form_token(&picker)), ("page_id", "222")],
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("Acme Hats"), "{done}");
    let sub = app
        .graph
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.method.as_str() == "POST" && r.url.path() == "/v23.0/222/subscribed_apps")
        .unwrap();
    assert_eq!(
        sub.headers.get("authorization").unwrap().to_str().unwrap(),
        "Bearer EAApage-222-token"
    );
    let fields = sub
        .url
        .query_pairs()
        .find(|(k, _)| k == "subscribed_fields")
        .unwrap()
        .1
        .into_owned();
    for f in [
        "messages",
        "messaging_postbacks",
        "message_reactions",
        "message_reads",
        "message_deliveries",
        "messaging_optins",
        "messaging_referrals",
        "message_edits",
    ] {
        assert!(fields.split(',').any(|x| x == f), "{f} missing in {fields}");
    }
    let key = "switchboard:channel:messenger:222";
    assert_eq!(
        &*app.keyring.decrypt(&hget(&app, key, "token")).unwrap(),
        b"EAApage-222-token"
    );
    assert_eq!(hget(&app, key, "user_id"), "10158000000000001");
    assert_eq!(
        app.redis()
            .cli(&["EXISTS", "switchboard:channel:messenger:111"])
            .trim(),
        "0"
    );
    assert_clean(
        &app.redis().dump_all(),
        &["EAApage-222-token", "EAAlong-user-token", "EAAshort"],
    );
    let event = connected_event(&app).await;
    assert_eq!(event["channel"], json!({"kind": "messenger", "id": "222"}));
    assert_eq!(event["data"]["user"]["id"], "10158000000000001");
    assert_eq!(event["data"]["display"]["name"], "Acme Hats");
}

pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn tampered_replayed_foreign_and_cookieless_callbacks_store_nothing() {
    let app = spawn_app().await;
    mock_messenger(
        &app,
        json!([{"id": "111", "name": "Acme", "access_token": "EAApage-111-token"}]),
    )
    .await;
    let a: Value = create_link(&app, API_KEY, json!({"kind": "messenger"}))
        .await
        .json()
        .await
        .unwrap();
    let b: Value = create_link(&app, API_KEY, json!({"kind": "messenger"}))
        .await
        .json()
        .await
        .unwrap();
    let (_, html_a, browser_a) = open(&app, a["url"].as_str().unwrap()).await;
    let (_, html_b, browser_b) = open(&app, b["url"].as_str().unwrap()).await;
    let (_, state_a) = dialog_state(&html_a);
    let (_, state_b) = dialog_state(&html_b);
    let cb = |s: &str| {
        format!(
            "/connect/callback/facebook?code=fb-code-123&state={}",
            urlencode(s)
        )
    };
    let mut altered = state_a.clone();
    altered.pop();
    altered.push(if state_a.ends_with('A') { 'B' } else { 'A' });
    for (browser, state, why) in [
        (None, state_a.as_str(), "no cookie"),
        (Some(&browser_a), altered.as_str(), "altered"),
        (Some(&browser_a), state_b.as_str(), "another link's state"),
        (Some(&browser_b), state_a.as_str(), "another flow's state"),
        (Some(&browser_a), "", "empty state"),
    ] {
        let (status, page) = get_page(&app, browser, &cb(state)).await;
        assert_eq!(status, 400, "{why}: {page}");
        assert!(page.contains("Nothing was connected"), "{why}: {page}");
    }
    let (status, _) = get_page(
        &app,
        Some(&browser_a),
        "/connect/callback/facebook?code=fb-code-123",
    )
    .await;
    assert_eq!(status, 400);
    // Denied login: a clear page, nothing stored, a retry offered.
    let (status, page) = get_page(
        &app,
        Some(&browser_a),
        &format!(
            "/connect/callback/facebook?error=access_denied&error_reason=user_denied&state={}",
            urlencode(&state_a)
        ),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        page.contains("cancelled") && page.contains("id=\"retry\""),
        "{page}"
    );
    // Nothing reached Graph, nothing stored.
    assert!(app.graph.received_requests().await.unwrap().is_empty());
    assert_eq!(
        app.redis()
            .cli(&["EXISTS", "switchboard:channel:messenger:111"])
            .trim(),
        "0"
    );
    assert_eq!(
        link_status(&app, a["id"].as_str().unwrap()).await["status"],
        "pending"
    );
}

#[tokio::test]
async fn graph_error_during_messenger_login_is_a_clear_page_and_stores_nothing() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/v23.0/oauth/access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"message": "Error validating verification code fb-code-123", "type": "OAuthException", "code": 100}})))
        .mount(&app.graph)
        .await;
    let link: Value = create_link(&app, API_KEY, json!({"kind": "messenger"}))
        .await
        .json()
        .await
        .unwrap();
    let (_, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    let (_, state) = dialog_state(&html);
    let (status, page) = get_page(
        &app,
        Some(&browser),
        &format!(
            "/connect/callback/facebook?code=fb-code-123&state={}",
            urlencode(&state)
        ),
    )
    .await;
    assert_eq!(status, 502, "{page}");
    assert!(page.contains("Nothing was connected"), "{page}");
    assert_clean(&page, &["fb-code-123", APP_SECRET]);
    assert!(app
        .redis()
        .cli(&["KEYS", "switchboard:channel:messenger:*"])
        .trim()
        .is_empty());
}

/// Instagram Login's code exchange, long-lived token, `/me` and subscription.
pub(crate) async fn mock_instagram(ig: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=ig-code-9"))
        .and(body_string_contains("client_secret=ig-secret-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"access_token": "IGshort-token", "user_id": "17841400000000001", "permissions": "instagram_business_basic"}]})))
        .mount(ig)
        .await;
    Mock::given(method("GET"))
        .and(path("/access_token"))
        .and(query_param("grant_type", "ig_exchange_token"))
        .and(query_param("access_token", "IGshort-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "IGlong-token", "token_type": "bearer", "expires_in": 5183944}),
        ))
        .mount(ig)
        .await;
    Mock::given(method("GET"))
        .and(path("/v23.0/me"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"user_id": "17841400000000099", "username": "acme.shop"})),
        )
        .mount(ig)
        .await;
    Mock::given(method("POST"))
        .and(path("/v23.0/me/subscribed_apps"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(ig)
        .await;
}

#[tokio::test]
async fn instagram_login_connects_with_the_instagram_graph_and_expiry() {
    let ig = MockServer::start().await;
    let extra = format!(
        "[instagram]\napp_id = \"ig-app-1\"\napp_secrets = [\"ig-secret-1\"]\noauth_base = \"{0}\"\napi_base = \"{0}\"\ngraph_base = \"{0}\"\n",
        ig.uri()
    );
    let app = TestApp::builder().toml(&extra).spawn().await;
    mock_instagram(&ig).await;
    let link: Value = create_link(&app, API_KEY, json!({"kind": "instagram"}))
        .await
        .json()
        .await
        .unwrap();
    let (_, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    let (dialog, state) = dialog_state(&html);
    assert_eq!(dialog.path(), "/oauth/authorize");
    let q: std::collections::HashMap<_, _> = dialog.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "ig-app-1");
    assert_eq!(
        q["redirect_uri"],
        "http://relay.test/connect/callback/instagram"
    );
    assert_eq!(q["scope"], "instagram_business_basic,instagram_business_manage_messages,instagram_business_manage_comments");
    let (status, done) = get_page(
        &app,
        Some(&browser),
        &format!(
            "/connect/callback/instagram?code=ig-code-9&state={}",
            urlencode(&state)
        ),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let key = "switchboard:channel:instagram:17841400000000099";
    assert_eq!(hget(&app, key, "graph"), "instagram");
    assert_eq!(
        &*app.keyring.decrypt(&hget(&app, key, "token")).unwrap(),
        b"IGlong-token"
    );
    let expires = humantime::parse_rfc3339(&hget(&app, key, "expires_at")).unwrap();
    let left = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap()
        .as_secs();
    assert!((5_183_000..=5_184_000).contains(&left), "{left}");
    let sub = ig
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path() == "/v23.0/me/subscribed_apps")
        .unwrap();
    assert_eq!(
        sub.headers.get("authorization").unwrap().to_str().unwrap(),
        "Bearer IGlong-token"
    );
    let event = connected_event(&app).await;
    assert_eq!(event["data"]["display"]["username"], "acme.shop");
    assert_clean(&event.to_string(), &["IGlong", "IGshort"]);
}

/// Embedded Signup's code exchange, subscription, registration and phone number.
pub(crate) async fn mock_whatsapp_signup(app: &TestApp, hiccup: bool) {
    Mock::given(method("GET"))
        .and(path("/v23.0/oauth/access_token"))
        .and(query_param("code", "wa-code-1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"access_token": "EAAbusiness-token", "token_type": "bearer"}),
            ),
        )
        .mount(&app.graph)
        .await;
    Mock::given(method("POST"))
        .and(path("/v23.0/102290129340398/subscribed_apps"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(&app.graph)
        .await;
    // With `hiccup`, the first registration fails (Meta hiccup); the retry needs no new code.
    if hiccup {
        Mock::given(method("POST"))
            .and(path("/v23.0/106540352249999/register"))
            .respond_with(
                ResponseTemplate::new(500)
                    .set_body_json(json!({"error": {"message": "temporary", "code": 2}})),
            )
            .up_to_n_times(1)
            .mount(&app.graph)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/v23.0/106540352249999/register"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(&app.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v23.0/106540352249999"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"display_phone_number": "+1 555 010 9999", "verified_name": "Acme"}),
        ))
        .mount(&app.graph)
        .await;
}

#[tokio::test]
async fn whatsapp_signup_subscribes_before_registering_and_stores_the_pin_encrypted() {
    let app = spawn_app().await;
    mock_whatsapp_signup(&app, true).await;
    let link: Value = create_link(&app, API_KEY, json!({"kind": "whatsapp"}))
        .await
        .json()
        .await
        .unwrap();
    let (status, html, browser) = open(&app, link["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("src=\"/connect/assets/whatsapp.js\"")
            && html.contains("src=\"https://connect.facebook.net/en_US/sdk.js\""),
        "{html}"
    );
    assert_eq!(
        attr(&html, "id=\"signup\"", "data-origin"),
        "https://www.facebook.com"
    );
    let form = attr(&html, "id=\"signup\"", "data-form").to_owned();
    let post = |body: Value| {
        let mut req = app.http.post(app.url("/connect/flow/whatsapp")).json(&body);
        if let Some(c) = &browser.cookie {
            req = req.header("cookie", c);
        }
        req.send()
    };
    let body = json!({"form": form, "code": "wa-code-1", "waba_id": "102290129340398", "phone_number_id": "106540352249999"});
    let first = post(body.clone()).await.unwrap();
    assert_eq!(first.status(), 502);
    let again = post(json!({"form": form, "code": "already-used", "waba_id": "102290129340398", "phone_number_id": "106540352249999"})).await.unwrap();
    assert_eq!(again.status(), 200);
    let next: Value = again.json().await.unwrap();
    assert_eq!(next["next"], "/connect/flow/done");
    let (status, done) = get_page(&app, Some(&browser), "/connect/flow/done").await;
    assert_eq!(status, 200, "{done}");

    let reqs = app.graph.received_requests().await.unwrap();
    let order: Vec<String> = reqs
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect();
    let sub = order
        .iter()
        .position(|o| o == "POST /v23.0/102290129340398/subscribed_apps")
        .unwrap();
    let reg = order
        .iter()
        .position(|o| o == "POST /v23.0/106540352249999/register")
        .unwrap();
    assert!(sub < reg, "{order:?}");
    assert_eq!(
        order
            .iter()
            .filter(|o| o.contains("oauth/access_token"))
            .count(),
        1,
        "{order:?}"
    );
    let pins: Vec<String> = reqs
        .iter()
        .filter(|r| r.url.path().ends_with("/register"))
        .map(|r| {
            let b: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(b["messaging_product"], "whatsapp");
            b["pin"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(pins.len(), 2);
    assert_eq!(pins[0], pins[1], "a retry keeps the PIN");
    assert!(pins[0].len() == 6 && pins[0].bytes().all(|b| b.is_ascii_digit()));
    let key = "switchboard:channel:whatsapp:106540352249999";
    assert_eq!(hget(&app, key, "waba_id"), "102290129340398");
    assert_eq!(
        &*app.keyring.decrypt(&hget(&app, key, "pin")).unwrap(),
        pins[0].as_bytes()
    );
    assert_eq!(
        &*app.keyring.decrypt(&hget(&app, key, "token")).unwrap(),
        b"EAAbusiness-token"
    );
    assert_clean(&app.redis().dump_all(), &["EAAbusiness-token"]);
    let event = connected_event(&app).await;
    assert_eq!(event["data"]["display"]["phone"], "+1 555 010 9999");
    assert_clean(&event.to_string(), &["EAAbusiness", &pins[0]]);
    assert_eq!(event["data"]["waba_id"], "102290129340398");
    crate::event_schema::assert_events_match_schema(std::slice::from_ref(&event));
}
