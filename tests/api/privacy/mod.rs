//! The privacy lifecycle: Meta's deauthorize and data-deletion callbacks (signed here by
//! a second implementation, Python's `hmac`/`base64`), the deletion status page, and the
//! proof that no content is kept: every fixture through the real binary at trace level,
//! then a scan of its logs and of every Redis key and value. One file per suite, below.

use std::collections::{BTreeSet, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{json, Value};
use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::delivery::BufferBackend;
use switchboard::store::{ChannelRecord, StoreBackend};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

/// The Meta user who connected the test channels.
pub(super) const USER: &str = "10158000000000001";
pub(super) const OTHER_USER: &str = "10158000000000002";

/// Signs `payload` as Meta does, with Python (an implementation we did not write).
pub(super) fn python_signed_request(secret: &str, payload: &str) -> String {
    let script = r#"
import base64, hashlib, hmac, sys
secret, payload = sys.argv[1].encode(), sys.argv[2].encode()
p = base64.urlsafe_b64encode(payload).rstrip(b"=")
s = base64.urlsafe_b64encode(hmac.new(secret, p, hashlib.sha256).digest()).rstrip(b"=")
print((s + b"." + p).decode())
"#;
    let out = Command::new("python3")
        .args(["-c", script, secret, payload])
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub(super) fn signed(payload: Value) -> String {
    python_signed_request(APP_SECRET, &payload.to_string())
}

pub(super) fn user_payload(user: &str, issued_at: i64) -> Value {
    json!({"algorithm": "HMAC-SHA256", "issued_at": issued_at, "user_id": user, "user": {"country": "de", "locale": "en_US"}})
}

/// Stores a channel connected by a Meta user.
pub(super) async fn put_user_channel(
    app: &TestApp,
    kind: ChannelKind,
    id: &str,
    tenant: &str,
    user: Option<&str>,
) {
    let record = ChannelRecord {
        tenant: tenant.to_owned(),
        token: SecretString::from(app.keyring.encrypt(format!("token-of-{id}").as_bytes())),
        webhook_secret: None,
        updated_at: None,
        user_id: user.map(str::to_owned),
        ..Default::default()
    };
    app.state
        .store
        .put_channel(&ChannelRef::parse(kind, id).unwrap(), &record)
        .await
        .unwrap();
}

pub(super) async fn post_form(app: &TestApp, p: &str, body: String) -> reqwest::Response {
    app.http
        .post(app.url(p))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

pub(super) fn form(signed_request: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("signed_request", signed_request)
        .finish()
}

pub(super) async fn channel_exists(app: &TestApp, kind: ChannelKind, id: &str) -> bool {
    app.state
        .store
        .get_channel(&ChannelRef::parse(kind, id).unwrap())
        .await
        .unwrap()
        .is_some()
}

pub(super) async fn problem_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    (status, v["code"].as_str().unwrap_or_default().to_owned())
}

mod callbacks;
mod no_content;
mod purge_steps;
mod purges;
mod revoke;
