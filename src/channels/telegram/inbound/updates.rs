//! The updates that are not messages: deleted business messages, button presses,
//! reactions and reaction counts, membership changes, join requests and business
//! connections, each as [`super::Update`] turns it into events.

use serde_json::Value;

use super::super::wire::{
    BusinessConnection, CallbackQuery, Chat, ChatJoinRequest, ChatMemberUpdated, DeletedMessages,
    MessageReaction, MessageReactionCount, ReactionType, User,
};
use super::Update;
use crate::event::{DataBuilder, Event, EventType};
use crate::time::{now_ms, seconds_to_ms_or_now};

impl Update<'_> {
    pub(super) fn deleted_events(&self, d: &DeletedMessages) -> Vec<Event> {
        let chat = d.chat.id.to_string();
        d.message_ids
            .iter()
            .map(|id| {
                let id = id.to_string();
                // Telegram does not say who deleted them: the chat stands for its owner.
                let data = DataBuilder::new()
                    .set("conversation", d.chat.conversation())
                    .set("sender", d.chat.as_sender())
                    .set(
                        "message",
                        DataBuilder::new().set("id", id.as_str()).into_value(),
                    )
                    .set_opt(
                        "business_connection_id",
                        d.business_connection_id.as_deref(),
                    )
                    .build();
                self.event(
                    EventType::MessageDeleted,
                    &["deleted_business_messages", &chat, &id],
                    Some(chat.clone()),
                    now_ms(),
                    data,
                )
            })
            .collect()
    }

    pub(super) fn callback_event(&self, c: &CallbackQuery) -> Event {
        let payload = c.data.as_deref().or(c.game_short_name.as_deref());
        // The button's own text, found on the message it was attached to.
        let title = c.message.as_ref().and_then(|m| {
            let data = c.data.as_deref()?;
            m.reply_markup
                .as_ref()?
                .inline_keyboard
                .iter()
                .flatten()
                .find_map(|b| {
                    (b.callback_data.as_deref() == Some(data))
                        .then(|| b.text.clone())
                        .flatten()
                })
        });
        // A button on an inline message has no chat: the person's private chat is theirs.
        let conversation = c
            .message
            .as_ref()
            .map(|m| m.chat.conversation())
            .unwrap_or_else(|| {
                DataBuilder::new()
                    .set("id", c.from.id.to_string())
                    .into_value()
            });
        let conversation_id = conversation
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let data = DataBuilder::new()
            .set("conversation", conversation)
            .set("sender", c.from.to_value())
            .set("payload", payload.unwrap_or_default())
            .set_opt("title", title)
            .set_opt(
                "message",
                c.message.as_ref().map(|m| {
                    DataBuilder::new()
                        .set("id", m.message_id.to_string())
                        .into_value()
                }),
            )
            .set("callback_query_id", c.id.as_str())
            .set_opt("inline_message_id", c.inline_message_id.as_deref())
            .set_opt(
                "game_short_name",
                c.game_short_name.as_deref().filter(|_| c.data.is_none()),
            )
            .build();
        self.event(
            EventType::Postback,
            &["callback_query", &c.id],
            conversation_id,
            now_ms(),
            data,
        )
    }

    pub(super) fn reaction_event(&self, r: &MessageReaction) -> Event {
        let emoji = r
            .new_reaction
            .iter()
            .find(|x| x.kind == "emoji")
            .or_else(|| r.new_reaction.first())
            .map(ReactionType::display)
            .unwrap_or_default();
        let sender = r
            .user
            .as_ref()
            .map(User::to_value)
            .or_else(|| r.actor_chat.as_ref().map(Chat::as_sender));
        let chat = r.chat.id.to_string();
        let data = DataBuilder::new()
            .set("conversation", r.chat.conversation())
            .set_opt("sender", sender)
            .set(
                "message",
                DataBuilder::new()
                    .set("id", r.message_id.to_string())
                    .into_value(),
            )
            .set("emoji", emoji)
            .set(
                "reactions",
                r.new_reaction
                    .iter()
                    .map(ReactionType::to_value)
                    .collect::<Vec<_>>(),
            )
            .set(
                "old_reactions",
                r.old_reaction
                    .iter()
                    .map(ReactionType::to_value)
                    .collect::<Vec<_>>(),
            )
            .build();
        self.event(
            EventType::MessageReaction,
            &["message_reaction", &chat, &r.message_id.to_string()],
            Some(chat.clone()),
            seconds_to_ms_or_now(r.date),
            data,
        )
    }

    /// A membership changed: the bot's own (`my_chat_member`: in a private chat, the
    /// person blocked (`kicked`) or unblocked (`member`) the bot) or, in a chat the bot
    /// administers, someone's (`chat_member`: `member` is who, `sender` who did it).
    pub(super) fn member_event(&self, kind: &str, m: &ChatMemberUpdated) -> Event {
        let private = m.chat.kind.as_deref() == Some("private");
        let gone = |s: &str| matches!(s, "kicked" | "left");
        let (old, new) = (
            m.old_chat_member.status.as_str(),
            m.new_chat_member.status.as_str(),
        );
        let action = match (private, gone(old), gone(new)) {
            (true, false, true) => "blocked",
            (true, true, false) => "unblocked",
            (false, false, true) => "removed",
            (false, true, false) => "added",
            _ => "changed",
        };
        let chat = m.chat.id.to_string();
        let data = DataBuilder::new()
            .set("conversation", m.chat.conversation())
            .set("sender", m.from.to_value())
            .set("status", new)
            .set("old_status", old)
            .set("action", action)
            .set_opt(
                "member",
                m.new_chat_member.user.as_ref().map(User::to_value),
            );
        self.provider_event(kind, data, Some(chat), seconds_to_ms_or_now(m.date))
    }

    /// Anonymous reaction counts on a channel post (Telegram names no one).
    pub(super) fn reaction_count_event(&self, r: &MessageReactionCount) -> Event {
        let chat = r.chat.id.to_string();
        let reactions: Vec<Value> = r
            .reactions
            .iter()
            .map(|c| {
                let mut v = c.kind.to_value();
                if let Value::Object(o) = &mut v {
                    o.insert("total_count".into(), c.total_count.into());
                }
                v
            })
            .collect();
        let data = DataBuilder::new()
            .set("conversation", r.chat.conversation())
            .set(
                "message",
                DataBuilder::new()
                    .set("id", r.message_id.to_string())
                    .into_value(),
            )
            .set("reactions", reactions);
        self.provider_event(
            "message_reaction_count",
            data,
            Some(chat.clone()),
            seconds_to_ms_or_now(r.date),
        )
    }

    /// Someone asked to join a chat whose invite links need approval; the bot may
    /// write to them in `user_chat_id` for a while.
    pub(super) fn join_request_event(&self, j: &ChatJoinRequest) -> Event {
        let chat = j.chat.id.to_string();
        let data = DataBuilder::new()
            .set("conversation", j.chat.conversation())
            .set("sender", j.from.to_value())
            .set_opt("user_chat_id", j.user_chat_id.map(|i| i.to_string()))
            .set_opt("bio", j.bio.as_deref())
            .set_opt(
                "invite_link",
                j.invite_link
                    .as_ref()
                    .and_then(|l| l.get("invite_link"))
                    .and_then(Value::as_str),
            );
        self.provider_event(
            "chat_join_request",
            data,
            Some(chat.clone()),
            seconds_to_ms_or_now(j.date),
        )
    }

    /// A Telegram Business account connected the bot, changed its rights or
    /// disconnected it (`enabled` false).
    pub(super) fn business_connection_event(&self, b: &BusinessConnection) -> Event {
        let can_reply = b
            .rights
            .as_ref()
            .and_then(|r| r.get("can_reply"))
            .and_then(Value::as_bool)
            .or(b.can_reply)
            .unwrap_or(false);
        let data = DataBuilder::new()
            .set("business_connection_id", b.id.as_str())
            .set("sender", b.user.to_value())
            .set_opt("user_chat_id", b.user_chat_id.map(|i| i.to_string()))
            .set("enabled", b.is_enabled)
            .set("can_reply", can_reply);
        self.provider_event(
            "business_connection",
            data,
            None,
            seconds_to_ms_or_now(b.date),
        )
    }
}
