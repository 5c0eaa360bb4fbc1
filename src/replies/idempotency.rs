//! `Idempotency-Key` for `POST /v1/messages`: the same key from the same tenant replays
//! the first response, with exactly one provider call, across every replica.
//!
//! The record lives at [`crate::store::Keys::idempotency`] (`{prefix}idem:{tenant}:{sha256(key)}`)
//! and holds JSON: `{"state": "pending", "fp": …}` while the first request sends, then
//! `{"state": "done", "fp": …, "status": …, "body": …}`. `fp` is a keyed fingerprint of
//! the request body (HMAC-SHA256 under a key derived from the vault keys,
//! [`crate::vault::fingerprint`]: the body holds a phone number and a text, so a plain
//! hash in Redis would confirm a guess); every replica derives the same key. A key
//! reused with another body is refused (422), as the IETF idempotency-key draft
//! suggests. The stored body is the relay's answer without the
//! recipient (`to` is put back from the request on replay): no message content, no
//! phone numbers.
//!
//! 1. [`claim`]: `SET NX EX` of the pending marker. Whoever sets it sends; the TTL of
//!    the marker covers the longest send, so a replica that dies mid-send frees the key.
//! 2. A request that finds the marker [`wait`]s (polls) for the answer, up to
//!    `replies.idempotency_wait_ms`, then answers 409 (`Retry-After: 1`).
//! 3. [`complete`] stores the answer for `replies.idempotency_ttl_s`; [`release`] deletes
//!    the marker when nothing was sent (any refusal before or by the provider), so the
//!    CRM may try again with the same key. Only a success, or a send whose outcome is
//!    unknown (a timeout after the request left), is kept: those must never be re-sent.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::{Store, StoreBackend, StoreError};
use crate::vault::fingerprint::Fingerprints;

/// A stored answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
enum Record {
    Pending {
        fp: String,
    },
    Done {
        fp: String,
        #[serde(flatten)]
        response: StoredResponse,
    },
}

/// What [`claim`] found.
#[derive(Debug, PartialEq)]
pub enum Claim {
    /// This request owns the key: send, then [`complete`] or [`release`].
    Claimed,
    /// The first request's answer.
    Replay(StoredResponse),
    /// Another request with this key is still sending.
    InFlight,
    /// The key was used with a different body.
    Mismatch,
}

/// A request body's fingerprint: the one stored (under the primary vault key), and the
/// ones a stored record may carry (under every configured key, after a rotation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    primary: String,
    all: Vec<String>,
}

impl Fingerprint {
    fn matches(&self, stored: &str) -> bool {
        self.all.iter().any(|f| f == stored)
    }
}

/// The keyed fingerprint of a request body.
pub fn fingerprint(keys: &Fingerprints, body: &[u8]) -> Fingerprint {
    let all = keys.all("idempotency body", body);
    Fingerprint {
        primary: all.first().cloned().unwrap_or_default(),
        all,
    }
}

/// Whether a key is acceptable: 1–255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Tries to take the key; otherwise says what holds it.
pub async fn claim(
    store: &Store,
    key: &str,
    fp: &Fingerprint,
    pending_ttl: Duration,
) -> Result<Claim, StoreError> {
    let pending = serde_json::to_string(&Record::Pending {
        fp: fp.primary.clone(),
    })
    .unwrap_or_default();
    // Two rounds: the record may expire or be released between SET NX and GET.
    for _ in 0..2 {
        if store.set_nx_ex(key, &pending, pending_ttl).await? {
            return Ok(Claim::Claimed);
        }
        match store.get(key).await? {
            None => continue,
            Some(v) => return Ok(inspect(&v, fp)),
        }
    }
    Ok(Claim::InFlight)
}

fn inspect(value: &str, fp: &Fingerprint) -> Claim {
    match serde_json::from_str::<Record>(value) {
        Ok(Record::Pending { fp: f }) if fp.matches(&f) => Claim::InFlight,
        Ok(Record::Done { fp: f, response }) if fp.matches(&f) => Claim::Replay(response),
        Ok(_) => Claim::Mismatch,
        // Unreadable: treat as taken; it expires.
        Err(_) => Claim::InFlight,
    }
}

/// Polls until the holder stores its answer (or releases the key, which this request
/// then claims), or `wait` passes.
pub async fn wait(
    store: &Store,
    key: &str,
    fp: &Fingerprint,
    pending_ttl: Duration,
    wait: Duration,
) -> Result<Claim, StoreError> {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(20);
    loop {
        match claim(store, key, fp, pending_ttl).await? {
            Claim::InFlight if Instant::now() < deadline => {
                tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
                pause = (pause * 2).min(Duration::from_millis(250));
            }
            other => return Ok(other),
        }
    }
}

/// Stores the answer for `ttl`.
pub async fn complete(
    store: &Store,
    key: &str,
    fp: &Fingerprint,
    response: StoredResponse,
    ttl: Duration,
) -> Result<(), StoreError> {
    let record = serde_json::to_string(&Record::Done {
        fp: fp.primary.clone(),
        response,
    })
    .unwrap_or_default();
    store.set_ex(key, &record, ttl).await
}

/// Frees the key (nothing was sent).
pub async fn release(store: &Store, key: &str) -> Result<(), StoreError> {
    store.del(key).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(body: &[u8]) -> Fingerprint {
        let keyring = crate::vault::Keyring::new(&[secrecy::SecretString::from(
            crate::vault::Keyring::generate_key(),
        )])
        .unwrap();
        fingerprint(keyring.fingerprints(), body)
    }

    #[test]
    fn fingerprint_is_keyed_never_a_plain_hash_of_the_body() {
        use sha2::{Digest, Sha256};
        let body = br#"{"to":"15551234567","message":{"kind":"text","text":"hi"}}"#;
        let a = fp(body);
        assert_ne!(a.primary, hex::encode(Sha256::digest(body)));
        assert_ne!(
            a.primary,
            fp(body).primary,
            "another vault key, another fingerprint"
        );
    }

    #[test]
    fn records_round_trip_and_mismatch_is_seen() {
        let a = Fingerprint {
            primary: "a".into(),
            all: vec!["a".into()],
        };
        let b = Fingerprint {
            primary: "b".into(),
            all: vec!["b".into()],
        };
        let done = serde_json::to_string(&Record::Done {
            fp: "a".into(),
            response: StoredResponse {
                status: 200,
                body: serde_json::json!({"id": "x"}),
                retry_after: None,
            },
        })
        .unwrap();
        assert!(matches!(inspect(&done, &a), Claim::Replay(r) if r.status == 200));
        assert_eq!(inspect(&done, &b), Claim::Mismatch);
        let pending = serde_json::to_string(&Record::Pending { fp: "a".into() }).unwrap();
        assert_eq!(inspect(&pending, &a), Claim::InFlight);
        assert!(valid_key("order-123_ä".split('_').next().unwrap()));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
    }
}
