//! The settings of each section of the file (`[server]`, `[store]`, `[vault]`, `[meta]`,
//! `[telegram]`, `[admin]`, `[metrics]`, `[log]`, `[reload]`, `[replies]`, `[media]`,
//! `[privacy]`) with their defaults; `[delivery]`, the lists and the connect pages have
//! files of their own.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    pub public_url: String,
    pub max_body_bytes: usize,
    pub shutdown_timeout_s: u64,
    pub workers: usize,
    /// A request body not received in full this long after its head → 408, nothing
    /// processed (`http::deadline`).
    #[serde(default = "d_body_timeout_ms")]
    pub body_timeout_ms: u64,
    /// The head of a connection's first request must arrive within this long.
    #[serde(default = "d_header_timeout_ms")]
    pub header_timeout_ms: u64,
    /// An idle kept-alive connection is closed after this long (0 = no keep-alive).
    #[serde(default = "d_keep_alive_s")]
    pub keep_alive_s: u64,
    /// Connections open at once in this process; beyond it new ones wait in the backlog.
    #[serde(default = "d_max_connections")]
    pub max_connections: usize,
}

fn d_body_timeout_ms() -> u64 {
    10_000
}
fn d_header_timeout_ms() -> u64 {
    5_000
}
fn d_keep_alive_s() -> u64 {
    75
}
fn d_max_connections() -> usize {
    4_096
}

/// Which store `store.backend` names (the store itself is `store::Store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Redis,
    Memory,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    pub backend: StoreKind,
    /// May carry a password, hence secret.
    pub redis_url: SecretString,
    #[serde(default)]
    pub redis_url_file: Option<PathBuf>,
    #[serde(default)]
    pub cluster_nodes: Vec<SecretString>,
    pub key_prefix: String,
    pub timeout_ms: u64,
    /// How long a channel's tenant is trusted from the routing cache (0: no cache).
    pub channel_cache_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    #[serde(default)]
    pub keys: Vec<SecretString>,
    #[serde(default)]
    pub keys_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaSettings {
    #[serde(default)]
    pub app_secrets: Vec<SecretString>,
    #[serde(default)]
    pub app_secrets_file: Option<PathBuf>,
    #[serde(default)]
    pub verify_tokens: Vec<SecretString>,
    #[serde(default)]
    pub verify_tokens_file: Option<PathBuf>,
    pub graph_api_base: String,
    pub graph_api_version: String,
    pub timeout_ms: u64,
    /// v2, connect pages: the Meta app, its Facebook Login for Business configuration
    /// (Messenger), its Embedded Signup configuration (WhatsApp), the login dialog's
    /// base URL and the JS SDK's URL.
    #[serde(default)]
    pub app_id: String,
    #[serde(default)]
    pub login_config_id: String,
    #[serde(default)]
    pub whatsapp_config_id: String,
    #[serde(default = "default_oauth_dialog_base")]
    pub oauth_dialog_base: String,
    #[serde(default = "default_sdk_url")]
    pub sdk_url: String,
}

fn default_oauth_dialog_base() -> String {
    "https://www.facebook.com".into()
}

fn default_sdk_url() -> String {
    "https://connect.facebook.net/en_US/sdk.js".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramSettings {
    pub api_base: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    #[serde(default)]
    pub tokens: Vec<SecretString>,
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
}

/// `[metrics]`: who may read `GET /metrics`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// The bearer token `GET /metrics` requires; empty = open.
    pub token: Option<SecretString>,
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadSettings {
    pub watch_interval_ms: u64,
}

/// `[replies]`: sending through the providers (`POST /v1/messages`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplySettings {
    /// Transient failures (provider 5xx, connection refused) are retried with backoff
    /// until this deadline; a request that may have reached the provider never is.
    pub retry_deadline_ms: u64,
    /// How long an `Idempotency-Key` (per tenant) replays the first response.
    pub idempotency_ttl_s: u64,
    /// How long a request waits for a concurrent one with the same key before 409.
    pub idempotency_wait_ms: u64,
}

impl Default for ReplySettings {
    fn default() -> Self {
        Self {
            retry_deadline_ms: 15_000,
            idempotency_ttl_s: 86_400,
            idempotency_wait_ms: 10_000,
        }
    }
}

/// `[media]`: the media proxy (`GET /v1/media/…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaSettings {
    /// Largest media file streamed through; larger files are refused or cut off.
    pub max_bytes: u64,
    /// Hosts (and their subdomains) Instagram/Messenger attachment URLs may point at.
    pub allowed_hosts: Vec<String>,
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            max_bytes: 104_857_600,
            allowed_hosts: ["fbcdn.net", "fbsbx.com", "cdninstagram.com"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// Retention of the relay's own privacy records ([`crate::privacy`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySettings {
    /// How long a data-deletion status record (counts and times, no ids) is kept.
    pub deletion_status_ttl_s: u64,
}
