//! The Redis buffer's purges (data deletion, unsend) in bounded steps: each script call
//! looks at [`PURGE_STEP`] members of a shard's `delayed` zset (ZSCAN) or entries of
//! its stream (XRANGE from the last id seen), then hands back a cursor, so no call
//! holds Redis for long however large the backlog; a removed head's parked events go
//! the same way, a step of them per call. Steps of one purge are separate
//! calls: an entry may move between the zset and the stream (promoted, or put back
//! after an attempt) while a purge runs, so a channel purge walks each shard until one
//! whole pass removes nothing (at least twice), and an event purge searches twice
//! before it gives up.

use super::redis::RedisBuffer;
use super::{BufferError, GROUP};

/// Members or entries one purge step looks at.
pub(super) const PURGE_STEP: usize = 500;

/// Whole passes over a shard at most, for a channel purge.
const MAX_PASSES: usize = 4;

/// The first step of a walk: ZSCAN of `delayed` from cursor 0.
const START: (&str, &str) = ("z", "0");

impl RedisBuffer {
    /// One pass over `shard`: every step of the walk; how many events it removed.
    async fn purge_channel_pass(
        &self,
        shard: u16,
        channel: &str,
        keep: &str,
    ) -> Result<usize, BufferError> {
        let k = self.keys();
        let stream = k.retry_stream(shard);
        let delayed = k.retry_delayed(shard);
        let prefix = stream.strip_suffix("stream").unwrap_or_default().to_owned();
        let step = self.purge_step.to_string();
        let (mut phase, mut cursor) = (START.0.to_owned(), START.1.to_owned());
        let mut removed = 0;
        let mut conn = self.store.conn().await?;
        // Conversations whose head went but some parked events are left.
        let mut left: Vec<String> = Vec::new();
        loop {
            let (n, next_phase, next_cursor, more): (i64, String, String, Vec<String>) = conn
                .eval(
                    &self.scripts.purge,
                    &[&stream, &delayed],
                    &[GROUP, channel, &prefix, keep, &phase, &cursor, &step],
                )
                .await?;
            removed += n.max(0) as usize;
            left.extend(more);
            if next_phase.is_empty() {
                match left.pop() {
                    Some(conv) => (phase, cursor) = ("q".to_owned(), conv),
                    None => return Ok(removed),
                }
            } else {
                (phase, cursor) = (next_phase, next_cursor);
            }
        }
    }

    /// Removes `channel`'s entries (but those in `keep`) from every shard.
    pub(super) async fn purge_channel_in_steps(
        &self,
        channel: &str,
        keep: &[String],
    ) -> Result<usize, BufferError> {
        let keep = keep.join(",");
        let mut removed = 0;
        for shard in 0..self.shards {
            for pass in 0..MAX_PASSES {
                let n = self.purge_channel_pass(shard, channel, &keep).await?;
                removed += n;
                if n == 0 && pass > 0 {
                    break;
                }
            }
        }
        Ok(removed)
    }

    /// Removes one event from `shard` (`ttl_ms`: the keys' TTL, for a handed-over head).
    pub(super) async fn purge_event_in_steps(
        &self,
        shard: u16,
        event_id: &str,
        conv: &str,
        ttl_ms: &str,
    ) -> Result<bool, BufferError> {
        let k = self.keys();
        let stream = k.retry_stream(shard);
        let delayed = k.retry_delayed(shard);
        let prefix = stream.strip_suffix("stream").unwrap_or_default().to_owned();
        let step = self.purge_step.to_string();
        let mut conn = self.store.conn().await?;
        for _search in 0..2 {
            let (mut phase, mut cursor) = (START.0.to_owned(), START.1.to_owned());
            loop {
                let now = crate::time::now_ms().to_string();
                let (found, next_phase, next_cursor): (i64, String, String) = conn
                    .eval(
                        &self.scripts.purge_one,
                        &[&stream, &delayed],
                        &[
                            GROUP, event_id, &prefix, conv, ttl_ms, &now, &phase, &cursor, &step,
                        ],
                    )
                    .await?;
                match found {
                    1 => return Ok(true),
                    // No pending marker: not buffered, nothing to search.
                    -1 => return Ok(false),
                    _ => {}
                }
                if next_phase.is_empty() {
                    break;
                }
                (phase, cursor) = (next_phase, next_cursor);
            }
        }
        Ok(false)
    }
}
