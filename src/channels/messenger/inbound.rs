//! Messenger webhooks (`object: page`) → events.
//!
//! Messaging items (`messaging[]`, `standby[]`) are walked by the shared
//! [`crate::channels::meta::messaging`] module. The `changes[]` are the Page's own: a
//! `feed` change adding a comment becomes `comment.received` (`comment.id`, `post.id`,
//! `sender.id` + `name`, `text`); every other change (other feed items and verbs,
//! other fields) becomes a `provider.event` with `data.kind` = the field.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::channels::meta::messaging::{
    self, change_event, lenient_i64, lenient_string, EntryHead,
};
use crate::channels::{ChannelKind, NormalizeContext, NormalizeError};
use crate::event::{DataBuilder, Event, EventId, EventType};
use crate::time::seconds_or_ms_to_ms;

const KIND: ChannelKind = ChannelKind::Messenger;

/// Normalizes one `entry[]` item, appending to `out`.
pub fn normalize_entry(
    entry: &RawValue,
    ctx: &NormalizeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), NormalizeError> {
    messaging::normalize_entry(KIND, entry, ctx, out, normalize_change)
}

#[derive(Deserialize)]
struct FeedChange {
    #[serde(default)]
    item: Option<String>,
    #[serde(default)]
    verb: Option<String>,
    #[serde(default)]
    comment_id: Option<String>,
    #[serde(default)]
    post_id: Option<String>,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    from: Option<From>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    created_time: Option<i64>,
}

#[derive(Deserialize)]
struct From {
    #[serde(default, deserialize_with = "lenient_string")]
    id: String,
    #[serde(default)]
    name: Option<String>,
}

fn normalize_change(head: &EntryHead, field: &str, value: &RawValue, out: &mut Vec<Event>) {
    let comment = (field == "feed")
        .then(|| serde_json::from_str::<FeedChange>(value.get()).ok())
        .flatten()
        .filter(|f| f.item.as_deref() == Some("comment") && f.verb.as_deref() == Some("add"))
        .and_then(|f| comment_event(head, &f, value));
    out.push(comment.unwrap_or_else(|| change_event(head, field, value)));
}

fn comment_event(head: &EntryHead, f: &FeedChange, raw: &RawValue) -> Option<Event> {
    let comment_id = f.comment_id.as_deref()?;
    let data = DataBuilder::new()
        .set(
            "comment",
            DataBuilder::new()
                .set("id", comment_id)
                .set_opt(
                    "parent_id",
                    f.parent_id
                        .as_deref()
                        .filter(|p| Some(*p) != f.post_id.as_deref()),
                )
                .into_value(),
        )
        .set_opt(
            "post",
            f.post_id
                .as_deref()
                .map(|id| DataBuilder::new().set("id", id).into_value()),
        )
        .set_opt(
            "sender",
            f.from.as_ref().map(|s| {
                DataBuilder::new()
                    .set("id", s.id.as_str())
                    .set_opt("name", s.name.as_deref())
                    .into_value()
            }),
        )
        .set_opt("text", f.message.as_deref())
        .set("source", "feed")
        .build();
    Some(Event {
        id: EventId::derive(&[KIND.as_str(), head.channel.id(), "comment", comment_id]),
        event_type: EventType::CommentReceived,
        timestamp_ms: f
            .created_time
            .map(seconds_or_ms_to_ms)
            .unwrap_or_else(|| head.timestamp_ms()),
        channel: head.channel(),
        conversation: None,
        data,
        raw: Some(raw.to_owned()),
        account: None,
    })
}
