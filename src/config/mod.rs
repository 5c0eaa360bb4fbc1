//! Configuration: `config/default.toml` (embedded, so the binary runs from anywhere), then
//! the file named by `--config` / `SWITCHBOARD_CONFIG`, then `SWITCHBOARD__SECTION__KEY`
//! environment variables. Secrets may be given as `…_file` paths. Every error names the key.
//!
//! [`Settings`] is what the file says; [`Settings::load`] also resolves `…_file` secrets and
//! runs [`Settings::validate`], so a `Settings` in hand is always usable.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::channel::ChannelKind;

mod connect;
pub use connect::{ConnectSettings, InstagramSettings, TokenSettings, MAX_LINK_TTL_S};

/// The defaults, compiled in: the same text as `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &[
    "vault.keys",
    "meta.app_secrets",
    "meta.verify_tokens",
    "admin.tokens",
    "store.cluster_nodes",
    "media.allowed_hosts",
];

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Read(String),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    /// A parse error without the source lines the TOML parser quotes (`3 | keys = …`):
    /// the offending line may hold a secret, and this message is logged.
    fn read(e: &config::ConfigError) -> Self {
        let text = e.to_string();
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| {
                let t = l.trim_start();
                !(t.starts_with('|')
                    || t.split_once(" |")
                        .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit())))
            })
            .collect();
        Self::Read(kept.join("\n"))
    }

    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub vault: VaultSettings,
    pub meta: MetaSettings,
    pub telegram: TelegramSettings,
    pub delivery: DeliverySettings,
    pub admin: AdminSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    pub log: LogSettings,
    pub reload: ReloadSettings,
    pub privacy: PrivacySettings,
    #[serde(default)]
    pub replies: ReplySettings,
    #[serde(default)]
    pub media: MediaSettings,
    #[serde(default)]
    pub instagram: InstagramSettings,
    #[serde(default)]
    pub connect: ConnectSettings,
    #[serde(default)]
    pub tokens: TokenSettings,
    #[serde(default)]
    pub tenants: Vec<TenantSettings>,
    #[serde(default)]
    pub channels: Vec<ChannelSettings>,
}

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
pub struct DeliverySettings {
    pub timeout_ms: u64,
    pub retry_buffer_ttl_s: u64,
    pub dedupe_window_s: u64,
    pub ordered_per_conversation: bool,
    pub max_concurrency: usize,
    pub max_response_bytes: usize,
    /// First retry delay; doubled on every failed attempt, ±20 % jitter.
    #[serde(default = "d_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Largest retry delay.
    #[serde(default = "d_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Redis streams the retry buffer is spread over (one hash slot each); fixed for
    /// the life of a buffer.
    #[serde(default = "d_retry_shards")]
    pub retry_shards: u16,
    /// An entry read by a replica that stays unacknowledged this long is claimed by
    /// another (the visibility timeout); must exceed `delivery.timeout_ms`.
    #[serde(default = "d_claim_idle_ms")]
    pub claim_idle_ms: u64,
    /// How long an idle worker waits for new entries per read.
    #[serde(default = "d_poll_ms")]
    pub poll_ms: u64,
    /// Buffered events delivered at once by one replica's worker.
    #[serde(default = "d_worker_concurrency")]
    pub worker_concurrency: usize,
    /// Whether this replica runs the retry worker (off only in tests that drive it).
    #[serde(default = "d_true")]
    pub worker: bool,
    /// Consecutive failures of a tenant's CRM that open its circuit breaker.
    #[serde(default = "d_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open breaker sends a tenant's events straight to the buffer before
    /// one probe is let through.
    #[serde(default = "d_breaker_cooldown_ms")]
    pub breaker_cooldown_ms: u64,
    /// How long an event given up at `retry_buffer_ttl_s` stays, still encrypted, in
    /// the dead-letter list (to be redriven or dropped); 0 = no list, it is deleted.
    #[serde(default)]
    pub dead_letter_ttl_s: u64,
    /// Events one tenant may have in the retry buffer, all replicas together (0 = no
    /// limit); beyond it its webhooks with an event that does not fit get 503.
    #[serde(default = "d_max_buffered_per_tenant")]
    pub max_buffered_per_tenant: u64,
}

fn d_retry_base_ms() -> u64 {
    1_000
}
fn d_retry_max_ms() -> u64 {
    600_000
}
fn d_retry_shards() -> u16 {
    4
}
fn d_claim_idle_ms() -> u64 {
    30_000
}
fn d_poll_ms() -> u64 {
    500
}
fn d_worker_concurrency() -> usize {
    16
}
fn d_true() -> bool {
    true
}
fn d_breaker_failures() -> u32 {
    5
}
fn d_breaker_cooldown_ms() -> u64 {
    10_000
}
/// The longest a given-up event may be kept (a year): beyond, a Redis TTL would be
/// out of range and the list a second store.
pub const MAX_DEAD_LETTER_TTL_S: u64 = 31_536_000;

fn d_max_buffered_per_tenant() -> u64 {
    100_000
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    pub id: String,
    pub crm_url: String,
    #[serde(default = "empty_secret")]
    pub signing_secret: SecretString,
    #[serde(default)]
    pub signing_secret_file: Option<PathBuf>,
    /// Extra secrets that also sign every event during a rotation overlap.
    #[serde(default)]
    pub extra_signing_secrets: Vec<SecretString>,
    #[serde(default)]
    pub api_keys: Vec<SecretString>,
    #[serde(default)]
    pub api_keys_file: Option<PathBuf>,
    #[serde(default)]
    pub include_raw: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    pub kind: ChannelKind,
    pub id: String,
    pub tenant: String,
    /// A Fernet token of the access token (never the plaintext).
    #[serde(default = "empty_secret")]
    pub token: SecretString,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// A Fernet token of the webhook secret (Telegram's `secret_token`).
    #[serde(default)]
    pub webhook_secret: Option<SecretString>,
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
    /// The Meta (app-scoped) user who connected the channel: Meta's deauthorize and
    /// data-deletion callbacks name only that user.
    #[serde(default)]
    pub user_id: Option<String>,
    /// WhatsApp: the WhatsApp Business Account of the number.
    #[serde(default)]
    pub waba_id: Option<String>,
    /// `instagram` for Instagram Login channels; absent = the Facebook Graph API.
    #[serde(default)]
    pub graph: Option<String>,
    /// When the token expires (RFC 3339); absent = it does not.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// WhatsApp: a Fernet token of the two-step verification PIN.
    #[serde(default)]
    pub pin: Option<SecretString>,
}

fn empty_secret() -> SecretString {
    SecretString::from(String::new())
}

impl Settings {
    /// Loads defaults, then `path` (if any), then the environment; resolves `…_file`
    /// secrets and validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(path, true)
    }

    /// Like [`Settings::load`], but optionally without the environment layer (tests).
    pub fn load_with_env(path: Option<&Path>, with_env: bool) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::Read(format!(
                    "the config file {} does not exist",
                    path.display()
                )));
            }
            builder = builder.add_source(
                config::File::from(path.to_path_buf()).format(config::FileFormat::Toml),
            );
        }
        if with_env {
            let mut env = config::Environment::with_prefix("SWITCHBOARD")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .try_parsing(true);
            for key in LIST_KEYS {
                env = env.with_list_parse_key(key);
            }
            builder = builder.add_source(env);
        }
        let built = builder.build().map_err(|e| ConfigError::read(&e))?;
        Self::from_config(built)
    }

    /// Parses a TOML text layered over the defaults (no environment): for tests and tools.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let built = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .map_err(|e| ConfigError::read(&e))?;
        Self::from_config(built)
    }

    fn from_config(built: config::Config) -> Result<Self, ConfigError> {
        let mut settings: Settings = serde_path_to_error::deserialize(built).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::invalid(key, describe(e.inner()))
        })?;
        settings.resolve_secret_files()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Replaces every secret given as a `…_file` path by the file's content.
    fn resolve_secret_files(&mut self) -> Result<(), ConfigError> {
        if let Some(p) = &self.store.redis_url_file {
            self.store.redis_url = read_secret("store.redis_url_file", p)?;
        }
        if let Some(p) = &self.vault.keys_file {
            self.vault.keys = read_secret_list("vault.keys_file", p)?;
        }
        if let Some(p) = &self.meta.app_secrets_file {
            self.meta.app_secrets = read_secret_list("meta.app_secrets_file", p)?;
        }
        if let Some(p) = &self.meta.verify_tokens_file {
            self.meta.verify_tokens = read_secret_list("meta.verify_tokens_file", p)?;
        }
        if let Some(p) = &self.admin.tokens_file {
            self.admin.tokens = read_secret_list("admin.tokens_file", p)?;
        }
        if let Some(p) = &self.metrics.token_file {
            self.metrics.token = Some(read_secret("metrics.token_file", p)?);
        }
        for (i, t) in self.tenants.iter_mut().enumerate() {
            if let Some(p) = &t.signing_secret_file {
                t.signing_secret = read_secret(&format!("tenants[{i}].signing_secret_file"), p)?;
            }
            if let Some(p) = &t.api_keys_file {
                t.api_keys = read_secret_list(&format!("tenants[{i}].api_keys_file"), p)?;
            }
        }
        connect::resolve_files(self)?;
        for (i, c) in self.channels.iter_mut().enumerate() {
            if let Some(p) = &c.token_file {
                c.token = read_secret(&format!("channels[{i}].token_file"), p)?;
            }
            if let Some(p) = &c.webhook_secret_file {
                c.webhook_secret = Some(read_secret(
                    &format!("channels[{i}].webhook_secret_file"),
                    p,
                )?);
            }
        }
        Ok(())
    }

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

/// What is wrong with a key's value, never the value itself (it may be a secret put
/// under the wrong key, or a secret list written as one string): the expected type and
/// the kind of value found.
fn describe(e: &config::ConfigError) -> String {
    use config::ConfigError as E;
    match e {
        E::Type {
            unexpected,
            expected,
            ..
        } => {
            format!(
                "expected {}, found {}",
                toml_words(expected),
                kind_of(&unexpected.to_string())
            )
        }
        E::At { error, .. } => describe(error),
        // serde's own messages that name keys, not values.
        E::Message(m) if m.starts_with("unknown field") || m.starts_with("missing field") => {
            m.clone()
        }
        // "unknown variant `<value>`, expected one of `a`, `b`": keep what is expected.
        E::Message(m) if m.starts_with("unknown variant") => match m.rsplit_once(", expected ") {
            Some((_, allowed)) => format!("not an accepted value (expected {allowed})"),
            None => "not an accepted value".to_owned(),
        },
        E::Message(m) if m.contains("does not have variant constructor") => {
            "not an accepted value (config/default.toml lists them)".to_owned()
        }
        // serde's "invalid type: string \"<value>\", expected a sequence" (and "invalid
        // value", "invalid length"): the kind found and what is expected, not the value.
        E::Message(m) if m.starts_with("invalid ") => {
            let found = m
                .strip_prefix("invalid type: ")
                .or_else(|| m.strip_prefix("invalid value: "))
                .map(kind_of);
            match (m.rsplit_once(", expected "), found) {
                (Some((_, expected)), Some(found)) => {
                    format!("expected {}, found {found}", toml_words(expected))
                }
                (Some((_, expected)), None) => format!("expected {}", toml_words(expected)),
                _ => "a value of the wrong type".to_owned(),
            }
        }
        _ => "a value of the wrong type (config/default.toml shows the expected one)".to_owned(),
    }
}

/// The kind of a value found in the config, from the start of serde's (or the config
/// crate's) description of it ("string \"…\"", "integer `…`", "sequence"); only that
/// start is matched, the value after it is never echoed.
fn kind_of(found: &str) -> &'static str {
    let known = [
        ("boolean", "a boolean"),
        ("integer", "an integer"),
        ("64-bit", "an integer"),
        ("128-bit", "an integer"),
        ("floating", "a float"),
        ("string", "a string"),
        ("character", "a string"),
        ("unit", "nothing"),
        ("sequence", "a list"),
        ("map", "a table"),
    ];
    known
        .iter()
        .find(|(start, _)| found.starts_with(start))
        .map_or("another type", |(_, kind)| kind)
}

/// serde's names for TOML's: a sequence is a list, a map a table.
fn toml_words(expected: &str) -> String {
    expected
        .replace("a sequence", "a list")
        .replace("a map", "a table")
}

fn read_secret(key: &str, path: &Path) -> Result<SecretString, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::invalid(key, format!("cannot read {}: {e}", path.display())))?;
    Ok(SecretString::from(text.trim().to_owned()))
}

fn read_secret_list(key: &str, path: &Path) -> Result<Vec<SecretString>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::invalid(key, format!("cannot read {}: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| SecretString::from(l.to_owned()))
        .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";

    #[test]
    fn defaults_without_vault_keys_name_the_key() {
        let err = Settings::from_toml("").unwrap_err().to_string();
        assert!(err.contains("vault.keys"), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Settings::from_toml(&format!(
            "[vault]\nkeys=[\"{KEY}\"]\n[server]\nbindd = \"x\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("server") && err.contains("bindd"), "{err}");
    }

    #[test]
    fn wrong_type_is_named_with_its_path() {
        let err = Settings::from_toml(&format!(
            "[vault]\nkeys=[\"{KEY}\"]\n[delivery]\ntimeout_ms = \"soon\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("delivery.timeout_ms"), "{err}");
    }

    /// A value of the wrong type is named by its key and the expected type; the value
    /// itself (here a secret list written as one string) never appears.
    #[test]
    fn wrong_type_error_names_key_and_type_never_the_value() {
        let secret = "LEAKED-8f3a9c2e1b4d7a6f";
        for (toml, key, expected) in [
            (
                format!("[vault]\nkeys=[\"{KEY}\"]\n[meta]\napp_secrets = \"{secret}\"\n"),
                "meta.app_secrets",
                "expected a list, found a string",
            ),
            (
                format!("[vault]\nkeys=\"{secret}\"\n"),
                "vault.keys",
                "expected a list, found a string",
            ),
            (
                format!("[vault]\nkeys=[\"{KEY}\"]\n[server]\nmax_body_bytes = \"{secret}\"\n"),
                "server.max_body_bytes",
                "expected an integer, found a string",
            ),
            (
                format!("[vault]\nkeys=[\"{KEY}\"]\n[log]\nformat = \"{secret}\"\n"),
                "log.format",
                "not an accepted value",
            ),
            (
                format!("[vault]\nkeys=[\"{KEY}\"]\n[[tenants]]\nid=\"a\"\ncrm_url=\"http://x\"\nsigning_secret=[\"{secret}\"]\n"),
                "tenants[0].signing_secret",
                "expected a string, found a list",
            ),
        ] {
            let err = Settings::from_toml(&toml).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("LEAKED"), "the value is echoed: {err}");
        }
    }

    #[test]
    fn a_dead_letter_ttl_over_a_year_is_refused() {
        let toml = |ttl: u64| {
            format!("[vault]\nkeys=[\"{KEY}\"]\n[delivery]\ndead_letter_ttl_s = {ttl}\n")
        };
        let err = Settings::from_toml(&toml(MAX_DEAD_LETTER_TTL_S + 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("delivery.dead_letter_ttl_s"), "{err}");
        let ok = Settings::from_toml(&toml(MAX_DEAD_LETTER_TTL_S)).unwrap();
        assert_eq!(ok.delivery.dead_letter_ttl_s, MAX_DEAD_LETTER_TTL_S);
        assert_eq!(
            Settings::from_toml(&toml(0))
                .unwrap()
                .delivery
                .dead_letter_ttl_s,
            0
        );
    }

    #[test]
    fn zero_body_timeout_is_refused() {
        let err = Settings::from_toml(&format!(
            "[vault]\nkeys=[\"{KEY}\"]\n[server]\nbody_timeout_ms = 0\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("server.body_timeout_ms"), "{err}");
    }

    #[test]
    fn channel_id_not_of_its_kind_is_refused_naming_the_key() {
        let err = Settings::from_toml(&format!(
            "[vault]\nkeys=[\"{KEY}\"]\n[store]\nbackend=\"memory\"\n[[channels]]\nkind=\"whatsapp\"\nid=\"../1\"\ntenant=\"nobody\"\ntoken=\"gAAAA\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("channels[0].id"), "{err}");
        assert!(err.contains("digits"), "{err}");
    }

    #[test]
    fn channel_with_undeclared_tenant_is_refused() {
        let err = Settings::from_toml(&format!(
            "[vault]\nkeys=[\"{KEY}\"]\n[store]\nbackend=\"memory\"\n[[channels]]\nkind=\"whatsapp\"\nid=\"1\"\ntenant=\"nobody\"\ntoken=\"gAAAA\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("channels[0].tenant"), "{err}");
    }

    #[test]
    fn secret_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::write(&keys, format!("{KEY}\n\n")).unwrap();
        let s =
            Settings::from_toml(&format!("[vault]\nkeys_file = \"{}\"\n", keys.display())).unwrap();
        assert_eq!(s.vault.keys.len(), 1);
        assert_eq!(s.vault.keys[0].expose_secret(), KEY);
    }

    #[test]
    fn toml_syntax_error_does_not_quote_the_line() {
        let err = Settings::from_toml("[meta]\napp_secrets = [\"s3cr3t-value\" \"x\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("s3cr3t-value"), "{err}");
    }

    #[test]
    fn debug_never_prints_secrets() {
        let s = Settings::from_toml(&format!("[vault]\nkeys=[\"{KEY}\"]\n")).unwrap();
        assert!(!format!("{s:?}").contains(KEY));
    }
}
