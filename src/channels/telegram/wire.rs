//! The Telegram Bot API's update objects, as far as the relay reads them (`User`, `Chat`,
//! `Message` and what it holds, callback queries, reactions and their counts, member
//! changes, join requests, business connections and deleted business messages), and how a user or chat is written into an event's `data`.
//! Unknown fields are ignored; ids are `i64`, never floats.

use serde::Deserialize;
use serde_json::Value;

use crate::event::DataBuilder;

#[derive(Deserialize)]
pub(super) struct User {
    pub(super) id: i64,
    #[serde(default)]
    pub(super) is_bot: Option<bool>,
    #[serde(default)]
    pub(super) first_name: Option<String>,
    #[serde(default)]
    pub(super) last_name: Option<String>,
    #[serde(default)]
    pub(super) username: Option<String>,
    #[serde(default)]
    pub(super) language_code: Option<String>,
}

impl User {
    pub(super) fn to_value(&self) -> Value {
        DataBuilder::new()
            .set("id", self.id.to_string())
            .set_opt("name", full_name(&self.first_name, &self.last_name))
            .set_opt("username", self.username.as_deref())
            .set_opt("is_bot", self.is_bot.filter(|b| *b))
            .set_opt("language_code", self.language_code.as_deref())
            .into_value()
    }
}

#[derive(Deserialize)]
pub(super) struct Chat {
    pub(super) id: i64,
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) username: Option<String>,
    #[serde(default)]
    pub(super) first_name: Option<String>,
    #[serde(default)]
    pub(super) last_name: Option<String>,
}

impl Chat {
    /// `conversation`: `{id, type, title?}` (the title only for groups and channels).
    pub(super) fn conversation(&self) -> Value {
        DataBuilder::new()
            .set("id", self.id.to_string())
            .set_opt("type", self.kind.as_deref())
            .set_opt("title", self.title.as_deref())
            .into_value()
    }

    /// The chat as a sender (a channel post, or a message sent on behalf of a chat).
    pub(super) fn as_sender(&self) -> Value {
        DataBuilder::new()
            .set("id", self.id.to_string())
            .set_opt(
                "name",
                self.title
                    .clone()
                    .or_else(|| full_name(&self.first_name, &self.last_name))
                    .or_else(|| self.username.clone()),
            )
            .set_opt("username", self.username.as_deref())
            .into_value()
    }
}

pub(super) fn full_name(first: &Option<String>, last: &Option<String>) -> Option<String> {
    match (first.as_deref(), last.as_deref()) {
        (Some(f), Some(l)) if !l.is_empty() => Some(format!("{f} {l}")),
        (Some(f), _) => Some(f.to_owned()),
        (None, Some(l)) => Some(l.to_owned()),
        (None, None) => None,
    }
}

#[derive(Deserialize)]
pub(super) struct FileRef {
    pub(super) file_id: String,
    #[serde(default)]
    pub(super) file_unique_id: Option<String>,
    #[serde(default)]
    pub(super) file_size: Option<i64>,
    #[serde(default)]
    pub(super) file_name: Option<String>,
    #[serde(default)]
    pub(super) mime_type: Option<String>,
    #[serde(default)]
    pub(super) width: Option<i64>,
    #[serde(default)]
    pub(super) height: Option<i64>,
    #[serde(default)]
    pub(super) duration: Option<i64>,
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) performer: Option<String>,
    #[serde(default)]
    pub(super) emoji: Option<String>,
    #[serde(default)]
    pub(super) is_animated: Option<bool>,
    #[serde(default)]
    pub(super) is_video: Option<bool>,
}

#[derive(Deserialize)]
pub(super) struct Location {
    pub(super) latitude: f64,
    pub(super) longitude: f64,
}

#[derive(Deserialize)]
pub(super) struct Venue {
    pub(super) location: Location,
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) address: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Contact {
    #[serde(default)]
    pub(super) phone_number: Option<String>,
    #[serde(default)]
    pub(super) first_name: Option<String>,
    #[serde(default)]
    pub(super) last_name: Option<String>,
    #[serde(default)]
    pub(super) user_id: Option<i64>,
    #[serde(default)]
    pub(super) vcard: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct MessageRef {
    pub(super) message_id: i64,
}

#[derive(Deserialize)]
pub(super) struct Entity {
    #[serde(rename = "type", default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) offset: i64,
    #[serde(default)]
    pub(super) length: usize,
}

#[derive(Deserialize)]
pub(super) struct TgMessage {
    pub(super) message_id: i64,
    #[serde(default)]
    pub(super) message_thread_id: Option<i64>,
    #[serde(default)]
    pub(super) from: Option<User>,
    #[serde(default)]
    pub(super) sender_chat: Option<Chat>,
    /// The bot that sent a business message on the business's behalf (outgoing business
    /// messages only; `from` is then the business account).
    #[serde(default)]
    pub(super) sender_business_bot: Option<User>,
    pub(super) chat: Chat,
    #[serde(default)]
    pub(super) date: i64,
    #[serde(default)]
    pub(super) edit_date: Option<i64>,
    #[serde(default)]
    pub(super) business_connection_id: Option<String>,
    #[serde(default)]
    pub(super) media_group_id: Option<String>,
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) caption: Option<String>,
    #[serde(default)]
    pub(super) entities: Vec<Entity>,
    #[serde(default)]
    pub(super) photo: Vec<FileRef>,
    #[serde(default)]
    pub(super) document: Option<FileRef>,
    #[serde(default)]
    pub(super) animation: Option<FileRef>,
    #[serde(default)]
    pub(super) audio: Option<FileRef>,
    #[serde(default)]
    pub(super) voice: Option<FileRef>,
    #[serde(default)]
    pub(super) video: Option<FileRef>,
    #[serde(default)]
    pub(super) video_note: Option<FileRef>,
    #[serde(default)]
    pub(super) sticker: Option<FileRef>,
    #[serde(default)]
    pub(super) location: Option<Location>,
    #[serde(default)]
    pub(super) venue: Option<Venue>,
    #[serde(default)]
    pub(super) contact: Option<Contact>,
    #[serde(default)]
    pub(super) reply_to_message: Option<MessageRef>,
    #[serde(default)]
    pub(super) forward_origin: Option<Value>,
    #[serde(default)]
    pub(super) is_automatic_forward: bool,
    #[serde(default)]
    pub(super) author_signature: Option<String>,
}

/// The fields of a message that say what it is, beyond the ones read above: a message
/// with none of the known ones is `unsupported` and named by the first of these found.
pub(super) const OTHER_CONTENT: &[&str] = &[
    "dice",
    "poll",
    "game",
    "story",
    "invoice",
    "successful_payment",
    "paid_media",
    "checklist",
    "giveaway",
    "giveaway_winners",
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "channel_chat_created",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
    "web_app_data",
    "forum_topic_created",
    "users_shared",
    "chat_shared",
];

#[derive(Deserialize)]
pub(super) struct CallbackQuery {
    pub(super) id: String,
    pub(super) from: User,
    #[serde(default)]
    pub(super) message: Option<CallbackMessage>,
    #[serde(default)]
    pub(super) inline_message_id: Option<String>,
    #[serde(default)]
    pub(super) data: Option<String>,
    #[serde(default)]
    pub(super) game_short_name: Option<String>,
}

/// The message a button was on (possibly "inaccessible": only ids and `date: 0`).
#[derive(Deserialize)]
pub(super) struct CallbackMessage {
    pub(super) message_id: i64,
    pub(super) chat: Chat,
    #[serde(default)]
    pub(super) reply_markup: Option<ReplyMarkup>,
}

#[derive(Deserialize)]
pub(super) struct ReplyMarkup {
    #[serde(default)]
    pub(super) inline_keyboard: Vec<Vec<InlineButton>>,
}

#[derive(Deserialize)]
pub(super) struct InlineButton {
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) callback_data: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ChatMemberUpdated {
    pub(super) chat: Chat,
    pub(super) from: User,
    #[serde(default)]
    pub(super) date: i64,
    pub(super) old_chat_member: ChatMember,
    pub(super) new_chat_member: ChatMember,
}

#[derive(Deserialize)]
pub(super) struct ChatMember {
    #[serde(default)]
    pub(super) status: String,
    #[serde(default)]
    pub(super) user: Option<User>,
}

#[derive(Deserialize)]
pub(super) struct MessageReaction {
    pub(super) chat: Chat,
    pub(super) message_id: i64,
    #[serde(default)]
    pub(super) user: Option<User>,
    #[serde(default)]
    pub(super) actor_chat: Option<Chat>,
    #[serde(default)]
    pub(super) date: i64,
    #[serde(default)]
    pub(super) old_reaction: Vec<ReactionType>,
    #[serde(default)]
    pub(super) new_reaction: Vec<ReactionType>,
}

#[derive(Deserialize)]
pub(super) struct ReactionType {
    #[serde(rename = "type", default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) emoji: Option<String>,
    #[serde(default)]
    pub(super) custom_emoji_id: Option<String>,
}

impl ReactionType {
    /// The emoji to show: the emoji itself, `⭐` for a paid reaction, `custom:<id>` for a
    /// custom emoji (never empty: empty means "removed").
    pub(super) fn display(&self) -> String {
        match (self.kind.as_str(), &self.emoji, &self.custom_emoji_id) {
            (_, Some(e), _) => e.clone(),
            ("paid", _, _) => "\u{2b50}".to_owned(),
            (_, None, Some(id)) => format!("custom:{id}"),
            (k, None, None) => k.to_owned(),
        }
    }

    pub(super) fn to_value(&self) -> Value {
        DataBuilder::new()
            .set("type", self.kind.as_str())
            .set_opt("emoji", self.emoji.as_deref())
            .set_opt("custom_emoji_id", self.custom_emoji_id.as_deref())
            .into_value()
    }
}

#[derive(Deserialize)]
pub(super) struct DeletedMessages {
    #[serde(default)]
    pub(super) business_connection_id: Option<String>,
    pub(super) chat: Chat,
    #[serde(default)]
    pub(super) message_ids: Vec<i64>,
}

#[derive(Deserialize)]
pub(super) struct MessageReactionCount {
    pub(super) chat: Chat,
    pub(super) message_id: i64,
    #[serde(default)]
    pub(super) date: i64,
    #[serde(default)]
    pub(super) reactions: Vec<ReactionCount>,
}

#[derive(Deserialize)]
pub(super) struct ReactionCount {
    #[serde(rename = "type")]
    pub(super) kind: ReactionType,
    #[serde(default)]
    pub(super) total_count: i64,
}

#[derive(Deserialize)]
pub(super) struct ChatJoinRequest {
    pub(super) chat: Chat,
    pub(super) from: User,
    #[serde(default)]
    pub(super) user_chat_id: Option<i64>,
    #[serde(default)]
    pub(super) date: i64,
    #[serde(default)]
    pub(super) bio: Option<String>,
    #[serde(default)]
    pub(super) invite_link: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct BusinessConnection {
    pub(super) id: String,
    pub(super) user: User,
    #[serde(default)]
    pub(super) user_chat_id: Option<i64>,
    #[serde(default)]
    pub(super) date: i64,
    /// `BusinessBotRights` (Bot API 9.0); before it, a top-level `can_reply`.
    #[serde(default)]
    pub(super) rights: Option<Value>,
    #[serde(default)]
    pub(super) can_reply: Option<bool>,
    #[serde(default)]
    pub(super) is_enabled: bool,
}
