//! `POST/GET/DELETE /v1/connect-links` against a real redis-server (and the memory
//! store): the secret only hashed, a TTL, tenant isolation, revocation, expiry, the
//! return_url allow-list, bad input named by field.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

pub const RETURN_HOSTS: &str = "[connect]\nreturn_url_hosts = [\"crm.example.com\"]\n";

pub async fn create_link(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.http
        .post(app.url("/v1/connect-links"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get_link(app: &TestApp, key: &str, id: &str) -> reqwest::Response {
    app.http
        .get(app.url(&format!("/v1/connect-links/{id}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

fn secret_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn connect_link_is_created_with_only_its_secret_hash_stored() {
    let app = TestApp::builder().toml(RETURN_HOSTS).spawn().await;
    let resp = create_link(
        &app,
        API_KEY,
        json!({"kind": "telegram", "return_url": "https://crm.example.com/done?x=1", "external_ref": "draft-42", "expires_in_s": 600}),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let link: Value = resp.json().await.unwrap();
    let id = link["id"].as_str().unwrap();
    assert!(id.starts_with("cl_"), "{link}");
    assert_eq!(link["kind"], "telegram");
    assert_eq!(link["status"], "pending");
    assert_eq!(link["external_ref"], "draft-42");
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with("http://relay.test/connect/"), "{url}");
    let secret = secret_of(url);
    // 43 base64url characters = 256 bits.
    assert_eq!(secret.len(), 43, "{secret}");
    let expires = humantime::parse_rfc3339(link["expires_at"].as_str().unwrap()).unwrap();
    let left = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap()
        .as_secs();
    assert!((590..=600).contains(&left), "{left}");

    // Redis: the record and the hash of the secret, each with a TTL; never the secret.
    let hash = hex::encode(Sha256::digest(secret.as_bytes()));
    let by_hash = app
        .redis()
        .cli(&["GET", &format!("switchboard:connect:secret:{hash}")]);
    assert_eq!(by_hash.trim(), id);
    let ttl: i64 = app
        .redis()
        .cli(&["TTL", &format!("switchboard:connect:secret:{hash}")])
        .trim()
        .parse()
        .unwrap();
    assert!((590..=600).contains(&ttl), "{ttl}");
    let ttl: i64 = app
        .redis()
        .cli(&["TTL", &format!("switchboard:connect:link:{id}")])
        .trim()
        .parse()
        .unwrap();
    assert!(ttl > 600, "{ttl}");
    assert!(!app.redis().dump_all().contains(&secret));

    // Two links never share a secret.
    let other: Value = create_link(&app, API_KEY, json!({"kind": "telegram"}))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(secret_of(other["url"].as_str().unwrap()), secret);
    assert!(other.get("external_ref").is_none());

    let got: Value = get_link(&app, API_KEY, id).await.json().await.unwrap();
    assert_eq!(got["status"], "pending");
    assert_eq!(got["kind"], "telegram");
    assert_eq!(got["expires_at"], link["expires_at"]);
    assert!(got.get("url").is_none(), "{got}");
}

#[tokio::test]
async fn connect_links_belong_to_their_tenant_and_need_its_api_key() {
    let app = spawn_app().await;
    let link: Value = create_link(&app, API_KEY, json!({"kind": "messenger"}))
        .await
        .json()
        .await
        .unwrap();
    let id = link["id"].as_str().unwrap();
    for key in [OTHER_API_KEY] {
        let resp = get_link(&app, key, id).await;
        assert_eq!(resp.status(), 404);
        let resp = app
            .http
            .delete(app.url(&format!("/v1/connect-links/{id}")))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
    }
    assert_eq!(get_link(&app, "nope", id).await.status(), 401);
    assert_eq!(
        create_link(&app, "nope", json!({"kind": "telegram"}))
            .await
            .status(),
        401
    );
    assert_eq!(get_link(&app, API_KEY, "cl_unknown").await.status(), 404);
    assert_eq!(get_link(&app, API_KEY, "../../x").await.status(), 404);
    // Still pending for its owner.
    let got: Value = get_link(&app, API_KEY, id).await.json().await.unwrap();
    assert_eq!(got["status"], "pending");
}

#[tokio::test]
async fn revoked_link_says_so_and_its_secret_no_longer_opens_it() {
    let app = spawn_app().await;
    let link: Value = create_link(&app, API_KEY, json!({"kind": "instagram"}))
        .await
        .json()
        .await
        .unwrap();
    let id = link["id"].as_str().unwrap();
    let secret = secret_of(link["url"].as_str().unwrap());
    let resp = app
        .http
        .delete(app.url(&format!("/v1/connect-links/{id}")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let got: Value = get_link(&app, API_KEY, id).await.json().await.unwrap();
    assert_eq!(got["status"], "revoked");
    // The URL no longer opens a connect page.
    let resp = app
        .http
        .get(app.url(&format!("/connect/{secret}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 410);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(resp.text().await.unwrap().contains("withdrawn"));
}

#[tokio::test]
async fn link_past_its_time_is_expired() {
    let app = TestApp::builder().memory().spawn().await;
    let link: Value = create_link(
        &app,
        API_KEY,
        json!({"kind": "whatsapp", "expires_in_s": 1}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = link["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got: Value = get_link(&app, API_KEY, id).await.json().await.unwrap();
        if got["status"] == "expired" {
            break;
        }
        assert_eq!(got["status"], "pending");
        assert!(Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn bad_connect_link_requests_are_400_naming_the_field() {
    let app = TestApp::builder().toml(RETURN_HOSTS).spawn().await;
    let cases = [
        (json!({"kind": "fax"}), "kind"),
        (json!({}), "kind"),
        (
            json!({"kind": "telegram", "return_url": "https://evil.example.com/x"}),
            "return_url",
        ),
        (
            json!({"kind": "telegram", "return_url": "https://crm.example.com.evil.test/"}),
            "return_url",
        ),
        (
            json!({"kind": "telegram", "return_url": "javascript:alert(1)"}),
            "return_url",
        ),
        (
            json!({"kind": "telegram", "return_url": "not a url"}),
            "return_url",
        ),
        (
            json!({"kind": "telegram", "expires_in_s": 0}),
            "expires_in_s",
        ),
        (
            json!({"kind": "telegram", "expires_in_s": 86401}),
            "expires_in_s",
        ),
        (
            json!({"kind": "telegram", "expires_in_s": -5}),
            "expires_in_s",
        ),
        (
            json!({"kind": "telegram", "external_ref": ""}),
            "external_ref",
        ),
        (
            json!({"kind": "telegram", "external_ref": "x".repeat(300)}),
            "external_ref",
        ),
        (json!({"kind": "telegram", "tenant": "globex"}), "tenant"),
    ];
    for (body, field) in cases {
        let resp = create_link(&app, API_KEY, body.clone()).await;
        assert_eq!(resp.status(), 400, "{body}");
        let p: Value = resp.json().await.unwrap();
        assert_eq!(p["code"], "invalid_request", "{body}");
        assert_eq!(p["field"], field, "{body}: {p}");
    }
    // The maximum is allowed.
    let resp = create_link(
        &app,
        API_KEY,
        json!({"kind": "telegram", "expires_in_s": 86400}),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let resp = app
        .http
        .post(app.url("/v1/connect-links"))
        .bearer_auth(API_KEY)
        .header("content-type", "text/plain")
        .body("{\"kind\":\"telegram\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
}
