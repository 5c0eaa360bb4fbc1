//! The connect pages driven over HTTP as a browser would (the flow cookie carried by
//! hand), against wiremock peers for the Graph API, Instagram and Telegram: what the
//! peers received, what Redis holds, what the CRM received (verified with the
//! `standardwebhooks` crate), and every refusal storing nothing.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::connect_links::create_link;
use crate::helpers::*;

pub(crate) const BOT_TOKEN: &str = "7001234567:AAH-telegram-bot-token-9xyzabcdefgh";
pub(crate) const BOT_ID: &str = "7001234567";
pub(crate) const HOSTS: &str = "[connect]\nreturn_url_hosts = [\"crm.example.com\"]\n";

/// One visit of a flow over plain HTTP: the cookie a browser would carry.
pub struct Visit {
    pub cookie: Option<String>,
    pub set_cookie: String,
}

pub(crate) fn local(app: &TestApp, url: &str) -> String {
    if url.starts_with('/') {
        app.url(url)
    } else {
        url.replace("https://relay.test", &app.address)
            .replace("http://relay.test", &app.address)
    }
}

/// A new connect link of `kind`, made with the tenant's API key (its JSON answer).
pub(crate) async fn new_link(app: &TestApp, kind: &str) -> Value {
    create_link(app, API_KEY, json!({ "kind": kind }))
        .await
        .json()
        .await
        .unwrap()
}

/// Opens a link's URL: the page and its flow cookie.
pub async fn open(app: &TestApp, url: &str) -> (u16, String, Visit) {
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
    (status, body, Visit { cookie, set_cookie })
}

pub(crate) fn attr<'a>(html: &'a str, marker: &str, name: &str) -> &'a str {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in {html}"));
    let rest = &html[at..];
    let start = rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    let end = rest[start..].find('"').unwrap();
    &rest[start..start + end]
}

pub(crate) fn form_token(html: &str) -> String {
    attr(html, "name=\"form\"", "value").to_owned()
}

pub(crate) async fn post_form(
    app: &TestApp,
    b: &Visit,
    p: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let mut req = app.http.post(app.url(p)).form(form);
    if let Some(c) = &b.cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

pub(crate) async fn get_page(app: &TestApp, b: Option<&Visit>, p: &str) -> (u16, String) {
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

pub(crate) fn dialog_state(html: &str) -> (url::Url, String) {
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

pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
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

/// The app-scoped id of who signed up through Embedded Signup (`GET /me`).
pub(crate) const WA_USER_ID: &str = "10158000000000777";

/// How many requests the peer received with this method and path.
pub(crate) async fn count(peer: &MockServer, m: &str, p: &str) -> usize {
    peer.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == m && r.url.path() == p)
        .count()
}

/// The page's script posting to `/connect/flow/whatsapp`: status and JSON answer.
pub(crate) async fn wa_post(app: &TestApp, b: &Visit, body: Value) -> (u16, Value) {
    let mut req = app.http.post(app.url("/connect/flow/whatsapp")).json(&body);
    if let Some(c) = &b.cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Embedded Signup's code exchange, `/me`, subscription, registration and phone number.
pub(crate) async fn mock_whatsapp_signup(app: &TestApp, hiccup: bool) {
    mock_whatsapp_graph(&app.graph, hiccup).await;
}

/// [`mock_whatsapp_signup`] on a Graph peer.
pub(crate) async fn mock_whatsapp_graph(graph: &MockServer, hiccup: bool) {
    Mock::given(method("GET"))
        .and(path("/v23.0/oauth/access_token"))
        .and(query_param("code", "wa-code-1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"access_token": "EAAbusiness-token", "token_type": "bearer"}),
            ),
        )
        .mount(graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v23.0/me"))
        .and(query_param("fields", "id"))
        .and(header("authorization", "Bearer EAAbusiness-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": WA_USER_ID})))
        .mount(graph)
        .await;
    Mock::given(method("POST"))
        .and(path("/v23.0/102290129340398/subscribed_apps"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(graph)
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
            .mount(graph)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/v23.0/106540352249999/register"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v23.0/106540352249999"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"display_phone_number": "+1 555 010 9999", "verified_name": "Acme"}),
        ))
        .mount(graph)
        .await;
}

mod logs_and_cookies;
mod meta_logins;
mod provider_answers;
mod refusals;
mod retries;
mod telegram;
