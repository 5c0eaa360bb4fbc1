//! The end of every flow: the channel stored Fernet-encrypted (never over another
//! tenant's channel: `channel_taken`), the link used up, `channel.connected` delivered
//! through the normal signed, buffered delivery.

use secrecy::{ExposeSecret, SecretString};

use super::links::{self, Link};
use crate::channels::ChannelRef;
use crate::delivery::Dispatcher;
use crate::event::{DataBuilder, Event, EventId, EventType};
use crate::live::Live;
use crate::store::{ChannelRecord, Store, StoreBackend, StoreError};
use crate::time::{now_ms, now_rfc3339};

/// What to store for a connected channel (secrets in plaintext, encrypted here).
pub struct NewChannel {
    pub channel: ChannelRef,
    pub token: SecretString,
    pub webhook_secret: Option<SecretString>,
    pub pin: Option<SecretString>,
    pub user_id: Option<String>,
    pub waba_id: Option<String>,
    pub graph: Option<String>,
    pub expires_at: Option<String>,
    /// `display` of `channel.connected`: name, username, phone.
    pub name: Option<String>,
    pub username: Option<String>,
    pub phone: Option<String>,
}

impl NewChannel {
    pub fn new(channel: ChannelRef, token: SecretString) -> Self {
        Self {
            channel,
            token,
            webhook_secret: None,
            pin: None,
            user_id: None,
            waba_id: None,
            graph: None,
            expires_at: None,
            name: None,
            username: None,
            phone: None,
        }
    }

    /// What the done page calls it.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .or_else(|| self.username.as_ref().map(|u| format!("@{u}")))
            .or_else(|| self.phone.clone())
            .unwrap_or_else(|| self.channel.id().to_owned())
    }
}

/// Why a channel was not stored.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    #[error("channel {0} is connected to another tenant")]
    Taken(ChannelRef),
    #[error("the connect link was already used")]
    LinkUsed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether the channel belongs to another tenant than the link's.
pub async fn is_taken(
    store: &Store,
    link: &Link,
    channel: &ChannelRef,
) -> Result<bool, StoreError> {
    Ok(match store.get_channel(channel).await {
        Ok(Some(r)) => r.tenant != link.tenant,
        Ok(None) => false,
        // A malformed record is someone's: never overwrite it from a page.
        Err(StoreError::Malformed { .. }) => true,
        Err(e) => return Err(e),
    })
}

/// Marks the link failed with `channel_taken` (nothing stored).
pub async fn refuse_taken(store: &Store, link: &Link, channel: &ChannelRef) -> FinishError {
    if let Err(e) = links::fail(
        store,
        link,
        "channel_taken",
        &format!(
            "{} {} is already connected to another account of the relay",
            channel.kind(),
            channel.id()
        ),
    )
    .await
    {
        tracing::warn!(error = %e, "Connect link failure not recorded.");
    }
    tracing::warn!(connect_link = %link.id, channel = %channel, "Channel already connected to another tenant; not taken over.");
    FinishError::Taken(channel.clone())
}

/// Stores the channel, uses the link up and tells the CRM.
pub async fn complete(
    store: &Store,
    dispatcher: &Dispatcher,
    live: &Live,
    link: &Link,
    new: &NewChannel,
) -> Result<(), FinishError> {
    if is_taken(store, link, &new.channel).await? {
        return Err(refuse_taken(store, link, &new.channel).await);
    }
    if !links::claim(store, link).await? {
        return Err(FinishError::LinkUsed);
    }
    let encrypt =
        |s: &SecretString| SecretString::from(live.keyring.encrypt(s.expose_secret().as_bytes()));
    let record = ChannelRecord {
        tenant: link.tenant.clone(),
        token: encrypt(&new.token),
        webhook_secret: new.webhook_secret.as_ref().map(encrypt),
        updated_at: Some(now_rfc3339()),
        user_id: new.user_id.clone(),
        waba_id: new.waba_id.clone(),
        graph: new.graph.clone(),
        expires_at: new.expires_at.clone(),
        pin: new.pin.as_ref().map(encrypt),
    };
    if let Err(e) = store.put_channel(&new.channel, &record).await {
        let _ = links::unclaim(store, link).await;
        return Err(e.into());
    }
    links::connected(store, link, &new.channel).await?;
    tracing::info!(connect_link = %link.id, tenant = %link.tenant, channel = %new.channel, "Channel connected.");
    metrics::counter!("switchboard_channels_connected_total", "kind" => new.channel.kind().as_str())
        .increment(1);
    match dispatcher
        .dispatch(live, vec![connected_event(link, new)])
        .await
    {
        Ok(r) if r.failed > 0 => {
            tracing::error!(connect_link = %link.id, "channel.connected could not be delivered or buffered.")
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(error = %e, connect_link = %link.id, "channel.connected not dispatched.")
        }
    }
    Ok(())
}

/// `channel.connected`: never a token.
pub fn connected_event(link: &Link, new: &NewChannel) -> Event {
    let display = DataBuilder::new()
        .set_opt("name", new.name.clone())
        .set_opt("username", new.username.clone())
        .set_opt("phone", new.phone.clone())
        .into_value();
    let mut data = DataBuilder::new()
        .id_obj("connect_link", link.id.clone())
        .set_opt("external_ref", link.external_ref.clone())
        .set("display", display);
    if let Some(u) = &new.user_id {
        data = data.id_obj("user", u.clone());
    }
    if let Some(w) = &new.waba_id {
        data = data.set("waba_id", w.clone());
    }
    Event {
        id: EventId::derive(&["channel.connected", &link.id]),
        event_type: EventType::ChannelConnected,
        timestamp_ms: now_ms(),
        channel: new.channel.clone(),
        conversation: None,
        data: data.build(),
        raw: None,
        account: None,
    }
}
