//! The config file a test relay runs: two tenants (acme and globex) delivering to the
//! CRM peer, the Graph and Telegram peers, a store, vault keys. Tests change a field
//! and render it again to test reloads.

/// Meta's app secret in every test config.
pub const APP_SECRET: &str = "test-app-secret-0123456789";
pub const VERIFY_TOKEN: &str = "test-verify-token";
pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const API_KEY: &str = "test-api-key-acme";
pub const OTHER_API_KEY: &str = "test-api-key-globex";
/// 24 random bytes, as Standard Webhooks suggests.
pub const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const OTHER_SIGNING_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
pub const CRM_PATH: &str = "/hooks/switchboard";
pub const OTHER_CRM_PATH: &str = "/hooks/globex";

/// Where the relay keeps its state.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    Memory,
    Redis(String),
    Cluster(Vec<String>),
}

/// Everything that varies between test configs.
#[derive(Debug, Clone)]
pub struct TestConfig {
    pub store: StoreConfig,
    /// `0`: any free port (in-process apps); a fixed port for the binary.
    pub port: u16,
    /// `server.public_url`: where a browser reaches the relay.
    pub public_url: String,
    pub vault_keys: Vec<String>,
    pub crm: String,
    pub graph: String,
    pub telegram: String,
    /// Whether tenant acme gets `include_raw = true`.
    pub include_raw: bool,
    pub delivery_timeout_ms: u64,
    /// Extra lines of the `[delivery]` table.
    pub delivery: String,
    /// Extra lines of the `[server]` table.
    pub server: String,
    /// Extra lines of the `[meta]` table.
    pub meta: String,
    pub log_level: String,
    /// Extra TOML appended to the end (new tables).
    pub extra_toml: String,
}

impl TestConfig {
    pub fn render(&self) -> String {
        let store = match &self.store {
            StoreConfig::Memory => "backend = \"memory\"".to_owned(),
            StoreConfig::Redis(url) => {
                format!("backend = \"redis\"\nredis_url = \"{url}\"\ntimeout_ms = 2000")
            }
            StoreConfig::Cluster(nodes) => format!(
                "backend = \"redis\"\ncluster_nodes = [{}]\ntimeout_ms = 2000",
                quoted(nodes)
            ),
        };
        format!(
            r#"
[server]
bind = "127.0.0.1:{port}"
public_url = "{public_url}"
workers = 2
shutdown_timeout_s = 5
{server}

[store]
{store}

[vault]
keys = [{keys}]

[meta]
app_secrets = ["{APP_SECRET}"]
verify_tokens = ["{VERIFY_TOKEN}"]
graph_api_base = "{graph}"
timeout_ms = 3000
{meta}

[telegram]
api_base = "{telegram}"
timeout_ms = 3000

[delivery]
timeout_ms = {timeout}
{delivery}

[admin]
tokens = ["{ADMIN_TOKEN}"]

[log]
format = "json"
level = "{level}"

[reload]
watch_interval_ms = 200

[[tenants]]
id = "acme"
crm_url = "{crm}{CRM_PATH}"
signing_secret = "{SIGNING_SECRET}"
api_keys = ["{API_KEY}"]
include_raw = {include_raw}

[[tenants]]
id = "globex"
crm_url = "{crm}{OTHER_CRM_PATH}"
signing_secret = "{OTHER_SIGNING_SECRET}"
api_keys = ["{OTHER_API_KEY}"]

{extra}
"#,
            port = self.port,
            public_url = self.public_url,
            keys = quoted(&self.vault_keys),
            graph = self.graph,
            telegram = self.telegram,
            timeout = self.delivery_timeout_ms,
            delivery = self.delivery,
            server = self.server,
            meta = self.meta,
            level = self.log_level,
            crm = self.crm,
            include_raw = self.include_raw,
            extra = self.extra_toml,
        )
    }
}

/// `"a", "b"` for a TOML array.
pub fn quoted<S: AsRef<str>>(list: &[S]) -> String {
    list.iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `[delivery]` lines of a delivery test relay: fast retries, a short visibility
/// timeout. Lines of `extra` replace the defaults of the same key.
pub fn delivery_toml(extra: &str) -> String {
    let defaults = [
        "retry_base_ms = 50",
        "retry_max_ms = 400",
        "claim_idle_ms = 1500",
        "poll_ms = 50",
        "breaker_failures = 3",
        "breaker_cooldown_ms = 300",
    ];
    let key = |line: &str| line.split('=').next().unwrap_or_default().trim().to_owned();
    let overridden = |line: &str| extra.lines().any(|l| key(l) == key(line));
    let mut out: Vec<&str> = defaults.into_iter().filter(|l| !overridden(l)).collect();
    out.extend(extra.lines());
    out.join("\n")
}
