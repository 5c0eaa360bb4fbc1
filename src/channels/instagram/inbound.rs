//! Instagram webhooks (`object: instagram`) → events.
//!
//! Messaging items (`messaging[]`, `standby[]`) are walked by the shared
//! [`crate::channels::meta::messaging`] module. The `changes[]` are Instagram's own:
//!
//! | field | event |
//! |---|---|
//! | `comments`, `live_comments` | `comment.received`: `comment.id`, `post.id`, `sender.id` (+ `username`), `text` |
//! | `mentions` (in a comment) | `comment.received` with `mention: true` (Meta sends only the ids) |
//! | `mentions` (in a caption), anything else | `provider.event`, `data.kind` = the field |

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::channels::meta::messaging::{self, change_event, lenient_string, EntryHead};
use crate::channels::{ChannelKind, NormalizeContext, NormalizeError};
use crate::event::{DataBuilder, Event, EventId, EventType};

const KIND: ChannelKind = ChannelKind::Instagram;

/// Normalizes one `entry[]` item, appending to `out`.
pub fn normalize_entry(
    entry: &RawValue,
    ctx: &NormalizeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), NormalizeError> {
    messaging::normalize_entry(KIND, entry, ctx, out, normalize_change)
}

#[derive(Deserialize)]
struct Comment {
    #[serde(deserialize_with = "lenient_string")]
    id: String,
    #[serde(default)]
    from: Option<From>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    media: Option<Media>,
    #[serde(default)]
    parent_id: Option<String>,
}

#[derive(Deserialize)]
struct From {
    #[serde(default, deserialize_with = "lenient_string")]
    id: String,
    #[serde(default)]
    username: Option<String>,
}

#[derive(Deserialize)]
struct Media {
    #[serde(default, deserialize_with = "lenient_string")]
    id: String,
    #[serde(default)]
    media_product_type: Option<String>,
}

#[derive(Deserialize)]
struct Mention {
    #[serde(default)]
    media_id: Option<String>,
    #[serde(default)]
    comment_id: Option<String>,
}

fn normalize_change(head: &EntryHead, field: &str, value: &RawValue, out: &mut Vec<Event>) {
    let event = match field {
        "comments" | "live_comments" => serde_json::from_str::<Comment>(value.get())
            .ok()
            .map(|c| comment_event(head, field, &c, value)),
        "mentions" => serde_json::from_str::<Mention>(value.get())
            .ok()
            .and_then(|m| mention_event(head, &m, value)),
        _ => None,
    };
    out.push(event.unwrap_or_else(|| change_event(head, field, value)));
}

fn comment_event(head: &EntryHead, field: &str, c: &Comment, raw: &RawValue) -> Event {
    let sender = c.from.as_ref().map(|f| {
        DataBuilder::new()
            .set("id", f.id.as_str())
            .set_opt("username", f.username.as_deref())
            .into_value()
    });
    let data = DataBuilder::new()
        .set(
            "comment",
            DataBuilder::new()
                .set("id", c.id.as_str())
                .set_opt("parent_id", c.parent_id.as_deref())
                .into_value(),
        )
        .set_opt(
            "post",
            c.media.as_ref().map(|m| {
                DataBuilder::new()
                    .set("id", m.id.as_str())
                    .set_opt("media_product_type", m.media_product_type.as_deref())
                    .into_value()
            }),
        )
        .set_opt("sender", sender)
        .set_opt("text", c.text.as_deref())
        .set("source", field)
        .build();
    Event {
        id: EventId::derive(&[KIND.as_str(), head.channel.id(), "comment", &c.id]),
        event_type: EventType::CommentReceived,
        timestamp_ms: head.timestamp_ms(),
        channel: head.channel(),
        conversation: None,
        data,
        raw: Some(raw.to_owned()),
        account: None,
    }
}

/// A mention of the account in someone's comment. Meta sends only the ids (the text and
/// the author are read with the Graph API); a mention in a caption has no comment id
/// and stays a `provider.event`.
fn mention_event(head: &EntryHead, m: &Mention, raw: &RawValue) -> Option<Event> {
    let comment_id = m.comment_id.as_deref()?;
    let data = DataBuilder::new()
        .id_obj("comment", comment_id)
        .set_opt(
            "post",
            m.media_id
                .as_deref()
                .map(|id| DataBuilder::new().set("id", id).into_value()),
        )
        .set("mention", true)
        .set("source", "mentions")
        .build();
    Some(Event {
        id: EventId::derive(&[KIND.as_str(), head.channel.id(), "mention", comment_id]),
        event_type: EventType::CommentReceived,
        timestamp_ms: head.timestamp_ms(),
        channel: head.channel(),
        conversation: None,
        data,
        raw: Some(raw.to_owned()),
        account: None,
    })
}
