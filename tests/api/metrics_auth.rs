//! `GET /metrics` behind `metrics.token`: open when empty; else the bearer token or a
//! 401 problem+json, and a reload changes the token.

use crate::helpers::*;

const TOKEN: &str = "metrics-scrape-7c1e9a";
const NEXT: &str = "metrics-scrape-rotated-42";

async fn scrape(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut req = app.http.get(app.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn assert_refused(resp: reqwest::Response) {
    assert_eq!(resp.status(), 401);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(ct, "application/problem+json");
    let body = resp.text().await.unwrap();
    assert!(!body.contains("switchboard_"), "no metric is shown: {body}");
    assert!(!body.contains("acme"), "no tenant id is shown: {body}");
}

#[tokio::test]
async fn metrics_are_open_without_a_token() {
    let app = spawn_app().await;
    let resp = scrape(&app, None).await;
    assert_eq!(resp.status(), 200);
    let resp = scrape(&app, Some("anything")).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn metrics_token_is_required_when_set_and_follows_a_reload() {
    let app = TestApp::builder()
        .toml(&format!("[metrics]\ntoken = \"{TOKEN}\"\n"))
        .spawn()
        .await;
    // Something tenant-labelled to hide.
    app.post_meta(&fixture("whatsapp/text.json")).await;
    assert_refused(scrape(&app, None).await).await;
    assert_refused(scrape(&app, Some("wrong")).await).await;
    assert_refused(scrape(&app, Some(&TOKEN[..TOKEN.len() - 1])).await).await;
    let resp = scrape(&app, Some(TOKEN)).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("switchboard_"));

    let text = std::fs::read_to_string(&app.config_path).unwrap();
    app.reload(&text.replace(TOKEN, NEXT), |live| {
        live.may_read_metrics(Some(NEXT))
    })
    .await;
    assert_refused(scrape(&app, Some(TOKEN)).await).await;
    assert_eq!(scrape(&app, Some(NEXT)).await.status(), 200);
}

#[tokio::test]
async fn metrics_token_may_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics_token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let app = TestApp::builder()
        .toml(&format!("[metrics]\ntoken_file = \"{}\"\n", file.display()))
        .spawn()
        .await;
    assert_refused(scrape(&app, None).await).await;
    assert_eq!(scrape(&app, Some(TOKEN)).await.status(), 200);
}
