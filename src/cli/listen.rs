//! `switchboard listen`: a local CRM endpoint for development. Every POST (any path) is
//! checked as a Standard Webhooks request with the tenant's signing secret, then shown
//! readably; it answers 2xx, or `--status` to every `--fail-every`th request so the
//! relay's retries can be watched. A signature that does not verify is answered 401 and
//! the reason printed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use standardwebhooks::{Webhook, WebhookError};

/// Largest event body accepted (events with `include_raw` can be large).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

#[derive(clap::Args, Debug)]
pub struct ListenArgs {
    /// The port to listen on (the example config's tenant sends to 9000).
    #[arg(long, default_value_t = 9000)]
    pub port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The signing secret (`whsec_…`) to verify with; by default the config's tenant's.
    #[arg(long, env = "SWITCHBOARD_LISTEN_SECRET", hide_env_values = true)]
    pub secret: Option<SecretString>,
    /// The config tenant whose signing secret to use (default: the one whose crm_url is
    /// this port, or the only one).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Answer `--status` to every Nth request, starting with the first (2: each event
    /// is refused once and accepted on its retry; 1: every request fails).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub fail_every: Option<u64>,
    /// The status of a refused request (with --fail-every).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(300..600))]
    pub status: u16,
    /// Also print each verified event's JSON body.
    #[arg(long)]
    pub json: bool,
}

/// Which secret verifies, and where it came from (for the start-up line).
struct SecretChoice {
    secret: SecretString,
    origin: String,
}

/// `--secret`, else the config tenant named by `--tenant`, else the tenant whose
/// `crm_url` is on this port, else the only tenant.
fn choose_secret(config: Option<&Path>, args: &ListenArgs) -> anyhow::Result<SecretChoice> {
    if let Some(secret) = &args.secret {
        return Ok(SecretChoice {
            secret: secret.clone(),
            origin: "--secret".into(),
        });
    }
    anyhow::ensure!(
        config.is_some(),
        "no signing secret: give --secret whsec_… or the relay's --config (its tenant's signing_secret is used)"
    );
    let settings = super::load_settings(config)?;
    let tenants = &settings.tenants;
    let chosen = match &args.tenant {
        Some(id) => tenants
            .iter()
            .find(|t| &t.id == id)
            .with_context(|| format!("no tenant {id:?} in the config"))?,
        None => {
            let on_port = tenants.iter().find(|t| {
                url::Url::parse(&t.crm_url)
                    .ok()
                    .and_then(|u| u.port_or_known_default())
                    == Some(args.port)
            });
            match (on_port, tenants.as_slice()) {
                (Some(t), _) => t,
                (None, [only]) => only,
                (None, []) => anyhow::bail!(
                    "no signing secret: give --secret whsec_… or a --config with a [[tenants]] entry"
                ),
                (None, _) => anyhow::bail!(
                    "several tenants and none sends to port {}: choose one with --tenant",
                    args.port
                ),
            }
        }
    };
    Ok(SecretChoice {
        secret: chosen.signing_secret.clone(),
        origin: format!("tenant {}'s signing_secret", chosen.id),
    })
}

/// What the server shares between requests.
struct State {
    verifier: Webhook,
    fail_every: Option<u64>,
    status: actix_web::http::StatusCode,
    json: bool,
    /// Requests that passed verification so far (numbering for --fail-every).
    verified: AtomicU64,
    /// Per webhook-id: (attempts seen, accepted).
    seen: Mutex<HashMap<String, (u32, bool)>>,
}

/// Why a request did not verify, in words a developer can act on.
fn explain(error: &WebhookError) -> String {
    match error {
        WebhookError::MissingHeader(h) => {
            format!("the webhook-{h} header is missing: is this a Standard Webhooks request?")
        }
        WebhookError::InvalidHeader(h) => format!("the webhook-{h} header is not valid text"),
        WebhookError::InvalidTimestamp => "webhook-timestamp is not a number of seconds".to_owned(),
        WebhookError::TimestampTooOldError => {
            "webhook-timestamp is more than 5 minutes old (a replay, or a clock off)".to_owned()
        }
        WebhookError::FutureTimestampError => {
            "webhook-timestamp is more than 5 minutes in the future (a clock off?)".to_owned()
        }
        WebhookError::InvalidSignature => "no v1 signature in webhook-signature matches this \
             secret: the sender signs with another one (check the tenant's signing_secret, \
             or --secret / --tenant)"
            .to_owned(),
        WebhookError::InvalidPayload => "the body is not UTF-8".to_owned(),
        WebhookError::InvalidSecret(_) => "the secret is not valid base64".to_owned(),
    }
}

fn print_block(lines: &[String]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

/// Copies the three Standard Webhooks headers into the `http` crate's map the
/// verifier takes.
fn webhook_headers(req: &HttpRequest) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for name in [
        standardwebhooks::HEADER_WEBHOOK_ID,
        standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
        standardwebhooks::HEADER_WEBHOOK_SIGNATURE,
    ] {
        if let Some(Ok(value)) = req
            .headers()
            .get(name)
            .map(|v| http::HeaderValue::from_bytes(v.as_bytes()))
        {
            map.insert(name, value);
        }
    }
    map
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let at = super::clock();
    let id = req
        .headers()
        .get(standardwebhooks::HEADER_WEBHOOK_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(none)")
        .to_owned();
    if let Err(e) = state.verifier.verify(&body, &webhook_headers(&req)) {
        let why = explain(&e);
        print_block(&[format!(
            "{at} REJECTED 401 {} {}: signature does not verify: {why}",
            req.method(),
            req.path()
        )]);
        return HttpResponse::Unauthorized()
            .content_type("text/plain")
            .body(format!("signature does not verify: {why}\n"));
    }
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let number = state.verified.fetch_add(1, Ordering::SeqCst) + 1;
    let refuse = state
        .fail_every
        .is_some_and(|n| (number - 1).is_multiple_of(n));
    let (attempt, accepted_before) = {
        let mut seen = state.seen.lock().unwrap_or_else(|p| p.into_inner());
        let entry = seen.entry(id).or_insert((0, false));
        entry.0 += 1;
        let before = entry.1;
        if !refuse {
            entry.1 = true;
        }
        (entry.0, before)
    };
    let attempt_note = match (attempt, accepted_before) {
        (1, _) => String::new(),
        (n, false) => format!(" (attempt {n}: a retry)"),
        (n, true) => format!(" (attempt {n}: a DUPLICATE of an event already accepted)"),
    };
    if refuse {
        print_block(&[format!(
            "{at} REFUSED {} (--fail-every) {}{attempt_note}: the relay will retry it",
            state.status.as_u16(),
            super::render::headline(&event),
        )]);
        return HttpResponse::build(state.status)
            .content_type("text/plain")
            .body("refused on purpose (switchboard listen --fail-every)\n");
    }
    let mut lines = vec![format!(
        "{at} VERIFIED {}{attempt_note}",
        super::render::headline(&event)
    )];
    lines.extend(
        super::render::details(&event)
            .into_iter()
            .map(|l| format!("         {l}")),
    );
    if state.json {
        lines.push(serde_json::to_string_pretty(&event).unwrap_or_default());
    }
    print_block(&lines);
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

async fn handle(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    if req.method() == actix_web::http::Method::POST {
        receive(req, body, state).await
    } else {
        not_post(&req)
    }
}

fn not_post(req: &HttpRequest) -> HttpResponse {
    print_block(&[format!(
        "{} IGNORED {} {}: listen takes the relay's POSTs",
        super::clock(),
        req.method(),
        req.path()
    )]);
    HttpResponse::MethodNotAllowed()
        .content_type("text/plain")
        .body("switchboard listen takes POST requests from the relay\n")
}

/// Runs until interrupted (Ctrl-C).
pub fn run(config: Option<&Path>, args: &ListenArgs) -> anyhow::Result<()> {
    let choice = choose_secret(config, args)?;
    let verifier = Webhook::new(choice.secret.expose_secret())
        .map_err(|_| anyhow::anyhow!("the signing secret must be whsec_ followed by base64"))?;
    let status = actix_web::http::StatusCode::from_u16(args.status)
        .context("--status must be an HTTP status")?;
    let state = web::Data::new(State {
        verifier,
        fail_every: args.fail_every,
        status,
        json: args.json,
        verified: AtomicU64::new(0),
        seen: Mutex::new(HashMap::new()),
    });
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .default_service(web::to(handle))
        })
        .workers(1)
        .disable_signals()
        .bind((args.host.as_str(), args.port))
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
        let failing = match args.fail_every {
            Some(1) => format!("; answering {} to every request", args.status),
            Some(n) => format!("; answering {} to every {n}th request", args.status),
            None => String::new(),
        };
        print_block(&[format!(
            "Listening on http://{}:{} (any path), verifying with {}{failing}. Ctrl-C stops.",
            args.host, args.port, choice.origin
        )]);
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            handle.stop(false).await;
        });
        server.await?;
        anyhow::Ok(())
    })
}
