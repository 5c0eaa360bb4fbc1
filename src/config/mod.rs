//! Configuration: `config/default.toml` (embedded, so the binary runs from anywhere), then
//! the file named by `--config` / `SWITCHBOARD_CONFIG`, then `SWITCHBOARD__SECTION__KEY`
//! environment variables. Secrets may be given as `…_file` paths. Every error names the key.
//!
//! [`Settings`] is what the file says; [`Settings::load`] also resolves `…_file` secrets and
//! runs [`Settings::validate`], so a `Settings` in hand is always usable.
//!
//! The files: `sections.rs` (the settings of each section), `delivery.rs`
//! (`[delivery]`), `tenants.rs` (`[[tenants]]`, `[[channels]]`), `connect.rs`
//! (`[instagram]`, `[connect]`, `[tokens]`), `load.rs` (the layers and the `…_file`
//! secrets), `validate.rs` (the cross-field checks), `error.rs` (`ConfigError` and how a
//! bad value is described without repeating it).

use serde::Deserialize;

mod connect;
mod delivery;
mod error;
mod load;
mod sections;
mod tenants;
mod validate;

pub use connect::{ConnectSettings, InstagramSettings, TokenSettings, MAX_LINK_TTL_S};
pub use delivery::{DeliverySettings, MAX_DEAD_LETTER_TTL_S};
pub use error::ConfigError;
pub use sections::{
    AdminSettings, LogFormat, LogSettings, MediaSettings, MetaSettings, MetricsSettings,
    PrivacySettings, ReloadSettings, ReplySettings, ServerSettings, StoreKind, StoreSettings,
    TelegramSettings, VaultSettings,
};
pub use tenants::{ChannelSettings, TenantSettings};

/// The defaults, compiled in: the same text as `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

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

#[cfg(test)]
mod tests;
