//! Time, the one place: the relay counts in Unix milliseconds (`i64`, as events and
//! buffer entries carry them) and writes times as RFC 3339 UTC. Provider timestamps
//! (seconds, or milliseconds) are turned into milliseconds here too.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Now, in Unix seconds.
pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Now as RFC 3339 UTC to the second (`updated_at`, deletion status times).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Unix milliseconds as RFC 3339 UTC (`2026-11-22T10:00:00Z`, with `.123` when there
/// are milliseconds).
pub fn format_rfc3339(ms: i64) -> String {
    let ms = ms.max(0) as u64;
    let t = UNIX_EPOCH + Duration::from_millis(ms);
    if ms.is_multiple_of(1000) {
        humantime::format_rfc3339_seconds(t).to_string()
    } else {
        humantime::format_rfc3339_millis(t).to_string()
    }
}

/// Unix seconds in milliseconds, saturating.
pub fn seconds_to_ms(s: i64) -> i64 {
    s.saturating_mul(1000)
}

/// A provider's Unix seconds in milliseconds; a missing (zero or negative) one is now.
pub fn seconds_to_ms_or_now(s: i64) -> i64 {
    if s > 0 {
        seconds_to_ms(s)
    } else {
        now_ms()
    }
}

/// A timestamp that may be seconds or milliseconds (Meta: WhatsApp gives Unix seconds
/// as a string, Messenger and Instagram Unix milliseconds as a number). Values below
/// 10^11 are taken as seconds.
pub fn seconds_or_ms_to_ms(ts: i64) -> i64 {
    if ts < 100_000_000_000 {
        seconds_to_ms(ts)
    } else {
        ts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millisecond_timestamps_keep_their_millis() {
        assert_eq!(
            format_rfc3339(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(format_rfc3339(1_700_000_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn seconds_and_milliseconds_are_told_apart() {
        assert_eq!(seconds_or_ms_to_ms(1_700_000_000), 1_700_000_000_000);
        assert_eq!(seconds_or_ms_to_ms(1_700_000_000_123), 1_700_000_000_123);
        assert_eq!(seconds_to_ms_or_now(5), 5_000);
        assert!(seconds_to_ms_or_now(0) > 1_600_000_000_000);
    }
}
