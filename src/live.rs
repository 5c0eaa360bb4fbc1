//! The live configuration: everything a reload may change (keys, app secrets, verify
//! tokens, tenants, admin tokens), parsed and checked once, then swapped in atomically
//! (`arc-swap`). A request holds the `Arc<Live>` it started with, so a reload never
//! changes the rules under a request in flight.

use std::collections::HashMap;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::channels::meta::{AppSecrets, SignatureError};
use crate::channels::Verified;
use crate::config::{ConfigError, Settings};
use crate::signing::Signer;
use crate::tenant::Tenant;
use crate::vault::Keyring;

pub struct Live {
    pub settings: Settings,
    pub keyring: Keyring,
    pub app_secrets: AppSecrets,
    /// `instagram.app_secrets`: the Instagram Login app signs its webhooks (object
    /// `instagram` only) with these.
    pub instagram_app_secrets: AppSecrets,
    pub tenants: HashMap<String, Arc<Tenant>>,
    /// `server.public_url` without a trailing slash.
    pub public_url: String,
    verify_tokens: Vec<[u8; 32]>,
    admin_tokens: Vec<[u8; 32]>,
    /// `metrics.token` (empty when `/metrics` is open).
    metrics_token: Vec<[u8; 32]>,
    /// SHA-256 of each API key → its tenant.
    api_keys: Vec<([u8; 32], Arc<Tenant>)>,
}

/// Names and counts only: even digests of tokens stay out of `Debug` (a short token's
/// digest can be guessed back).
impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut tenants: Vec<&str> = self.tenants.keys().map(String::as_str).collect();
        tenants.sort_unstable();
        f.debug_struct("Live")
            .field("keyring", &self.keyring)
            .field("app_secrets", &self.app_secrets)
            .field("instagram_app_secrets", &self.instagram_app_secrets)
            .field("tenants", &tenants)
            .field("public_url", &self.public_url)
            .field("verify_tokens", &self.verify_tokens.len())
            .field("admin_tokens", &self.admin_tokens.len())
            .field("metrics_token", &!self.metrics_token.is_empty())
            .field("api_keys", &self.api_keys.len())
            .finish_non_exhaustive()
    }
}

/// Which app's secret a Meta webhook was signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedBy {
    /// `meta.app_secrets`.
    MetaApp,
    /// `instagram.app_secrets` (Instagram API with Instagram Login).
    InstagramApp,
}

impl SignedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MetaApp => "meta_app",
            Self::InstagramApp => "instagram_app",
        }
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Constant-time membership: the candidate's digest against every configured digest
/// (comparing digests hides the lengths too).
fn ct_contains(set: &[[u8; 32]], candidate: &str) -> bool {
    let d = digest(candidate);
    let mut found = subtle::Choice::from(0u8);
    for s in set {
        found |= s.ct_eq(&d);
    }
    bool::from(found)
}

fn digests(secrets: &[SecretString]) -> Vec<[u8; 32]> {
    secrets
        .iter()
        .map(|s| s.expose_secret())
        .filter(|s| !s.is_empty())
        .map(digest)
        .collect()
}

impl Live {
    pub fn new(settings: Settings) -> Result<Self, ConfigError> {
        let keyring = Keyring::new(&settings.vault.keys).map_err(|e| ConfigError::Invalid {
            key: "vault.keys".into(),
            message: e.to_string(),
        })?;
        let mut tenants = HashMap::new();
        let mut api_keys = Vec::new();
        for (i, t) in settings.tenants.iter().enumerate() {
            // The one place signing secrets are parsed.
            let signer = Signer::new(&t.signing_secret, &t.extra_signing_secrets).map_err(|e| {
                let key = match e.position {
                    0 => format!("tenants[{i}].signing_secret"),
                    n => format!("tenants[{i}].extra_signing_secrets[{}]", n - 1),
                };
                ConfigError::Invalid {
                    key,
                    message: e.to_string(),
                }
            })?;
            let crm_url = url::Url::parse(&t.crm_url).map_err(|e| ConfigError::Invalid {
                key: format!("tenants[{i}].crm_url"),
                message: e.to_string(),
            })?;
            let (crm_uri, crm_authorization) =
                crate::tenant::crm_target(&crm_url).map_err(|message| ConfigError::Invalid {
                    key: format!("tenants[{i}].crm_url"),
                    message,
                })?;
            let tenant = Arc::new(Tenant {
                id: t.id.clone(),
                crm_uri,
                crm_authorization,
                signer,
                api_keys: t.api_keys.clone(),
                include_raw: t.include_raw,
                metrics: crate::tenant::TenantMetrics::register(&t.id),
            });
            for k in digests(&t.api_keys) {
                api_keys.push((k, tenant.clone()));
            }
            tenants.insert(t.id.clone(), tenant);
        }
        for (i, c) in settings.channels.iter().enumerate() {
            keyring
                .decrypt(c.token.expose_secret())
                .map_err(|e| ConfigError::Invalid {
                    key: format!("channels[{i}].token"),
                    message: e.to_string(),
                })?;
            if let Some(ws) = &c.webhook_secret {
                keyring
                    .decrypt(ws.expose_secret())
                    .map_err(|e| ConfigError::Invalid {
                        key: format!("channels[{i}].webhook_secret"),
                        message: e.to_string(),
                    })?;
            }
        }
        Ok(Self {
            keyring,
            app_secrets: AppSecrets::new(&settings.meta.app_secrets),
            instagram_app_secrets: AppSecrets::new(&settings.instagram.app_secrets),
            tenants,
            public_url: settings.server.public_url.trim_end_matches('/').to_owned(),
            verify_tokens: digests(&settings.meta.verify_tokens),
            admin_tokens: digests(&settings.admin.tokens),
            metrics_token: digests(settings.metrics.token.as_slice()),
            api_keys,
            settings,
        })
    }

    /// Checks a Meta webhook's `X-Hub-Signature-256` against `meta.app_secrets`, then
    /// against `instagram.app_secrets` (the Instagram Login app's own webhooks), and
    /// says which matched: a body only the Instagram app signed must be an `instagram`
    /// webhook (the caller checks the object).
    pub fn verify_meta_signature<'a>(
        &self,
        header: Option<&[u8]>,
        body: &'a [u8],
    ) -> Result<(Verified<'a>, SignedBy), SignatureError> {
        let meta = self.app_secrets.verify(header, body);
        match meta {
            Ok(v) => Ok((v, SignedBy::MetaApp)),
            Err(SignatureError::Mismatch | SignatureError::NoSecrets)
                if !self.instagram_app_secrets.is_empty() =>
            {
                self.instagram_app_secrets
                    .verify(header, body)
                    .map(|v| (v, SignedBy::InstagramApp))
                    .map_err(|e| match e {
                        SignatureError::NoSecrets => SignatureError::Mismatch,
                        other => other,
                    })
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `candidate` is a configured Meta verify token.
    pub fn is_verify_token(&self, candidate: &str) -> bool {
        ct_contains(&self.verify_tokens, candidate)
    }

    /// Whether `candidate` is a configured admin token.
    pub fn is_admin_token(&self, candidate: &str) -> bool {
        ct_contains(&self.admin_tokens, candidate)
    }

    /// Whether `GET /metrics` may be answered to this bearer credential: always when
    /// `metrics.token` is empty, else only to that token (constant time).
    pub fn may_read_metrics(&self, candidate: Option<&str>) -> bool {
        self.metrics_token.is_empty()
            || candidate.is_some_and(|c| ct_contains(&self.metrics_token, c))
    }

    /// The tenant an API key belongs to.
    pub fn tenant_for_api_key(&self, candidate: &str) -> Option<Arc<Tenant>> {
        let d = digest(candidate);
        let mut hit = None;
        for (k, t) in &self.api_keys {
            if bool::from(k.ct_eq(&d)) {
                hit = Some(t.clone());
            }
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> Settings {
        Settings::from_toml(&format!(
            "[vault]\nkeys = [\"{}\"]\n[[tenants]]\nid = \"acme\"\ncrm_url = \"http://crm.test/\"\nsigning_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nextra_signing_secrets = [{extra}]\n",
            Keyring::generate_key()
        ))
        .unwrap()
    }

    #[test]
    fn a_bad_signing_secret_is_refused_naming_its_key() {
        assert!(Live::new(settings("\"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"")).is_ok());
        match Live::new(settings(
            "\"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\", \"nope\"",
        )) {
            Err(ConfigError::Invalid { key, message }) => {
                assert_eq!(key, "tenants[0].extra_signing_secrets[1]");
                assert!(message.contains("whsec_"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
