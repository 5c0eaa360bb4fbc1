//! Live reload: keys and secrets rotated under load without a failed request; a broken
//! config refused while the running one keeps serving; SIGHUP and file changes on the
//! real binary, whose trace-level logs (like Redis and panic messages) never hold a
//! token or key.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{json, Value};
use switchboard::vault::Keyring;
use tokio::sync::RwLock;

use crate::helpers::*;

/// What Meta signs with and what the operator's scripts authenticate with, right now.
pub(super) struct Clients {
    app_secret: String,
    admin_token: String,
}

/// One step of a rotation: what the config file says.
pub(super) struct Step<'a> {
    vault_keys: Vec<&'a str>,
    app_secrets: Vec<&'a str>,
    admin_tokens: Vec<&'a str>,
    signing_secret: &'a str,
    extra_signing_secrets: Vec<&'a str>,
    /// A `[[channels]]` entry's Fernet token, if any.
    config_channel_token: Option<String>,
}

pub(super) fn quoted(list: &[&str]) -> String {
    list.iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn config_for(app: &TestApp, step: &Step<'_>) -> String {
    let mut config = app.config.clone();
    config.vault_keys = step.vault_keys.iter().map(|k| (*k).to_owned()).collect();
    let mut text = config.render();
    text = text.replace(
        &format!("app_secrets = [\"{APP_SECRET}\"]"),
        &format!("app_secrets = [{}]", quoted(&step.app_secrets)),
    );
    text = text.replace(
        &format!("tokens = [\"{ADMIN_TOKEN}\"]"),
        &format!("tokens = [{}]", quoted(&step.admin_tokens)),
    );
    text = text.replace(
        &format!("signing_secret = \"{SIGNING_SECRET}\""),
        &format!(
            "signing_secret = \"{}\"\nextra_signing_secrets = [{}]",
            step.signing_secret,
            quoted(&step.extra_signing_secrets)
        ),
    );
    if let Some(token) = &step.config_channel_token {
        text.push_str(&format!(
            "\n[[channels]]\nkind = \"whatsapp\"\nid = \"123456123\"\ntenant = \"acme\"\ntoken = \"{token}\"\n"
        ));
    }
    text
}

/// Writes the step's config and waits until the app runs it.
pub(super) async fn apply(app: &TestApp, step: &Step<'_>) {
    app.reload(&config_for(app, step), |live| {
        live.keyring.len() == step.vault_keys.len()
            && step.admin_tokens.iter().all(|t| live.is_admin_token(t))
            && live.settings.meta.app_secrets.len() == step.app_secrets.len()
            && live.settings.channels.len() == usize::from(step.config_channel_token.is_some())
    })
    .await;
}

/// A WhatsApp text webhook with a unique message id (so each one reaches the CRM).
pub(super) fn unique_webhook(n: usize) -> Vec<u8> {
    String::from_utf8(fixture("whatsapp/text.json"))
        .unwrap()
        .replace(
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
            &format!("wamid.reload-{n}"),
        )
        .into_bytes()
}

/// A process-wide counter's value (the first line starting with `prefix`).
pub(super) fn metric_value(app: &TestApp, prefix: &str) -> u64 {
    app.state
        .metrics
        .render()
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The number of refused reloads so far.
pub(super) fn refused_reloads(app: &TestApp) -> u64 {
    metric_value(app, "switchboard_config_reloads_total{outcome=\"refused\"}")
}

mod binary;
mod refusals;
mod under_load;
