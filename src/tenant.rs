//! A tenant: one downstream CRM as the live configuration describes it, the parsed form
//! of a `[[tenants]]` entry (built by [`crate::live::Live::new`], used by delivery and
//! replies).

use base64::Engine;
use http::{HeaderValue, Uri};
use metrics::{Counter, Histogram};
use secrecy::SecretString;

use crate::signing::Signer;

/// One downstream CRM.
#[derive(Debug)]
pub struct Tenant {
    pub id: String,
    /// The CRM's URL (`crm_url`) as the HTTP client takes it, parsed once, without the
    /// userinfo.
    pub crm_uri: Uri,
    /// `Authorization: Basic …` from the URL's userinfo (`https://user:pass@crm/…`).
    pub crm_authorization: Option<HeaderValue>,
    /// Its signing secrets, keyed (the primary first).
    pub signer: Signer,
    /// Its API keys for `/v1/…` (matched by digest in [`crate::live::Live`]).
    pub api_keys: Vec<SecretString>,
    /// Whether events carry the provider's raw payload.
    pub include_raw: bool,
    /// The tenant's delivery metrics on the hot path, registered once (not looked up,
    /// with its labels built, for every event).
    pub metrics: TenantMetrics,
}

/// The request target of `url` and the `Authorization` its userinfo asks for (the way
/// browsers and HTTP clients read `user:pass@`).
pub fn crm_target(url: &url::Url) -> Result<(Uri, Option<HeaderValue>), String> {
    let mut bare = url.clone();
    let authorization = if url.username().is_empty() && url.password().is_none() {
        None
    } else {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let user = decode(url.username());
        let pass = url.password().map(decode).unwrap_or_default();
        let _ = bare.set_username("");
        let _ = bare.set_password(None);
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let mut value =
            HeaderValue::try_from(format!("Basic {token}")).map_err(|e| e.to_string())?;
        value.set_sensitive(true);
        Some(value)
    };
    let uri = bare.as_str().parse::<Uri>().map_err(|e| e.to_string())?;
    Ok((uri, authorization))
}

/// The metric handles of one tenant's direct deliveries (the worker's deliveries and
/// every failure are rarer and use the `metrics` macros where they happen).
#[derive(Debug)]
pub struct TenantMetrics {
    /// `switchboard_delivery_duration_seconds{tenant,source=direct}`: one attempt.
    pub direct_duration: Histogram,
    /// `switchboard_delivery_latency_seconds{tenant,source=direct}`: receipt to acceptance.
    pub direct_latency: Histogram,
    /// `switchboard_deliveries_total{tenant,source=direct,outcome=delivered}`.
    pub direct_attempts_delivered: Counter,
    /// `switchboard_events_delivered_total{tenant,source=direct}`.
    pub direct_delivered: Counter,
}

impl TenantMetrics {
    /// Registers (or finds, after a reload) the handles of tenant `id`.
    pub fn register(id: &str) -> Self {
        let tenant = id.to_owned();
        Self {
            direct_duration: metrics::histogram!("switchboard_delivery_duration_seconds", "tenant" => tenant.clone(), "source" => "direct"),
            direct_latency: metrics::histogram!("switchboard_delivery_latency_seconds", "tenant" => tenant.clone(), "source" => "direct"),
            direct_attempts_delivered: metrics::counter!("switchboard_deliveries_total", "tenant" => tenant.clone(), "source" => "direct", "outcome" => "delivered"),
            direct_delivered: metrics::counter!("switchboard_events_delivered_total", "tenant" => tenant, "source" => "direct"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crm_target_keeps_the_url_and_turns_userinfo_into_basic_auth() {
        let plain = url::Url::parse("https://crm.example/hooks/in?x=1").unwrap();
        let (uri, auth) = crm_target(&plain).unwrap();
        assert_eq!(uri.to_string(), "https://crm.example/hooks/in?x=1");
        assert!(auth.is_none());

        // Percent-encoded userinfo is decoded before it is encoded as Basic credentials.
        let with_user = url::Url::parse("http://relay:p%40ss%3Aw0rd@127.0.0.1:9000/in").unwrap();
        let (uri, auth) = crm_target(&with_user).unwrap();
        assert_eq!(uri.to_string(), "http://127.0.0.1:9000/in");
        let auth = auth.unwrap();
        assert!(auth.is_sensitive());
        let b64 = auth.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(decoded, b"relay:p@ss:w0rd");
    }
}
