//! Signatures on both sides of the relay: Meta's `X-Hub-Signature-256` on what tests
//! send in, and the Standard Webhooks signature on what the CRM receives, checked with
//! the `standardwebhooks` crate (an implementation we did not write).

use hmac::{Hmac, Mac};

/// `sha256=<hex>` as Meta computes it.
pub fn meta_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A request a CRM peer received: its headers and raw body.
pub trait Delivered {
    fn header(&self, name: &str) -> Option<&[u8]>;
    fn raw_body(&self) -> &[u8];
}

impl Delivered for wiremock::Request {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name).map(|v| v.as_bytes())
    }

    fn raw_body(&self) -> &[u8] {
        &self.body
    }
}

/// Verifies a CRM request with the `standardwebhooks` crate and returns the JSON body.
pub fn verify_standard_webhook(secret: &str, req: &impl Delivered) -> serde_json::Value {
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let v = req.header(name).unwrap_or_else(|| panic!("missing {name}"));
        headers.insert(
            http::header::HeaderName::from_static(name),
            http::HeaderValue::from_bytes(v).unwrap(),
        );
    }
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(req.raw_body(), &headers)
        .expect("the CRM signature must verify with the standardwebhooks crate");
    serde_json::from_slice(req.raw_body()).unwrap()
}
