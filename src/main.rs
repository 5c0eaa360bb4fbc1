//! The `switchboard` command line: `serve` runs the relay; the other subcommands are
//! operator tools. No logic lives here: each calls into the library.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard::config::Settings;

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
    /// Sign a webhook payload file with the first `meta.app_secrets` and POST it to a
    /// running relay (or print the signature with --print).
    SignWebhook {
        /// The JSON payload file (e.g. a fixture).
        file: PathBuf,
        /// The relay's webhook URL.
        #[arg(long, default_value = "http://127.0.0.1:8080/webhooks/meta")]
        url: String,
        /// Only print the X-Hub-Signature-256 header value.
        #[arg(long)]
        print: bool,
    },
    /// Fernet vault tools.
    #[command(subcommand)]
    Vault(VaultCommand),
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

#[allow(clippy::print_stdout)]
fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
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
        Command::SignWebhook { file, url, print } => {
            let settings = load(&cli)?;
            let body =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let secrets = switchboard::channels::meta::AppSecrets::new(&settings.meta.app_secrets);
            let signature = secrets
                .sign(&body)
                .context("meta.app_secrets is empty: nothing to sign with")?;
            if *print {
                println!("{signature}");
                return Ok(());
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (status, text) = runtime.block_on(async {
                let resp = reqwest::Client::new()
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", &signature)
                    .body(body)
                    .send()
                    .await?;
                let status = resp.status();
                anyhow::Ok((status, resp.text().await.unwrap_or_default()))
            })?;
            println!("{status} {text}");
            anyhow::ensure!(status.is_success(), "the relay refused the webhook");
        }
        Command::Vault(VaultCommand::Keygen) => {
            println!("{}", switchboard::vault::Keyring::generate_key());
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
