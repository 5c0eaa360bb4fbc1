//! Instagram Login channels (`graph = "instagram"`): their replies and media go to
//! `instagram.graph_base` (a wiremock server of its own, so a call to the Facebook
//! Graph mock is a failure), and their webhooks, signed with an `instagram.app_secrets`
//! secret, are accepted by `POST /webhooks/meta`.

use secrecy::SecretString;
use serde_json::{json, Value};
use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::store::{ChannelRecord, StoreBackend};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

const IG_LOGIN: &str = "17841400000000077";
const IG_LOGIN_TOKEN: &str = "IGAAT-login-token-secret";
/// An Instagram channel on the Facebook Graph API (a Page token), for contrast.
const IG_FB: &str = "17841400000000001";
const IG_FB_TOKEN: &str = "EAAG-ig-page-token-secret";
const IG_APP_SECRET: &str = "instagram-app-secret-0123456789";
const CUSTOMER: &str = "1254001234567890";

struct IgApp {
    app: TestApp,
    ig: MockServer,
}

async fn ig_app() -> IgApp {
    let ig = MockServer::start().await;
    let app = TestApp::builder()
        .toml(&format!(
            "[instagram]\ngraph_base = \"{}\"\napp_secrets = [\"{IG_APP_SECRET}\"]\n",
            ig.uri()
        ))
        .spawn()
        .await;
    let record = ChannelRecord {
        tenant: "acme".into(),
        token: SecretString::from(app.keyring.encrypt(IG_LOGIN_TOKEN.as_bytes())),
        graph: Some("instagram".into()),
        expires_at: Some("2027-01-30T00:00:00Z".into()),
        ..Default::default()
    };
    app.state
        .store
        .put_channel(
            &ChannelRef::parse(ChannelKind::Instagram, IG_LOGIN).unwrap(),
            &record,
        )
        .await
        .unwrap();
    app.put_channel(ChannelKind::Instagram, IG_FB, "acme", IG_FB_TOKEN)
        .await;
    IgApp { app, ig }
}

async fn send_text(app: &TestApp, channel: &str) -> reqwest::Response {
    app.http
        .post(app.url("/v1/messages"))
        .bearer_auth(API_KEY)
        .json(&json!({
            "channel": {"kind": "instagram", "id": channel},
            "to": CUSTOMER,
            "message": {"kind": "text", "text": "Hello!"}
        }))
        .send()
        .await
        .unwrap()
}

fn sent_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "recipient_id": CUSTOMER,
        "message_id": "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx"
    }))
}

#[tokio::test]
async fn instagram_login_send_goes_to_instagram_graph_base_with_its_token() {
    let IgApp { app, ig } = ig_app().await;
    Mock::given(method("POST"))
        .and(path("/v23.0/me/messages"))
        .and(header(
            "authorization",
            format!("Bearer {IG_LOGIN_TOKEN}").as_str(),
        ))
        .respond_with(sent_ok())
        .expect(1)
        .mount(&ig)
        .await;
    Mock::given(method("POST"))
        .and(path("/v23.0/me/messages"))
        .respond_with(sent_ok())
        .mount(&app.graph)
        .await;

    let resp = send_text(&app, IG_LOGIN).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx");
    let got = ig.received_requests().await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].url.query().is_none(), "no token in the URL");
    let sent: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(sent["recipient"]["id"], CUSTOMER);
    assert_eq!(sent["message"]["text"], "Hello!");
    assert!(
        app.graph.received_requests().await.unwrap().is_empty(),
        "nothing went to the Facebook Graph API"
    );

    // An Instagram channel without `graph` still goes to the Facebook Graph API.
    let resp = send_text(&app, IG_FB).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let fb = app.graph.received_requests().await.unwrap();
    assert_eq!(fb.len(), 1);
    assert_eq!(
        fb[0]
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        format!("Bearer {IG_FB_TOKEN}")
    );
    assert_eq!(ig.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn instagram_login_refused_token_is_token_invalid_and_tells_the_tenant() {
    let IgApp { app, ig } = ig_app().await;
    Mock::given(method("POST"))
        .and(path("/v23.0/me/messages"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"message": "Error validating access token: Session has expired",
                      "type": "OAuthException", "code": 190}
        })))
        .mount(&ig)
        .await;
    let resp = send_text(&app, IG_LOGIN).await;
    assert_eq!(resp.status(), 424);
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["code"], "token_invalid");
    let reqs = app.wait_for_crm(CRM_PATH, 1).await;
    let event = verify_standard_webhook(SIGNING_SECRET, &reqs[0]);
    assert_eq!(event["type"], "channel.reauth_required");
    assert_eq!(
        event["channel"],
        json!({"kind": "instagram", "id": IG_LOGIN})
    );
}

fn media_path(channel: &str, media_id: &str) -> String {
    format!(
        "/v1/media/instagram/{channel}/{}",
        switchboard::channels::urlencode_path_segment(media_id)
    )
}

async fn get_media(app: &TestApp, channel: &str, media_id: &str) -> reqwest::Response {
    app.http
        .get(app.url(&media_path(channel, media_id)))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn instagram_login_media_is_fetched_from_instagram_graph_base() {
    let IgApp { app, ig } = ig_app().await;
    // A media object id: looked up on instagram.graph_base, then its media_url fetched.
    Mock::given(method("GET"))
        .and(path("/v23.0/17900000000000042"))
        .and(query_param("fields", "media_url,media_type"))
        .and(header(
            "authorization",
            format!("Bearer {IG_LOGIN_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "media_url": format!("{}/cdn/post.jpg", ig.uri()),
            "media_type": "IMAGE",
            "id": "17900000000000042"
        })))
        .expect(1)
        .mount(&ig)
        .await;
    Mock::given(method("GET"))
        .and(path("/cdn/post.jpg"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "image/jpeg")
                .set_body_bytes(b"\xff\xd8post-bytes".to_vec()),
        )
        .mount(&ig)
        .await;
    let resp = get_media(&app, IG_LOGIN, "17900000000000042").await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(&resp.bytes().await.unwrap()[..], b"\xff\xd8post-bytes");

    // An attachment URL on the Instagram Graph host: fetched there, with the token.
    let url = format!("{}/cdn/attachment.png?asset_id=1&signature=x", ig.uri());
    Mock::given(method("GET"))
        .and(path("/cdn/attachment.png"))
        .and(header(
            "authorization",
            format!("Bearer {IG_LOGIN_TOKEN}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "image/png")
                .set_body_bytes(b"png-bytes".to_vec()),
        )
        .mount(&ig)
        .await;
    let resp = get_media(&app, IG_LOGIN, &url).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(&resp.bytes().await.unwrap()[..], b"png-bytes");
    assert!(app.graph.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn instagram_login_media_elsewhere_is_refused_and_never_gets_the_token() {
    let IgApp { app, ig } = ig_app().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"x".to_vec()))
        .mount(&elsewhere)
        .await;
    // `localhost` is neither the Instagram Graph host (127.0.0.1) nor an allowed CDN.
    let url = elsewhere.uri().replace("127.0.0.1", "localhost") + "/steal.png";
    let resp = get_media(&app, IG_LOGIN, &url).await;
    assert_eq!(resp.status(), 400);
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_request");

    // A lookup whose media_url points elsewhere: not fetched either.
    Mock::given(method("GET"))
        .and(path("/v23.0/17900000000000043"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"media_url": url.clone()})))
        .mount(&ig)
        .await;
    let resp = get_media(&app, IG_LOGIN, "17900000000000043").await;
    assert!(resp.status().is_client_error() || resp.status().is_server_error());
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "nothing fetched outside the Instagram Graph host and media.allowed_hosts"
    );
    // A non-numeric, non-URL id is refused before any call.
    let resp = get_media(&app, IG_LOGIN, "not-an-id").await;
    assert_eq!(resp.status(), 400);
}

async fn post_signed(app: &TestApp, secret: &str, body: &[u8]) -> reqwest::Response {
    app.http
        .post(app.url("/webhooks/meta"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", meta_signature(secret, body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

fn ig_text_webhook(account: &str, mid: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "instagram",
        "entry": [{
            "id": account,
            "time": 1_764_000_000_000u64,
            "messaging": [{
                "sender": {"id": CUSTOMER},
                "recipient": {"id": account},
                "timestamp": 1_764_000_000_000u64,
                "message": {"mid": mid, "text": "Hi from Instagram Login"}
            }]
        }]
    }))
    .unwrap()
}

#[tokio::test]
async fn webhook_signed_with_an_instagram_app_secret_is_accepted() {
    let IgApp { app, .. } = ig_app().await;
    let body = ig_text_webhook(IG_LOGIN, "aWdfZAG1faXRlbTo-login-1");
    let resp = post_signed(&app, IG_APP_SECRET, &body).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let reqs = app.wait_for_crm(CRM_PATH, 1).await;
    assert_eq!(reqs.len(), 1);
    let event = verify_standard_webhook(SIGNING_SECRET, &reqs[0]);
    assert_eq!(event["type"], "message.received");
    assert_eq!(
        event["channel"],
        json!({"kind": "instagram", "id": IG_LOGIN})
    );
    assert_eq!(event["data"]["message"]["text"], "Hi from Instagram Login");

    // The Meta app secret still works for Instagram webhooks too.
    let body = ig_text_webhook(IG_LOGIN, "aWdfZAG1faXRlbTo-login-2");
    let resp = post_signed(&app, APP_SECRET, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.wait_for_crm(CRM_PATH, 2).await.len(), 2);
}

#[tokio::test]
async fn webhook_with_a_bad_signature_is_401_and_forwards_nothing() {
    let IgApp { app, .. } = ig_app().await;
    let body = ig_text_webhook(IG_LOGIN, "aWdfZAG1faXRlbTo-login-3");
    // Another secret, a tampered body, and no header at all.
    let resp = post_signed(&app, "not-the-instagram-secret", &body).await;
    assert_eq!(resp.status(), 401);
    let mut tampered = body.clone();
    let sig = meta_signature(IG_APP_SECRET, &body);
    tampered.extend_from_slice(b" ");
    let resp = app
        .http
        .post(app.url("/webhooks/meta"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sig)
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = app
        .http
        .post(app.url("/webhooks/meta"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["code"], "unauthorized");
    assert!(!problem.to_string().contains(IG_APP_SECRET));

    // The Instagram app's secret vouches only for Instagram webhooks: a Page or WhatsApp
    // body signed with it is refused.
    let page = fixture("messenger/read.json");
    let resp = post_signed(&app, IG_APP_SECRET, &page).await;
    assert_eq!(resp.status(), 401);
    let wa = fixture("whatsapp/text.json");
    let resp = post_signed(&app, IG_APP_SECRET, &wa).await;
    assert_eq!(resp.status(), 401);
    assert!(app.crm_requests().await.is_empty(), "nothing forwarded");
}

#[tokio::test]
async fn webhook_without_instagram_secrets_refuses_what_only_they_would_sign() {
    let app = spawn_app().await;
    app.put_channel(ChannelKind::Instagram, IG_LOGIN, "acme", IG_LOGIN_TOKEN)
        .await;
    let body = ig_text_webhook(IG_LOGIN, "aWdfZAG1faXRlbTo-login-4");
    let resp = post_signed(&app, IG_APP_SECRET, &body).await;
    assert_eq!(resp.status(), 401);
    assert!(app.crm_requests().await.is_empty());
}
