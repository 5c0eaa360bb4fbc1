//! The neutral message a CRM posts to `POST /v1/messages`, once parsed
//! ([`super::parse`]): who receives it and what is sent, in no channel's terms.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::channels::ChannelRef;

/// One message to send, channel-neutral.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    pub channel: ChannelRef,
    pub to: Recipient,
    pub content: Content,
    /// The provider id of the message this one quotes (`message.reply_to`).
    pub reply_to: Option<String>,
    /// Messenger/Instagram `messaging_type` (`RESPONSE`, `UPDATE`, `MESSAGE_TAG`).
    pub messaging_type: Option<String>,
    /// Messenger/Instagram message tag (`HUMAN_AGENT`, …); implies `MESSAGE_TAG`.
    pub tag: Option<String>,
    /// Telegram: the business connection the reply goes through (the
    /// `data.business_connection_id` of a `business_message` event).
    pub business_connection_id: Option<String>,
}

/// Who receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// `to`: the customer's id on the channel (wa_id, IGSID, PSID, Telegram chat id).
    User(String),
    /// `comment_id`: an Instagram/Messenger private reply to a comment.
    Comment(String),
    /// Neither given: only for `raw` bodies, which carry their own recipient.
    InBody,
}

impl Recipient {
    /// The `to` echoed in the success response.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Recipient::User(s) | Recipient::Comment(s) => Some(s),
            Recipient::InBody => None,
        }
    }
}

/// The five media kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Audio,
    Video,
    Document,
    Sticker,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }
}

/// Where a media file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// A public http(s) URL the provider fetches.
    Url(String),
    /// A provider media id (WhatsApp media id, Messenger attachment id, Telegram file_id).
    Id(String),
}

/// A reply button (`id`: postback / reply id) or a link button (`url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub title: String,
    pub id: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSection {
    pub title: Option<String>,
    pub rows: Vec<ListRow>,
}

/// The choice an interactive message offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choices {
    /// `buttons`: WhatsApp reply buttons, Messenger/Instagram button template,
    /// Telegram inline keyboard.
    Buttons(Vec<Button>),
    /// `list`: WhatsApp list message, Telegram inline keyboard (one row per item).
    List {
        button: String,
        sections: Vec<ListSection>,
    },
    /// `quick_replies`: Messenger/Instagram quick replies, Telegram inline keyboard.
    QuickReplies(Vec<Button>),
    /// `flow`: WhatsApp only, a button that opens a WhatsApp Flow.
    Flow(Flow),
}

/// A WhatsApp Flow to open (Cloud API interactive `type: flow`, `flow_message_version`
/// 3): which Flow, the button's text, the business's token for its answers, and how it
/// starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub flow: FlowRef,
    /// The button's text (`flow_cta`).
    pub cta: String,
    /// `flow_token`: the business's identifier, echoed in the Flow's answers.
    pub token: Option<String>,
    pub action: FlowAction,
    /// `published` (the default) or `draft`.
    pub mode: Option<String>,
}

/// A Flow by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowRef {
    Id(String),
    Name(String),
}

/// How a Flow starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowAction {
    /// Opens `screen`, with `data` for it.
    Navigate {
        screen: String,
        data: Option<Map<String, Value>>,
    },
    /// Asks the business's Flow endpoint for the first screen.
    DataExchange,
}

/// An interactive message's header: a line of text, or (WhatsApp) an image, a video or a
/// document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    Text(String),
    Media {
        kind: MediaKind,
        source: MediaSource,
        filename: Option<String>,
    },
}

/// One file of a media group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupItem {
    pub kind: MediaKind,
    pub source: MediaSource,
    pub caption: Option<String>,
}

/// What is sent.
#[derive(Debug, Clone)]
pub enum Content {
    Text {
        text: String,
        /// Whether links get a preview (WhatsApp `preview_url`, Telegram
        /// `link_preview_options`); `None`: the channel's default.
        preview_url: Option<bool>,
    },
    Media {
        kind: MediaKind,
        source: MediaSource,
        caption: Option<String>,
        filename: Option<String>,
        /// `audio` only: a voice note (WhatsApp `audio.voice`, Telegram `sendVoice`).
        voice: bool,
    },
    /// Telegram: 2 to 10 photos and videos (or documents, or audio) shown as one album.
    MediaGroup { items: Vec<GroupItem> },
    /// A map pin (`name` and `address` where the channel shows them).
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
    },
    /// Contact cards in WhatsApp's contact shape (`name`, `phones`, `emails`, `org`,
    /// …), passed to WhatsApp as given.
    Contacts { contacts: Vec<Map<String, Value>> },
    /// WhatsApp templates: `components` are passed as given.
    Template {
        name: String,
        language: String,
        components: Vec<Value>,
    },
    Interactive {
        text: String,
        header: Option<Header>,
        footer: Option<String>,
        choices: Choices,
    },
    /// Telegram: the answer to a button press (`answerCallbackQuery`), which ends the
    /// client's progress indicator; `text` is shown as a notification (`show_alert`: as
    /// an alert).
    CallbackAnswer {
        callback_query_id: String,
        text: Option<String>,
        show_alert: bool,
    },
    /// `emoji` empty: remove the reaction.
    Reaction { message_id: String, emoji: String },
    /// Mark `message_id` (and what came before) as read.
    Read { message_id: String },
    /// A typing indicator (`on: false` stops it where the channel can).
    Typing {
        on: bool,
        message_id: Option<String>,
    },
    /// A provider-native body sent unchanged (Telegram: to `method`).
    Raw {
        body: Box<RawValue>,
        method: Option<String>,
    },
}

impl Content {
    /// The contract's `message.kind` of this content.
    pub fn kind(&self) -> &'static str {
        match self {
            Content::Text { .. } => "text",
            Content::Media { kind, .. } => kind.as_str(),
            Content::MediaGroup { .. } => "media_group",
            Content::Location { .. } => "location",
            Content::Contacts { .. } => "contacts",
            Content::Template { .. } => "template",
            Content::Interactive { .. } => "interactive",
            Content::CallbackAnswer { .. } => "callback_answer",
            Content::Reaction { .. } => "reaction",
            Content::Read { .. } => "read",
            Content::Typing { .. } => "typing",
            Content::Raw { .. } => "raw",
        }
    }
}
