//! The Meta webhook envelope `{object, entry[]}`: reads the `object` and hands every
//! entry to its product's adapter (WhatsApp, Instagram, Messenger). The helpers those
//! adapters share are in [`super::meta`].

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{instagram, messenger, whatsapp, NormalizeContext, NormalizeError, Verified};
use crate::event::Event;

/// The `object` values Meta sends, one per product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaObject {
    WhatsappBusinessAccount,
    Instagram,
    Page,
}

impl MetaObject {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "whatsapp_business_account" => Some(Self::WhatsappBusinessAccount),
            "instagram" => Some(Self::Instagram),
            "page" => Some(Self::Page),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WhatsappBusinessAccount => "whatsapp_business_account",
            Self::Instagram => "instagram",
            Self::Page => "page",
        }
    }
}

/// The envelope only: entries are kept raw and parsed by the product's adapter.
#[derive(Deserialize)]
struct MetaWebhook<'a> {
    object: String,
    #[serde(default, borrow)]
    entry: Vec<&'a RawValue>,
}

/// A Meta webhook whose `object` this relay does not serve.
#[derive(Debug, thiserror::Error)]
#[error("unknown webhook object `{0}`")]
pub struct UnknownObject(pub String);

/// Parses a verified Meta webhook and normalizes every entry with its product's adapter.
/// Returns the product and the events, one per message, status or change.
pub fn normalize(
    verified: &Verified<'_>,
    ctx: &NormalizeContext<'_>,
) -> Result<(MetaObject, Vec<Event>), MetaNormalizeError> {
    let hook: MetaWebhook<'_> = serde_json::from_slice(verified.body())
        .map_err(|e| MetaNormalizeError::Invalid(NormalizeError::Json(e)))?;
    let object = MetaObject::parse(&hook.object).ok_or(MetaNormalizeError::UnknownObject(
        // Named back only when it looks like an object name: the field is the sender's,
        // and anything else (text, say) is neither echoed nor logged.
        UnknownObject(
            if !hook.object.is_empty()
                && hook.object.len() <= 64
                && hook
                    .object
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            {
                hook.object.to_string()
            } else {
                "(not an object name)".to_owned()
            },
        ),
    ))?;
    let mut events = Vec::with_capacity(hook.entry.len());
    for entry in hook.entry {
        match object {
            MetaObject::WhatsappBusinessAccount => {
                whatsapp::inbound::normalize_entry(entry, ctx, &mut events)
            }
            MetaObject::Instagram => instagram::inbound::normalize_entry(entry, ctx, &mut events),
            MetaObject::Page => messenger::inbound::normalize_entry(entry, ctx, &mut events),
        }
        .map_err(MetaNormalizeError::Invalid)?;
    }
    Ok((object, events))
}

#[derive(Debug, thiserror::Error)]
pub enum MetaNormalizeError {
    #[error(transparent)]
    UnknownObject(UnknownObject),
    #[error(transparent)]
    Invalid(NormalizeError),
}
