//! The Messenger Platform's messaging items as far as the relay reads them (shared by
//! Instagram and Messenger): the parties, `message` with its attachments, quick reply,
//! reply-to and story, `message_edit`, `delivery`, `read`, `reaction`, `postback`.
//! Unknown fields are ignored; ids Meta sends as numbers or strings are read leniently.

use serde::Deserialize;
use serde_json::Value;

use super::{lenient_i64, lenient_string};

#[derive(Deserialize, Default)]
pub(super) struct Party {
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) id: String,
    #[serde(default)]
    pub(super) user_ref: Option<String>,
}

impl Party {
    pub(super) fn id(&self) -> Option<&str> {
        (!self.id.is_empty()).then_some(self.id.as_str())
    }
}

#[derive(Deserialize)]
pub(super) struct Item {
    #[serde(default)]
    pub(super) sender: Option<Party>,
    #[serde(default)]
    pub(super) recipient: Option<Party>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub(super) timestamp: Option<i64>,
    #[serde(default)]
    pub(super) message: Option<Message>,
    #[serde(default)]
    pub(super) message_edit: Option<MessageEdit>,
    #[serde(default)]
    pub(super) delivery: Option<Delivery>,
    #[serde(default)]
    pub(super) read: Option<Read>,
    #[serde(default)]
    pub(super) reaction: Option<Reaction>,
    #[serde(default)]
    pub(super) postback: Option<Postback>,
    #[serde(default)]
    pub(super) referral: Option<Value>,
    #[serde(default)]
    pub(super) optin: Option<Value>,
    #[serde(default)]
    pub(super) pass_thread_control: Option<Value>,
    #[serde(default)]
    pub(super) take_thread_control: Option<Value>,
    #[serde(default)]
    pub(super) request_thread_control: Option<Value>,
    #[serde(default)]
    pub(super) app_roles: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct Message {
    #[serde(default)]
    pub(super) mid: Option<String>,
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) attachments: Vec<Attachment>,
    #[serde(default)]
    pub(super) quick_reply: Option<QuickReply>,
    #[serde(default)]
    pub(super) reply_to: Option<ReplyTo>,
    #[serde(default)]
    pub(super) is_echo: bool,
    #[serde(default)]
    pub(super) is_deleted: bool,
    #[serde(default)]
    pub(super) is_unsupported: bool,
    #[serde(default)]
    pub(super) app_id: Option<Value>,
    #[serde(default)]
    pub(super) metadata: Option<String>,
    #[serde(default)]
    pub(super) referral: Option<Value>,
    #[serde(default)]
    pub(super) sticker_id: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct Attachment {
    #[serde(rename = "type", default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) payload: Option<Value>,
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) url: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct QuickReply {
    #[serde(default)]
    pub(super) payload: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ReplyTo {
    #[serde(default)]
    pub(super) mid: Option<String>,
    #[serde(default)]
    pub(super) is_self_reply: Option<bool>,
    #[serde(default)]
    pub(super) story: Option<Story>,
}

#[derive(Deserialize)]
pub(super) struct Story {
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) id: String,
    #[serde(default)]
    pub(super) url: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct MessageEdit {
    #[serde(default)]
    pub(super) mid: Option<String>,
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub(super) num_edit: Option<i64>,
}

#[derive(Deserialize)]
pub(super) struct Delivery {
    #[serde(default)]
    pub(super) mids: Vec<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub(super) watermark: Option<i64>,
}

#[derive(Deserialize)]
pub(super) struct Read {
    #[serde(default)]
    pub(super) mid: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub(super) watermark: Option<i64>,
}

#[derive(Deserialize)]
pub(super) struct Reaction {
    #[serde(default)]
    pub(super) mid: Option<String>,
    #[serde(default)]
    pub(super) action: Option<String>,
    #[serde(default)]
    pub(super) reaction: Option<String>,
    #[serde(default)]
    pub(super) emoji: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Postback {
    #[serde(default)]
    pub(super) mid: Option<String>,
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) payload: Option<String>,
    #[serde(default)]
    pub(super) referral: Option<Value>,
}
