//! WhatsApp Embedded Signup: the SDK page; the code and the session's ids posted by the
//! page's script; then, each step persisted in the flow so a failure can be retried
//! without a new code (the answer says `resume`, and the page's "Try again" posts the
//! same ids again): the code exchange, `GET /me?fields=id` (the `user_id` deauthorize
//! and data deletion match on), `POST /{waba}/subscribed_apps` (before
//! anything else), `POST /{phone}/register` with a random 6-digit PIN (at most
//! `connect.max_register_attempts` per flow: Meta blocks a number after 10 in 72 h);
//! then `whatsapp:{phone_number_id}` with `waba_id` and the PIN, Fernet-encrypted.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};

use super::finish::{self, NewChannel};
use super::flow;
use super::links;
use super::pages;
use super::provider::{Call, ProviderError};
use super::web::{Ctx, Current};
use crate::channels::{ChannelKind, ChannelRef};
use crate::live::Live;
use crate::vault::AccessToken;

fn timeout(live: &Live) -> Duration {
    Duration::from_millis(live.settings.meta.timeout_ms)
}

/// `{graph_api_base}/{version}/{segments…}`, each segment encoded. An id that cannot be
/// one (`.`, `..`; ids are checked before) gives an empty URL, which fails the call.
fn graph(live: &Live, segments: &[&str]) -> String {
    let mut all = vec![live.settings.meta.graph_api_version.as_str()];
    all.extend_from_slice(segments);
    crate::channels::build_url(&live.settings.meta.graph_api_base, &all, &[])
        .map(String::from)
        .unwrap_or_default()
}

/// The origin (`scheme://host[:port]`) of a URL.
pub fn origin(u: &str) -> String {
    url::Url::parse(u)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// The SDK page.
pub fn page(ctx: &Ctx<'_>, cur: &Current) -> HttpResponse {
    let m = &ctx.live.settings.meta;
    let dialog = origin(&m.oauth_dialog_base);
    let sdk = origin(&m.sdk_url);
    super::pages::respond(
        StatusCode::OK,
        pages::whatsapp(
            &flow::form_token(&cur.cookie, &cur.flow),
            &m.app_id,
            &m.whatsapp_config_id,
            &m.graph_api_version,
            &dialog,
            &m.sdk_url,
        ),
        &sdk,
        &format!("{dialog} {sdk}"),
    )
}

/// What the page's script posts.
#[derive(Deserialize)]
pub struct Complete {
    #[serde(default)]
    pub form: String,
    pub code: Option<SecretString>,
    #[serde(default)]
    pub waba_id: Option<String>,
    #[serde(default)]
    pub phone_number_id: Option<String>,
}

#[derive(Deserialize)]
pub struct Cancel {
    #[serde(default)]
    pub form: String,
    #[serde(default)]
    pub event: Option<String>,
}

pub fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({"message": message}))
}

/// A failed step. `resume`: the code exchange had succeeded, so the page's "Try again"
/// posts the same ids again, without a new login (and without a code).
fn provider_error(step: &str, e: &ProviderError, resume: bool) -> HttpResponse {
    tracing::warn!(error = %e, step, resume, "Connect flow: provider step failed.");
    HttpResponse::build(StatusCode::BAD_GATEWAY)
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "message": format!("Meta did not complete a step ({step}). Nothing was connected yet; click the button to try again."),
            "resume": resume,
        }))
}

fn digits(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .filter(|s| !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit()))
        .cloned()
}

/// `POST /connect/flow/whatsapp`.
pub async fn complete(ctx: &Ctx<'_>, mut cur: Current, body: Complete) -> HttpResponse {
    if !flow::check_form_token(&cur.cookie, &cur.flow, &body.form) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "This page does not belong to the current connect session. Open the link again.",
        );
    }
    let (Some(waba), Some(phone)) = (digits(&body.waba_id), digits(&body.phone_number_id)) else {
        return json_error(StatusCode::BAD_REQUEST, "Meta did not say which WhatsApp account and number were chosen. Try again and finish every step.");
    };
    let live = ctx.live;
    let m = &live.settings.meta;
    // A new session (other ids) starts the steps again.
    if cur.flow.waba_id.as_deref() != Some(&waba)
        || cur.flow.phone_number_id.as_deref() != Some(&phone)
    {
        cur.flow.waba_id = Some(waba.clone());
        cur.flow.phone_number_id = Some(phone.clone());
        cur.flow.subscribed = false;
        cur.flow.registered = false;
        cur.flow.token = None;
        cur.flow.user_id = None;
    }
    let Ok(channel) = ChannelRef::parse(ChannelKind::Whatsapp, phone.as_str()) else {
        return json_error(StatusCode::BAD_REQUEST, "Meta did not say which WhatsApp account and number were chosen. Try again and finish every step.");
    };
    match finish::is_taken(ctx.store, &cur.link, &channel).await {
        Ok(true) => {
            finish::refuse_taken(ctx.store, &cur.link, &channel).await;
            return json_error(StatusCode::CONFLICT, "This number is already connected to another organisation on this relay, so it was not taken over.");
        }
        Ok(false) => {}
        Err(_) => {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The relay cannot reach its storage. Try again in a minute.",
            )
        }
    }
    let token = match &cur.flow.token {
        Some(t) => match live.keyring.decrypt_token(t) {
            Ok(t) => t,
            Err(_) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "This connect session is damaged. Open the link again.",
                )
            }
        },
        None => {
            let Some(code) = body.code.as_ref() else {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "No login code was received. Try again.",
                );
            };
            let Some(secret) = m.app_secrets.first() else {
                return provider_error(
                    "configuration",
                    &ProviderError::Unreachable("meta.app_secrets is empty".into()),
                    false,
                );
            };
            let v = match ctx
                .oauth
                .send(
                    Call::get(graph(live, &["oauth", "access_token"]), timeout(live))
                        .query("client_id", &m.app_id)
                        .secret_query("client_secret", secret.expose_secret())
                        .secret_query("code", code.expose_secret()),
                )
                .await
            {
                Ok(v) => v,
                Err(e) => return provider_error("code exchange", &e, false),
            };
            let Some(t) = v.get("access_token").and_then(Value::as_str) else {
                return provider_error(
                    "code exchange",
                    &ProviderError::Unreachable("no access_token".into()),
                    false,
                );
            };
            cur.flow.token = Some(live.keyring.encrypt(t.as_bytes()));
            if cur.save(ctx).await.is_err() {
                return json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The relay cannot reach its storage. Try again in a minute.",
                );
            }
            AccessToken::new(t.to_owned())
        }
    };
    // Who signed up (the app-scoped id deauthorize and data deletion name).
    if cur.flow.user_id.is_none() {
        let me = match ctx
            .oauth
            .send(
                Call::get(graph(live, &["me"]), timeout(live))
                    .query("fields", "id")
                    .bearer(&token),
            )
            .await
        {
            Ok(v) => v,
            Err(e) => return provider_error("reading who signed up", &e, true),
        };
        let Some(id) = me
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()))
        else {
            return provider_error(
                "reading who signed up",
                &ProviderError::Unreachable("no id".into()),
                true,
            );
        };
        cur.flow.user_id = Some(id.to_owned());
        let _ = cur.save(ctx).await;
    }
    if !cur.flow.subscribed {
        if let Err(e) = ctx
            .oauth
            .send(
                Call::post(
                    graph(live, &[&waba, "subscribed_apps"]),
                    timeout(live),
                    vec![],
                )
                .bearer(&token),
            )
            .await
        {
            return provider_error(
                "subscribing the WhatsApp Business Account to webhooks",
                &e,
                true,
            );
        }
        cur.flow.subscribed = true;
        let _ = cur.save(ctx).await;
    }
    if !cur.flow.registered {
        if cur.flow.register_attempts >= live.settings.connect.max_register_attempts {
            return json_error(StatusCode::TOO_MANY_REQUESTS, "The number could not be registered after several attempts. Wait a few hours before trying again (Meta blocks a number after 10 attempts in 72 hours).");
        }
        let pin = match &cur.flow.pin {
            Some(p) => match live.keyring.decrypt_token(p) {
                Ok(p) => p.expose().to_owned(),
                Err(_) => {
                    return json_error(
                        StatusCode::BAD_REQUEST,
                        "This connect session is damaged. Open the link again.",
                    )
                }
            },
            None => {
                let p = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
                cur.flow.pin = Some(live.keyring.encrypt(p.as_bytes()));
                p
            }
        };
        cur.flow.register_attempts += 1;
        if cur.save(ctx).await.is_err() {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The relay cannot reach its storage. Try again in a minute.",
            );
        }
        if let Err(e) = ctx
            .oauth
            .send(
                Call::post_json(
                    graph(live, &[&phone, "register"]),
                    timeout(live),
                    json!({"messaging_product": "whatsapp", "pin": pin}),
                )
                .secret(&pin)
                .bearer(&token),
            )
            .await
        {
            return provider_error("registering the number", &e, true);
        }
        cur.flow.registered = true;
        let _ = cur.save(ctx).await;
    }
    let info = ctx
        .oauth
        .send(
            Call::get(graph(live, &[&phone]), timeout(live))
                .query("fields", "display_phone_number,verified_name")
                .bearer(&token),
        )
        .await
        .unwrap_or(Value::Null);
    let pin = cur
        .flow
        .pin
        .as_ref()
        .and_then(|p| live.keyring.decrypt_token(p).ok())
        .map(|p| SecretString::from(p.expose().to_owned()));
    let mut new = NewChannel::new(channel, SecretString::from(token.expose().to_owned()));
    new.waba_id = Some(waba);
    new.user_id = cur.flow.user_id.clone();
    new.pin = pin;
    new.name = info
        .get("verified_name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    new.phone = info
        .get("display_phone_number")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match finish::complete(ctx.store, ctx.dispatcher, live, &cur.link, &new).await {
        Ok(()) => {
            cur.flow.done = Some(new.label());
            cur.flow.token = None;
            cur.flow.pin = None;
            let _ = cur.save(ctx).await;
            HttpResponse::Ok()
                .insert_header(("Cache-Control", "no-store"))
                .json(json!({"next": "/connect/flow/done"}))
        }
        Err(finish::FinishError::Taken(_)) => json_error(StatusCode::CONFLICT, "This number is already connected to another organisation on this relay, so it was not taken over."),
        Err(finish::FinishError::LinkUsed) => json_error(StatusCode::GONE, "This connect link was already used."),
        Err(finish::FinishError::Store(_)) => json_error(StatusCode::SERVICE_UNAVAILABLE, "The relay cannot reach its storage. Try again in a minute."),
    }
}

/// `POST /connect/flow/whatsapp/cancel`: the link fails; nothing is stored.
pub async fn cancel(ctx: &Ctx<'_>, cur: Current, body: Cancel) -> HttpResponse {
    if !flow::check_form_token(&cur.cookie, &cur.flow, &body.form) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "This page does not belong to the current connect session.",
        );
    }
    let (code, detail) = match body.event.as_deref() {
        Some("ERROR") => (
            "provider_error",
            "Embedded Signup reported an error and the person gave up",
        ),
        _ => ("cancelled", "the person cancelled Embedded Signup"),
    };
    if links::fail(ctx.store, &cur.link, code, detail)
        .await
        .is_err()
    {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The relay cannot reach its storage.",
        );
    }
    HttpResponse::Ok().json(json!({"next": "/connect/flow/ended"}))
}
