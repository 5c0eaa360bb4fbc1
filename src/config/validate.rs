//! [`Settings::validate`]: the checks no single field can make, each error naming its key.

use secrecy::ExposeSecret;

use super::{connect, ConfigError, Settings, StoreKind, MAX_DEAD_LETTER_TTL_S};
use crate::channel::ChannelKind;

impl Settings {
    /// Cross-field checks. Fernet keys and signing secrets are parsed (and so checked)
    /// once, into what uses them, by [`crate::live::Live::new`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server
            .bind
            .parse::<std::net::SocketAddr>()
            .map_err(|e| ConfigError::invalid("server.bind", format!("not an address: {e}")))?;
        check_url("server.public_url", &self.server.public_url)?;
        if self.server.max_body_bytes == 0 {
            return Err(ConfigError::invalid(
                "server.max_body_bytes",
                "must be greater than 0",
            ));
        }
        for (key, value) in [
            ("server.body_timeout_ms", self.server.body_timeout_ms),
            ("server.header_timeout_ms", self.server.header_timeout_ms),
            ("server.max_connections", self.server.max_connections as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be greater than 0"));
            }
        }
        if self.store.key_prefix.is_empty() {
            return Err(ConfigError::invalid(
                "store.key_prefix",
                "must not be empty",
            ));
        }
        if self.store.backend == StoreKind::Redis && self.store.cluster_nodes.is_empty() {
            check_redis_url("store.redis_url", self.store.redis_url.expose_secret())?;
        }
        for (i, node) in self.store.cluster_nodes.iter().enumerate() {
            check_redis_url(&format!("store.cluster_nodes[{i}]"), node.expose_secret())?;
        }
        if self.store.timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "store.timeout_ms",
                "must be greater than 0",
            ));
        }
        if self.vault.keys.is_empty() {
            return Err(ConfigError::invalid(
                "vault.keys",
                "at least one Fernet key is required (make one with `switchboard vault keygen`)",
            ));
        }
        check_url("meta.graph_api_base", &self.meta.graph_api_base)?;
        if !self.meta.graph_api_version.starts_with('v') {
            return Err(ConfigError::invalid(
                "meta.graph_api_version",
                "must look like \"v23.0\"",
            ));
        }
        check_url("telegram.api_base", &self.telegram.api_base)?;
        connect::validate(self)?;
        if self.delivery.timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "delivery.timeout_ms",
                "must be greater than 0",
            ));
        }
        let retry = &self.delivery;
        if retry.claim_idle_ms <= self.delivery.timeout_ms {
            return Err(ConfigError::invalid(
                "delivery.claim_idle_ms",
                "must be greater than delivery.timeout_ms (else entries in flight are claimed twice)",
            ));
        }
        if retry.retry_shards == 0 || retry.worker_concurrency == 0 || retry.retry_base_ms == 0 {
            return Err(ConfigError::invalid(
                "delivery.retry_shards",
                "retry_shards, worker_concurrency and retry_base_ms must be greater than 0",
            ));
        }
        if retry.dead_letter_ttl_s > MAX_DEAD_LETTER_TTL_S {
            return Err(ConfigError::invalid(
                "delivery.dead_letter_ttl_s",
                format!("must be at most {MAX_DEAD_LETTER_TTL_S} (a year); 0 turns the list off"),
            ));
        }
        if self.delivery.max_concurrency == 0 {
            return Err(ConfigError::invalid(
                "delivery.max_concurrency",
                "must be greater than 0",
            ));
        }
        if self.privacy.deletion_status_ttl_s == 0 {
            return Err(ConfigError::invalid(
                "privacy.deletion_status_ttl_s",
                "must be greater than 0",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.tenants.iter().enumerate() {
            if t.id.is_empty() || t.id.contains(|c: char| c.is_whitespace() || c == ':') {
                return Err(ConfigError::invalid(
                    format!("tenants[{i}].id"),
                    "must be non-empty, without spaces or ':'",
                ));
            }
            if !seen.insert(t.id.as_str()) {
                return Err(ConfigError::invalid(
                    format!("tenants[{i}].id"),
                    format!("tenant `{}` is declared twice", t.id),
                ));
            }
            check_url(&format!("tenants[{i}].crm_url"), &t.crm_url)?;
        }
        for (i, c) in self.channels.iter().enumerate() {
            if let Err(e) = crate::channel::ChannelRef::parse(c.kind, c.id.as_str()) {
                return Err(ConfigError::invalid(
                    format!("channels[{i}].id"),
                    e.to_string(),
                ));
            }
            if !seen.contains(c.tenant.as_str()) {
                return Err(ConfigError::invalid(
                    format!("channels[{i}].tenant"),
                    format!("no tenant `{}` is declared in [[tenants]]", c.tenant),
                ));
            }
            if c.token.expose_secret().is_empty() {
                return Err(ConfigError::invalid(
                    format!("channels[{i}].token"),
                    "a Fernet token of the access token is required",
                ));
            }
            crate::channel::fields::check_optional(
                c.kind,
                c.waba_id.as_deref(),
                c.graph.as_deref(),
                c.expires_at.as_deref(),
            )
            .map_err(|e| ConfigError::invalid(format!("channels[{i}].{}", e.field), e.message))?;
            if c.pin.is_some() && c.kind != ChannelKind::Whatsapp {
                return Err(ConfigError::invalid(
                    format!("channels[{i}].pin"),
                    "only a whatsapp channel has a two-step PIN",
                ));
            }
        }
        Ok(())
    }
}
fn check_url(key: &str, value: &str) -> Result<(), ConfigError> {
    let url = url::Url::parse(value)
        .map_err(|e| ConfigError::invalid(key, format!("not a URL ({e})")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(ConfigError::invalid(
            key,
            "must be an http:// or https:// URL",
        ));
    }
    Ok(())
}

fn check_redis_url(key: &str, value: &str) -> Result<(), ConfigError> {
    // The message never repeats the value: it may carry a password.
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "redis" | "rediss" | "redis+unix" | "unix") => Ok(()),
        _ => Err(ConfigError::invalid(
            key,
            "must be a redis://, rediss:// or unix:// URL",
        )),
    }
}
