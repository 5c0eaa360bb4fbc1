//! Loading: the embedded defaults, then the file, then the environment; then every
//! secret given as a `…_file` path is read, and the result validated.

use std::path::Path;

use secrecy::SecretString;

use super::error::describe;
use super::{connect, ConfigError, Settings, DEFAULT_TOML};

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &[
    "vault.keys",
    "meta.app_secrets",
    "meta.verify_tokens",
    "admin.tokens",
    "store.cluster_nodes",
    "media.allowed_hosts",
];
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
