//! `[[tenants]]` and `[[channels]]`: the tenants and the channels declared in the file.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use crate::channel::ChannelKind;

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
