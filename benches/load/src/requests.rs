//! The requests: each one unique. A webhook carries its own message id, timestamp and
//! `X-Hub-Signature-256` (HMAC-SHA256 of its exact bytes with the app secret), from one
//! of 1,000 senders; a reply goes to one of the same 1,000 numbers. Bodies are built
//! from a template per request (a fixed body would measure only the dedupe lookup).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The WhatsApp phone number id of the benchmark's channel.
pub const PHONE_NUMBER_ID: &str = "106540352242922";
/// How many different senders (and conversations) the requests come from.
pub const SENDERS: u64 = 1_000;

/// One request: path, body and its extra headers.
pub struct Request {
    pub path: &'static str,
    pub body: Bytes,
    pub headers: Vec<(&'static str, String)>,
}

/// What a kind of request is, and how it is told apart from the others.
pub enum Kind {
    /// `POST /webhooks/meta`: a WhatsApp text message.
    Webhook { mac: Hmac<Sha256> },
    /// `POST /v1/messages`: a text reply.
    Reply { bearer: String },
}

/// Makes requests of one kind; `next` is called by every connection of a round.
pub struct Requests {
    kind: Kind,
    /// Tells this run's message ids apart from any earlier run's.
    run: u64,
    seq: AtomicU64,
}

impl Requests {
    pub fn webhooks(app_secret: &str) -> anyhow::Result<Self> {
        let mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
            .map_err(|e| anyhow::anyhow!("app secret: {e}"))?;
        Ok(Self::new(Kind::Webhook { mac }))
    }

    pub fn replies(api_key: &str) -> Self {
        Self::new(Kind::Reply {
            bearer: format!("Bearer {api_key}"),
        })
    }

    fn new(kind: Kind) -> Self {
        Self {
            kind,
            run: now_s() * 1_000 + u64::from(std::process::id() % 1_000),
            seq: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> Request {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let from = format!("1650555{:04}", n % SENDERS);
        match &self.kind {
            Kind::Webhook { mac } => {
                let body = format!(
                    concat!(
                        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"419561257915477","changes":[{{"value":"#,
                        r#"{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{pnid}"}},"#,
                        r#""contacts":[{{"profile":{{"name":"Load Test"}},"wa_id":"{from}"}}],"#,
                        r#""messages":[{{"from":"{from}","id":"wamid.load.{run}.{n}","timestamp":"{ts}","type":"text","#,
                        r#""text":{{"body":"Does it come in another color?"}}}}]}},"field":"messages"}}]}}]}}"#
                    ),
                    pnid = PHONE_NUMBER_ID,
                    from = from,
                    run = self.run,
                    n = n,
                    ts = now_s(),
                );
                let mut mac = mac.clone();
                mac.update(body.as_bytes());
                let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                Request {
                    path: "/webhooks/meta",
                    body: Bytes::from(body),
                    headers: vec![("x-hub-signature-256", sig)],
                }
            }
            Kind::Reply { bearer } => {
                let body = format!(
                    r#"{{"channel":{{"kind":"whatsapp","id":"{PHONE_NUMBER_ID}"}},"to":"{from}","message":{{"kind":"text","text":"It comes in blue too ({n})."}}}}"#
                );
                Request {
                    path: "/v1/messages",
                    body: Bytes::from(body),
                    headers: vec![("authorization", bearer.clone())],
                }
            }
        }
    }

    /// What a 200 must say for the request to count: a webhook's event delivered to the
    /// CRM directly (not buffered, not a duplicate).
    pub fn accepted(&self, status: u16, body: &[u8], baseline: bool) -> bool {
        if status != 200 {
            return false;
        }
        match self.kind {
            Kind::Webhook { .. } if !baseline => contains(body, br#""delivered":1"#),
            _ => true,
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_are_unique_and_signed_over_their_bytes() {
        let r = Requests::webhooks("s").unwrap();
        let (a, b) = (r.next(), r.next());
        assert_ne!(a.body, b.body);
        let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        let m = &v["entry"][0]["changes"][0]["value"]["messages"][0];
        assert_eq!(m["type"], "text");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s").unwrap();
        mac.update(&a.body);
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(a.headers[0].1, want);
    }

    #[test]
    fn replies_are_json() {
        let r = Requests::replies("k");
        let v: serde_json::Value = serde_json::from_slice(&r.next().body).unwrap();
        assert_eq!(v["message"]["kind"], "text");
    }
}
