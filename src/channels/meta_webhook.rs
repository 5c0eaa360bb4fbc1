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

/// The envelope, read in one pass with its entries where it can be: once `object` has
/// said WhatsApp (Meta writes it first), the entries are read straight into WhatsApp's
/// own shape; otherwise (another product, or `entry` before `object`) they are kept raw
/// and read by the product's adapter afterwards.
struct MetaWebhook<'a> {
    object: String,
    entry: Entries<'a>,
}

enum Entries<'a> {
    Raw(Vec<&'a RawValue>),
    Whatsapp(Vec<whatsapp::wire::Entry<'a>>),
}

impl<'de> Deserialize<'de> for MetaWebhook<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = MetaWebhook<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a Meta webhook object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut object: Option<String> = None;
                let mut entry = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "object" => object = Some(map.next_value()?),
                        "entry" => {
                            entry =
                                Some(if object.as_deref() == Some("whatsapp_business_account") {
                                    Entries::Whatsapp(
                                        map.next_value::<Option<_>>()?.unwrap_or_default(),
                                    )
                                } else {
                                    Entries::Raw(map.next_value::<Option<_>>()?.unwrap_or_default())
                                })
                        }
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(MetaWebhook {
                    object: object.ok_or_else(|| serde::de::Error::missing_field("object"))?,
                    entry: entry.unwrap_or(Entries::Raw(Vec::new())),
                })
            }
        }
        d.deserialize_map(Visit)
    }
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
    let entries = match hook.entry {
        Entries::Whatsapp(entries) => {
            let mut events = Vec::with_capacity(entries.len());
            for entry in &entries {
                whatsapp::inbound::normalize_parsed_entry(entry, ctx, &mut events);
            }
            return Ok((object, events));
        }
        Entries::Raw(entries) => entries,
    };
    let mut events = Vec::with_capacity(entries.len());
    for entry in entries {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn events(body: &[u8]) -> Vec<Vec<u8>> {
        let ctx = NormalizeContext {
            public_url: "https://relay.example.com",
        };
        let verified = Verified::assume_verified_for_tests(body);
        let (object, events) = normalize(&verified, &ctx).unwrap();
        assert_eq!(object, MetaObject::WhatsappBusinessAccount);
        events
            .iter()
            .map(|e| {
                // The raw object is the webhook's own bytes: compared by value, the rest
                // byte for byte.
                let raw = e
                    .raw
                    .as_ref()
                    .map(|r| serde_json::from_str::<serde_json::Value>(r.get()).unwrap());
                let mut body = e.to_body("acme", false);
                body.extend_from_slice(serde_json::to_string(&raw).unwrap().as_bytes());
                body
            })
            .collect()
    }

    /// Meta writes `object` first, so WhatsApp's entries are read in the envelope's own
    /// pass; with `entry` first they are kept raw and read after. Both give the same
    /// events.
    #[test]
    fn whatsapp_entries_read_in_one_pass_or_after_give_the_same_events() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/whatsapp");
        for name in ["text.json", "status_read.json", "contacts_unicode.json"] {
            let body = std::fs::read(format!("{dir}/{name}")).unwrap();
            assert!(body.starts_with(b"{\n  \"object\"") || body.starts_with(b"{\"object\""));
            // Through a Value the keys come out sorted: `entry` before `object`.
            let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let entry_first = serde_json::to_vec(&value).unwrap();
            assert!(entry_first.starts_with(b"{\"entry\""));
            let (one_pass, after) = (events(&body), events(&entry_first));
            assert!(!one_pass.is_empty(), "{name}");
            assert_eq!(one_pass, after, "{name}");
        }
    }

    #[test]
    fn an_envelope_without_object_or_with_a_malformed_entry_is_refused() {
        let ctx = NormalizeContext {
            public_url: "https://relay.example.com",
        };
        for body in [
            &br#"{"entry":[]}"#[..],
            br#"{"object":"whatsapp_business_account","entry":[5]}"#,
            br#"{"object":"whatsapp_business_account","entry":{}}"#,
            br#"[]"#,
        ] {
            let verified = Verified::assume_verified_for_tests(body);
            assert!(
                matches!(
                    normalize(&verified, &ctx),
                    Err(MetaNormalizeError::Invalid(_))
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let verified = Verified::assume_verified_for_tests(
            br#"{"object":"whatsapp_business_account","entry":null}"#,
        );
        assert!(normalize(&verified, &ctx).unwrap().1.is_empty());
    }
}
