//! What one buffered event holds: the ciphertext (`payload`: a Fernet token, under the
//! vault's primary key, of the rendered CRM body plus the routing metadata: event id,
//! type, tenant, channel) and, in the clear, only ids: `id` (event id), `tenant`,
//! `channel` (kind:id of the business account), `conv` (a keyed hash of the
//! conversation, never a phone number), `attempts`, `due` and `first` (Unix ms).

use serde::{Deserialize, Serialize};

use super::BufferError;
use crate::vault::Keyring;

/// One buffered event: ids in the clear, the rest in `payload` (Fernet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub tenant: String,
    pub channel: String,
    /// Keyed hash of the conversation; empty when the event has none.
    pub conv: String,
    #[serde(with = "as_string")]
    pub attempts: u32,
    #[serde(with = "as_string")]
    pub due: i64,
    #[serde(with = "as_string")]
    pub first: i64,
    pub payload: String,
}

/// Numbers as strings, so Lua's `cjson` never rounds or reformats them.
mod as_string {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<T: std::fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    pub fn deserialize<'de, T: std::str::FromStr, D: Deserializer<'de>>(
        d: D,
    ) -> Result<T, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| serde::de::Error::custom("not a number"))
    }
}

/// What the ciphertext holds.
#[derive(Serialize, Deserialize)]
pub struct Sealed {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub tenant: String,
    pub channel: String,
    /// The rendered CRM body: the exact bytes every attempt sends and signs.
    pub body: String,
}

impl Entry {
    pub(super) fn to_json(&self) -> String {
        // Plain strings into a Vec cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    #[cfg(test)]
    pub(super) fn from_json(s: &str) -> Result<Self, BufferError> {
        serde_json::from_str(s).map_err(|e| BufferError::Malformed(e.to_string()))
    }

    /// Encrypts the body and routing metadata under the primary vault key.
    pub fn seal(keyring: &Keyring, sealed: &Sealed) -> String {
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(sealed).unwrap_or_default());
        keyring.encrypt(&plain)
    }

    /// Decrypts the payload (any configured vault key) and checks it belongs to this
    /// entry's ids.
    pub fn open(&self, keyring: &Keyring) -> Result<Sealed, BufferError> {
        let plain = keyring
            .decrypt(&self.payload)
            .map_err(|e| BufferError::Malformed(e.to_string()))?;
        let sealed: Sealed =
            serde_json::from_slice(&plain).map_err(|e| BufferError::Malformed(e.to_string()))?;
        if sealed.id != self.id || sealed.tenant != self.tenant {
            return Err(BufferError::Malformed(
                "the ciphertext belongs to another entry".into(),
            ));
        }
        Ok(sealed)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An entry for tests, of tenant `acme` on `whatsapp:1`.
    pub(crate) fn entry(id: &str, conv: &str, due: i64) -> Entry {
        Entry {
            id: id.into(),
            tenant: "acme".into(),
            channel: "whatsapp:1".into(),
            conv: conv.into(),
            attempts: 1,
            due,
            first: due,
            payload: "gAAAAA".into(),
        }
    }

    #[test]
    fn entry_json_round_trips_with_numbers_as_strings() {
        let e = entry("evt_1", "c", 1_763_400_000_123);
        let j = e.to_json();
        assert!(j.contains("\"due\":\"1763400000123\""), "{j}");
        assert_eq!(Entry::from_json(&j).unwrap(), e);
    }

    #[test]
    fn sealed_payload_opens_only_for_its_entry() {
        let ring = Keyring::new(&[secrecy::SecretString::from(Keyring::generate_key())]).unwrap();
        let sealed = Sealed {
            id: "evt_1".into(),
            event_type: "message.received".into(),
            tenant: "acme".into(),
            channel: "whatsapp:1".into(),
            body: "{\"text\":\"hello\"}".into(),
        };
        let mut e = entry("evt_1", "c", 0);
        e.payload = Entry::seal(&ring, &sealed);
        assert!(!e.payload.contains("hello"));
        assert_eq!(e.open(&ring).unwrap().body, sealed.body);
        e.id = "evt_2".into();
        assert!(e.open(&ring).is_err());
    }
}
