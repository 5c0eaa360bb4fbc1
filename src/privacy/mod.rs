//! The privacy lifecycle: what the relay keeps, for how long, and how it lets go.
//!
//! What the relay keeps (all under `store.key_prefix`; see [`crate::store::keys`]):
//!
//! | record | holds | kept |
//! |---|---|---|
//! | channel hash | tenant, Fernet-encrypted token and webhook secret, `user_id` of the Meta user who connected it | until deleted, deauthorized or the user's data is deleted |
//! | dedupe record | an event id (a hash of provider ids) | `delivery.dedupe_window_s` |
//! | idempotency record | the answer to a CRM's send | `replies.idempotency_ttl_s` |
//! | retry buffer | Fernet-encrypted events while a CRM is down | until delivered, at most `delivery.retry_buffer_ttl_s` |
//! | re-auth notice | that `channel.reauth_required` was sent | 1 hour |
//! | data-deletion status | counts and times, no ids | `privacy.deletion_status_ttl_s` |
//!
//! Message content is never written in the clear and never logged.
//!
//! Meta's app callbacks, both carrying a [`signed_request`]:
//! - **deauthorize** ([`deauthorize`]): the user (or Page) removed the app. The tokens of
//!   their channels are removed, and each affected tenant gets `channel.deauthorized`.
//! - **data deletion** ([`deletion::delete_user_data`]): everything the relay holds that
//!   relates to the user is purged (their channels' tokens, buffered events and
//!   idempotency records), each affected tenant gets `data_deletion.requested` (the CRM
//!   holds the conversations), and a status record is kept under an unguessable code.
//!
//! Meta names the user by an app-scoped user id, which appears nowhere in message
//! webhooks; a channel record's `user_id` (given when the channel is stored) is what
//! connects the two. A Page-level uninstall names the Page (`profile_id`): a channel
//! whose id is that Page id is affected too.
//!
//! [`revoke`] withdraws the app's access at the provider when an operator deletes a
//! channel with `revoke=true`. Unsend (a message the customer took back is dropped from
//! the retry buffer before it is delivered) is part of delivery: [`crate::delivery::unsend`].

pub mod deletion;
pub mod revoke;
pub mod signed_request;

use crate::channels::{ChannelKind, ChannelRef};
use crate::delivery::{DispatchReport, Dispatcher};
use crate::event::{DataBuilder, Event, EventId, EventType};
use crate::live::Live;
use crate::store::{ChannelRecord, Store, StoreBackend, StoreError};
use crate::time::{now_ms, seconds_to_ms};

pub use signed_request::{SignedRequest, SignedRequestError};

/// Why a privacy callback could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("signed_request names no user_id (and no profile_id)")]
    NoSubject,
    #[error("signed_request names no user_id")]
    NoUserId,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the retry buffer could not be purged: {0}")]
    Buffer(#[from] crate::delivery::BufferError),
}

/// The channels a callback is about: those connected by `user_id`, and (Page-level
/// uninstall) the Meta channel whose id is `profile_id`.
pub async fn affected_channels(
    store: &Store,
    req: &SignedRequest,
) -> Result<Vec<(ChannelRef, ChannelRecord)>, StoreError> {
    let all = store.list_channels().await?;
    Ok(all
        .into_iter()
        .filter(|(channel, record)| {
            let by_user = req.user_id.is_some() && record.user_id == req.user_id;
            let by_page = channel.kind() != ChannelKind::Telegram
                && req.profile_id.as_deref() == Some(channel.id());
            by_user || by_page
        })
        .collect())
}

/// Removes channels from the store: the record (and with it the encrypted token) and
/// the channel's re-auth notice. Returns how many records were there.
pub async fn remove_channels(store: &Store, channels: &[ChannelRef]) -> Result<usize, StoreError> {
    let mut removed = 0;
    for channel in channels {
        if store.delete_channel(channel).await? {
            removed += 1;
        }
        store.del(&store.keys().reauth_notice(channel)).await?;
    }
    Ok(removed)
}

/// Warns when a removed channel is declared in `[[channels]]`: it would come back on
/// the next reload or restart.
fn warn_if_configured(live: &Live, channel: &ChannelRef) {
    if live
        .settings
        .channels
        .iter()
        .any(|c| c.kind == channel.kind() && c.id == channel.id())
    {
        tracing::warn!(
            channel = %channel,
            stage = "processing",
            "Removed channel is declared in [[channels]] and returns on reload; remove it from the config."
        );
    }
}

fn timestamp_ms(req: &SignedRequest) -> i64 {
    req.issued_at.map_or_else(now_ms, seconds_to_ms)
}

/// `channel.deauthorized` for one channel. The id is derived from (user, Page, channel,
/// issued_at), so a redelivered callback is deduplicated.
pub fn deauthorized_event(req: &SignedRequest, channel: &ChannelRef) -> Event {
    let issued = req.issued_at.map(|t| t.to_string()).unwrap_or_default();
    let user = req.user_id.as_deref().unwrap_or_default();
    let profile = req.profile_id.as_deref().unwrap_or_default();
    // `user.id` is the user who removed the app; a Page-level uninstall that names no
    // user names the Page there too (and in `profile.id`).
    let mut data = DataBuilder::new();
    if let Some(u) = req.user_id.as_ref().or(req.profile_id.as_ref()) {
        data = data.id_obj("user", u.clone());
    }
    if let Some(p) = &req.profile_id {
        data = data.id_obj("profile", p.clone());
    }
    let reason = if req.user_id.is_some() {
        "user_deauthorized"
    } else {
        "page_uninstalled"
    };
    Event {
        id: EventId::derive(&[
            "channel.deauthorized",
            user,
            profile,
            channel.kind().as_str(),
            channel.id(),
            &issued,
        ]),
        event_type: EventType::ChannelDeauthorized,
        timestamp_ms: timestamp_ms(req),
        channel: channel.clone(),
        conversation: None,
        data: data
            .set("reason", reason)
            .set("tokens_removed", true)
            .build(),
        raw: None,
        account: None,
    }
}

/// What a deauthorize callback did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeauthorizeOutcome {
    /// Channel records removed (their tokens with them).
    pub channels_removed: usize,
    /// How the `channel.deauthorized` events went.
    pub report: DispatchReport,
}

/// Deauthorize: tells each affected tenant (while the channel still routes to it), then
/// removes the channels' tokens. Tokens are removed even when a CRM could not be
/// reached: access ends now; the failure is logged and counted.
pub async fn deauthorize(
    store: &Store,
    dispatcher: &Dispatcher,
    live: &Live,
    req: &SignedRequest,
) -> Result<DeauthorizeOutcome, PrivacyError> {
    if req.user_id.is_none() && req.profile_id.is_none() {
        return Err(PrivacyError::NoSubject);
    }
    let affected = affected_channels(store, req).await?;
    let channels: Vec<ChannelRef> = affected.into_iter().map(|(c, _)| c).collect();
    let events = channels
        .iter()
        .map(|c| deauthorized_event(req, c))
        .collect();
    let report = dispatcher.dispatch(live, events).await?;
    let channels_removed = remove_channels(store, &channels).await?;
    for channel in &channels {
        warn_if_configured(live, channel);
        tracing::info!(channel = %channel, stage = "processing", "Channel deauthorized; token removed.");
    }
    if report.failed > 0 {
        metrics::counter!("switchboard_privacy_notices_undelivered_total", "type" => "channel.deauthorized")
            .increment(report.failed as u64);
        tracing::error!(
            undelivered = report.failed,
            stage = "sending",
            "channel.deauthorized could not be delivered to every tenant."
        );
    }
    metrics::counter!("switchboard_privacy_callbacks_total", "callback" => "deauthorize")
        .increment(1);
    Ok(DeauthorizeOutcome {
        channels_removed,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deauthorized_event_is_stable_per_callback() {
        let req = SignedRequest {
            user_id: Some("42".into()),
            profile_id: None,
            issued_at: Some(1_700_000_000),
            payload: "eyJ1c2VyX2lkIjoiNDIifQ".into(),
        };
        let c = ChannelRef::parse(ChannelKind::Messenger, "777").unwrap();
        let a = deauthorized_event(&req, &c);
        assert_eq!(a.id, deauthorized_event(&req, &c).id);
        assert_eq!(a.timestamp_ms, 1_700_000_000_000);
        assert_eq!(a.data["user"]["id"], "42");
        let later = SignedRequest {
            issued_at: Some(1_700_000_001),
            ..req
        };
        assert_ne!(a.id, deauthorized_event(&later, &c).id);
    }
}
