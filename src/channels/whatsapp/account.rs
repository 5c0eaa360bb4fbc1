//! WhatsApp account-level webhooks: changes about a WhatsApp Business Account as a
//! whole (`entry[].id` is the WABA id; the value names no `metadata.phone_number_id`):
//! `message_template_status_update`, `message_template_quality_update`,
//! `phone_number_quality_update`, `account_update`, `business_capability_update` …
//!
//! Each becomes one event carrying the WABA in [`Event::account`]; routing gives it to
//! every tenant with a channel on that WABA (delivery::account). A template status
//! update becomes `template.status`; every other field `provider.event` with
//! `data.field` (and the same `data.kind`) and `data.raw`. The time is `entry.time`.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::KIND;
use crate::channels::ChannelRef;
use crate::event::{DataBuilder, Event, EventId, EventType};

/// `message_template_status_update`'s value (Meta sends the template id as a number).
#[derive(Deserialize)]
struct TemplateStatus {
    event: String,
    #[serde(default, deserialize_with = "id_string")]
    message_template_id: Option<String>,
    #[serde(default)]
    message_template_name: Option<String>,
    #[serde(default)]
    message_template_language: Option<String>,
    #[serde(default)]
    message_template_category: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// An id given as a number or a string, as a string.
fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The event of one account-level change. `time` is `entry.time` (part of the id, so
/// the same status reported again later is a new event, while a redelivery of the same
/// webhook is not); `sent_ms` the time it renders as. `None` when the entry's id is not
/// a WABA id (see [`crate::channels::unparseable_channel`]).
pub(super) fn event(
    waba_id: &str,
    field: &str,
    time: Option<i64>,
    sent_ms: i64,
    value: &RawValue,
) -> Option<Event> {
    let digest = hex::encode(Sha256::digest(value.get().as_bytes()));
    let time = time.map(|t| t.to_string()).unwrap_or_default();
    let id = EventId::derive(&[KIND.as_str(), waba_id, "account", field, &time, &digest]);
    let template = (field == "message_template_status_update")
        .then(|| serde_json::from_str::<TemplateStatus>(value.get()).ok())
        .flatten();
    let (event_type, data) = match template {
        Some(t) => (
            EventType::TemplateStatus,
            DataBuilder::new()
                .set("waba_id", waba_id)
                .set(
                    "template",
                    DataBuilder::new()
                        .set_opt("id", t.message_template_id.as_deref())
                        .set_opt("name", t.message_template_name.as_deref())
                        .set_opt("language", t.message_template_language.as_deref())
                        .set_opt("category", t.message_template_category.as_deref())
                        .into_value(),
                )
                .set("status", t.event.as_str())
                .set_opt("reason", t.reason.as_deref())
                .build(),
        ),
        None => (
            EventType::ProviderEvent,
            DataBuilder::new()
                .set("kind", field)
                .set("field", field)
                .set("waba_id", waba_id)
                .build(),
        ),
    };
    // A placeholder: routing sets each tenant's channel on the WABA. A WABA id is
    // digits, as a channel id of WhatsApp's.
    let Ok(channel) = ChannelRef::parse(KIND, waba_id) else {
        crate::channels::unparseable_channel(KIND);
        return None;
    };
    Some(Event {
        id,
        event_type,
        timestamp_ms: sent_ms,
        channel,
        conversation: None,
        data,
        raw: Some(value.to_owned()),
        account: Some(waba_id.to_owned()),
    })
}
