//! The shapes a `POST /v1/messages` body is read into (see [`super::parse`]): the
//! envelope, one struct per `message.kind`, and the probes that keep `raw` bodies byte for
//! byte. Every field is optional here; [`super::parse`] says what is required.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::fields::{AnyStr, Flag, Id, JsonObj, List, Number, Obj, Str, Unknown};

#[derive(Deserialize)]
pub(super) struct Envelope {
    pub(super) channel: Option<Obj<ChannelWire>>,
    pub(super) to: Option<Id>,
    pub(super) comment_id: Option<Str>,
    pub(super) message: Option<Value>,
    pub(super) raw: Option<Value>,
    pub(super) method: Option<Value>,
    pub(super) business_connection_id: Option<Str>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

#[derive(Deserialize)]
pub(super) struct ChannelWire {
    pub(super) kind: Option<Str>,
    pub(super) id: Option<Id>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

/// What picks the message's struct.
#[derive(Deserialize)]
pub(super) struct KindProbe {
    pub(super) kind: Option<Str>,
    pub(super) raw: Option<IgnoredAny>,
}

/// `message.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Kind {
    Text,
    Image,
    Audio,
    Video,
    Document,
    Sticker,
    Location,
    Contacts,
    Template,
    Interactive,
    Reaction,
    Read,
    Typing,
    Raw,
    #[serde(rename = "callback_answer")]
    CallbackAnswer,
    #[serde(rename = "media_group")]
    MediaGroup,
}

#[derive(Deserialize)]
pub(super) struct Common {
    pub(super) reply_to: Option<Id>,
    pub(super) messaging_type: Option<Str>,
    pub(super) tag: Option<Str>,
}

#[derive(Deserialize)]
pub(super) struct TextWire {
    pub(super) text: Option<Str>,
    pub(super) preview_url: Option<Flag>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

#[derive(Deserialize)]
pub(super) struct MediaWire {
    pub(super) url: Option<Str>,
    pub(super) media_id: Option<Str>,
    pub(super) caption: Option<Str>,
    pub(super) filename: Option<Str>,
    pub(super) voice: Option<Flag>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

#[derive(Deserialize)]
pub(super) struct LocationWire {
    pub(super) latitude: Option<Number>,
    pub(super) longitude: Option<Number>,
    pub(super) name: Option<Str>,
    pub(super) address: Option<Str>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

#[derive(Deserialize)]
pub(super) struct ContactsWire {
    pub(super) contacts: Option<List<JsonObj>>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

/// What both channels need of a contact card (the rest is passed as given).
#[derive(Deserialize)]
pub(super) struct ContactCheck {
    pub(super) name: Option<JsonObj>,
    #[serde(rename = "phones")]
    pub(super) _phones: Option<List<JsonObj>>,
}

#[derive(Deserialize)]
pub(super) struct TemplateWire {
    pub(super) name: Option<Str>,
    pub(super) language: Option<Str>,
    pub(super) components: Option<List<JsonObj, false>>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

#[derive(Deserialize)]
pub(super) struct InteractiveWire {
    pub(super) text: Option<Str>,
    pub(super) header: Option<Value>,
    pub(super) footer: Option<Str>,
    pub(super) buttons: Option<List<Obj<ButtonWire>>>,
    pub(super) list: Option<Obj<ListWire>>,
    pub(super) quick_replies: Option<List<Obj<ButtonWire>>>,
    pub(super) flow: Option<Obj<FlowWire>>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

/// `message.flow` of an interactive message (WhatsApp Flows).
#[derive(Deserialize)]
pub(super) struct FlowWire {
    pub(super) id: Option<Str>,
    pub(super) name: Option<Str>,
    pub(super) cta: Option<Str>,
    pub(super) token: Option<Str>,
    pub(super) action: Option<Str>,
    pub(super) screen: Option<Str>,
    pub(super) data: Option<JsonObj>,
    pub(super) mode: Option<Str>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

#[derive(Deserialize)]
pub(super) struct ButtonWire {
    pub(super) id: Option<Str>,
    pub(super) title: Option<Str>,
    pub(super) url: Option<Str>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

#[derive(Deserialize)]
pub(super) struct ListWire {
    pub(super) button: Option<Str>,
    pub(super) sections: Option<List<Obj<SectionWire>>>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

#[derive(Deserialize)]
pub(super) struct SectionWire {
    pub(super) title: Option<Str>,
    pub(super) rows: Option<List<Obj<RowWire>>>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

#[derive(Deserialize)]
pub(super) struct RowWire {
    pub(super) id: Option<Str>,
    pub(super) title: Option<Str>,
    pub(super) description: Option<Str>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

#[derive(Deserialize)]
pub(super) struct MediaGroupWire {
    pub(super) items: Option<List<Obj<GroupItemWire>>>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

#[derive(Deserialize)]
pub(super) struct GroupItemWire {
    pub(super) kind: Option<Str>,
    pub(super) url: Option<Str>,
    pub(super) media_id: Option<Str>,
    pub(super) caption: Option<Str>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

/// An interactive message's media header.
#[derive(Deserialize)]
pub(super) struct MediaHeaderWire {
    pub(super) kind: Option<Str>,
    pub(super) url: Option<Str>,
    pub(super) media_id: Option<Str>,
    pub(super) filename: Option<Str>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

#[derive(Deserialize)]
pub(super) struct CallbackAnswerWire {
    pub(super) callback_query_id: Option<Str>,
    pub(super) text: Option<Str>,
    pub(super) show_alert: Option<Flag>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

/// `reaction`, `read` and `typing`.
#[derive(Deserialize)]
pub(super) struct ActionWire {
    pub(super) message_id: Option<Id>,
    pub(super) emoji: Option<AnyStr>,
    pub(super) on: Option<Flag>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

#[derive(Deserialize)]
pub(super) struct RawKindWire {
    pub(super) method: Option<Value>,
    #[serde(flatten)]
    pub(super) unknown: Unknown,
}

/// The raw sub-object of `message.raw` (or the top-level `raw`), byte for byte.
#[derive(Deserialize)]
pub(super) struct RawProbe {
    pub(super) message: Option<RawMessageProbe>,
    pub(super) raw: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
pub(super) struct RawMessageProbe {
    pub(super) raw: Option<Box<RawValue>>,
}
