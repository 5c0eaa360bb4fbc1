//! `switchboard simulate <event>`: sends a realistic provider webhook to a running relay,
//! signed as the provider signs it: `X-Hub-Signature-256` with the config's first
//! `meta.app_secrets` for WhatsApp, Instagram and Messenger; Telegram's
//! `X-Telegram-Bot-Api-Secret-Token` with the bot channel's webhook secret. The payload
//! comes from [`super::scenarios`], or from a file (the older `sign-webhook`, an alias).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;
use switchboard::channels::meta::AppSecrets;
use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::config::Settings;

use super::scenarios::{self, Scenario};

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// The event to send (see --list), or a JSON payload file to send as it is.
    #[arg(required_unless_present = "list")]
    pub event: Option<String>,
    /// Name every event kind it can send, and exit.
    #[arg(long)]
    pub list: bool,
    /// The relay: its base URL (the provider's webhook path is added), or a full
    /// webhook URL. Default: the config's server.bind.
    #[arg(long, alias = "url")]
    pub to: Option<String>,
    /// The channel id to address it to (default: the config's first channel of that kind).
    #[arg(long)]
    pub channel: Option<String>,
    /// Only print the signature header and the body; send nothing.
    #[arg(long)]
    pub print: bool,
}

/// What is sent: a provider payload and the channel it is addressed to.
struct Payload {
    label: String,
    kind: ChannelKind,
    /// The channel it is for (for Telegram, also the URL's bot id).
    channel: Option<String>,
    body: Vec<u8>,
}

#[allow(clippy::print_stdout)]
fn list() {
    println!("{:<26} {:<45} WHAT THE CRM RECEIVES", "EVENT", "FIXTURE");
    for s in scenarios::SCENARIOS {
        println!(
            "{:<26} {:<45} {}",
            s.name,
            format!("tests/fixtures/{}", s.fixture),
            s.about
        );
    }
}

/// The channel a scenario goes to: `--channel`, else the config's first of that kind.
fn target_channel(settings: &Settings, kind: ChannelKind, given: Option<&str>) -> Option<String> {
    given.map(str::to_owned).or_else(|| {
        settings
            .channels
            .iter()
            .find(|c| c.kind == kind)
            .map(|c| c.id.clone())
    })
}

/// The WABA an account-level scenario goes to: that of `--channel`, else of the
/// config's first WhatsApp channel that names one.
fn target_waba(settings: &Settings, given: Option<&str>) -> Option<String> {
    settings
        .channels
        .iter()
        .filter(|c| c.kind == ChannelKind::Whatsapp && c.waba_id.is_some())
        .find(|c| given.is_none_or(|g| g == c.id))
        .and_then(|c| c.waba_id.clone())
}

fn from_scenario(settings: &Settings, s: &Scenario, channel: Option<&str>) -> Payload {
    let target = if s.is_account_level() {
        target_waba(settings, channel)
    } else {
        target_channel(settings, s.kind, channel)
    };
    let body = s.render(target.as_deref(), switchboard::time::now_ms());
    let channel = match s.kind {
        ChannelKind::Telegram => target,
        kind => scenarios::channel_of(kind, &body),
    };
    Payload {
        label: s.name.to_owned(),
        kind: s.kind,
        channel,
        body: serde_json::to_vec(&body).unwrap_or_default(),
    }
}

/// A file is sent byte for byte: a Telegram update (it has `update_id`) needs a bot,
/// anything else is taken as a Meta webhook.
fn from_file(settings: &Settings, path: &Path, channel: Option<&str>) -> anyhow::Result<Payload> {
    let body = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (kind, channel) = if json.get("update_id").is_some() {
        let kind = ChannelKind::Telegram;
        (kind, target_channel(settings, kind, channel))
    } else {
        let kind = match json.get("object").and_then(Value::as_str) {
            Some("instagram") => ChannelKind::Instagram,
            Some("page") => ChannelKind::Messenger,
            _ => ChannelKind::Whatsapp,
        };
        (kind, scenarios::channel_of(kind, &json))
    };
    Ok(Payload {
        label: path.display().to_string(),
        kind,
        channel,
        body,
    })
}

/// The header that authenticates the payload, as the provider would send it.
fn signature(settings: &Settings, payload: &Payload) -> anyhow::Result<(String, String)> {
    if payload.kind != ChannelKind::Telegram {
        let signature = AppSecrets::new(&settings.meta.app_secrets)
            .sign(&payload.body)
            .context("meta.app_secrets is empty: nothing to sign with")?;
        return Ok(("X-Hub-Signature-256".into(), signature));
    }
    let bot = payload
        .channel
        .as_deref()
        .context("no telegram channel in the config: name the bot with --channel <bot id>")?;
    let keyring =
        switchboard::vault::Keyring::new(&settings.vault.keys).context("invalid vault.keys")?;
    let secret = match settings
        .channels
        .iter()
        .find(|c| c.kind == ChannelKind::Telegram && c.id == bot)
    {
        Some(c) => c
            .webhook_secret
            .as_ref()
            .map(|s| {
                use secrecy::ExposeSecret;
                keyring
                    .decrypt_token(s.expose_secret())
                    .map(|t| t.expose().to_owned())
                    .with_context(|| {
                        format!("the webhook_secret of [[channels]] telegram:{bot} does not open with vault.keys")
                    })
            })
            .transpose()?,
        None => stored_telegram_secret(settings, &keyring, bot)?,
    };
    let secret = secret.with_context(|| {
        format!(
            "telegram:{bot} has no webhook secret: run `switchboard telegram set-webhook {bot}`"
        )
    })?;
    Ok(("X-Telegram-Bot-Api-Secret-Token".into(), secret))
}

/// A bot that is not in the config is looked up in the store (Redis only: a memory
/// store lives inside the running relay).
fn stored_telegram_secret(
    settings: &Settings,
    keyring: &switchboard::vault::Keyring,
    bot: &str,
) -> anyhow::Result<Option<String>> {
    let store = switchboard::app::open_store(settings)?;
    anyhow::ensure!(
        store.is_redis(),
        "telegram:{bot} is not a [[channels]] entry of the config, and store.backend is \"memory\": \
         add it to the config, or give --channel with the config's bot id"
    );
    let channel = ChannelRef::parse(ChannelKind::Telegram, bot)?;
    let runtime = super::runtime()?;
    let opened = runtime.block_on(switchboard::registry::open(&store, keyring, &channel))?;
    Ok(opened.webhook_secret.map(|s| s.expose().to_owned()))
}

/// `--to` (a base URL gets the provider's webhook path), else the config's bind address.
fn webhook_url(settings: &Settings, to: Option<&str>, payload: &Payload) -> anyhow::Result<String> {
    let base = match to {
        Some(to) => to.to_owned(),
        None => {
            let bind = settings
                .server
                .bind
                .replace("0.0.0.0", "127.0.0.1")
                .replace("[::]", "127.0.0.1");
            format!("http://{bind}")
        }
    };
    let mut url = url::Url::parse(&base).with_context(|| format!("--to {base:?} is not a URL"))?;
    if url.path() == "/" || url.path().is_empty() {
        let path = match payload.kind {
            ChannelKind::Telegram => format!(
                "/webhooks/telegram/{}",
                payload.channel.as_deref().unwrap_or_default()
            ),
            _ => "/webhooks/meta".to_owned(),
        };
        url.set_path(&path);
    }
    Ok(url.to_string())
}

#[allow(clippy::print_stdout)]
pub fn run(config: Option<&Path>, args: &SimulateArgs) -> anyhow::Result<()> {
    if args.list {
        list();
        return Ok(());
    }
    let event = args.event.as_deref().unwrap_or_default();
    let settings = super::load_settings(config)?;
    let payload = match scenarios::find(event) {
        Some(s) => from_scenario(&settings, s, args.channel.as_deref()),
        None if Path::new(event).is_file() => {
            from_file(&settings, &PathBuf::from(event), args.channel.as_deref())?
        }
        None => {
            let near = scenarios::suggestions(event);
            anyhow::bail!(
                "no event {event:?} (and no such file){}; `switchboard simulate --list` names them all",
                if near.is_empty() {
                    String::new()
                } else {
                    format!(": did you mean {}?", near.join(", "))
                }
            );
        }
    };
    let (header, value) = signature(&settings, &payload)?;
    if args.print {
        println!("{header}: {value}");
        println!("{}", String::from_utf8_lossy(&payload.body));
        return Ok(());
    }
    let url = webhook_url(&settings, args.to.as_deref(), &payload)?;
    let runtime = super::runtime()?;
    let (status, text) = runtime.block_on(async {
        let resp = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?
            .post(&url)
            .header("content-type", "application/json")
            .header(header.as_str(), value.as_str())
            .body(payload.body.clone())
            .send()
            .await
            .with_context(|| format!("cannot reach the relay at {url}: is it running?"))?;
        let status = resp.status();
        anyhow::Ok((status, resp.text().await.unwrap_or_default()))
    })?;
    let channel = payload
        .channel
        .as_deref()
        .map(|c| format!(" for {}:{c}", payload.kind.as_str()))
        .unwrap_or_default();
    println!(
        "{} sent {}{channel} to {url}: {status} {}",
        super::clock(),
        payload.label,
        text.trim()
    );
    anyhow::ensure!(status.is_success(), "the relay refused the webhook");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let text = format!(
            "[vault]\nkeys = [\"{}\"]\n[meta]\napp_secrets = [\"s3cret\"]\nverify_tokens = [\"v\"]\n[admin]\ntokens = [\"a\"]\n{extra}",
            switchboard::vault::Keyring::generate_key()
        );
        std::fs::write(&path, text).unwrap();
        Settings::load_with_env(Some(&path), false).unwrap()
    }

    #[test]
    fn urls_get_the_provider_path_unless_one_is_given() {
        let s = settings("");
        let p = Payload {
            label: "x".into(),
            kind: ChannelKind::Telegram,
            channel: Some("42".into()),
            body: vec![],
        };
        assert_eq!(
            webhook_url(&s, Some("http://127.0.0.1:1234"), &p).unwrap(),
            "http://127.0.0.1:1234/webhooks/telegram/42"
        );
        assert_eq!(
            webhook_url(&s, Some("http://h:1/custom"), &p).unwrap(),
            "http://h:1/custom"
        );
        assert!(webhook_url(&s, Some("not a url"), &p).is_err());
    }

    #[test]
    fn meta_payloads_are_signed_with_the_first_app_secret() {
        let s = settings("");
        let payload = from_scenario(&s, scenarios::find("messenger.read").unwrap(), Some("9"));
        assert_eq!(payload.channel.as_deref(), Some("9"));
        let (header, value) = signature(&s, &payload).unwrap();
        assert_eq!(header, "X-Hub-Signature-256");
        let secrets = AppSecrets::new(&[secrecy::SecretString::from("s3cret")]);
        assert_eq!(Some(value), secrets.sign(&payload.body));
    }

    #[test]
    fn telegram_without_a_known_bot_says_what_to_do() {
        let s = settings("");
        let payload = from_scenario(&s, scenarios::find("telegram.message").unwrap(), None);
        let e = signature(&s, &payload).unwrap_err().to_string();
        assert!(e.contains("--channel"), "{e}");
    }
}
