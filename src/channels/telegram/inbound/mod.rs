//! Telegram updates (`POST /webhooks/telegram/{bot_id}`) → events. Pure: the secret
//! header is checked first ([`super::secret`]), this only reads the body, whose wire
//! types are in [`super::wire`].
//!
//! | update | event |
//! |---|---|
//! | `message`, `channel_post`, `business_message` | `message.received` |
//! | `edited_message`, `edited_channel_post`, `edited_business_message` | `message.edited` |
//! | `business_message`, `edited_business_message` written by the business | `message.echo` |
//! | `deleted_business_messages` | `message.deleted`, one per message id |
//! | `callback_query` | `postback` (`payload` = the button's data, `title` = its text) |
//! | `message_reaction` | `message.reaction` (`emoji` empty when every reaction was removed) |
//! | `message_reaction_count` | `provider.event`, `data.kind`, `message.id`, `reactions` (each with `total_count`) |
//! | `my_chat_member`, `chat_member` | `provider.event`, `data.kind`, `status`, `old_status`, `action` (`blocked`, `unblocked`, `added`, `removed`, `changed`), `member` |
//! | `chat_join_request` | `provider.event`, `data.kind`, `sender`, `user_chat_id`, `bio`, `invite_link` |
//! | `business_connection` | `provider.event`, `data.kind`, `business_connection_id`, `sender` (the business account), `user_chat_id`, `enabled`, `can_reply` |
//! | anything else | `provider.event`, `data.kind` = the update's field, with `data.raw` |
//!
//! A message sent on behalf of a chat (`sender_chat`: a channel post, an anonymous
//! group admin, a linked channel's automatic forward) is credited to that chat:
//! `sender.id` = `sender_chat.id`, whatever placeholder user `from` holds. Business
//! updates carry `data.business_connection_id`. A business chat is the private chat of
//! the business with a customer (chat id = the customer's user id): a message there from
//! anyone else (`from.id != chat.id`), or sent by a bot for the business
//! (`sender_business_bot`), is what the business sent from Telegram: `message.echo`, with
//! the data of `message.received` and `sender` = the business account.
//!
//! Ids are strings in `data` (Telegram's are 64-bit integers: read as `i64`, never as a
//! float). `message.id` is the `message_id`, unique within its chat (`conversation.id`).
//! Media get relay URLs whose media id is the Telegram `file_id`.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

mod updates;

use super::wire::{full_name, Chat, FileRef, TgMessage, User, OTHER_CONTENT};
use crate::channels::{ChannelKind, ChannelRef, NormalizeContext, NormalizeError, Verified};
use crate::event::{DataBuilder, Event, EventId, EventType};
use crate::time::{now_ms, seconds_to_ms_or_now};

const KIND: ChannelKind = ChannelKind::Telegram;

/// Every update kind the relay normalizes: the dispatch below reads these, and
/// `setWebhook` asks for exactly these ([`super::webhook::ALLOWED_UPDATES`]), so the two
/// cannot drift apart. `message_reaction`, `message_reaction_count` and `chat_member`
/// must be named (Telegram leaves them out by default). An update of any other kind is
/// still delivered, as `provider.event`.
pub const UPDATE_KINDS: &[&str] = &[
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "callback_query",
    "message_reaction",
    "message_reaction_count",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
];

/// Normalizes one verified update of bot `bot_id`. A body that is not a JSON object with
/// an integer `update_id` is an error (400); anything inside one that is not understood
/// still becomes an event.
pub fn normalize(
    bot_id: &str,
    verified: &Verified<'_>,
    ctx: &NormalizeContext<'_>,
) -> Result<Vec<Event>, NormalizeError> {
    let fields: HashMap<String, &RawValue> = serde_json::from_slice(verified.body())?;
    let shape = || NormalizeError::Shape {
        expected: "Telegram update (an object with an integer update_id)",
    };
    let update_id: i64 = fields
        .get("update_id")
        .and_then(|v| serde_json::from_str(v.get()).ok())
        .ok_or_else(shape)?;
    let raw: Box<RawValue> = serde_json::from_slice::<&RawValue>(verified.body())?.to_owned();
    let Ok(channel) = ChannelRef::parse(KIND, bot_id) else {
        crate::channels::unparseable_channel(KIND);
        return Ok(Vec::new());
    };
    let u = Update {
        channel,
        update_id: update_id.to_string(),
        raw,
        ctx,
    };
    let found = UPDATE_KINDS
        .iter()
        .find_map(|k| fields.get(*k).map(|v| (*k, *v)));
    let Some((field, value)) = found else {
        let mut unknown: Vec<&str> = fields
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "update_id")
            .collect();
        unknown.sort_unstable();
        return Ok(vec![u.provider_event(
            unknown.first().copied().unwrap_or("unknown"),
            DataBuilder::new(),
            None,
            now_ms(),
        )]);
    };
    let events = match field {
        "message"
        | "channel_post"
        | "business_message"
        | "edited_message"
        | "edited_channel_post"
        | "edited_business_message" => {
            parse(value).map(|m| vec![u.message_event(field, message_type(field, &m), &m)])
        }
        "deleted_business_messages" => parse(value).map(|d| u.deleted_events(&d)),
        "callback_query" => parse(value).map(|c| vec![u.callback_event(&c)]),
        "message_reaction" => parse(value).map(|r| vec![u.reaction_event(&r)]),
        "message_reaction_count" => parse(value).map(|r| vec![u.reaction_count_event(&r)]),
        "my_chat_member" | "chat_member" => parse(value).map(|m| vec![u.member_event(field, &m)]),
        "chat_join_request" => parse(value).map(|j| vec![u.join_request_event(&j)]),
        "business_connection" => parse(value).map(|b| vec![u.business_connection_event(&b)]),
        _ => None,
    };
    Ok(events.unwrap_or_else(|| vec![u.provider_event(field, DataBuilder::new(), None, now_ms())]))
}

fn parse<T: for<'de> Deserialize<'de>>(value: &RawValue) -> Option<T> {
    serde_json::from_str(value.get()).ok()
}

/// `message.received`, `message.edited` for an edit, and `message.echo` for either when
/// the business itself wrote it.
fn message_type(field: &str, m: &TgMessage) -> EventType {
    if written_by_business(field, m) {
        EventType::MessageEcho
    } else if field.starts_with("edited_") {
        EventType::MessageEdited
    } else {
        EventType::MessageReceived
    }
}

/// Whether a business message is the business's own: sent by a bot on its behalf
/// (`sender_business_bot`), or written in the private chat with a customer, whose user id
/// is the chat's id, by someone else (the business account, in the Telegram app).
fn written_by_business(field: &str, m: &TgMessage) -> bool {
    matches!(field, "business_message" | "edited_business_message")
        && (m.sender_business_bot.is_some()
            || (m.chat.kind.as_deref() == Some("private")
                && m.from.as_ref().is_some_and(|f| f.id != m.chat.id)))
}

/// What every event of one update shares.
struct Update<'a> {
    channel: ChannelRef,
    update_id: String,
    raw: Box<RawValue>,
    ctx: &'a NormalizeContext<'a>,
}

impl Update<'_> {
    fn channel(&self) -> ChannelRef {
        self.channel.clone()
    }

    fn event(
        &self,
        event_type: EventType,
        id_parts: &[&str],
        conversation: Option<String>,
        timestamp_ms: i64,
        data: Map<String, Value>,
    ) -> Event {
        let mut parts = vec![KIND.as_str(), self.channel.id(), self.update_id.as_str()];
        parts.extend_from_slice(id_parts);
        Event {
            id: EventId::derive(&parts),
            event_type,
            timestamp_ms,
            channel: self.channel(),
            conversation,
            data,
            raw: Some(self.raw.clone()),
            account: None,
        }
    }

    fn provider_event(
        &self,
        kind: &str,
        data: DataBuilder,
        conversation: Option<String>,
        timestamp_ms: i64,
    ) -> Event {
        self.event(
            EventType::ProviderEvent,
            &[kind],
            conversation,
            timestamp_ms,
            data.set("kind", kind).build(),
        )
    }

    fn media(&self, f: &FileRef) -> DataBuilder {
        DataBuilder::new()
            .set("id", f.file_id.as_str())
            .set_opt("mime_type", f.mime_type.as_deref())
            .set(
                "url",
                self.ctx.media_url(KIND, self.channel.id(), &f.file_id),
            )
            .set_opt(
                "file_unique_id",
                f.file_unique_id.as_deref().filter(|s| !s.is_empty()),
            )
            .set_opt("file_size", f.file_size)
            .set_opt("filename", f.file_name.as_deref())
            .set_opt("width", f.width)
            .set_opt("height", f.height)
            .set_opt("duration", f.duration)
    }

    fn message_event(&self, field: &str, event_type: EventType, m: &TgMessage) -> Event {
        let mut message = Map::new();
        message.insert("id".into(), m.message_id.to_string().into());
        let mut text = m.text.as_deref().or(m.caption.as_deref());
        let kind: &str = if let Some(v) = &m.venue {
            message.insert(
                "location".into(),
                DataBuilder::new()
                    .set("latitude", v.location.latitude)
                    .set("longitude", v.location.longitude)
                    .set_opt("name", v.title.as_deref())
                    .set_opt("address", v.address.as_deref())
                    .into_value(),
            );
            "location"
        } else if let Some(l) = &m.location {
            message.insert(
                "location".into(),
                DataBuilder::new()
                    .set("latitude", l.latitude)
                    .set("longitude", l.longitude)
                    .into_value(),
            );
            "location"
        } else if let Some(c) = &m.contact {
            let contact = DataBuilder::new()
                .set(
                    "name",
                    DataBuilder::new()
                        .set_opt("formatted_name", full_name(&c.first_name, &c.last_name))
                        .set_opt("first_name", c.first_name.as_deref())
                        .set_opt("last_name", c.last_name.as_deref())
                        .into_value(),
                )
                .set(
                    "phones",
                    c.phone_number
                        .as_deref()
                        .map(|p| vec![DataBuilder::new().set("phone", p).into_value()])
                        .unwrap_or_default(),
                )
                .set_opt("user_id", c.user_id.map(|u| u.to_string()))
                .set_opt("vcard", c.vcard.as_deref())
                .into_value();
            message.insert("contacts".into(), vec![contact].into());
            "contacts"
        } else if let Some(photo) = largest(&m.photo) {
            // Telegram re-encodes every photo as JPEG.
            let media = self.media(photo).set("mime_type", "image/jpeg");
            message.insert("media".into(), media.into_value());
            "image"
        } else if let Some(s) = &m.sticker {
            let media = self.media(s).set_opt("emoji", s.emoji.as_deref()).set(
                "animated",
                s.is_animated.unwrap_or(false) || s.is_video.unwrap_or(false),
            );
            message.insert("media".into(), media.into_value());
            "sticker"
        } else if let Some(a) = &m.animation {
            message.insert(
                "media".into(),
                self.media(a).set("animated", true).into_value(),
            );
            "video"
        } else if let Some(v) = &m.video {
            message.insert("media".into(), self.media(v).into_value());
            "video"
        } else if let Some(v) = &m.video_note {
            message.insert(
                "media".into(),
                self.media(v).set("video_note", true).into_value(),
            );
            "video"
        } else if let Some(v) = &m.voice {
            message.insert(
                "media".into(),
                self.media(v).set("voice", true).into_value(),
            );
            "audio"
        } else if let Some(a) = &m.audio {
            let media = self
                .media(a)
                .set_opt("title", a.title.as_deref())
                .set_opt("performer", a.performer.as_deref());
            message.insert("media".into(), media.into_value());
            "audio"
        } else if let Some(d) = &m.document {
            message.insert("media".into(), self.media(d).into_value());
            "document"
        } else if m.text.is_some() {
            if let Some(cmd) = command(m) {
                message.insert("command".into(), cmd.into());
            }
            "text"
        } else {
            let other = self.raw_message_keys(field);
            if let Some(t) = other {
                message.insert("provider_type".into(), t.into());
            }
            text = None;
            "unsupported"
        };
        message.insert("kind".into(), kind.into());
        if let Some(t) = text {
            message.insert("text".into(), t.into());
        }
        if let Some(r) = &m.reply_to_message {
            message.insert("reply_to".into(), r.message_id.to_string().into());
        }
        if let Some(t) = m.message_thread_id {
            message.insert("thread_id".into(), t.to_string().into());
        }
        if let Some(g) = &m.media_group_id {
            message.insert("media_group_id".into(), g.as_str().into());
        }
        if m.forward_origin.is_some() {
            message.insert("forwarded".into(), true.into());
        }
        if let Some(e) = m.edit_date {
            message.insert(
                "edited_at".into(),
                crate::time::format_rfc3339(crate::time::seconds_to_ms(e)).into(),
            );
        }
        if let Some(a) = &m.author_signature {
            message.insert("author_signature".into(), a.as_str().into());
        }
        if m.is_automatic_forward {
            message.insert("automatic_forward".into(), true.into());
        }
        // On behalf of a chat, `from` is a placeholder (GroupAnonymousBot, or 777000
        // "Telegram" for a linked channel's forward): the chat is the sender.
        let sender = m
            .sender_chat
            .as_ref()
            .map(Chat::as_sender)
            .or_else(|| m.from.as_ref().map(User::to_value));
        let data = DataBuilder::new()
            .set("conversation", m.chat.conversation())
            .set_opt("sender", sender)
            .set("message", Value::Object(message))
            .set_opt(
                "business_connection_id",
                m.business_connection_id.as_deref(),
            )
            .build();
        let timestamp = if field.starts_with("edited_") {
            m.edit_date.unwrap_or(m.date)
        } else {
            m.date
        };
        let chat = m.chat.id.to_string();
        self.event(
            event_type,
            &[field, &chat, &m.message_id.to_string()],
            Some(chat.clone()),
            seconds_to_ms_or_now(timestamp),
            data,
        )
    }

    /// The first field of the message that names what it is, for `unsupported`.
    fn raw_message_keys(&self, field: &str) -> Option<&'static str> {
        let outer: HashMap<String, Value> = serde_json::from_str(self.raw.get()).ok()?;
        let msg = outer.get(field)?.as_object()?;
        OTHER_CONTENT.iter().copied().find(|k| msg.contains_key(*k))
    }
}

/// The largest photo size (by pixels, then bytes).
fn largest(sizes: &[FileRef]) -> Option<&FileRef> {
    sizes.iter().max_by_key(|p| {
        (
            p.width.unwrap_or(0) * p.height.unwrap_or(0),
            p.file_size.unwrap_or(0),
        )
    })
}

/// `/start` for a text opening with a bot command (`/start@my_bot payload` → `/start`).
fn command(m: &TgMessage) -> Option<String> {
    let text = m.text.as_deref()?;
    let e = m
        .entities
        .iter()
        .find(|e| e.kind == "bot_command" && e.offset == 0);
    let word: &str = match e {
        // Entity lengths are UTF-16 units; commands are ASCII, so they equal bytes.
        Some(e) => text.get(..e.length)?,
        None if text.starts_with('/') => text.split_whitespace().next()?,
        None => return None,
    };
    Some(word.split('@').next().unwrap_or(word).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: NormalizeContext<'static> = NormalizeContext {
        public_url: "https://relay.test",
    };

    fn run(body: &str) -> Vec<Event> {
        normalize(
            "5000000001",
            &Verified::assume_verified_for_tests(body.as_bytes()),
            &CTX,
        )
        .unwrap()
    }

    #[test]
    fn large_chat_ids_stay_exact() {
        let evs = run(
            r#"{"update_id":9,"message":{"message_id":1,"date":1,"text":"x",
                "chat":{"id":-1009007199254740993,"type":"supergroup"}}}"#,
        );
        assert_eq!(evs[0].data["conversation"]["id"], "-1009007199254740993");
    }

    #[test]
    fn update_without_id_is_refused() {
        let r = normalize(
            "1",
            &Verified::assume_verified_for_tests(br#"{"message":{}}"#),
            &CTX,
        );
        assert!(r.is_err());
        let r = normalize("1", &Verified::assume_verified_for_tests(b"[1]"), &CTX);
        assert!(r.is_err());
    }

    #[test]
    fn a_message_of_unknown_shape_is_still_delivered() {
        let evs = run(r#"{"update_id":9,"message":{"oops":true}}"#);
        assert_eq!(evs[0].event_type, EventType::ProviderEvent);
        assert_eq!(evs[0].data["kind"], "message");
    }

    /// A business message: `from` writes in the private chat with customer 5.
    fn business(field: &str, from: i64, extra: &str) -> Vec<Event> {
        run(&format!(
            r#"{{"update_id":9,"{field}":{{"message_id":1,"date":1,"edit_date":2,"text":"x",
                "business_connection_id":"c","from":{{"id":{from},"is_bot":false,"first_name":"A"}},
                "chat":{{"id":5,"type":"private"}}{extra}}}}}"#
        ))
    }

    #[test]
    fn business_messages_written_by_the_business_are_echoes() {
        let bot = r#","sender_business_bot":{"id":7,"is_bot":true,"first_name":"B"}"#;
        for (field, from, extra, expected) in [
            ("business_message", 5, "", EventType::MessageReceived),
            ("edited_business_message", 5, "", EventType::MessageEdited),
            ("business_message", 6, "", EventType::MessageEcho),
            ("edited_business_message", 6, "", EventType::MessageEcho),
            ("business_message", 6, bot, EventType::MessageEcho),
            ("business_message", 5, bot, EventType::MessageEcho),
        ] {
            let evs = business(field, from, extra);
            assert_eq!(evs[0].event_type, expected, "{field} from {from} {extra}");
            assert_eq!(evs[0].data["conversation"]["id"], "5");
            assert_eq!(evs[0].data["sender"]["id"], from.to_string());
        }
        // An edit keeps its own time, echo or not.
        assert_eq!(
            business("edited_business_message", 6, "")[0].timestamp_ms,
            2_000
        );
        // Outside business chats a different `from` is a group member, not an echo.
        let evs = run(
            r#"{"update_id":9,"message":{"message_id":1,"date":1,"text":"x",
                "from":{"id":6,"is_bot":false,"first_name":"A"},
                "chat":{"id":-5,"type":"group"}}}"#,
        );
        assert_eq!(evs[0].event_type, EventType::MessageReceived);
    }

    #[test]
    fn command_is_read_from_its_entity() {
        let evs = run(
            r#"{"update_id":9,"message":{"message_id":1,"date":1,"text":"/start@relay_bot go",
                "entities":[{"type":"bot_command","offset":0,"length":16}],
                "chat":{"id":5,"type":"private"}}}"#,
        );
        assert_eq!(evs[0].data["message"]["command"], "/start");
    }
}
