//! The events `simulate` can send: each is one of the repository's real provider
//! payloads (`tests/fixtures/`, provenance in `tests/fixtures/SOURCES.md`), compiled in,
//! and made fresh on every send: new message/update ids and timestamps of now (so the
//! relay's dedupe does not drop a second run), and the channel id of the config's
//! channel of that kind.

use rand::Rng;
use serde_json::Value;
use switchboard::channels::ChannelKind;

/// One event kind `simulate` can send.
pub struct Scenario {
    /// What to type: `whatsapp.text`.
    pub name: &'static str,
    pub kind: ChannelKind,
    /// What the relay makes of it, for `--list`.
    pub about: &'static str,
    /// The fixture it is built from, under `tests/fixtures/`.
    pub fixture: &'static str,
    body: &'static str,
    /// JSON pointers of ids made fresh beyond the generic ones (see [`freshen`]).
    fresh: &'static [&'static str],
}

macro_rules! scenario {
    ($name:literal, $kind:ident, $fixture:literal, $about:literal $(, $fresh:literal)* $(,)?) => {
        Scenario {
            name: $name,
            kind: ChannelKind::$kind,
            about: $about,
            fixture: $fixture,
            body: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/", $fixture)),
            fresh: &[$($fresh),*],
        }
    };
}

/// Every kind, in `--list` order.
pub static SCENARIOS: &[Scenario] = &[
    scenario!(
        "whatsapp.text",
        Whatsapp,
        "whatsapp/text.json",
        "message.received, a text"
    ),
    scenario!(
        "whatsapp.image",
        Whatsapp,
        "whatsapp/image.json",
        "message.received, an image with its media URL"
    ),
    scenario!(
        "whatsapp.audio",
        Whatsapp,
        "whatsapp/audio_voice.json",
        "message.received, a voice note"
    ),
    scenario!(
        "whatsapp.video",
        Whatsapp,
        "whatsapp/video.json",
        "message.received, a video"
    ),
    scenario!(
        "whatsapp.document",
        Whatsapp,
        "whatsapp/document_forwarded.json",
        "message.received, a forwarded document"
    ),
    scenario!(
        "whatsapp.sticker",
        Whatsapp,
        "whatsapp/sticker.json",
        "message.received, a sticker"
    ),
    scenario!(
        "whatsapp.location",
        Whatsapp,
        "whatsapp/location.json",
        "message.received, a location"
    ),
    scenario!(
        "whatsapp.contacts",
        Whatsapp,
        "whatsapp/contacts_unicode.json",
        "message.received, a shared contact"
    ),
    scenario!(
        "whatsapp.interactive",
        Whatsapp,
        "whatsapp/interactive_button_reply.json",
        "message.received, a reply button chosen"
    ),
    scenario!(
        "whatsapp.button",
        Whatsapp,
        "whatsapp/button_template_quick_reply.json",
        "message.received, a template quick reply"
    ),
    scenario!(
        "whatsapp.order",
        Whatsapp,
        "whatsapp/order.json",
        "message.received, a catalog order"
    ),
    scenario!(
        "whatsapp.reaction",
        Whatsapp,
        "whatsapp/reaction.json",
        "message.reaction"
    ),
    scenario!(
        "whatsapp.status",
        Whatsapp,
        "whatsapp/status_delivered.json",
        "message.status, delivered"
    ),
    scenario!(
        "whatsapp.status_failed",
        Whatsapp,
        "whatsapp/status_failed.json",
        "message.status, failed with its error"
    ),
    scenario!(
        "whatsapp.template_status",
        Whatsapp,
        "whatsapp/account/template_status_approved.json",
        "a template approved (account level: reaches the tenants owning a channel of that WABA)",
        "/entry/0/changes/0/value/message_template_id"
    ),
    scenario!(
        "instagram.text",
        Instagram,
        "instagram/text.json",
        "message.received, a direct message"
    ),
    scenario!(
        "instagram.image",
        Instagram,
        "instagram/attachment_image.json",
        "message.received, an image"
    ),
    scenario!(
        "instagram.story_reply",
        Instagram,
        "instagram/story_reply.json",
        "message.received, a reply to a story"
    ),
    scenario!(
        "instagram.story_mention",
        Instagram,
        "instagram/story_mention.json",
        "message.received, a story mention"
    ),
    scenario!(
        "instagram.reaction",
        Instagram,
        "instagram/reaction_react.json",
        "message.reaction"
    ),
    scenario!(
        "instagram.postback",
        Instagram,
        "instagram/postback_icebreaker.json",
        "postback, an ice breaker"
    ),
    scenario!(
        "instagram.seen",
        Instagram,
        "instagram/seen.json",
        "conversation.read"
    ),
    scenario!(
        "instagram.unsend",
        Instagram,
        "instagram/unsend_deleted.json",
        "message.deleted"
    ),
    scenario!(
        "instagram.echo",
        Instagram,
        "instagram/echo.json",
        "message.echo"
    ),
    scenario!(
        "instagram.comment",
        Instagram,
        "instagram/comments_change.json",
        "comment.received",
        "/entry/0/changes/0/value/id"
    ),
    scenario!(
        "messenger.text",
        Messenger,
        "messenger/text_quick_reply.json",
        "message.received, a quick reply"
    ),
    scenario!(
        "messenger.reply",
        Messenger,
        "messenger/text_reply_to.json",
        "message.received, quoting a message"
    ),
    scenario!(
        "messenger.image",
        Messenger,
        "messenger/attachment_image.json",
        "message.received, an image"
    ),
    scenario!(
        "messenger.postback",
        Messenger,
        "messenger/postback_get_started_referral.json",
        "postback, Get Started"
    ),
    scenario!(
        "messenger.reaction",
        Messenger,
        "messenger/reaction_react.json",
        "message.reaction"
    ),
    scenario!(
        "messenger.read",
        Messenger,
        "messenger/read.json",
        "conversation.read"
    ),
    scenario!(
        "messenger.delivery",
        Messenger,
        "messenger/delivery.json",
        "message.status, delivered"
    ),
    scenario!(
        "messenger.echo",
        Messenger,
        "messenger/echo_text.json",
        "message.echo"
    ),
    scenario!(
        "telegram.message",
        Telegram,
        "telegram/message_text.json",
        "message.received, a text"
    ),
    scenario!(
        "telegram.start",
        Telegram,
        "telegram/official_message_start.json",
        "message.received, /start"
    ),
    scenario!(
        "telegram.photo",
        Telegram,
        "telegram/message_photo_unicode_names.json",
        "message.received, a photo"
    ),
    scenario!(
        "telegram.document",
        Telegram,
        "telegram/official_message_document.json",
        "message.received, a document"
    ),
    scenario!(
        "telegram.voice",
        Telegram,
        "telegram/official_message_voice.json",
        "message.received, a voice note"
    ),
    scenario!(
        "telegram.edited",
        Telegram,
        "telegram/official_edited_message.json",
        "message.edited"
    ),
    scenario!(
        "telegram.callback",
        Telegram,
        "telegram/callback_query_with_message.json",
        "postback, an inline button pressed",
        "/callback_query/id"
    ),
    scenario!(
        "telegram.reaction",
        Telegram,
        "telegram/message_reaction.json",
        "message.reaction"
    ),
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// Names close to a mistyped one (same channel, or containing it), for the error.
pub fn suggestions(name: &str) -> Vec<&'static str> {
    let channel = name.split('.').next().unwrap_or(name);
    SCENARIOS
        .iter()
        .filter(|s| s.name.starts_with(&format!("{channel}.")) || s.name.contains(name))
        .map(|s| s.name)
        .collect()
}

/// The channel id a Meta payload is addressed to (WhatsApp: the phone number id; the
/// others: the entry id). `None` for Telegram (its bot id is in the URL) and for
/// WhatsApp account-level changes (addressed to the WABA).
pub fn channel_of(kind: ChannelKind, body: &Value) -> Option<String> {
    let entry = body.pointer("/entry/0")?;
    let id = match kind {
        ChannelKind::Whatsapp => entry.pointer("/changes/0/value/metadata/phone_number_id"),
        ChannelKind::Instagram | ChannelKind::Messenger => entry.get("id"),
        ChannelKind::Telegram => None,
    }?;
    id.as_str().map(str::to_owned)
}

/// The WABA a WhatsApp account-level payload is addressed to (the entry id of a change
/// without `metadata`); `None` for everything else.
pub fn waba_of(kind: ChannelKind, body: &Value) -> Option<String> {
    let entry = body.pointer("/entry/0")?;
    if kind != ChannelKind::Whatsapp || entry.pointer("/changes/0/value/metadata").is_some() {
        return None;
    }
    entry.get("id")?.as_str().map(str::to_owned)
}

impl Scenario {
    /// Whether it is a WhatsApp account-level change (addressed to a WABA).
    pub fn is_account_level(&self) -> bool {
        serde_json::from_str::<Value>(self.body)
            .ok()
            .is_some_and(|b| waba_of(self.kind, &b).is_some())
    }

    /// The payload, fresh, addressed to `channel` when given (for an account-level
    /// scenario, `channel` is the WABA id).
    pub fn render(&self, channel: Option<&str>, now_ms: i64) -> Value {
        let mut body: Value = serde_json::from_str(self.body).unwrap_or(Value::Null);
        let from = channel_of(self.kind, &body).or_else(|| waba_of(self.kind, &body));
        if let (Some(to), Some(from)) = (channel, from) {
            replace_string(&mut body, &from, to);
        }
        let mut rng = rand::rng();
        freshen(&mut body, None, now_ms, &mut rng);
        for pointer in self.fresh {
            if let Some(v) = body.pointer_mut(pointer) {
                *v = reshape(v, &mut rng);
            }
        }
        body
    }
}

/// Every string equal to `from` becomes `to` (the channel's id appears as the entry id,
/// the recipient, or the sender of an echo).
fn replace_string(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::String(s) if s == from => *s = to.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(|i| replace_string(i, from, to)),
        Value::Object(map) => map.values_mut().for_each(|i| replace_string(i, from, to)),
        _ => {}
    }
}

/// Keys whose value is a time: set to now, in the unit the fixture uses.
const TIME_KEYS: &[&str] = &["timestamp", "time", "date", "edit_date", "watermark"];
/// Keys whose value is a provider message or update id: replaced by a fresh one.
const ID_KEYS: &[&str] = &["mid", "message_id", "update_id"];

/// Makes a payload new: times become now, ids fresh ones of the same shape. `key` is the
/// key the value sits under (array items inherit it).
pub fn freshen(v: &mut Value, key: Option<&str>, now_ms: i64, rng: &mut impl Rng) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                freshen(child, Some(k), now_ms, rng);
            }
        }
        Value::Array(items) => {
            for item in items {
                freshen(item, key, now_ms, rng);
            }
        }
        leaf => {
            let Some(key) = key else { return };
            if TIME_KEYS.contains(&key) {
                *leaf = retime(leaf, now_ms);
            } else if ID_KEYS.contains(&key)
                || (key == "id" && leaf.as_str().is_some_and(|s| s.starts_with("wamid.")))
            {
                *leaf = reshape(leaf, rng);
            }
        }
    }
}

/// A Unix time of now, in seconds or milliseconds like the old one, as a number or a
/// string like the old one.
fn retime(old: &Value, now_ms: i64) -> Value {
    let in_unit = |old: i64| {
        if old > 100_000_000_000 {
            now_ms
        } else {
            now_ms / 1000
        }
    };
    match old {
        Value::Number(n) => n.as_i64().map_or(old.clone(), |o| Value::from(in_unit(o))),
        Value::String(s) => s
            .parse::<i64>()
            .map_or(old.clone(), |o| Value::String(in_unit(o).to_string())),
        _ => old.clone(),
    }
}

/// A random id shaped like `old`: a short prefix up to `.` or `_` is kept (`wamid.`,
/// `m_`, `mid.`), then each digit or letter is replaced by a random one of its class.
/// A number keeps its digit count and sign.
fn reshape(old: &Value, rng: &mut impl Rng) -> Value {
    match old {
        Value::String(s) => {
            let keep = s
                .char_indices()
                .take(7)
                .find(|(_, c)| *c == '.' || *c == '_')
                .map_or(0, |(i, _)| i + 1);
            let (prefix, rest) = s.split_at(keep);
            let mut out = String::with_capacity(s.len());
            out.push_str(prefix);
            out.extend(rest.chars().map(|c| match c {
                '0'..='9' => char::from(b'0' + rng.random_range(0..10u8)),
                'a'..='z' => char::from(b'a' + rng.random_range(0..26u8)),
                'A'..='Z' => char::from(b'A' + rng.random_range(0..26u8)),
                other => other,
            }));
            Value::String(out)
        }
        Value::Number(n) => match n.as_i64() {
            Some(o) => {
                let digits = o.unsigned_abs().max(1).ilog10();
                let low = 10i64.pow(digits);
                let fresh = rng.random_range(low..low.saturating_mul(10).max(low + 1));
                Value::from(if o < 0 { -fresh } else { fresh })
            }
            None => old.clone(),
        },
        _ => old.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_parses_and_names_are_unique() {
        let mut names = std::collections::HashSet::new();
        for s in SCENARIOS {
            let body: Value = serde_json::from_str(s.body)
                .unwrap_or_else(|e| panic!("{} ({}): {e}", s.name, s.fixture));
            assert!(names.insert(s.name), "{} twice", s.name);
            assert!(
                s.name.starts_with(&format!("{}.", s.kind.as_str())),
                "{}",
                s.name
            );
            for p in s.fresh {
                assert!(body.pointer(p).is_some(), "{}: no {p}", s.name);
            }
        }
    }

    #[test]
    fn an_account_level_render_is_addressed_to_the_waba() {
        let s = find("whatsapp.template_status").unwrap();
        assert!(s.is_account_level());
        assert!(!find("whatsapp.text").unwrap().is_account_level());
        let a = s.render(Some("4242"), 1_800_000_000_123);
        assert_eq!(a.pointer("/entry/0/id"), Some(&Value::from("4242")));
        assert_eq!(
            a.pointer("/entry/0/changes/0/field"),
            Some(&Value::from("message_template_status_update"))
        );
    }

    #[test]
    fn a_render_is_fresh_and_addressed_to_the_channel() {
        let s = find("whatsapp.text").unwrap();
        let original: Value = serde_json::from_str(s.body).unwrap();
        let now_ms = 1_800_000_000_123;
        let a = s.render(Some("555000111"), now_ms);
        let b = s.render(Some("555000111"), now_ms);
        let id = |v: &Value| v.pointer("/entry/0/changes/0/value/messages/0/id").cloned();
        assert_ne!(id(&a), id(&original));
        assert_ne!(id(&a), id(&b));
        assert!(id(&a).unwrap().as_str().unwrap().starts_with("wamid."));
        assert_eq!(
            a.pointer("/entry/0/changes/0/value/metadata/phone_number_id"),
            Some(&Value::from("555000111"))
        );
        assert_eq!(
            a.pointer("/entry/0/changes/0/value/messages/0/timestamp"),
            Some(&Value::from("1800000000"))
        );
        // The text is the fixture's.
        assert_eq!(
            a.pointer("/entry/0/changes/0/value/messages/0/text"),
            original.pointer("/entry/0/changes/0/value/messages/0/text")
        );
    }

    #[test]
    fn millisecond_times_and_numeric_ids_keep_their_shape() {
        let now_ms = 1_800_000_000_123;
        let ig = find("instagram.comment")
            .unwrap()
            .render(Some("42"), now_ms);
        assert_eq!(ig.pointer("/entry/0/time"), Some(&Value::from(now_ms)));
        assert_eq!(ig.pointer("/entry/0/id"), Some(&Value::from("42")));
        let comment = ig
            .pointer("/entry/0/changes/0/value/id")
            .unwrap()
            .as_str()
            .unwrap();
        assert_eq!(comment.len(), "17865799348089039".len());
        assert_ne!(comment, "17865799348089039");
        let tg = find("telegram.reaction").unwrap().render(None, now_ms);
        let chat = tg
            .pointer("/message_reaction/chat/id")
            .unwrap()
            .as_i64()
            .unwrap();
        assert_eq!(chat, -1002184233434, "a chat id is not a message id");
        assert_eq!(
            tg.pointer("/message_reaction/date"),
            Some(&Value::from(now_ms / 1000))
        );
    }

    #[test]
    fn unknown_names_get_suggestions() {
        assert!(find("whatsapp.txt").is_none());
        assert!(suggestions("whatsapp.txt").contains(&"whatsapp.text"));
    }
}
