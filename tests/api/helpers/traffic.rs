//! Traffic for the delivery tests: WhatsApp webhooks made to order for the two tenants'
//! business numbers, the check that every conversation arrived complete and in order,
//! and the relay's buffer depth.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use switchboard::channels::ChannelKind;
use switchboard::delivery::BufferBackend;

use super::app::{post_meta_to, TestApp};
use super::builder::TestAppBuilder;
use super::config::delivery_toml;
use super::crm::{Received, ScriptedCrm};
use super::process::status_or_zero;

/// The WhatsApp business numbers (phone_number_id) of the two tenants.
pub const WA_ACME: &str = "106540352242922";
pub const WA_GLOBEX: &str = "555000111222333";

/// A WhatsApp webhook with one text message per `(wa_id, n)`: message id
/// `wamid.<wa_id>.<n>`, text `secret text <wa_id> #<n>`.
pub fn wa_webhook(phone_number_id: &str, messages: &[(&str, u32)]) -> Vec<u8> {
    let msgs: Vec<Value> = messages
        .iter()
        .map(|(wa, n)| {
            json!({
                "from": wa,
                "id": format!("wamid.{wa}.{n}"),
                "timestamp": (1_749_416_383 + *n as u64).to_string(),
                "type": "text",
                "text": {"body": format!("secret text {wa} #{n}")}
            })
        })
        .collect();
    let contacts: Vec<Value> = messages
        .iter()
        .map(|(wa, _)| json!({"profile": {"name": "Sheena Nelson"}, "wa_id": wa}))
        .collect();
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "419561257915477",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
                    "contacts": contacts,
                    "messages": msgs
                }
            }]
        }]
    }))
    .unwrap()
}

/// `(conversation, n)` of a message the CRM received, read from its text.
pub fn conv_and_n(body: &Value) -> (String, u32) {
    let text = body["data"]["message"]["text"].as_str().unwrap_or_default();
    let rest = text.strip_prefix("secret text ").unwrap_or_default();
    let (wa, n) = rest.split_once(" #").unwrap_or_default();
    (wa.to_owned(), n.parse().unwrap_or(0))
}

/// Checks that every `(conversation, n)` in `expected` arrived, and that each
/// conversation's first arrivals are in order. Returns how many requests repeated an
/// id (at-least-once duplicates).
pub fn assert_all_in_order(received: &[Received], expected: &[(String, u32)]) -> usize {
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut first: HashMap<(String, u32), ()> = HashMap::new();
    let mut dups = 0;
    for r in received {
        let key = conv_and_n(&r.body);
        if first.insert(key.clone(), ()).is_some() {
            dups += 1;
            continue;
        }
        let last = seen.entry(key.0.clone()).or_insert(0);
        assert!(
            key.1 > *last,
            "conversation {} got #{} after #{}",
            key.0,
            key.1,
            last
        );
        *last = key.1;
    }
    for e in expected {
        assert!(first.contains_key(e), "event {e:?} never arrived");
    }
    assert_eq!(first.len(), expected.len(), "unexpected events arrived");
    dups
}

impl TestAppBuilder {
    /// A delivery test relay: on the redis-server at `redis` (the memory store when
    /// `None`), delivering to `crm` within `timeout_ms`, with fast retries (the `[delivery]`
    /// lines of [`delivery_toml`]`(extra)`), and globex's WhatsApp number too.
    pub fn delivering(
        self,
        redis: Option<&str>,
        crm: &ScriptedCrm,
        timeout_ms: u64,
        extra: &str,
    ) -> Self {
        let builder = match redis {
            Some(url) => self.redis_url(url.to_owned()),
            None => self.memory(),
        };
        builder
            .crm_url(crm.uri())
            .delivery_timeout_ms(timeout_ms)
            .delivery(&delivery_toml(extra))
            .channel(
                ChannelKind::Whatsapp,
                WA_GLOBEX,
                "globex",
                "wa-token-secret",
            )
    }
}

impl TestApp {
    /// POSTs a signed Meta webhook; the status (0 when the request itself failed).
    pub async fn post_meta_status(&self, body: &[u8]) -> u16 {
        status_or_zero(post_meta_to(&self.http, &self.url("/webhooks/meta"), body).await)
    }

    /// Total buffered events of both tenants.
    pub async fn depth(&self) -> u64 {
        self.state
            .dispatcher
            .buffer()
            .depths(&["acme".into(), "globex".into()])
            .await
            .map(|d| d.iter().map(|t| t.depth).sum())
            .unwrap_or(u64::MAX)
    }

    /// Polls until the buffer is empty.
    pub async fn wait_drained(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.depth().await == 0 {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
