//! The rules for a channel record's optional fields (v2: `waba_id`, `graph`,
//! `expires_at`, `pin`), shared by the admin API, the CLI and `[[channels]]` in the
//! config, so each names the same field with the same message.

use crate::channel::ChannelKind;

use super::GRAPH_INSTAGRAM;

/// A field that breaks its rule. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: &'static str,
}

fn err(field: &'static str, message: &'static str) -> FieldError {
    FieldError { field, message }
}

/// Checks `waba_id`, `graph` and `expires_at` of a channel of `kind`.
pub fn check_optional(
    kind: ChannelKind,
    waba_id: Option<&str>,
    graph: Option<&str>,
    expires_at: Option<&str>,
) -> Result<(), FieldError> {
    if let Some(w) = waba_id {
        if kind != ChannelKind::Whatsapp {
            return Err(err("waba_id", "only a whatsapp channel has a WABA"));
        }
        if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) || w.len() > 64 {
            return Err(err("waba_id", "a WABA id is 1 to 64 digits"));
        }
    }
    if let Some(g) = graph {
        if g != GRAPH_INSTAGRAM {
            return Err(err(
                "graph",
                "the only value is \"instagram\" (Instagram Login); leave it out for the Facebook Graph API",
            ));
        }
        if kind != ChannelKind::Instagram {
            return Err(err(
                "graph",
                "only an instagram channel uses the Instagram Graph API",
            ));
        }
    }
    if let Some(e) = expires_at {
        if parse_rfc3339(e).is_none() {
            return Err(err(
                "expires_at",
                "must be an RFC 3339 UTC time, e.g. 2026-12-31T23:59:59Z",
            ));
        }
    }
    Ok(())
}

/// Checks a plaintext WhatsApp two-step PIN: 6 digits, whatsapp only.
pub fn check_pin(kind: ChannelKind, pin: &str) -> Result<(), FieldError> {
    if kind != ChannelKind::Whatsapp {
        return Err(err("pin", "only a whatsapp channel has a two-step PIN"));
    }
    if pin.len() != 6 || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("pin", "a WhatsApp two-step PIN is 6 digits"));
    }
    Ok(())
}

/// Parses an RFC 3339 UTC time as the record holds it (`Z` or `+00:00`).
pub fn parse_rfc3339(s: &str) -> Option<std::time::SystemTime> {
    humantime::parse_rfc3339(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_follow_their_kind() {
        let w = ChannelKind::Whatsapp;
        let i = ChannelKind::Instagram;
        assert!(check_optional(w, Some("102290129340398"), None, None).is_ok());
        assert_eq!(
            check_optional(i, Some("1"), None, None).unwrap_err().field,
            "waba_id"
        );
        assert_eq!(
            check_optional(w, Some("12a"), None, None)
                .unwrap_err()
                .field,
            "waba_id"
        );
        assert!(check_optional(i, None, Some("instagram"), None).is_ok());
        assert_eq!(
            check_optional(w, None, Some("instagram"), None)
                .unwrap_err()
                .field,
            "graph"
        );
        assert_eq!(
            check_optional(i, None, Some("facebook"), None)
                .unwrap_err()
                .field,
            "graph"
        );
        assert!(check_optional(i, None, None, Some("2026-12-31T23:59:59Z")).is_ok());
        assert!(check_optional(i, None, None, Some("2026-12-31T23:59:59+00:00")).is_ok());
        assert_eq!(
            check_optional(i, None, None, Some("tomorrow"))
                .unwrap_err()
                .field,
            "expires_at"
        );
    }

    #[test]
    fn pin_is_six_digits_on_whatsapp() {
        assert!(check_pin(ChannelKind::Whatsapp, "123456").is_ok());
        assert!(check_pin(ChannelKind::Whatsapp, "12345").is_err());
        assert!(check_pin(ChannelKind::Whatsapp, "12345a").is_err());
        assert!(check_pin(ChannelKind::Telegram, "123456").is_err());
    }
}
