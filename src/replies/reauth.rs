//! `channel.reauth_required`: the tenant learns that a channel's token was refused, at
//! most once an hour per channel, across replicas.

use std::sync::Arc;
use std::time::Duration;

use crate::channels::outbound::ProviderDetail;
use crate::channels::ChannelRef;
use crate::delivery::Dispatcher;
use crate::event::{DataBuilder, Event, EventId, EventType};
use crate::live::Live;
use crate::store::{Store, StoreBackend};

/// Sends the tenant `channel.reauth_required`, unless it got one for this channel in the
/// last hour (on any replica). Runs in the background through the dispatcher (delivered
/// now, or buffered for retry); if neither works the marker is freed, so the next
/// refusal tries again.
pub fn notify_reauth(
    store: &Store,
    dispatcher: &Dispatcher,
    live: Arc<Live>,
    channel: ChannelRef,
    detail: &ProviderDetail,
) {
    let what = detail
        .reason
        .as_deref()
        .unwrap_or("the provider says the access token is invalid or expired");
    let reason = format!(
        "{what} ({} code {}{})",
        detail.provider,
        detail.code.map_or_else(|| "none".into(), |c| c.to_string()),
        detail
            .subcode
            .map_or_else(String::new, |s| format!(", subcode {s}"))
    );
    let (store, dispatcher) = (store.clone(), dispatcher.clone());
    tokio::spawn(async move {
        send_reauth(&store, &dispatcher, &live, &channel, &reason).await;
    });
}

/// What became of a `channel.reauth_required`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReauthNotice {
    /// Delivered to the CRM, or buffered for retry.
    Sent,
    /// The tenant got one for this channel in the last hour.
    AlreadySent,
    /// Neither delivered nor buffered (the next refusal tries again).
    Failed,
}

/// Sends `channel.reauth_required` with `reason` now (awaited: the token health check and
/// its CLI twin wait for it), unless the tenant got one for this channel in the last
/// hour (on any replica). If it can be neither delivered nor buffered the hourly marker
/// is freed, so the next refusal tries again.
pub async fn send_reauth(
    store: &Store,
    dispatcher: &Dispatcher,
    live: &Live,
    channel: &ChannelRef,
    reason: &str,
) -> ReauthNotice {
    let key = store.keys().reauth_notice(channel);
    match store.set_nx_ex(&key, "1", Duration::from_secs(3600)).await {
        Ok(true) => {}
        Ok(false) => return ReauthNotice::AlreadySent,
        Err(e) => {
            tracing::warn!(channel = %channel, error = %e, stage = "sending", "Reauth notice not sent: the store is unavailable.");
            return ReauthNotice::Failed;
        }
    }
    let now = crate::time::now_ms();
    let event = Event {
        id: EventId::derive(&[
            "channel.reauth_required",
            channel.kind().as_str(),
            channel.id(),
            &now.to_string(),
        ]),
        event_type: EventType::ChannelReauthRequired,
        timestamp_ms: now,
        channel: channel.clone(),
        conversation: None,
        data: DataBuilder::new().set("reason", reason).build(),
        raw: None,
        account: None,
    };
    let settled = match dispatcher.dispatch(live, vec![event]).await {
        Ok(report) => report.all_settled() && report.unroutable == 0,
        Err(_) => false,
    };
    if settled {
        ReauthNotice::Sent
    } else {
        tracing::warn!(channel = %channel, stage = "sending", "Reauth notice could not be delivered; the next refusal retries it.");
        let _ = store.del(&key).await;
        ReauthNotice::Failed
    }
}
