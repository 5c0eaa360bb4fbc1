//! Whether a Page, Instagram account or WhatsApp Business Account sends its webhooks to
//! the app (`switchboard meta subscriptions` / `switchboard meta subscribe`).
//!
//! Meta delivers a webhook only for fields subscribed at both the app level (App
//! Dashboard › Webhooks, done once per app) and the object level (this module):
//!
//! - Messenger: `GET|POST /{page-id}/subscribed_apps` with the Page token; the Page
//!   lists each app with its `subscribed_fields`, checked against [`MESSENGER_FIELDS`].
//! - Instagram: the same call on the Instagram account (Instagram Login), or on the
//!   linked Page (Facebook Login: pass the Page id as the object) with
//!   [`INSTAGRAM_FIELDS`] resp. any Page field.
//! - WhatsApp: `GET|POST /{waba-id}/subscribed_apps` with the system-user token; the
//!   object is the WABA (not the phone number id that names the channel), fields are set
//!   at the app level only, so being listed is enough.
//!
//! The token is the channel's, opened from the vault in memory and sent as
//! `Authorization: Bearer …` by the shared [`GraphClient`]; Graph errors are classified
//! by [`super::errors::GraphError`].

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};

use super::graph::{GraphClient, GraphEndpoint, GraphPath};
use crate::channels::outbound::SendError;
use crate::channels::{ChannelKind, ChannelRef};
use crate::config::MetaSettings;
use crate::store::{Store, StoreBackend, StoreError};
use crate::vault::{Keyring, VaultError};

/// The Page fields the relay normalizes.
pub const MESSENGER_FIELDS: &[&str] = &[
    "messages",
    "messaging_postbacks",
    "messaging_optins",
    "messaging_referrals",
    "messaging_handovers",
    "message_deliveries",
    "message_reads",
    "message_echoes",
    "message_reactions",
    "message_edits",
    "standby",
];

/// The Instagram account fields the relay normalizes.
pub const INSTAGRAM_FIELDS: &[&str] = &[
    "messages",
    "messaging_postbacks",
    "messaging_seen",
    "messaging_referral",
    "message_reactions",
    "message_edit",
    "comments",
    "mentions",
];

/// The fields a channel kind needs at the object level (none for WhatsApp).
pub fn needed_fields(kind: ChannelKind) -> &'static [&'static str] {
    match kind {
        ChannelKind::Messenger => MESSENGER_FIELDS,
        ChannelKind::Instagram => INSTAGRAM_FIELDS,
        ChannelKind::Whatsapp | ChannelKind::Telegram => &[],
    }
}

/// One app subscribed to the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribedApp {
    pub id: Option<String>,
    pub name: Option<String>,
    pub fields: Vec<String>,
}

/// What the object's `subscribed_apps` says.
#[derive(Debug, Clone)]
pub struct SubscriptionStatus {
    pub object_id: String,
    pub apps: Vec<SubscribedApp>,
    /// The fields wanted but subscribed by no app (empty when fields are not per object).
    pub missing: Vec<String>,
}

impl SubscriptionStatus {
    /// Subscribed, with every needed field.
    pub fn is_complete(&self) -> bool {
        !self.apps.is_empty() && self.missing.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error("`{0}` is not a Meta channel")]
    NotMeta(ChannelKind),
    #[error("no {0} channel in the store")]
    ChannelNotFound(ChannelRef),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the channel's token cannot be opened: {0}")]
    Vault(#[from] VaultError),
    #[error("the Graph API refused: {0}")]
    Graph(String),
    #[error("the Graph API could not be reached: {0}")]
    Unreachable(String),
}

#[derive(Deserialize)]
struct AppsPage {
    #[serde(default)]
    data: Vec<Value>,
}

fn parse_app(v: &Value) -> SubscribedApp {
    // Pages and Instagram accounts list `{id, name, subscribed_fields}`; WABAs list
    // `{whatsapp_business_api_data: {id, name, link}}`.
    let inner = v.get("whatsapp_business_api_data").unwrap_or(v);
    let s = |k: &str| inner.get(k).and_then(Value::as_str).map(str::to_owned);
    SubscribedApp {
        id: s("id"),
        name: s("name"),
        fields: v
            .get("subscribed_fields")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| {
                        f.as_str()
                            .map(str::to_owned)
                            .or_else(|| f.get("name").and_then(Value::as_str).map(str::to_owned))
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// A call to `/{object}/subscribed_apps` with a channel's token.
struct Call {
    endpoint: GraphEndpoint,
    token: crate::vault::AccessToken,
    object_id: String,
    channel_id: String,
    kind: ChannelKind,
}

async fn prepare(
    store: &Store,
    keyring: &Keyring,
    meta: &MetaSettings,
    channel: &ChannelRef,
    object_id: Option<&str>,
) -> Result<Call, SubscriptionError> {
    if !channel.kind().is_meta() {
        return Err(SubscriptionError::NotMeta(channel.kind()));
    }
    let record = store
        .get_channel(channel)
        .await?
        .ok_or_else(|| SubscriptionError::ChannelNotFound(channel.clone()))?;
    let token = keyring.decrypt_token(record.token.expose_secret())?;
    Ok(Call {
        endpoint: GraphEndpoint::from_settings(meta),
        token,
        object_id: object_id.unwrap_or(channel.id()).to_owned(),
        channel_id: channel.id().to_owned(),
        kind: channel.kind(),
    })
}

impl Call {
    /// The fields needed on this object: an Instagram account's own, or (Facebook Login:
    /// the object is the linked Page) any Page field, `messages`.
    fn fields(&self) -> &'static [&'static str] {
        match self.kind {
            ChannelKind::Instagram if self.object_id != self.channel_id => &["messages"],
            k => needed_fields(k),
        }
    }

    fn path(&self) -> GraphPath {
        GraphPath::new(&[&self.object_id, "subscribed_apps"])
    }
}

fn client() -> Result<GraphClient, SubscriptionError> {
    GraphClient::new().map_err(|e| SubscriptionError::Unreachable(e.to_string()))
}

/// The provider's own code and message, for the operator.
fn graph_error(e: SendError) -> SubscriptionError {
    let detail = match &e {
        SendError::TokenInvalid(d)
        | SendError::OutsideWindow(d)
        | SendError::RecipientUnavailable(d)
        | SendError::Provider(d)
        | SendError::RateLimited { detail: d, .. } => Some(d),
        _ => None,
    };
    match detail {
        Some(d) => SubscriptionError::Graph(match d.code {
            Some(c) => format!("HTTP {} ({c}) {}", d.http_status, d.message),
            None => format!("HTTP {} {}", d.http_status, d.message),
        }),
        None => SubscriptionError::Unreachable(e.to_string()),
    }
}

/// Reads `GET /{object}/subscribed_apps` (object = `object_id`, or the channel id) and
/// compares the fields with what the relay needs.
pub async fn check(
    store: &Store,
    keyring: &Keyring,
    meta: &MetaSettings,
    channel: &ChannelRef,
    object_id: Option<&str>,
) -> Result<SubscriptionStatus, SubscriptionError> {
    let call = prepare(store, keyring, meta, channel, object_id).await?;
    status_of(&call).await
}

async fn status_of(call: &Call) -> Result<SubscriptionStatus, SubscriptionError> {
    let body = client()?
        .get_json(&call.endpoint, &call.path(), &call.token)
        .await
        .map_err(graph_error)?;
    let page: AppsPage = serde_json::from_value(body).unwrap_or(AppsPage { data: vec![] });
    let apps: Vec<SubscribedApp> = page.data.iter().map(parse_app).collect();
    let needed = call.fields();
    // A field counts when some app has it (the relay's app id is not configured).
    let missing = needed
        .iter()
        .filter(|f| !apps.iter().any(|a| a.fields.iter().any(|x| x == *f)))
        .map(|f| (*f).to_owned())
        .collect();
    Ok(SubscriptionStatus {
        object_id: call.object_id.clone(),
        apps,
        missing: if needed.is_empty() { vec![] } else { missing },
    })
}

/// Subscribes the app to the object (`POST /{object}/subscribed_apps`, with
/// `subscribed_fields` in the JSON body for Pages and Instagram accounts), then reads
/// the status back.
pub async fn subscribe(
    store: &Store,
    keyring: &Keyring,
    meta: &MetaSettings,
    channel: &ChannelRef,
    object_id: Option<&str>,
) -> Result<SubscriptionStatus, SubscriptionError> {
    let call = prepare(store, keyring, meta, channel, object_id).await?;
    let fields = call.fields();
    let body = if fields.is_empty() {
        json!({})
    } else {
        json!({"subscribed_fields": fields.join(",")})
    };
    client()?
        .post_json(
            &call.endpoint,
            &call.path(),
            body.to_string().into_bytes(),
            &call.token,
        )
        .await
        .map_err(graph_error)?;
    status_of(&call).await
}
