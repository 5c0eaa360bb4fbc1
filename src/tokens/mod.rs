//! Token health (contract "Token health"): every stored channel's token checked at its
//! provider ([`probe`]), an Instagram Login token refreshed before it expires, and what
//! is invalid told to the tenant as `channel.reauth_required` through the usual path
//! ([`crate::replies::send_reauth`]: at most once an hour per channel, across replicas).
//!
//! - **Paged.** [`TokenHealth::check_all`] walks the channels with SCAN, one page of
//!   `tokens.page_size` keys at a time ([`crate::store::StoreBackend::scan_channels`]),
//!   checking a page's channels (`tokens.concurrency` at once) before reading the next:
//!   it never holds more than a page, whatever the number of channels (never `KEYS`).
//! - **One replica per channel.** Before checking a channel a replica takes its lock
//!   (`{prefix}tokens:lock:{kind}:{id}`, `SET NX PX tokens.lock_ttl_s`), and frees it
//!   after; a channel another replica is checking is skipped (counted in `skipped`).
//! - **Periodic.** [`worker`] runs on every replica; each wakes every
//!   `min(tokens.check_interval_s, 600)` seconds and starts a round only if it can take
//!   the round marker (`{prefix}tokens:round`, TTL `tokens.check_interval_s`), so a round
//!   runs once per interval in the whole deployment, however many replicas (re)start.
//!   `POST /admin/v1/tokens/check` and `switchboard tokens check` run one now.

pub mod probe;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::channels::ChannelRef;
use crate::delivery::Dispatcher;
use crate::live::Live;
use crate::replies::{send_reauth, ReauthNotice};
use crate::store::{ScanCursor, Store, StoreBackend, StoreError};

pub use probe::{Clients, Verdict, WEBHOOK_REPLACED};

/// What a round did (the answer of `POST /admin/v1/tokens/check`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Channels this replica checked.
    pub checked: u64,
    /// Instagram Login tokens refreshed (new token and `expires_at` stored).
    pub refreshed: u64,
    /// Channels found invalid (`channel.reauth_required`, at most once an hour each).
    pub invalid: u64,
    /// Channels another replica was checking at the same time.
    pub skipped: u64,
    /// Channels that could not be checked (provider unreachable, nothing to ask with).
    pub unchecked: u64,
    /// SCAN pages read.
    pub pages: u64,
    /// The most channels one page held: all the round keeps in memory at once (at most
    /// about `tokens.page_size`, whatever the number of channels).
    pub largest_page: u64,
}

/// Everything a check needs; cheap to clone.
#[derive(Clone)]
pub struct TokenHealth {
    pub store: Store,
    pub dispatcher: Dispatcher,
    pub clients: Clients,
}

/// One channel's outcome, for the tally.
enum Outcome {
    Done(Verdict),
    Skipped,
    Gone,
}

impl TokenHealth {
    /// Checks every stored channel once (paged, each under its lock).
    pub async fn check_all(&self, live: &Arc<Live>) -> Result<CheckReport, StoreError> {
        let settings = &live.settings.tokens;
        let page_size = settings.page_size.max(1);
        let concurrency = settings.concurrency.max(1);
        let mut report = CheckReport::default();
        let mut cursor = ScanCursor::default();
        loop {
            let (page, next) = self.store.scan_channels(&cursor, page_size).await?;
            report.pages += 1;
            report.largest_page = report.largest_page.max(page.len() as u64);
            let outcomes: Vec<Result<Outcome, StoreError>> = stream::iter(page)
                .map(|channel| self.check_one(live, channel))
                .buffer_unordered(concurrency)
                .collect()
                .await;
            for outcome in outcomes {
                match outcome? {
                    Outcome::Done(v) => {
                        report.checked += 1;
                        match v {
                            Verdict::Healthy => {}
                            Verdict::Refreshed => report.refreshed += 1,
                            Verdict::Invalid(_) => report.invalid += 1,
                            Verdict::Unchecked(_) => report.unchecked += 1,
                        }
                    }
                    Outcome::Skipped => report.skipped += 1,
                    Outcome::Gone => {}
                }
            }
            match next {
                Some(n) => cursor = n,
                None => break,
            }
        }
        metrics::counter!("switchboard_token_checks_total").increment(report.checked);
        metrics::counter!("switchboard_tokens_refreshed_total").increment(report.refreshed);
        metrics::counter!("switchboard_tokens_invalid_total").increment(report.invalid);
        tracing::info!(
            checked = report.checked,
            refreshed = report.refreshed,
            invalid = report.invalid,
            skipped = report.skipped,
            unchecked = report.unchecked,
            pages = report.pages,
            largest_page = report.largest_page,
            stage = "processing",
            "Token health check done."
        );
        Ok(report)
    }

    /// Checks one channel under its lock.
    async fn check_one(
        &self,
        live: &Arc<Live>,
        channel: ChannelRef,
    ) -> Result<Outcome, StoreError> {
        let lock = self.store.keys().tokens_lock(&channel);
        let ttl = Duration::from_secs(live.settings.tokens.lock_ttl_s.max(1));
        if !self.store.set_nx_ex(&lock, "1", ttl).await? {
            return Ok(Outcome::Skipped);
        }
        let result = self.check_locked(live, &channel).await;
        if let Err(e) = self.store.del(&lock).await {
            tracing::warn!(channel = %channel, error = %e, stage = "processing", "Token check lock not freed; it expires on its own.");
        }
        result
    }

    async fn check_locked(
        &self,
        live: &Arc<Live>,
        channel: &ChannelRef,
    ) -> Result<Outcome, StoreError> {
        let record = match self.store.get_channel(channel).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(Outcome::Gone),
            Err(StoreError::Malformed { .. }) => {
                return Ok(Outcome::Done(Verdict::Unchecked("malformed record".into())))
            }
            Err(e) => return Err(e),
        };
        let verdict = probe::probe(&self.clients, &self.store, live, channel, &record).await?;
        match &verdict {
            Verdict::Invalid(reason) => {
                let notice =
                    send_reauth(&self.store, &self.dispatcher, live, channel, reason).await;
                tracing::warn!(
                    channel = %channel,
                    tenant = %record.tenant,
                    notice = ?notice,
                    stage = "processing",
                    "Channel token is invalid; the tenant must reconnect it."
                );
                if notice == ReauthNotice::Failed {
                    tracing::warn!(channel = %channel, stage = "sending", "Reauth notice not delivered; the next check tries again.");
                }
            }
            Verdict::Refreshed => {
                tracing::info!(channel = %channel, stage = "processing", "Instagram token refreshed.");
            }
            Verdict::Unchecked(why) => {
                tracing::debug!(channel = %channel, why = %why, stage = "processing", "Channel token not checked.");
            }
            Verdict::Healthy => {}
        }
        Ok(Outcome::Done(verdict))
    }
}
