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

/// The last instant RFC 3339 can write (9999-12-31T23:59:59.999Z), in Unix milliseconds.
pub const MAX_RENDERABLE_MS: i64 = 253_402_300_799_999;

/// A provider time in Unix milliseconds, or now when RFC 3339 cannot write it (before
/// 1970, after 9999): such a timestamp becomes the time of receipt, never an error.
pub fn renderable_or_now(ms: i64) -> i64 {
    if (0..=MAX_RENDERABLE_MS).contains(&ms) {
        ms
    } else {
        now_ms()
    }
}

/// Unix milliseconds as RFC 3339 UTC (`2026-11-22T10:00:00Z`, with `.123` when there
/// are milliseconds). Never fails: a time RFC 3339 cannot write is rendered as now.
pub fn format_rfc3339(ms: i64) -> String {
    let ms = renderable_or_now(ms) as u64;
    let t = UNIX_EPOCH + Duration::from_millis(ms);
    if ms.is_multiple_of(1000) {
        humantime::format_rfc3339_seconds(t).to_string()
    } else {
        humantime::format_rfc3339_millis(t).to_string()
    }
}

/// A provider's Unix seconds in milliseconds; one RFC 3339 cannot write is now.
pub fn seconds_to_ms(s: i64) -> i64 {
    renderable_or_now(s.saturating_mul(1000))
}

/// A provider's Unix seconds in milliseconds; a missing (zero or negative) one, or one
/// RFC 3339 cannot write, is now.
pub fn seconds_to_ms_or_now(s: i64) -> i64 {
    if s > 0 {
        seconds_to_ms(s)
    } else {
        now_ms()
    }
}

/// A timestamp that may be seconds or milliseconds (Meta: WhatsApp gives Unix seconds
/// as a string, Messenger and Instagram Unix milliseconds as a number). Values below
/// 10^11 are taken as seconds. One RFC 3339 cannot write is now.
pub fn seconds_or_ms_to_ms(ts: i64) -> i64 {
    if ts < 100_000_000_000 {
        seconds_to_ms(ts)
    } else {
        renderable_or_now(ts)
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

    #[test]
    fn unrenderable_timestamps_become_now_and_never_panic() {
        let before = now_ms();
        for ms in [i64::MIN, -1, MAX_RENDERABLE_MS + 1, i64::MAX] {
            let t = renderable_or_now(ms);
            assert!(t >= before && t <= now_ms() + 1000, "{ms} -> {t}");
            let _ = format_rfc3339(ms);
        }
        // WhatsApp's far-future "300000000000000" and Telegram's `date: 300000000000`.
        assert!(seconds_or_ms_to_ms(300_000_000_000_000) >= before);
        assert!(seconds_to_ms_or_now(300_000_000_000) >= before);
        assert!(seconds_to_ms(i64::MAX) >= before);
        assert_eq!(
            format_rfc3339(MAX_RENDERABLE_MS),
            "9999-12-31T23:59:59.999Z"
        );
    }
}
