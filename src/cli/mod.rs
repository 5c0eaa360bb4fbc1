//! Developer tools of the command line: `listen` (a local CRM endpoint that verifies
//! and prints each event), `simulate` (realistic, correctly signed provider webhooks
//! sent to a running relay) and `buffer` (the retry buffer and its dead letters, from
//! the store). They print to the developer's own terminal; nothing here
//! runs inside the relay.

pub mod buffer;
pub mod listen;
pub mod simulate;

mod render;
mod scenarios;

use std::path::Path;

use anyhow::Context;
use switchboard::config::Settings;

/// The config named by `--config` / `SWITCHBOARD_CONFIG` (or the defaults alone).
fn load_settings(config: Option<&Path>) -> anyhow::Result<Settings> {
    Settings::load(config).context("invalid configuration")
}

/// A runtime for one command.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// `HH:MM:SS` (UTC) of now, for the start of each printed line.
fn clock() -> String {
    let now = switchboard::time::format_rfc3339(switchboard::time::now_ms());
    now.get(11..19).unwrap_or(&now).to_owned()
}
