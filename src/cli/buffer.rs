//! `switchboard buffer list|redrive|drop|stats`: the retry buffer and its dead-letter
//! list, from the store named by the config (like `channels` and `vault`, it talks to
//! Redis directly, not to a relay; the memory store lives only inside a relay, so use
//! the admin API there). It prints ids, tenant, type, attempts and ages, never content.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use switchboard::delivery::dead_letter::tools::{
    self, DeadLetterView, Redriven, ToolError, DEFAULT_LIMIT, MAX_LIMIT,
};
use switchboard::delivery::{CrmClient, Dispatcher};
use switchboard::live::Live;

#[derive(clap::Subcommand, Debug)]
pub enum BufferCommand {
    /// List dead letters (events given up at delivery.retry_buffer_ttl_s), oldest first.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = DEFAULT_LIMIT as u64, value_parser = clap::value_parser!(u64).range(1..=MAX_LIMIT as u64))]
        limit: u64,
        /// Print JSON (as the admin API answers) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Put dead letters back into the retry buffer: delivered again with their
    /// original ids (once: dedupe still applies).
    Redrive {
        /// The event ids (evt_…).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<String>,
        /// Every dead letter (of --tenant), up to --limit.
        #[arg(long)]
        all: bool,
        /// With --all: only this tenant's.
        #[arg(long, requires = "all")]
        tenant: Option<String>,
        /// With --all: at most this many.
        #[arg(long, default_value_t = DEFAULT_LIMIT as u64, value_parser = clap::value_parser!(u64).range(1..=MAX_LIMIT as u64))]
        limit: u64,
    },
    /// Delete dead letters for good.
    Drop {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// The retry buffer depth, oldest age and dead letters of every tenant.
    Stats {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(config: Option<&Path>, cmd: &BufferCommand) -> anyhow::Result<()> {
    let settings = super::load_settings(config)?;
    let live = Live::new(settings).context("invalid configuration")?;
    let store = switchboard::app::open_store(&live.settings)?;
    anyhow::ensure!(
        store.is_redis(),
        "store.backend is \"memory\": the buffer lives inside the running relay; use the admin API (/admin/v1/dead-letters, /admin/v1/buffer/stats)"
    );
    let d = &live.settings.delivery;
    let client = CrmClient::new(Duration::from_millis(d.timeout_ms), d.max_response_bytes)?;
    let dispatcher = Dispatcher::new(store, client, d);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(execute(&dispatcher, &live, cmd))
}

#[allow(clippy::print_stdout)]
async fn execute(dispatcher: &Dispatcher, live: &Live, cmd: &BufferCommand) -> anyhow::Result<()> {
    match cmd {
        BufferCommand::List {
            tenant,
            limit,
            json,
        } => {
            let list = tools::list(dispatcher, live, tenant.as_deref(), *limit as usize).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            if !list.enabled {
                println!("(delivery.dead_letter_ttl_s = 0: given-up events are deleted, not kept)");
            }
            print_table(&list.dead_letters);
        }
        BufferCommand::Redrive {
            ids,
            all,
            tenant,
            limit,
        } => {
            let reports = if *all {
                tools::redrive_all(dispatcher, live, tenant.as_deref(), *limit as usize).await?
            } else {
                let mut out = Vec::new();
                let mut missing = Vec::new();
                for id in ids {
                    match tools::redrive(dispatcher, live, id).await {
                        Ok(r) => out.push(r),
                        Err(ToolError::NotFound(id)) => missing.push(id),
                        Err(e) => return Err(e.into()),
                    }
                }
                for r in &out {
                    println!("{} (tenant {}): {}", r.id, r.tenant, describe(r.outcome));
                }
                anyhow::ensure!(
                    missing.is_empty(),
                    "no dead letter has the id {}",
                    missing.join(", ")
                );
                return Ok(());
            };
            for r in &reports {
                println!("{} (tenant {}): {}", r.id, r.tenant, describe(r.outcome));
            }
            println!("redriven: {}", reports.len());
        }
        BufferCommand::Drop { ids } => {
            let mut missing = Vec::new();
            for id in ids {
                match tools::drop(dispatcher, id).await {
                    Ok(()) => println!("{id} dropped"),
                    Err(ToolError::NotFound(id)) => missing.push(id),
                    Err(e) => return Err(e.into()),
                }
            }
            anyhow::ensure!(
                missing.is_empty(),
                "no dead letter has the id {}",
                missing.join(", ")
            );
        }
        BufferCommand::Stats { json } => {
            let stats = tools::stats(dispatcher, live).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
                return Ok(());
            }
            println!(
                "{:<16} {:>10} {:>12} {:>13}",
                "TENANT", "BUFFERED", "OLDEST", "DEAD LETTERS"
            );
            for t in &stats.tenants {
                println!(
                    "{:<16} {:>10} {:>12} {:>13}{}",
                    t.tenant,
                    t.buffered,
                    t.oldest_age_s.map_or_else(|| "-".to_owned(), age),
                    t.dead_letters,
                    if t.full {
                        "  FULL (max_buffered_per_tenant)"
                    } else {
                        ""
                    }
                );
            }
            println!(
                "{:<16} {:>10} {:>12} {:>13}",
                "total", stats.buffered, "", stats.dead_letters
            );
            println!(
                "retry_buffer_ttl_s = {}, dead_letter_ttl_s = {}{}, max_buffered_per_tenant = {}",
                stats.retry_buffer_ttl_s,
                stats.dead_letter_ttl_s,
                if stats.dead_letter_ttl_s == 0 {
                    " (off)"
                } else {
                    ""
                },
                stats.max_buffered_per_tenant
            );
        }
    }
    Ok(())
}

fn describe(outcome: Redriven) -> &'static str {
    match outcome {
        Redriven::Scheduled => "back in the retry buffer, due now",
        Redriven::Parked => "back in the retry buffer, behind earlier events of its conversation",
        Redriven::AlreadyBuffered => "already in the retry buffer",
        Redriven::AlreadyDelivered => "already delivered (dedupe): not sent again",
    }
}

#[allow(clippy::print_stdout)]
fn print_table(rows: &[DeadLetterView]) {
    println!(
        "{:<28} {:<12} {:<20} {:<28} {:>8} {:>8} {:>10}",
        "ID", "TENANT", "TYPE", "CHANNEL", "ATTEMPTS", "AGE", "DEAD FOR"
    );
    for r in rows {
        println!(
            "{:<28} {:<12} {:<20} {:<28} {:>8} {:>8} {:>10}",
            r.id,
            r.tenant,
            r.event_type,
            r.channel,
            r.attempts,
            age(r.age_s),
            age(r.dead_for_s)
        );
    }
    println!("{} dead letter(s)", rows.len());
}

/// `45s`, `12m03s`, `5h07m`, `3d04h`.
fn age(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::age;

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(age(7), "7s");
        assert_eq!(age(723), "12m03s");
        assert_eq!(age(5 * 3600 + 7 * 60), "5h07m");
        assert_eq!(age(3 * 86400 + 4 * 3600 + 5), "3d04h");
    }
}
