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

/// One connected account: `{"kind": "whatsapp", "id": "106540352242922"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChannelRef {
    pub kind: ChannelKind,
    pub id: String,
}

impl ChannelRef {
    pub fn new(kind: ChannelKind, id: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
        }
    }

    /// Whether `id` is a syntactically acceptable channel id (digits for every channel
    /// today; kept loose: no whitespace, no ':' or '/').
    pub fn valid_id(id: &str) -> bool {
        !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    }
}

impl fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.id)
    }
}
