//! The WhatsApp webhook objects, as far as the relay reads them (every other field is
//! kept in `data.raw`): the entry and its changes, a `messages` change's value, one
//! message, one status. Shapes per Meta's webhook reference (docs/inbound.md).

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

#[derive(Deserialize)]
pub(crate) struct Entry<'a> {
    #[serde(default)]
    pub(super) id: String,
    /// When Meta sent it (Unix seconds); account-level changes carry nothing else.
    #[serde(default)]
    pub(super) time: Option<i64>,
    #[serde(default, borrow)]
    pub(super) changes: Vec<Change<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct Change<'a> {
    #[serde(default)]
    pub(super) field: String,
    #[serde(borrow)]
    pub(super) value: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(super) struct MessagesValue<'a> {
    /// The number the change is about (read here too, so a `messages` change is read
    /// once).
    #[serde(default)]
    pub(super) metadata: Option<Metadata>,
    #[serde(default)]
    pub(super) contacts: Vec<Contact>,
    #[serde(default, borrow)]
    pub(super) messages: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    pub(super) statuses: Vec<&'a RawValue>,
    /// `smb_message_echoes`: what the business sent from the WhatsApp Business app.
    #[serde(default, borrow)]
    pub(super) message_echoes: Vec<&'a RawValue>,
    #[serde(default)]
    pub(super) errors: Vec<WaError>,
}

#[derive(Deserialize)]
pub(super) struct Metadata {
    pub(super) phone_number_id: String,
}

#[derive(Deserialize)]
pub(super) struct Contact {
    #[serde(default)]
    pub(super) profile: Option<Profile>,
    #[serde(default)]
    pub(super) wa_id: Option<String>,
    #[serde(default)]
    pub(super) user_id: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Profile {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) username: Option<String>,
}

#[derive(Deserialize, Clone)]
pub(super) struct WaError {
    #[serde(default)]
    pub(super) code: Option<i64>,
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) message: Option<String>,
    #[serde(default)]
    pub(super) error_data: Option<ErrorData>,
}

#[derive(Deserialize, Clone)]
pub(super) struct ErrorData {
    #[serde(default)]
    pub(super) details: Option<String>,
}

impl WaError {
    /// The contract's `{code, title, detail}`.
    pub(super) fn to_value(&self) -> Value {
        let detail = self
            .error_data
            .as_ref()
            .and_then(|d| d.details.clone())
            .or_else(|| self.message.clone());
        json!({"code": self.code, "title": self.title, "detail": detail})
    }
}

#[derive(Deserialize)]
pub(super) struct WaMessage {
    /// Absent for a user known only by a business-scoped user id (`from_user_id`).
    #[serde(default)]
    pub(super) from: Option<String>,
    /// Echoes only: the customer the business wrote to.
    #[serde(default)]
    pub(super) to: Option<String>,
    pub(super) id: String,
    #[serde(default)]
    pub(super) timestamp: Option<String>,
    #[serde(rename = "type", default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) context: Option<Context>,
    #[serde(default)]
    pub(super) text: Option<Text>,
    #[serde(default)]
    pub(super) image: Option<Media>,
    #[serde(default)]
    pub(super) audio: Option<Media>,
    #[serde(default)]
    pub(super) video: Option<Media>,
    #[serde(default)]
    pub(super) document: Option<Media>,
    #[serde(default)]
    pub(super) sticker: Option<Media>,
    #[serde(default)]
    pub(super) location: Option<Value>,
    #[serde(default)]
    pub(super) contacts: Option<Value>,
    #[serde(default)]
    pub(super) interactive: Option<Interactive>,
    #[serde(default)]
    pub(super) button: Option<Button>,
    #[serde(default)]
    pub(super) reaction: Option<Reaction>,
    #[serde(default)]
    pub(super) order: Option<Value>,
    #[serde(default)]
    pub(super) system: Option<System>,
    #[serde(default)]
    pub(super) referral: Option<Value>,
    #[serde(default)]
    pub(super) errors: Vec<WaError>,
    #[serde(default)]
    pub(super) unsupported: Option<Value>,
    #[serde(default)]
    pub(super) from_user_id: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Context {
    #[serde(default)]
    pub(super) from: Option<String>,
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) forwarded: Option<bool>,
    #[serde(default)]
    pub(super) frequently_forwarded: Option<bool>,
    #[serde(default)]
    pub(super) referred_product: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct Text {
    #[serde(default)]
    pub(super) body: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Media {
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) mime_type: Option<String>,
    #[serde(default)]
    pub(super) sha256: Option<String>,
    #[serde(default)]
    pub(super) caption: Option<String>,
    #[serde(default)]
    pub(super) filename: Option<String>,
    #[serde(default)]
    pub(super) voice: Option<bool>,
    #[serde(default)]
    pub(super) animated: Option<bool>,
}

#[derive(Deserialize)]
pub(super) struct Interactive {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) button_reply: Option<Reply>,
    #[serde(default)]
    pub(super) list_reply: Option<Reply>,
    #[serde(default)]
    pub(super) nfm_reply: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct Reply {
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) description: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Button {
    #[serde(default)]
    pub(super) payload: Option<String>,
    #[serde(default)]
    pub(super) text: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Reaction {
    #[serde(default)]
    pub(super) message_id: Option<String>,
    #[serde(default)]
    pub(super) emoji: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct System {
    #[serde(default)]
    pub(super) body: Option<String>,
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) wa_id: Option<String>,
    #[serde(default)]
    pub(super) new_wa_id: Option<String>,
    #[serde(default)]
    pub(super) customer: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct WaStatus {
    pub(super) id: String,
    pub(super) status: String,
    #[serde(default)]
    pub(super) timestamp: Option<String>,
    #[serde(default)]
    pub(super) recipient_id: Option<String>,
    /// The recipient's business-scoped user id (with or instead of `recipient_id`).
    #[serde(default)]
    pub(super) recipient_user_id: Option<String>,
    #[serde(default)]
    pub(super) conversation: Option<Value>,
    #[serde(default)]
    pub(super) pricing: Option<Value>,
    #[serde(default)]
    pub(super) errors: Vec<WaError>,
    #[serde(default)]
    pub(super) biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    pub(super) recipient_type: Option<String>,
    #[serde(default)]
    pub(super) recipient_participant_id: Option<String>,
}
