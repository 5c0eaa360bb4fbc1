#![allow(clippy::print_stdout)]
//! The load benchmark: Switchboard's webhook path (a signed WhatsApp text webhook →
//! verify, normalize, route, dedupe, sign → the CRM) and reply path (`POST
//! /v1/messages` → a Fernet decrypt of the channel token → the Graph API), on the memory
//! and the Redis store, side by side with a minimal two-hop forwarder (actix-web +
//! reqwest: no verification, no JSON, no store) as the baseline.
//!
//! `switchboard-load run` starts everything itself (the relays, the forwarder, a CRM and
//! Graph sink, redis-server), pins the systems under test to one core and the rest to the
//! other (`taskset`), measures in alternating rounds and prints one table. Every request
//! is unique: its own message id, timestamp and `X-Hub-Signature-256`, from 1,000
//! senders. See benches/load/README.md.
//!
//! Layout: [`requests`] makes the requests, [`client`] drives the connections and
//! measures, [`peers`] is the baseline forwarder and the fallback sink, [`procs`] the
//! processes, [`bench`] the rounds and the table.

mod bench;
mod client;
mod peers;
mod procs;
mod requests;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "switchboard-load",
    about = "Load benchmark of the relay against a two-hop baseline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the whole benchmark and prints the table.
    Run(bench::RunArgs),
    /// The baseline: forwards every request's body to `upstream` (actix-web + reqwest).
    Forwarder {
        #[arg(long)]
        bind: String,
        #[arg(long)]
        upstream: String,
    },
    /// A CRM and Graph API stand-in, for machines without nginx: 204 to every POST, and
    /// WhatsApp's send answer to `…/messages`.
    Sink {
        #[arg(long)]
        bind: String,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => bench::run(args),
        Command::Forwarder { bind, upstream } => peers::forwarder(&bind, &upstream),
        Command::Sink { bind } => peers::sink(&bind),
    }
}
