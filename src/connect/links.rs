//! Connect links: what a CRM asks for (`POST /v1/connect-links`) and hands to its
//! customer. A link is a public id (`cl_…`, for the CRM) and a secret (256 random bits,
//! in the link's URL, for the browser). Only the secret's SHA-256 is stored:
//!
//! - `connect:link:{id}`: the record (JSON), kept a week past its expiry so the CRM
//!   can still read how it ended;
//! - `connect:secret:{sha256}`: the id, living exactly as long as the link;
//! - `connect:used:{id}`: written once (`SET NX`) when the link is used up, by a
//!   connected channel or a revocation, so two tabs cannot both use one link.

use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::channels::{ChannelKind, ChannelRef};
use crate::live::Live;
use crate::store::{Store, StoreBackend, StoreError};
use crate::time::{format_rfc3339, now_ms};

/// How long a record outlives its link, so `GET` can still say how it ended.
const KEEP_AFTER_EXPIRY: Duration = Duration::from_secs(7 * 86_400);
/// The longest `external_ref`.
const MAX_EXTERNAL_REF: usize = 256;

/// Why a link request was refused. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// Unknown, or another tenant's (the same answer: 404).
    #[error("no such connect link")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a stored connect link is unreadable: {0}")]
    Corrupt(String),
}

fn invalid(field: &'static str, message: impl Into<String>) -> LinkError {
    LinkError::Invalid {
        field,
        message: message.into(),
    }
}

/// A link's status, as `GET /v1/connect-links/{id}` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkStatus {
    Pending,
    Connected,
    Failed,
    Expired,
    Revoked,
}

/// Why a link failed (`error` in its view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkFailure {
    pub code: String,
    pub detail: String,
}

/// A stored link.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Link {
    pub id: String,
    pub tenant: String,
    pub kind: ChannelKind,
    pub status: LinkStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// SHA-256 (hex) of the secret; never the secret.
    pub secret_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<LinkFailure>,
}

impl Link {
    /// The status now: a pending or failed link past its time is expired.
    pub fn status_now(&self) -> LinkStatus {
        match self.status {
            LinkStatus::Pending | LinkStatus::Failed if now_ms() >= self.expires_at_ms => {
                LinkStatus::Expired
            }
            s => s,
        }
    }

    /// Whether a browser may still use it (a failed link may be tried again).
    pub fn is_usable(&self) -> bool {
        matches!(self.status_now(), LinkStatus::Pending | LinkStatus::Failed)
    }

    /// Milliseconds left.
    pub fn remaining(&self) -> Duration {
        Duration::from_millis((self.expires_at_ms - now_ms()).max(0) as u64)
    }

    /// The CRM's view (`GET`), without the URL (its secret is not stored).
    pub fn view(&self) -> LinkView {
        LinkView {
            id: self.id.clone(),
            url: None,
            kind: self.kind,
            status: self.status_now(),
            channel: self.channel.clone(),
            error: self.error.clone(),
            expires_at: format_rfc3339(self.expires_at_ms),
            external_ref: self.external_ref.clone(),
        }
    }
}

/// What the CRM sees of a link.
#[derive(Debug, Clone, Serialize)]
pub struct LinkView {
    pub id: String,
    /// Only in the answer to `POST` (the secret is not kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub kind: ChannelKind,
    pub status: LinkStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<LinkFailure>,
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

/// The body of `POST /v1/connect-links`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateLink {
    pub kind: ChannelKind,
    #[serde(default)]
    pub return_url: Option<String>,
    #[serde(default)]
    pub external_ref: Option<String>,
    #[serde(default)]
    pub expires_in_s: Option<u64>,
}

/// The SHA-256 (hex) of a link secret or flow cookie.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn random_b64(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&b)
}

/// Checks a `return_url` against `connect.return_url_hosts`.
pub fn check_return_url(live: &Live, url: &str) -> Result<(), LinkError> {
    let parsed =
        url::Url::parse(url).map_err(|_| invalid("return_url", "must be an absolute https URL"))?;
    if parsed.scheme() != "https" && parsed.scheme() != "http" {
        return Err(invalid("return_url", "must be an absolute https URL"));
    }
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    let allowed = live
        .settings
        .connect
        .return_url_hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&host));
    if !allowed || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "return_url",
            "its host is not in connect.return_url_hosts",
        ));
    }
    Ok(())
}

/// Makes a link for `tenant`; the answer carries its URL (the only time the secret is
/// shown).
pub async fn create(
    store: &Store,
    live: &Live,
    tenant: &str,
    req: CreateLink,
) -> Result<LinkView, LinkError> {
    if let Some(u) = &req.return_url {
        check_return_url(live, u)?;
    }
    if let Some(r) = &req.external_ref {
        if r.is_empty() || r.len() > MAX_EXTERNAL_REF || r.contains(char::is_control) {
            return Err(invalid(
                "external_ref",
                "1 to 256 characters, without control characters",
            ));
        }
    }
    let ttl_s = req.expires_in_s.unwrap_or(live.settings.connect.link_ttl_s);
    if ttl_s == 0 || ttl_s > crate::config::MAX_LINK_TTL_S {
        return Err(invalid("expires_in_s", "must be between 1 and 86400"));
    }
    let secret = SecretString::from(random_b64(32));
    let id = format!("cl_{}", hex::encode(rand::random::<[u8; 16]>()));
    let now = now_ms();
    let link = Link {
        id: id.clone(),
        tenant: tenant.to_owned(),
        kind: req.kind,
        status: LinkStatus::Pending,
        return_url: req.return_url,
        external_ref: req.external_ref,
        created_at_ms: now,
        expires_at_ms: now + (ttl_s as i64) * 1000,
        secret_sha256: sha256_hex(secret.expose_secret()),
        channel: None,
        error: None,
    };
    let ttl = Duration::from_secs(ttl_s);
    save(store, &link).await?;
    store
        .set_ex(&store.keys().connect_secret(&link.secret_sha256), &id, ttl)
        .await?;
    tracing::info!(connect_link = %id, tenant = %tenant, kind = %link.kind, "Connect link created.");
    let mut view = link.view();
    view.url = Some(format!(
        "{}/connect/{}",
        live.public_url,
        secret.expose_secret()
    ));
    Ok(view)
}

/// Writes a link record (its TTL follows its expiry).
pub async fn save(store: &Store, link: &Link) -> Result<(), StoreError> {
    let body = serde_json::to_string(link).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    store
        .set_ex(
            &store.keys().connect_link(&link.id),
            &body,
            link.remaining() + KEEP_AFTER_EXPIRY,
        )
        .await
}

/// A link by id, whoever owns it.
pub async fn load(store: &Store, id: &str) -> Result<Option<Link>, LinkError> {
    if !id.starts_with("cl_")
        || id.len() > 64
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Ok(None);
    }
    match store.get(&store.keys().connect_link(id)).await? {
        None => Ok(None),
        Some(s) => serde_json::from_str(&s)
            .map(Some)
            .map_err(|e| LinkError::Corrupt(e.to_string())),
    }
}

/// A tenant's link (another tenant's is not found).
pub async fn get(store: &Store, tenant: &str, id: &str) -> Result<Link, LinkError> {
    match load(store, id).await? {
        Some(l) if l.tenant == tenant => Ok(l),
        _ => Err(LinkError::NotFound),
    }
}

/// Revokes a tenant's link: its URL stops working. A link already used up stays as it
/// ended.
pub async fn revoke(store: &Store, tenant: &str, id: &str) -> Result<(), LinkError> {
    let mut link = get(store, tenant, id).await?;
    if claim(store, &link).await? {
        link.status = LinkStatus::Revoked;
        save(store, &link).await?;
        tracing::info!(connect_link = %id, tenant = %tenant, "Connect link revoked.");
    }
    Ok(())
}

/// The link a browser's secret opens, if it is still there (whatever its status).
pub async fn by_secret(store: &Store, secret: &str) -> Result<Option<Link>, LinkError> {
    if secret.len() != 43
        || !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Ok(None);
    }
    match store
        .get(&store.keys().connect_secret(&sha256_hex(secret)))
        .await?
    {
        None => Ok(None),
        Some(id) => load(store, &id).await,
    }
}

/// Uses the link up, once: whether this caller did.
pub async fn claim(store: &Store, link: &Link) -> Result<bool, StoreError> {
    store
        .set_nx_ex(
            &store.keys().connect_used(&link.id),
            "1",
            link.remaining() + KEEP_AFTER_EXPIRY,
        )
        .await
}

/// Gives a claim back (the channel could not be stored after all).
pub async fn unclaim(store: &Store, link: &Link) -> Result<(), StoreError> {
    store
        .del(&store.keys().connect_used(&link.id))
        .await
        .map(|_| ())
}

/// Records a failure on a link (it stays usable until it expires).
pub async fn fail(store: &Store, link: &Link, code: &str, detail: &str) -> Result<(), StoreError> {
    let Ok(Some(mut current)) = load(store, &link.id).await else {
        return Ok(());
    };
    if current.status != LinkStatus::Pending && current.status != LinkStatus::Failed {
        return Ok(());
    }
    current.status = LinkStatus::Failed;
    current.error = Some(LinkFailure {
        code: code.to_owned(),
        detail: detail.to_owned(),
    });
    tracing::info!(connect_link = %link.id, tenant = %link.tenant, code, "Connect link failed.");
    save(store, &current).await
}

/// Records the connected channel (its secret now opens only the "already used" page).
pub async fn connected(store: &Store, link: &Link, channel: &ChannelRef) -> Result<(), StoreError> {
    let mut current = match load(store, &link.id).await {
        Ok(Some(l)) => l,
        _ => link.clone(),
    };
    current.status = LinkStatus::Connected;
    current.channel = Some(channel.clone());
    current.error = None;
    save(store, &current).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_bits_and_fresh() {
        let a = random_b64(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_b64(32));
    }

    #[test]
    fn a_failed_or_pending_link_past_its_time_is_expired() {
        let mut l = Link {
            id: "cl_1".into(),
            tenant: "t".into(),
            kind: ChannelKind::Telegram,
            status: LinkStatus::Pending,
            return_url: None,
            external_ref: None,
            created_at_ms: 0,
            expires_at_ms: now_ms() - 1,
            secret_sha256: String::new(),
            channel: None,
            error: None,
        };
        assert_eq!(l.status_now(), LinkStatus::Expired);
        assert!(!l.is_usable());
        l.status = LinkStatus::Connected;
        assert_eq!(l.status_now(), LinkStatus::Connected);
        l.status = LinkStatus::Failed;
        l.expires_at_ms = now_ms() + 10_000;
        assert!(l.is_usable());
    }
}
