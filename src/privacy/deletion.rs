//! Data deletion: purge what the relay holds about one Meta user, tell the tenants (they
//! hold the conversations), and keep a status record under an unguessable confirmation
//! code, which expires after `privacy.deletion_status_ttl_s`.
//!
//! The code is a keyed fingerprint of the `signed_request` ([`confirmation_codes`]):
//! the same request again (Meta retrying, or a replay) gets the same code on any
//! replica, and once its status record exists it is answered from it, with no second
//! purge and no second notice. A retry of a request that failed half-way runs it again
//! under the same code, so its notices keep their event ids (not delivered twice).
//!
//! The status record names nobody: it holds counts and times only, so after a deletion
//! nothing in the store names the user's ids.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{affected_channels, remove_channels, warn_if_configured, PrivacyError, SignedRequest};
use crate::channels::ChannelRef;
use crate::delivery::{BufferBackend, Dispatcher};
use crate::event::{DataBuilder, Event, EventId, EventType};
use crate::live::Live;
use crate::store::{Store, StoreBackend, StoreError};
use crate::time::{now_ms, now_rfc3339, seconds_to_ms};
use crate::vault::fingerprint::Fingerprints;

/// Length of a confirmation code: 32 hex digits (128 bits of an HMAC).
pub const CODE_LEN: usize = 32;

/// The confirmation codes a `signed_request` may have: an HMAC of its signed payload
/// under each vault-derived key ([`crate::vault::fingerprint`]), primary first.
/// Unguessable without the vault keys, the same on every replica, and after a vault
/// rotation the older key's code is still found.
pub fn confirmation_codes(keys: &Fingerprints, req: &SignedRequest) -> Vec<String> {
    keys.all("data deletion request", req.payload.as_bytes())
        .into_iter()
        .map(|h| h[..CODE_LEN].to_owned())
        .collect()
}

/// Whether `code` could be one of ours (checked before any store lookup).
pub fn is_code(code: &str) -> bool {
    code.len() == CODE_LEN && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// What the status page shows. No ids: counts and times only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionStatus {
    /// `completed`: the relay holds nothing more about the user.
    pub status: String,
    pub requested_at: String,
    pub completed_at: String,
    /// Channel records removed (with their encrypted tokens).
    pub channels_removed: usize,
    /// Buffered (undelivered, encrypted) events removed.
    pub buffered_events_removed: usize,
    /// Idempotency records removed.
    pub idempotency_records_removed: usize,
    /// Tenants (CRMs) told with `data_deletion.requested`.
    pub tenants_notified: usize,
    /// Notices kept (encrypted) in the retry buffer: the CRM was down; they are
    /// delivered when it is back.
    #[serde(default)]
    pub tenants_pending: usize,
    /// Notices that could be neither delivered nor buffered.
    pub tenants_not_reached: usize,
}

/// The answer to Meta, plus what was done.
#[derive(Debug, Clone)]
pub struct DeletionOutcome {
    pub confirmation_code: String,
    pub status: DeletionStatus,
}

/// The status page URL of a code.
pub fn status_url(live: &Live, code: &str) -> String {
    format!("{}/meta/data-deletion/{code}", live.public_url)
}

/// `data_deletion.requested` for one channel.
pub fn requested_event(
    req: &SignedRequest,
    user_id: &str,
    channel: &ChannelRef,
    code: &str,
    url: &str,
) -> Event {
    let issued = req.issued_at.map(|t| t.to_string()).unwrap_or_default();
    Event {
        id: EventId::derive(&[
            "data_deletion.requested",
            user_id,
            channel.kind().as_str(),
            channel.id(),
            &issued,
            code,
        ]),
        event_type: EventType::DataDeletionRequested,
        timestamp_ms: req.issued_at.map_or_else(now_ms, seconds_to_ms),
        channel: channel.clone(),
        conversation: None,
        data: DataBuilder::new()
            .id_obj("user", user_id.to_owned())
            .set("confirmation_code", code.to_owned())
            .set("status_url", url.to_owned())
            .build(),
        raw: None,
        account: None,
    }
}

/// Purges everything the relay holds about `req.user_id` (the channels connected by
/// that user, with their tokens, buffered events, idempotency records and re-auth
/// notices), notifies the tenants, and records the status.
pub async fn delete_user_data(
    store: &Store,
    dispatcher: &Dispatcher,
    live: &Live,
    req: &SignedRequest,
) -> Result<DeletionOutcome, PrivacyError> {
    let user_id = req.user_id.clone().ok_or(PrivacyError::NoUserId)?;
    let codes = confirmation_codes(live.keyring.fingerprints(), req);
    for code in &codes {
        if let Some(status) = deletion_status(store, code).await? {
            metrics::counter!("switchboard_privacy_callbacks_replayed_total", "callback" => "data_deletion")
                .increment(1);
            tracing::info!(
                stage = "processing",
                "Data deletion request seen before; answered with its confirmation code."
            );
            return Ok(DeletionOutcome {
                confirmation_code: code.clone(),
                status,
            });
        }
    }
    let code = codes.into_iter().next().unwrap_or_default();
    let requested_at = now_rfc3339();
    let affected = affected_channels(store, req).await?;
    let channels: Vec<ChannelRef> = affected.iter().map(|(c, _)| c.clone()).collect();

    let mut idempotency_records_removed = 0;
    for (channel, record) in &affected {
        idempotency_records_removed +=
            purge_idempotency_records(store, &record.tenant, channel).await?;
    }

    // Notices first, while the channels still route to their tenants; then the
    // channels go (so nothing new is routed to them), then what the retry buffer holds
    // of them, except the notices themselves (kept, encrypted, while a CRM is down).
    let url = status_url(live, &code);
    let events: Vec<Event> = channels
        .iter()
        .map(|c| requested_event(req, &user_id, c, &code, &url))
        .collect();
    let notices: Vec<String> = events.iter().map(|e| e.id.as_str().to_owned()).collect();
    let report = dispatcher.dispatch(live, events).await?;
    let channels_removed = remove_channels(store, &channels).await?;
    let mut buffered_events_removed = 0;
    for channel in &channels {
        warn_if_configured(live, channel);
        buffered_events_removed += dispatcher
            .buffer()
            .purge_channel(&channel.to_string(), &notices)
            .await?;
        // Given-up events of the channel too (the notices are never among them).
        buffered_events_removed += dispatcher
            .dead_letters()
            .purge_channel(&channel.to_string())
            .await?;
    }
    if report.failed > 0 {
        metrics::counter!("switchboard_privacy_notices_undelivered_total", "type" => "data_deletion.requested")
            .increment(report.failed as u64);
        tracing::error!(
            undelivered = report.failed,
            stage = "sending",
            "data_deletion.requested could not be delivered to every tenant."
        );
    }

    let status = DeletionStatus {
        status: "completed".into(),
        requested_at,
        completed_at: now_rfc3339(),
        channels_removed,
        buffered_events_removed,
        idempotency_records_removed,
        tenants_notified: report.delivered + report.duplicates,
        tenants_pending: report.buffered,
        tenants_not_reached: report.failed,
    };
    let ttl = Duration::from_secs(live.settings.privacy.deletion_status_ttl_s);
    let value = serde_json::to_string(&status).unwrap_or_default();
    store
        .set_ex(&store.keys().deletion(&code), &value, ttl)
        .await?;
    metrics::counter!("switchboard_privacy_callbacks_total", "callback" => "data_deletion")
        .increment(1);
    tracing::info!(
        channels_removed,
        buffered_events_removed,
        idempotency_records_removed,
        stage = "processing",
        "Data deletion request completed."
    );
    Ok(DeletionOutcome {
        confirmation_code: code,
        status,
    })
}

/// The status of a deletion request; `None` when the code is unknown or expired.
pub async fn deletion_status(
    store: &Store,
    code: &str,
) -> Result<Option<DeletionStatus>, StoreError> {
    if !is_code(code) {
        return Ok(None);
    }
    let key = store.keys().deletion(code);
    match store.get(&key).await? {
        None => Ok(None),
        Some(v) => serde_json::from_str(&v)
            .map(Some)
            .map_err(|e| StoreError::Malformed {
                key,
                reason: e.to_string(),
            }),
    }
}

/// Removes the tenant's idempotency records that answer a send through `channel`. The
/// record keys are hashed, so each record of the tenant is read and matched on the
/// channel it names.
async fn purge_idempotency_records(
    store: &Store,
    tenant: &str,
    channel: &ChannelRef,
) -> Result<usize, StoreError> {
    let pattern = format!("{}idem:{}:*", store.keys().prefix(), tenant);
    let mut removed = 0;
    for key in store.scan(&pattern).await? {
        let Some(value) = store.get(&key).await? else {
            continue;
        };
        if names_channel(&value, channel) && store.del(&key).await? {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether a stored JSON value names `channel` (an object `{"kind": …, "id": …}`
/// anywhere in it). A value that is not JSON is matched on the quoted channel id.
fn names_channel(value: &str, channel: &ChannelRef) -> bool {
    fn walk(v: &Value, channel: &ChannelRef) -> bool {
        match v {
            Value::Object(m) => {
                let hit = m.get("kind").and_then(Value::as_str) == Some(channel.kind().as_str())
                    && m.get("id").and_then(Value::as_str) == Some(channel.id());
                hit || m.values().any(|v| walk(v, channel))
            }
            Value::Array(a) => a.iter().any(|v| walk(v, channel)),
            Value::String(s) if s.starts_with('{') || s.starts_with('[') => {
                serde_json::from_str::<Value>(s).is_ok_and(|v| walk(&v, channel))
            }
            _ => false,
        }
    }
    match serde_json::from_str::<Value>(value) {
        Ok(v) => walk(&v, channel),
        Err(_) => value.contains(&format!("\"{}\"", channel.id())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::ChannelKind;

    fn request(payload: &str) -> SignedRequest {
        SignedRequest {
            user_id: Some("42".into()),
            profile_id: None,
            issued_at: Some(1_700_000_000),
            payload: payload.into(),
        }
    }

    #[test]
    fn codes_are_keyed_stable_per_request_and_distinct() {
        let key = crate::vault::Keyring::generate_key();
        let keyring =
            crate::vault::Keyring::new(&[secrecy::SecretString::from(key.clone())]).unwrap();
        let keys = keyring.fingerprints();
        let a = confirmation_codes(keys, &request("eyJhIjoxfQ"))[0].clone();
        assert!(is_code(&a), "{a}");
        assert_eq!(a, confirmation_codes(keys, &request("eyJhIjoxfQ"))[0]);
        assert_ne!(a, confirmation_codes(keys, &request("eyJhIjoyfQ"))[0]);
        // Another replica (the same vault key) gives the same code; another key another.
        let same = crate::vault::Keyring::new(&[secrecy::SecretString::from(key)]).unwrap();
        assert_eq!(
            a,
            confirmation_codes(same.fingerprints(), &request("eyJhIjoxfQ"))[0]
        );
        let other = crate::vault::Keyring::new(&[secrecy::SecretString::from(
            crate::vault::Keyring::generate_key(),
        )])
        .unwrap();
        assert_ne!(
            a,
            confirmation_codes(other.fingerprints(), &request("eyJhIjoxfQ"))[0]
        );
        assert!(!is_code("short"));
        assert!(!is_code(&format!("{}!", &a[1..])));
    }

    #[test]
    fn idempotency_values_are_matched_on_their_channel() {
        let c = ChannelRef::parse(ChannelKind::Whatsapp, "106540352242922").unwrap();
        let v = r#"{"status":200,"body":"{\"id\":\"wamid.X\",\"channel\":{\"kind\":\"whatsapp\",\"id\":\"106540352242922\"}}"}"#;
        assert!(names_channel(v, &c));
        let other = ChannelRef::parse(ChannelKind::Whatsapp, "1").unwrap();
        assert!(!names_channel(v, &other));
        assert!(names_channel("x \"106540352242922\" y", &c));
    }
}
