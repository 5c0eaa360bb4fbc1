//! `POST /v1/messages`: who may send (401/403/404), bad bodies (400, field named), every
//! provider error mapping, retries of what cannot have been delivered (and never of what
//! may have been), and `channel.reauth_required` at most once an hour per channel.
//!
//! Split by idea: `access` (who may send, which bodies are refused), `mapping` (each
//! provider's errors to the contract's codes), `retries` (what is retried, deadlines,
//! the token read on every send, `channel.reauth_required`).

mod access;
mod mapping;
mod retries;

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
