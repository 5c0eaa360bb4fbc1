//! The admin API and the token vault against a real redis-server: channels put, listed
//! and deleted; secrets stored only as Fernet tokens; rotation under the primary key,
//! compare-and-set against concurrent writers; records written by another service
//! (Python's `cryptography` + redis-cli); a corrupted record hurting only its channel.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::registry;
use switchboard::store::{ChannelRecord, StoreBackend};
use switchboard::vault::{KeyMatch, Keyring};

use crate::helpers::*;

pub(super) const TOKEN: &str = "EAAG-plaintext-access-token-7f3a";
pub(super) const TELEGRAM_TOKEN: &str = "7001234567:AAH-telegram-bot-token-9x";
pub(super) const TELEGRAM_SECRET: &str = "tg-webhook-secret_42";

pub(super) async fn admin(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    admin_as(app, ADMIN_TOKEN, method, path, body).await
}

pub(super) async fn admin_as(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

pub(super) async fn problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    resp.json().await.unwrap()
}

pub(super) async fn list(app: &TestApp) -> Vec<Value> {
    let resp = admin(app, reqwest::Method::GET, "/admin/v1/channels", None).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["count"], body["channels"].as_array().unwrap().len());
    body["channels"].as_array().unwrap().clone()
}

pub(super) fn find<'a>(channels: &'a [Value], kind: &str, id: &str) -> &'a Value {
    channels
        .iter()
        .find(|c| c["kind"] == kind && c["id"] == id)
        .unwrap_or_else(|| panic!("{kind}:{id} not listed in {channels:#?}"))
}

pub(super) fn hget(app: &TestApp, key: &str, field: &str) -> String {
    app.redis().cli(&["HGET", key, field]).trim().to_owned()
}

pub(super) fn python_fernet(key: &str, plaintext: &str) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys\nfrom cryptography.fernet import Fernet\nprint(Fernet(sys.argv[1]).encrypt(sys.argv[2].encode()).decode())",
            key,
            plaintext,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub(super) fn ring_of(key: &str) -> Keyring {
    Keyring::new(&[SecretString::from(key.to_owned())]).unwrap()
}

/// Rewrites the config with these vault keys and waits until the app runs with them.
pub(super) async fn set_vault_keys(app: &TestApp, keys: &[&str]) {
    let mut config = app.config.clone();
    config.vault_keys = keys.iter().map(|k| (*k).to_owned()).collect();
    app.reload(&config.render(), |live| live.keyring.len() == keys.len())
        .await;
}

mod channels;
mod cli;
mod rotation;
