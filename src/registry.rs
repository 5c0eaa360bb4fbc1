//! The channel registry: what the admin API and the `switchboard channels` commands do
//! with channel records over the store, in one place. It sits above the vault and the
//! store (it encrypts with the one and writes to the other) and reads the live config
//! (tenants, keyring), so it is its own module rather than part of either.
//!
//! Secrets come in as plaintext and are Fernet-encrypted under the primary key before
//! they reach the store; they leave only as [`AccessToken`]s (redacted `Debug`,
//! zeroized). Listing never decrypts more than it must to tell, per channel, whether
//! its secrets open with the configured keys, so one corrupted record (written by hand
//! or by another service) is reported for that channel alone.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::channel::{ChannelKind, ChannelRef};
use crate::live::Live;
use crate::store::{ChannelRecord, Store, StoreBackend, StoreError};
use crate::vault::{AccessToken, KeyMatch, Keyring};

/// Why a registry operation was refused. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The request is wrong; `field` names what to fix.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("channel {0} is not in the store")]
    NotFound(ChannelRef),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegistryError {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// A channel to store: the secrets in plaintext, as the operator has them.
pub struct ChannelInput {
    pub tenant: String,
    /// The provider's access token (Graph API token, Telegram bot token).
    pub token: SecretString,
    /// Telegram: the `secret_token` given to `setWebhook`.
    pub webhook_secret: Option<SecretString>,
    /// The Meta user who connected the channel (for deauthorize callbacks); `None`
    /// keeps the one already stored, as do the optional fields below.
    pub user_id: Option<String>,
    /// WhatsApp: the WhatsApp Business Account of the number.
    pub waba_id: Option<String>,
    /// `instagram` for Instagram Login channels.
    pub graph: Option<String>,
    /// When the token expires (RFC 3339).
    pub expires_at: Option<String>,
    /// WhatsApp: the two-step verification PIN (6 digits), plaintext.
    pub pin: Option<SecretString>,
}

impl ChannelInput {
    /// An input with only the required fields.
    pub fn new(tenant: impl Into<String>, token: SecretString) -> Self {
        Self {
            tenant: tenant.into(),
            token,
            webhook_secret: None,
            user_id: None,
            waba_id: None,
            graph: None,
            expires_at: None,
            pin: None,
        }
    }
}

impl std::fmt::Debug for ChannelInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelInput")
            .field("tenant", &self.tenant)
            .field("token", &"[REDACTED]")
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("user_id", &self.user_id)
            .field("waba_id", &self.waba_id)
            .field("graph", &self.graph)
            .field("expires_at", &self.expires_at)
            .field("pin", &self.pin.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// Whether a put made a new channel or replaced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    Replaced,
}

/// Whether a stored secret opens, and with which key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretState {
    /// Opens with the primary key.
    PrimaryKey,
    /// Opens only with an older key: `vault rotate` moves it.
    OlderKey,
    /// Opens with no configured key: corrupted, or under a key no longer configured.
    Undecryptable,
}

impl From<KeyMatch> for SecretState {
    fn from(m: KeyMatch) -> Self {
        match m {
            KeyMatch::Primary => SecretState::PrimaryKey,
            KeyMatch::Older => SecretState::OlderKey,
            KeyMatch::None => SecretState::Undecryptable,
        }
    }
}

/// The summary of a channel's health in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelStatus {
    Ok,
    /// Works, but a secret is under an older key (run `vault rotate` before dropping it).
    NeedsRotation,
    /// Cannot be used: see `error`.
    Error,
}

/// A stored channel as operators see it: never a secret, only whether each opens.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelView {
    pub kind: ChannelKind,
    pub id: String,
    pub tenant: Option<String>,
    /// Whether `tenant` is configured here (events of other tenants' channels are not
    /// forwarded).
    pub tenant_configured: bool,
    pub updated_at: Option<String>,
    /// The Meta user who connected the channel, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// WhatsApp: the WhatsApp Business Account, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waba_id: Option<String>,
    /// `instagram` for Instagram Login channels; absent = the Facebook Graph API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph: Option<String>,
    /// When the token expires; absent = it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub token: Option<SecretState>,
    /// Absent when the channel has no webhook secret.
    pub webhook_secret: Option<SecretState>,
    /// Whether a WhatsApp two-step PIN is stored and opens; absent when none is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<SecretState>,
    pub status: ChannelStatus,
    /// Declared in the config's `[[channels]]`: rewritten from there on every reload.
    pub from_config: bool,
    /// What is wrong, when `status` is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ChannelView {
    fn of(channel: &ChannelRef, record: &ChannelRecord, live: &Live) -> Self {
        let token = SecretState::from(live.keyring.key_match(record.token.expose_secret()));
        let webhook_secret = record
            .webhook_secret
            .as_ref()
            .map(|s| SecretState::from(live.keyring.key_match(s.expose_secret())));
        let pin = record
            .pin
            .as_ref()
            .map(|s| SecretState::from(live.keyring.key_match(s.expose_secret())));
        let tenant_configured = live.tenants.contains_key(&record.tenant);
        let states = [Some(token), webhook_secret, pin];
        let (status, error) = if token == SecretState::Undecryptable {
            (
                ChannelStatus::Error,
                Some("the token opens with no configured vault key (corrupted, or encrypted under a key that is no longer configured)".to_owned()),
            )
        } else if webhook_secret == Some(SecretState::Undecryptable) {
            (
                ChannelStatus::Error,
                Some("the webhook secret opens with no configured vault key".to_owned()),
            )
        } else if pin == Some(SecretState::Undecryptable) {
            (
                ChannelStatus::Error,
                Some("the PIN opens with no configured vault key".to_owned()),
            )
        } else if !tenant_configured {
            (
                ChannelStatus::Error,
                Some(format!(
                    "tenant `{}` is not configured: events of this channel are not forwarded",
                    record.tenant
                )),
            )
        } else if states.contains(&Some(SecretState::OlderKey)) {
            (ChannelStatus::NeedsRotation, None)
        } else {
            (ChannelStatus::Ok, None)
        };
        Self {
            kind: channel.kind(),
            id: channel.id().to_owned(),
            tenant: Some(record.tenant.clone()),
            tenant_configured,
            updated_at: record.updated_at.clone(),
            user_id: record.user_id.clone(),
            waba_id: record.waba_id.clone(),
            graph: record.graph.clone(),
            expires_at: record.expires_at.clone(),
            token: Some(token),
            webhook_secret,
            pin,
            status,
            from_config: from_config(channel, live),
            error,
        }
    }

    fn broken(channel: &ChannelRef, live: &Live, reason: String) -> Self {
        Self {
            kind: channel.kind(),
            id: channel.id().to_owned(),
            tenant: None,
            tenant_configured: false,
            updated_at: None,
            user_id: None,
            waba_id: None,
            graph: None,
            expires_at: None,
            token: None,
            webhook_secret: None,
            pin: None,
            status: ChannelStatus::Error,
            from_config: from_config(channel, live),
            error: Some(reason),
        }
    }
}

fn from_config(channel: &ChannelRef, live: &Live) -> bool {
    live.settings
        .channels
        .iter()
        .any(|c| c.kind == channel.kind() && c.id == channel.id())
}

/// A channel with its secrets opened, for the code that uses them.
#[derive(Debug)]
pub struct OpenedChannel {
    pub tenant: String,
    pub token: AccessToken,
    pub webhook_secret: Option<AccessToken>,
}

/// Why a channel's secrets could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("channel {0} is not in the store")]
    NotFound(ChannelRef),
    #[error("the {field} of channel {channel} opens with no configured vault key")]
    Undecryptable {
        channel: ChannelRef,
        field: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parses a channel named by strings (a URL path, a command line).
pub fn parse_channel(kind: &str, id: &str) -> Result<ChannelRef, RegistryError> {
    let kind: ChannelKind = kind
        .parse()
        .map_err(|e: crate::channel::UnknownChannelKind| {
            RegistryError::invalid("kind", e.to_string())
        })?;
    ChannelRef::parse(kind, id).map_err(|e| RegistryError::invalid("id", e.to_string()))
}

/// Stores a channel, its secrets encrypted under the primary key.
pub async fn put(
    store: &Store,
    live: &Live,
    channel: &ChannelRef,
    input: ChannelInput,
) -> Result<(ChannelView, PutOutcome), RegistryError> {
    check_input(live, channel, &input)?;
    // Read only to answer created/replaced and to keep the stored optional fields the
    // input leaves out; the write itself is unconditional (a PUT replaces the channel).
    let existing = store.get_channel(channel).await;
    let existed = matches!(existing, Ok(Some(_)) | Err(StoreError::Malformed { .. }));
    let kept = existing.ok().flatten();
    let keep = |new: &Option<String>, old: fn(&ChannelRecord) -> &Option<String>| {
        new.clone()
            .or_else(|| kept.as_ref().and_then(|r| old(r).clone()))
    };
    let encrypt =
        |s: &SecretString| SecretString::from(live.keyring.encrypt(s.expose_secret().as_bytes()));
    let record = ChannelRecord {
        tenant: input.tenant.clone(),
        token: encrypt(&input.token),
        webhook_secret: input.webhook_secret.as_ref().map(encrypt),
        updated_at: Some(crate::time::now_rfc3339()),
        user_id: keep(&input.user_id, |r| &r.user_id),
        waba_id: keep(&input.waba_id, |r| &r.waba_id),
        graph: keep(&input.graph, |r| &r.graph),
        expires_at: keep(&input.expires_at, |r| &r.expires_at),
        pin: input
            .pin
            .as_ref()
            .map(encrypt)
            .or_else(|| kept.as_ref().and_then(|r| r.pin.clone())),
    };
    store.put_channel(channel, &record).await?;
    tracing::info!(channel = %channel, tenant = %record.tenant, "Channel stored.");
    let outcome = if existed {
        PutOutcome::Replaced
    } else {
        PutOutcome::Created
    };
    Ok((ChannelView::of(channel, &record, live), outcome))
}

fn check_input(
    live: &Live,
    channel: &ChannelRef,
    input: &ChannelInput,
) -> Result<(), RegistryError> {
    if input.tenant.is_empty() {
        return Err(RegistryError::invalid("tenant", "is required"));
    }
    if !live.tenants.contains_key(&input.tenant) {
        return Err(RegistryError::invalid(
            "tenant",
            format!("no tenant `{}` is configured", input.tenant),
        ));
    }
    let token = input.token.expose_secret();
    if token.trim().is_empty() {
        return Err(RegistryError::invalid(
            "token",
            "the plaintext access token is required",
        ));
    }
    if token.trim() != token || token.contains(char::is_control) {
        return Err(RegistryError::invalid(
            "token",
            "must not contain whitespace at either end or control characters",
        ));
    }
    if live.keyring.decrypt(token).is_ok() {
        return Err(RegistryError::invalid(
            "token",
            "this is a Fernet token: give the plaintext access token (it is encrypted here)",
        ));
    }
    if channel.kind() == ChannelKind::Telegram {
        // A bot token is `<bot id>:<secret>`; the channel id is the bot id.
        let bot_id = token.split(':').next().unwrap_or_default();
        if bot_id != channel.id() {
            return Err(RegistryError::invalid(
                "token",
                "a Telegram bot token begins with the bot id, which must be the channel id",
            ));
        }
    }
    if let Some(u) = &input.user_id {
        if u.is_empty() || u.len() > 32 || !u.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RegistryError::invalid(
                "user_id",
                "a Meta user id is 1 to 32 digits",
            ));
        }
    }
    crate::channel::fields::check_optional(
        channel.kind(),
        input.waba_id.as_deref(),
        input.graph.as_deref(),
        input.expires_at.as_deref(),
    )
    .map_err(|e| RegistryError::invalid(e.field, e.message))?;
    if let Some(pin) = &input.pin {
        crate::channel::fields::check_pin(channel.kind(), pin.expose_secret())
            .map_err(|e| RegistryError::invalid(e.field, e.message))?;
    }
    if let Some(ws) = &input.webhook_secret {
        let ws = ws.expose_secret();
        let ok = channel.kind() != ChannelKind::Telegram
            || ((1..=256).contains(&ws.len())
                && ws
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        if ws.is_empty() || !ok {
            return Err(RegistryError::invalid(
                "webhook_secret",
                "Telegram's secret_token is 1 to 256 characters of A-Z, a-z, 0-9, '_' or '-'",
            ));
        }
    }
    Ok(())
}

/// Every channel in the store (also those other services wrote), sorted by kind and id.
/// A record that cannot be read is listed with its error; only a store that cannot be
/// reached fails the whole list.
pub async fn list(store: &Store, live: &Live) -> Result<Vec<ChannelView>, StoreError> {
    let keys = store.scan(&store.keys().channel_pattern()).await?;
    let mut channels: Vec<ChannelRef> = keys
        .iter()
        .filter_map(|k| store.keys().parse_channel(k))
        .collect();
    channels.sort_by(|a, b| (a.kind().as_str(), a.id()).cmp(&(b.kind().as_str(), b.id())));
    channels.dedup();
    let mut out = Vec::with_capacity(channels.len());
    for channel in channels {
        match store.get_channel(&channel).await {
            Ok(Some(record)) => out.push(ChannelView::of(&channel, &record, live)),
            // Deleted since the scan.
            Ok(None) => {}
            Err(StoreError::Malformed { reason, .. }) => {
                out.push(ChannelView::broken(
                    &channel,
                    live,
                    format!("malformed record: {reason}"),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Removes a channel.
pub async fn delete(store: &Store, channel: &ChannelRef) -> Result<(), RegistryError> {
    if store.delete_channel(channel).await? {
        tracing::info!(channel = %channel, "Channel deleted.");
        Ok(())
    } else {
        Err(RegistryError::NotFound(channel.clone()))
    }
}

/// Reads a channel and opens its secrets (for sending, and for checking a Telegram
/// webhook's secret).
pub async fn open(
    store: &Store,
    keyring: &Keyring,
    channel: &ChannelRef,
) -> Result<OpenedChannel, OpenError> {
    let record = store
        .get_channel(channel)
        .await?
        .ok_or_else(|| OpenError::NotFound(channel.clone()))?;
    let token = keyring
        .decrypt_token(record.token.expose_secret())
        .map_err(|_| OpenError::Undecryptable {
            channel: channel.clone(),
            field: "token",
        })?;
    let webhook_secret = match &record.webhook_secret {
        Some(s) => Some(keyring.decrypt_token(s.expose_secret()).map_err(|_| {
            OpenError::Undecryptable {
                channel: channel.clone(),
                field: "webhook_secret",
            }
        })?),
        None => None,
    };
    Ok(OpenedChannel {
        tenant: record.tenant,
        token,
        webhook_secret,
    })
}
