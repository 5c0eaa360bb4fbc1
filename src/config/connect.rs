//! The settings of the connect pages (v2, used by [`crate::connect`]): `[instagram]` (Instagram API with Instagram
//! Login), `[connect]` (links) and `[tokens]` (token health). The Meta app's own keys
//! (`meta.app_id`, `login_config_id`, `whatsapp_config_id`, `oauth_dialog_base`,
//! `sdk_url`) live in [`crate::config::MetaSettings`].

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use crate::config::{ConfigError, Settings};

/// `[instagram]`: the Instagram app of Instagram Login (its own id and secrets, not the
/// Meta app's).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InstagramSettings {
    pub app_id: String,
    /// Sign that app's webhooks, and the first one is the OAuth `client_secret`.
    pub app_secrets: Vec<SecretString>,
    pub app_secrets_file: Option<PathBuf>,
    /// Where the person logs in (`{oauth_base}/oauth/authorize`).
    pub oauth_base: String,
    /// Where the code is exchanged (`{api_base}/oauth/access_token`).
    pub api_base: String,
    /// The Instagram Graph API: long-lived tokens, `/me`, subscriptions, sends, media.
    pub graph_base: String,
}

impl Default for InstagramSettings {
    fn default() -> Self {
        Self {
            app_id: String::new(),
            app_secrets: Vec::new(),
            app_secrets_file: None,
            oauth_base: "https://www.instagram.com".into(),
            api_base: "https://api.instagram.com".into(),
            graph_base: "https://graph.instagram.com".into(),
        }
    }
}

/// `[connect]`: connect links.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectSettings {
    /// A link's life when the CRM gives no `expires_in_s`.
    pub link_ttl_s: u64,
    /// Hosts a link's `return_url` may point to (exact, case-insensitive).
    pub return_url_hosts: Vec<String>,
    /// How long a connect page's flow (its cookie) lives at most.
    pub flow_ttl_s: u64,
    /// WhatsApp: `/register` attempts per flow (Meta blocks a number after 10 in 72 h).
    pub max_register_attempts: u32,
}

impl Default for ConnectSettings {
    fn default() -> Self {
        Self {
            link_ttl_s: 3600,
            return_url_hosts: Vec::new(),
            flow_ttl_s: 1800,
            max_register_attempts: 3,
        }
    }
}

/// `[tokens]`: token health.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    /// How often a round runs (once per interval across all replicas).
    pub check_interval_s: u64,
    /// Instagram Login tokens expiring within this are refreshed.
    pub refresh_before_s: u64,
    /// Channel keys read per SCAN page (the most held in memory at once).
    pub page_size: usize,
    /// Channels of a page checked at once.
    pub concurrency: usize,
    /// How long a replica's lock on one channel's check lives at most.
    pub lock_ttl_s: u64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            check_interval_s: 86400,
            refresh_before_s: 864_000,
            page_size: 100,
            concurrency: 8,
            lock_ttl_s: 120,
        }
    }
}

/// The longest a connect link may live.
pub const MAX_LINK_TTL_S: u64 = 86_400;

/// Reads the `…_file` secrets of these sections.
pub fn resolve_files(settings: &mut Settings) -> Result<(), ConfigError> {
    if let Some(p) = settings.instagram.app_secrets_file.clone() {
        let text = std::fs::read_to_string(&p).map_err(|e| {
            ConfigError::invalid(
                "instagram.app_secrets_file",
                format!("cannot read {}: {e}", p.display()),
            )
        })?;
        settings.instagram.app_secrets = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| SecretString::from(l.to_owned()))
            .collect();
    }
    Ok(())
}

/// Cross-field checks, naming the key.
pub fn validate(settings: &Settings) -> Result<(), ConfigError> {
    let url = |key: &str, v: &str| -> Result<(), ConfigError> {
        match url::Url::parse(v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
            _ => Err(ConfigError::invalid(key, "must be an http(s) URL")),
        }
    };
    url("meta.oauth_dialog_base", &settings.meta.oauth_dialog_base)?;
    url("meta.sdk_url", &settings.meta.sdk_url)?;
    url("instagram.oauth_base", &settings.instagram.oauth_base)?;
    url("instagram.api_base", &settings.instagram.api_base)?;
    url("instagram.graph_base", &settings.instagram.graph_base)?;
    let c = &settings.connect;
    if c.link_ttl_s == 0 || c.link_ttl_s > MAX_LINK_TTL_S {
        return Err(ConfigError::invalid(
            "connect.link_ttl_s",
            "must be between 1 and 86400",
        ));
    }
    if c.flow_ttl_s == 0 {
        return Err(ConfigError::invalid(
            "connect.flow_ttl_s",
            "must be greater than 0",
        ));
    }
    if c.max_register_attempts == 0 || c.max_register_attempts > 9 {
        return Err(ConfigError::invalid(
            "connect.max_register_attempts",
            "must be between 1 and 9 (Meta blocks a number after 10 attempts in 72 hours)",
        ));
    }
    for (i, h) in c.return_url_hosts.iter().enumerate() {
        if h.is_empty() || h.contains(['/', ':', ' ']) {
            return Err(ConfigError::invalid(
                format!("connect.return_url_hosts[{i}]"),
                "must be a bare host name, e.g. crm.example.com",
            ));
        }
    }
    let t = &settings.tokens;
    for (key, v) in [
        ("tokens.check_interval_s", t.check_interval_s),
        ("tokens.page_size", t.page_size as u64),
        ("tokens.concurrency", t.concurrency as u64),
        ("tokens.lock_ttl_s", t.lock_ttl_s),
    ] {
        if v == 0 {
            return Err(ConfigError::invalid(key, "must be greater than 0"));
        }
    }
    if t.page_size > 10_000 {
        return Err(ConfigError::invalid(
            "tokens.page_size",
            "must be at most 10000 (a page is held in memory)",
        ));
    }
    Ok(())
}
