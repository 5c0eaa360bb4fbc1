//! Which channel: [`ChannelKind`] (the four channels) and [`ChannelRef`] (one connected
//! account). The identity every layer shares — config, events, the store, the vault,
//! the adapters — so it sits at the bottom and imports nothing of the crate.
//! [`crate::channels`] (the adapters) re-exports it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub mod fields;

/// The `graph` value of channels connected with Instagram Login.
pub const GRAPH_INSTAGRAM: &str = "instagram";

/// The four channels Switchboard speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Whatsapp,
    Instagram,
    Messenger,
    Telegram,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 4] = [
        ChannelKind::Whatsapp,
        ChannelKind::Instagram,
        ChannelKind::Messenger,
        ChannelKind::Telegram,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Whatsapp => "whatsapp",
            ChannelKind::Instagram => "instagram",
            ChannelKind::Messenger => "messenger",
            ChannelKind::Telegram => "telegram",
        }
    }

    /// Whether the Graph API (Meta) serves this channel.
    pub fn is_meta(self) -> bool {
        !matches!(self, ChannelKind::Telegram)
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel kind that is not one of the four.
#[derive(Debug, thiserror::Error)]
#[error("unknown channel kind `{0}` (expected whatsapp, instagram, messenger or telegram)")]
pub struct UnknownChannelKind(pub String);

impl FromStr for ChannelKind {
    type Err = UnknownChannelKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "whatsapp" => Ok(ChannelKind::Whatsapp),
            "instagram" => Ok(ChannelKind::Instagram),
            "messenger" => Ok(ChannelKind::Messenger),
            "telegram" => Ok(ChannelKind::Telegram),
            other => Err(UnknownChannelKind(other.to_owned())),
        }
    }
}

/// A channel id that is not one for its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .kind.id_rule())]
pub struct InvalidChannelId {
    pub kind: ChannelKind,
}

/// The longest channel id accepted (Graph ids are at most 20 digits today).
pub const MAX_ID_LEN: usize = 32;

impl ChannelKind {
    /// What an id of this kind looks like, for error messages.
    pub fn id_rule(self) -> &'static str {
        match self {
            ChannelKind::Telegram => {
                "a Telegram channel id is the bot's numeric id (digits, optionally a leading '-')"
            }
            _ => "a WhatsApp, Messenger or Instagram channel id is a Graph id (1 to 32 digits)",
        }
    }

    /// Whether `id` is an id of this kind: Graph ids (WhatsApp phone number ids, Pages,
    /// Instagram accounts) are ASCII digits; Telegram ids are digits with an optional
    /// leading `-`.
    fn accepts(self, id: &str) -> bool {
        let digits = match self {
            ChannelKind::Telegram => id.strip_prefix('-').unwrap_or(id),
            _ => id,
        };
        !digits.is_empty()
            && digits.len() <= MAX_ID_LEN
            && digits.bytes().all(|b| b.is_ascii_digit())
    }
}

/// One connected account: `{"kind": "whatsapp", "id": "106540352242922"}`. Only
/// [`ChannelRef::parse`] makes one (deserializing too), so its id is always one of
/// its kind: safe in a store key, a log line or a URL path segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawChannelRef")]
pub struct ChannelRef {
    kind: ChannelKind,
    id: String,
}

#[derive(Deserialize)]
struct RawChannelRef {
    kind: ChannelKind,
    id: String,
}

impl TryFrom<RawChannelRef> for ChannelRef {
    type Error = InvalidChannelId;
    fn try_from(raw: RawChannelRef) -> Result<Self, Self::Error> {
        ChannelRef::parse(raw.kind, raw.id)
    }
}

impl ChannelRef {
    /// `id` as a channel of `kind`, if it is one (see [`ChannelKind::id_rule`]).
    pub fn parse(kind: ChannelKind, id: impl Into<String>) -> Result<Self, InvalidChannelId> {
        let id = id.into();
        if kind.accepts(&id) {
            Ok(Self { kind, id })
        } else {
            Err(InvalidChannelId { kind })
        }
    }

    pub fn kind(&self) -> ChannelKind {
        self.kind
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_parsed_per_kind() {
        for kind in [
            ChannelKind::Whatsapp,
            ChannelKind::Messenger,
            ChannelKind::Instagram,
        ] {
            assert!(ChannelRef::parse(kind, "106540352242922").is_ok());
            for bad in ["", "..", "abc", "-1", "1/2", "1 ", "1.5", &"1".repeat(33)] {
                assert_eq!(
                    ChannelRef::parse(kind, bad),
                    Err(InvalidChannelId { kind }),
                    "{bad:?}"
                );
            }
        }
        let tg = ChannelKind::Telegram;
        assert_eq!(
            ChannelRef::parse(tg, "-1001234567890").unwrap().id(),
            "-1001234567890"
        );
        assert!(ChannelRef::parse(tg, "5000000001").is_ok());
        for bad in ["-", "--1", "1-", "bot1", ".."] {
            assert!(ChannelRef::parse(tg, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deserializing_parses() {
        let ok: ChannelRef = serde_json::from_str(r#"{"kind":"whatsapp","id":"1"}"#).unwrap();
        assert_eq!((ok.kind(), ok.id()), (ChannelKind::Whatsapp, "1"));
        let err = serde_json::from_str::<ChannelRef>(r#"{"kind":"whatsapp","id":".."}"#);
        assert!(err.unwrap_err().to_string().contains("digits"));
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"kind":"whatsapp","id":"1"}"#
        );
    }
}
