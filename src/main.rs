//! The `switchboard` command line: `serve` runs the relay; the other subcommands are
//! operator tools. No logic lives here: each calls into the library.

mod cli;

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard::config::Settings;

/// mimalloc: per-thread free lists, no global consolidation on the hot path.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "A relay between messaging channels and CRMs"
)]
struct Cli {
    /// The config file layered over the defaults (also SWITCHBOARD_CONFIG).
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay.
    Serve,
    /// Check the configuration and exit (0 when it is usable).
    CheckConfig,
    /// A local CRM endpoint for development: verifies each event's Standard Webhooks
    /// signature and prints the event (--fail-every to watch the relay retry).
    Listen(cli::listen::ListenArgs),
    /// Send a realistic, correctly signed provider webhook to a running relay
    /// (--list names every event kind; a file path sends that payload as it is).
    #[command(alias = "sign-webhook")]
    Simulate(cli::simulate::SimulateArgs),
    /// Fernet vault tools.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Channels in the store (talks to the store named by the config, not to a relay).
    #[command(subcommand)]
    Channels(ChannelsCommand),
    /// The retry buffer and its dead-letter list (talks to the store named by the
    /// config): list, redrive or drop given-up events; depth per tenant.
    #[command(subcommand)]
    Buffer(cli::buffer::BufferCommand),
    /// Telegram bot tools.
    #[command(subcommand)]
    Telegram(TelegramCommand),
    /// Meta (Graph API) tools.
    #[command(subcommand)]
    Meta(MetaCommand),
    /// Token health (talks to the store and the providers, not to a relay).
    #[command(subcommand)]
    Tokens(TokensCommand),
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Check every stored token now, as the relay does every tokens.check_interval_s:
    /// refresh Instagram Login tokens, debug_token for Meta tokens, getWebhookInfo for
    /// Telegram bots; invalid ones get channel.reauth_required (at most once an hour).
    Check {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ChannelsCommand {
    /// Store a channel; its access token is read from stdin (or --token-file) and
    /// stored Fernet-encrypted. Secrets are never taken from the command line.
    Put {
        /// whatsapp, instagram, messenger or telegram.
        kind: String,
        /// The channel id (phone_number_id, account id, Page id, bot id).
        id: String,
        /// The tenant its events go to.
        #[arg(long)]
        tenant: String,
        /// Read the access token from this file instead of stdin.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Read the webhook secret (Telegram's secret_token) from this file.
        #[arg(long)]
        webhook_secret_file: Option<PathBuf>,
        /// The Meta user who connected the channel (for deauthorize callbacks).
        #[arg(long)]
        user_id: Option<String>,
        /// WhatsApp: the WhatsApp Business Account of the number.
        #[arg(long)]
        waba_id: Option<String>,
        /// `instagram` for an Instagram Login channel (its Graph API is graph.instagram.com).
        #[arg(long)]
        graph: Option<String>,
        /// When the token expires (RFC 3339 UTC).
        #[arg(long)]
        expires_at: Option<String>,
        /// WhatsApp: read the two-step verification PIN from this file.
        #[arg(long)]
        pin_file: Option<PathBuf>,
    },
    /// List every channel in the store, without secrets, with whether each opens.
    List {
        /// Print JSON (as the admin API answers) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a channel from the store.
    Delete {
        kind: String,
        id: String,
        /// First revoke the app's access at the provider (Graph `DELETE
        /// /{user-id}/permissions`, Telegram `deleteWebhook`); nothing is deleted if
        /// that fails.
        #[arg(long)]
        revoke: bool,
    },
}

#[derive(Subcommand)]
enum TelegramCommand {
    /// Point the bot's webhook at this relay (server.public_url) with a fresh secret,
    /// stored Fernet-encrypted with the channel.
    SetWebhook {
        /// The bot's numeric id (the channel id; the part of its token before ':').
        bot_id: String,
    },
    /// Show where Telegram sends the bot's updates, what is pending and the last
    /// delivery error (exit status 1 when it does not point at this relay).
    WebhookInfo { bot_id: String },
}

#[derive(Subcommand)]
enum MetaCommand {
    /// Show which apps a Page / Instagram account / WABA sends webhooks to, and which
    /// needed fields are missing (exit status 1 when something is missing).
    Subscriptions {
        /// whatsapp, instagram or messenger.
        kind: switchboard::channels::ChannelKind,
        /// The channel id (its token is used).
        id: String,
        /// The object to ask about, if not the channel itself: the WABA id for WhatsApp,
        /// the linked Page id for Instagram with Facebook Login.
        #[arg(long)]
        object: Option<String>,
    },
    /// Subscribe the app to the object's webhooks (with the fields the relay needs),
    /// then show the result.
    Subscribe {
        kind: switchboard::channels::ChannelKind,
        id: String,
        #[arg(long)]
        object: Option<String>,
    },
}

#[derive(Subcommand)]
enum VaultCommand {
    /// Print a new random Fernet key (for vault.keys).
    Keygen,
    /// Encrypt a secret read from stdin (or --file) under the primary vault key and print
    /// the Fernet token (for a [[channels]] token or webhook_secret).
    Encrypt {
        /// Read the secret from this file instead of stdin.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Re-encrypt every stored token and webhook secret under the primary key (safe
    /// while relays serve; run it again at will). Exits non-zero if any record failed.
    Rotate,
}

fn load(cli: &Cli) -> anyhow::Result<Settings> {
    Settings::load(cli.config.as_deref()).context("invalid configuration")
}

fn read_secret_input(file: Option<&PathBuf>) -> anyhow::Result<String> {
    let mut s = String::new();
    match file {
        Some(p) => {
            s = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => {
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading stdin")?;
        }
    }
    let s = s.trim().to_owned();
    anyhow::ensure!(!s.is_empty(), "the secret is empty");
    Ok(s)
}

/// Errors are printed as one line of causes (never a backtrace, whatever RUST_BACKTRACE
/// says): a config error reads `error: invalid configuration: configuration key …`.
fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve => {
            let settings = load(&cli)?;
            switchboard::telemetry::init_tracing(&settings.log);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let app =
                    switchboard::app::Application::build(settings, cli.config.clone()).await?;
                tracing::info!(port = app.port(), "Switchboard is listening.");
                app.run_until_stopped().await?;
                tracing::info!("Switchboard stopped.");
                anyhow::Ok(())
            })?;
        }
        Command::CheckConfig => {
            let settings = load(&cli)?;
            switchboard::live::Live::new(settings).context("invalid configuration")?;
            println!("configuration OK");
        }
        Command::Listen(args) => cli::listen::run(cli.config.as_deref(), args)?,
        Command::Simulate(args) => cli::simulate::run(cli.config.as_deref(), args)?,
        Command::Buffer(cmd) => cli::buffer::run(cli.config.as_deref(), cmd)?,
        Command::Telegram(TelegramCommand::SetWebhook { bot_id }) => {
            let settings = load(&cli)?;
            let store = switchboard::app::open_store(&settings)?;
            let live = switchboard::live::Live::new(settings).context("invalid configuration")?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let registration =
                runtime.block_on(switchboard::channels::telegram::webhook::set_webhook(
                    &store,
                    &live.keyring,
                    &live.settings.telegram,
                    &live.public_url,
                    bot_id,
                ))?;
            println!(
                "webhook set: {} (updates: {})",
                registration.url,
                registration.allowed_updates.join(", ")
            );
        }
        Command::Telegram(TelegramCommand::WebhookInfo { bot_id }) => {
            let settings = load(&cli)?;
            let store = switchboard::app::open_store(&settings)?;
            let live = switchboard::live::Live::new(settings).context("invalid configuration")?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let info = runtime.block_on(switchboard::channels::telegram::webhook::webhook_info(
                &store,
                &live.keyring,
                &live.settings.telegram,
                &live.public_url,
                bot_id,
            ))?;
            println!(
                "url: {}",
                if info.url.is_empty() {
                    "(none)"
                } else {
                    &info.url
                }
            );
            println!("expected: {}", info.expected_url);
            println!("pending updates: {}", info.pending_update_count);
            if let Some((date, message)) = &info.last_error {
                println!(
                    "last error: {message} (at {})",
                    switchboard::time::format_rfc3339(switchboard::time::seconds_to_ms(*date))
                );
            }
            println!(
                "allowed updates: {}",
                if info.allowed_updates.is_empty() {
                    "Telegram's default (no message_reaction)".to_owned()
                } else {
                    info.allowed_updates.join(", ")
                }
            );
            anyhow::ensure!(
                info.is_complete(),
                "the webhook does not point at this relay with every update kind: run `switchboard telegram set-webhook {bot_id}`"
            );
            println!("OK");
        }
        Command::Meta(
            MetaCommand::Subscriptions { kind, id, object }
            | MetaCommand::Subscribe { kind, id, object },
        ) => {
            let settings = load(&cli)?;
            let store = switchboard::app::open_store(&settings)?;
            let live = switchboard::live::Live::new(settings).context("invalid configuration")?;
            let channel = switchboard::channels::ChannelRef::parse(*kind, id.clone())
                .with_context(|| format!("{kind} channel id"))?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            use switchboard::channels::meta::subscription;
            let status = runtime.block_on(async {
                match &cli.command {
                    Command::Meta(MetaCommand::Subscribe { .. }) => {
                        subscription::subscribe(
                            &store,
                            &live.keyring,
                            &live.settings.meta,
                            &channel,
                            object.as_deref(),
                        )
                        .await
                    }
                    _ => {
                        subscription::check(
                            &store,
                            &live.keyring,
                            &live.settings.meta,
                            &channel,
                            object.as_deref(),
                        )
                        .await
                    }
                }
            })?;
            println!("object {}:", status.object_id);
            if status.apps.is_empty() {
                println!("  no app is subscribed");
            }
            for app in &status.apps {
                println!(
                    "  app {} ({}): {}",
                    app.id.as_deref().unwrap_or("?"),
                    app.name.as_deref().unwrap_or("unnamed"),
                    if app.fields.is_empty() {
                        "subscribed".to_owned()
                    } else {
                        app.fields.join(", ")
                    }
                );
            }
            if !status.missing.is_empty() {
                println!("  missing fields: {}", status.missing.join(", "));
            }
            anyhow::ensure!(status.is_complete(), "the subscription is incomplete");
            println!("  OK");
        }
        Command::Vault(VaultCommand::Keygen) => {
            println!("{}", switchboard::vault::Keyring::generate_key());
        }
        Command::Vault(VaultCommand::Rotate) => {
            let (live, store, runtime) = open_store_cli(&cli)?;
            let report = runtime.block_on(switchboard::vault::rotation::rotate_all(
                &store,
                &live.keyring,
                &live.settings,
            ))?;
            println!(
                "rotated {} of {} channels ({} already under the primary key, {} failed)",
                report.rotated,
                report.checked,
                report.already_current,
                report.failed.len()
            );
            for f in &report.failed {
                println!("failed: {}: {}", f.channel, f.reason);
            }
            for c in &report.config_channels_on_older_key {
                println!(
                    "config: [[channels]] {c} is under an older key: re-encrypt it with `switchboard vault encrypt` before dropping that key"
                );
            }
            anyhow::ensure!(report.failed.is_empty(), "some channels were not rotated");
        }
        Command::Channels(cmd) => channels_command(&cli, cmd)?,
        Command::Tokens(TokensCommand::Check { json }) => {
            let (live, store, runtime) = open_store_cli(&cli)?;
            let report = runtime.block_on(async {
                let settings = &live.settings;
                let client = switchboard::delivery::CrmClient::new(
                    std::time::Duration::from_millis(settings.delivery.timeout_ms),
                    settings.delivery.max_response_bytes,
                )?;
                let dispatcher = switchboard::delivery::Dispatcher::new(
                    store.clone(),
                    client,
                    &settings.delivery,
                );
                let health = switchboard::tokens::TokenHealth {
                    store,
                    dispatcher,
                    clients: switchboard::tokens::Clients {
                        oauth: switchboard::connect::provider::OAuthClient::new()?,
                        telegram: switchboard::channels::telegram::outbound::TelegramClient::new()?,
                    },
                };
                anyhow::Ok(health.check_all(&std::sync::Arc::new(live)).await?)
            })?;
            if *json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "checked {}, refreshed {}, invalid {} ({} skipped: another replica was checking them; {} could not be checked)",
                    report.checked, report.refreshed, report.invalid, report.skipped, report.unchecked
                );
            }
        }
        Command::Vault(VaultCommand::Encrypt { file }) => {
            let settings = load(&cli)?;
            let keyring = switchboard::vault::Keyring::new(&settings.vault.keys)?;
            let secret = zeroize::Zeroizing::new(read_secret_input(file.as_ref())?);
            println!("{}", keyring.encrypt(secret.as_bytes()));
        }
    }
    Ok(())
}

/// The live config, the store and a runtime, for the commands that use the store.
fn open_store_cli(
    cli: &Cli,
) -> anyhow::Result<(
    switchboard::live::Live,
    switchboard::store::Store,
    tokio::runtime::Runtime,
)> {
    let settings = load(cli)?;
    let live = switchboard::live::Live::new(settings).context("invalid configuration")?;
    let store = switchboard::app::open_store(&live.settings)?;
    anyhow::ensure!(
        store.is_redis(),
        "store.backend is \"memory\": nothing is kept outside a running relay; use the admin API"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok((live, store, runtime))
}

#[allow(clippy::print_stdout)]
fn channels_command(cli: &Cli, cmd: &ChannelsCommand) -> anyhow::Result<()> {
    use switchboard::registry;
    let (live, store, runtime) = open_store_cli(cli)?;
    match cmd {
        ChannelsCommand::Put {
            kind,
            id,
            tenant,
            token_file,
            webhook_secret_file,
            user_id,
            waba_id,
            graph,
            expires_at,
            pin_file,
        } => {
            let channel = registry::parse_channel(kind, id)?;
            let token = secrecy::SecretString::from(read_secret_input(token_file.as_ref())?);
            let webhook_secret = webhook_secret_file
                .as_ref()
                .map(|p| read_secret_input(Some(p)).map(secrecy::SecretString::from))
                .transpose()?;
            let pin = pin_file
                .as_ref()
                .map(|p| read_secret_input(Some(p)).map(secrecy::SecretString::from))
                .transpose()?;
            let input = registry::ChannelInput {
                tenant: tenant.clone(),
                token,
                webhook_secret,
                user_id: user_id.clone(),
                waba_id: waba_id.clone(),
                graph: graph.clone(),
                expires_at: expires_at.clone(),
                pin,
            };
            let (_, outcome) = runtime.block_on(registry::put(&store, &live, &channel, input))?;
            let verb = match outcome {
                registry::PutOutcome::Created => "created",
                registry::PutOutcome::Replaced => "replaced",
            };
            println!("{channel} {verb} (tenant {tenant})");
        }
        ChannelsCommand::List { json } => {
            let channels = runtime.block_on(registry::list(&store, &live))?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "count": channels.len(),
                        "channels": channels,
                    }))?
                );
            } else {
                println!(
                    "{:<10} {:<20} {:<12} {:<15} STATUS",
                    "KIND", "ID", "TENANT", "TOKEN"
                );
                for c in &channels {
                    let token = c
                        .token
                        .map(|t| serde_json::to_value(t).unwrap_or_default())
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_else(|| "-".into());
                    let status = serde_json::to_value(c.status).unwrap_or_default();
                    println!(
                        "{:<10} {:<20} {:<12} {:<15} {}{}",
                        c.kind.as_str(),
                        c.id,
                        c.tenant.as_deref().unwrap_or("-"),
                        token,
                        status.as_str().unwrap_or_default(),
                        c.error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default(),
                    );
                }
            }
        }
        ChannelsCommand::Delete { kind, id, revoke } => {
            let channel = registry::parse_channel(kind, id)?;
            if *revoke {
                let revoker = switchboard::privacy::revoke::Revoker::new()?;
                runtime.block_on(switchboard::privacy::revoke::revoke_then_delete(
                    &store, &live, &revoker, &channel,
                ))?;
                println!("{channel} revoked at the provider and deleted");
            } else {
                runtime.block_on(registry::delete(&store, &channel))?;
                println!("{channel} deleted");
            }
        }
    }
    Ok(())
}
