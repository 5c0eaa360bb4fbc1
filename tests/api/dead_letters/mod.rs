//! The dead-letter list (`delivery.dead_letter_ttl_s`): an event the CRM keeps refusing
//! is given up at `retry_buffer_ttl_s` and kept, encrypted, instead of deleted; the
//! admin API (both stores) and `switchboard buffer …` (the real binary, on Redis) list
//! it by ids only, redrive it into the retry buffer (then it arrives once, verified,
//! with its original id; dedupe still applies) or drop it.
//!
//! One file per surface: `admin` (the HTTP API, both stores, a Cluster, the purges and
//! the buffer limit), `cli` (`switchboard buffer …` through the real binary).

use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard::delivery::{Outcome, Worker};
use switchboard::vault::Keyring;

use crate::helpers::*;

mod admin;
mod cli;

pub(super) const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
/// The customer's number of the test conversation: never in an answer.
pub(super) const WA_ID: &str = "4915110000001";

pub(super) async fn relay_without_worker(
    redis: Option<&str>,
    crm: &ScriptedCrm,
    extra: &str,
) -> (TestApp, Worker) {
    let key = Keyring::generate_key();
    // No breaker: a provider redelivery goes straight to the CRM once it accepts.
    let delivery =
        format!("worker = false\nretry_buffer_ttl_s = 1\nbreaker_failures = 100000\n{extra}");
    let relay = TestApp::builder()
        .delivering(redis, crm, 300, &delivery)
        .vault_key(&key)
        .spawn()
        .await;
    let worker = Worker::new(
        relay.state.live.clone(),
        relay.state.dispatcher.clone(),
        "test-worker",
    );
    (relay, worker)
}

/// Steps the worker until `want` (or fails after 5 s).
pub(super) async fn step_until(worker: &Worker, want: Outcome) -> Vec<Outcome> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    loop {
        let o = worker.deliver_next().await.unwrap();
        if o != Outcome::Idle {
            seen.push(o);
        }
        if o == want {
            return seen;
        }
        assert!(Instant::now() < deadline, "never {want:?}; saw {seen:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An admin call: the status and the JSON answer (Null when empty); every answer is
/// checked to hold no message text and no customer number.
pub(super) async fn admin(relay: &TestApp, method: reqwest::Method, path: &str) -> (u16, Value) {
    let r = relay
        .http
        .request(method, format!("{}{path}", relay.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert!(!text.contains("secret text"), "{path}: {text}");
    assert!(!text.contains(WA_ID), "{path}: {text}");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub(super) fn get() -> reqwest::Method {
    reqwest::Method::GET
}
pub(super) fn post() -> reqwest::Method {
    reqwest::Method::POST
}
pub(super) fn delete() -> reqwest::Method {
    reqwest::Method::DELETE
}

/// Posts message `n` of the test conversation while the CRM fails, and steps the
/// worker until it is given up; the event id.
pub(super) async fn give_up(relay: &TestApp, worker: &Worker, crm: &ScriptedCrm, n: u32) -> String {
    crm.set(Mode::Fail);
    assert_eq!(
        relay
            .post_meta_status(&wa_webhook(WA_ACME, &[(WA_ID, n)]))
            .await,
        200
    );
    let seen = step_until(worker, Outcome::GivenUp).await;
    assert!(seen.contains(&Outcome::Retried), "{seen:?}");
    let (_, list) = admin(relay, get(), "/admin/v1/dead-letters?tenant=acme").await;
    let last = list["dead_letters"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    last["id"].as_str().unwrap().to_owned()
}
