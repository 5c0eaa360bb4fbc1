//! Instagram API with Instagram Login: `{instagram.oauth_base}/oauth/authorize`, the
//! code exchange (the answer flat or wrapped in `data[0]`), the long-lived token
//! (`ig_exchange_token`), `/me`, `me/subscribed_apps`; then `instagram:{user_id}` with
//! `graph = "instagram"` and `expires_at`. The long-lived token is kept (encrypted) in
//! the flow as soon as it is got, and each later step once done, so "Try again" after
//! a failure resumes there (`POST /connect/flow/instagram/resume`) without a new login.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use super::finish::{self, NewChannel};
use super::flow;
use super::messenger::{denied, Callback};
use super::pages::{self, Retry};
use super::provider::{Call, ProviderError};
use super::web::{self, Ctx, Current};
use crate::channels::{ChannelKind, ChannelRef};
use crate::live::Live;
use crate::store::GRAPH_INSTAGRAM;

pub const SCOPE: &str = "instagram_business_basic,instagram_business_manage_messages,instagram_business_manage_comments";
pub const FIELDS: &str = "messages,messaging_postbacks,messaging_seen,message_reactions,comments";

pub fn redirect_uri(live: &Live) -> String {
    format!("{}/connect/callback/instagram", live.public_url)
}

fn timeout(live: &Live) -> Duration {
    Duration::from_millis(live.settings.meta.timeout_ms)
}

/// `{graph_base}/{segments…}`, each segment encoded (an empty URL, which fails the
/// call, if one cannot be a segment).
fn graph(live: &Live, segments: &[&str]) -> String {
    crate::channels::build_url(&live.settings.instagram.graph_base, segments, &[])
        .map(String::from)
        .unwrap_or_default()
}

/// The authorize URL, with a fresh state.
pub fn dialog_url(live: &Live, cur: &mut Current) -> String {
    let state = flow::new_state(&cur.cookie, &mut cur.flow);
    let ig = &live.settings.instagram;
    let Ok(mut u) = url::Url::parse(&format!(
        "{}/oauth/authorize",
        ig.oauth_base.trim_end_matches('/')
    )) else {
        return String::new();
    };
    u.query_pairs_mut()
        .append_pair("client_id", &ig.app_id)
        .append_pair("redirect_uri", &redirect_uri(live))
        .append_pair("response_type", "code")
        .append_pair("scope", SCOPE)
        .append_pair("state", &state);
    u.into()
}

pub async fn page(ctx: &Ctx<'_>, mut cur: Current) -> HttpResponse {
    let url = dialog_url(ctx.live, &mut cur);
    if let Err(e) = cur.save(ctx).await {
        return web::unavailable(&e);
    }
    web::page(StatusCode::OK, pages::login(ChannelKind::Instagram, &url))
}

fn field(v: &Value, name: &str) -> Option<String> {
    let flat = v.get(name);
    let wrapped = v
        .get("data")
        .and_then(|d| d.get(0))
        .and_then(|d| d.get(name));
    match flat.or(wrapped)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `GET /connect/callback/instagram`.
pub async fn callback(ctx: &Ctx<'_>, mut cur: Current, q: Callback) -> HttpResponse {
    if let Err(r) = flow::take_state(&cur.cookie, &mut cur.flow, q.state.as_deref()) {
        return web::refused(r);
    }
    let retry = dialog_url(ctx.live, &mut cur);
    let Some(code) = q.code.filter(|_| q.error.is_none()) else {
        return denied(
            ctx,
            &mut cur,
            retry,
            q.error_reason.as_deref().or(q.error.as_deref()),
        )
        .await;
    };
    let live = ctx.live;
    let ig = &live.settings.instagram;
    let Some(secret) = ig.app_secrets.first() else {
        return web::provider_failed(
            "configuration",
            &ProviderError::Unreachable("instagram.app_secrets is empty".into()),
            None,
        );
    };
    // Instagram appends `#_` to the code; a browser drops the fragment, a copy may not.
    let code = code.expose_secret().trim_end_matches("#_").to_owned();
    let redirect = redirect_uri(live);
    let exchanged = match ctx
        .oauth
        .send(
            Call::post(
                format!("{}/oauth/access_token", ig.api_base.trim_end_matches('/')),
                timeout(live),
                vec![
                    ("client_id", ig.app_id.as_str()),
                    ("client_secret", secret.expose_secret()),
                    ("grant_type", "authorization_code"),
                    ("redirect_uri", redirect.as_str()),
                    ("code", code.as_str()),
                ],
            )
            .secret(secret.expose_secret())
            .secret(&code),
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return web::provider_failed("code exchange", &e, Some(&retry)),
    };
    let (Some(short), user_id) = (
        field(&exchanged, "access_token"),
        field(&exchanged, "user_id"),
    ) else {
        return web::provider_failed(
            "code exchange",
            &ProviderError::Unreachable("no access_token".into()),
            Some(&retry),
        );
    };
    let long = match ctx
        .oauth
        .send(
            Call::get(graph(live, &["access_token"]), timeout(live))
                .query("grant_type", "ig_exchange_token")
                .secret_query("client_secret", secret.expose_secret())
                .secret_query("access_token", &short),
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return web::provider_failed("long-lived token", &e, Some(&retry)),
    };
    let Some(token) = long
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return web::provider_failed(
            "long-lived token",
            &ProviderError::Unreachable("no access_token".into()),
            Some(&retry),
        );
    };
    let expires_in = long
        .get("expires_in")
        .and_then(Value::as_i64)
        .unwrap_or(5_184_000);
    cur.flow.expires_at = Some(crate::time::format_rfc3339(
        crate::time::now_ms() / 1000 * 1000 + expires_in * 1000,
    ));
    cur.flow.token = Some(live.keyring.encrypt(token.as_bytes()));
    cur.flow.user_id = user_id;
    // A new login: the later steps run again with its token.
    cur.flow.account_id = None;
    cur.flow.username = None;
    cur.flow.subscribed = false;
    if let Err(e) = cur.save(ctx).await {
        return web::unavailable(&e);
    }
    steps(ctx, cur).await
}

/// The resume form (`POST /connect/flow/instagram/resume`).
#[derive(Deserialize)]
pub struct ResumeForm {
    #[serde(default)]
    pub form: String,
}

/// Where a failed step's "Try again" posts.
pub const RESUME_PATH: &str = "/connect/flow/instagram/resume";

/// `POST /connect/flow/instagram/resume`: the steps after the code exchange, again,
/// from the saved token (no new login while the flow lives).
pub async fn resume(ctx: &Ctx<'_>, mut cur: Current, form: ResumeForm) -> HttpResponse {
    if !flow::check_form_token(&cur.cookie, &cur.flow, &form.form) {
        return web::refused(flow::FlowRefusal::AlteredState);
    }
    if cur.flow.token.is_none() {
        let retry = dialog_url(ctx.live, &mut cur);
        if let Err(e) = cur.save(ctx).await {
            return web::unavailable(&e);
        }
        return web::page(
            StatusCode::BAD_REQUEST,
            pages::error(
                "Log in again",
                "This connect session has no Instagram login to continue from.",
                "Nothing was connected. Log in with Instagram again.",
                Some(&retry),
            ),
        );
    }
    steps(ctx, cur).await
}

/// The steps after the code exchange, each saved in the flow once done: `/me`,
/// `me/subscribed_apps`, then the channel. A failure offers to resume from here.
async fn steps(ctx: &Ctx<'_>, mut cur: Current) -> HttpResponse {
    let live = ctx.live;
    let Some(token) = cur
        .flow
        .token
        .as_ref()
        .and_then(|t| live.keyring.decrypt_token(t).ok())
    else {
        return web::refused(flow::FlowRefusal::UnknownFlow);
    };
    let form = flow::form_token(&cur.cookie, &cur.flow);
    let resume = || Retry::Resume {
        action: RESUME_PATH,
        form: &form,
        fields: &[],
    };
    let version = &live.settings.meta.graph_api_version;
    if cur.flow.account_id.is_none() {
        let me = match ctx
            .oauth
            .send(
                Call::get(graph(live, &[version, "me"]), timeout(live))
                    .query("fields", "user_id,username")
                    .bearer(&token),
            )
            .await
        {
            Ok(v) => v,
            Err(e) => return web::provider_failed_with("reading your account", &e, resume()),
        };
        let Some(account) = field(&me, "user_id")
            .filter(|id| ChannelRef::parse(ChannelKind::Instagram, id.as_str()).is_ok())
        else {
            return web::provider_failed_with(
                "reading your account",
                &ProviderError::Unreachable("no user_id".into()),
                resume(),
            );
        };
        cur.flow.account_id = Some(account);
        cur.flow.username = me
            .get("username")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Err(e) = cur.save(ctx).await {
            return web::unavailable(&e);
        }
    }
    let account = cur.flow.account_id.clone().unwrap_or_default();
    // Checked when it was read from Instagram.
    let Ok(channel) = ChannelRef::parse(ChannelKind::Instagram, account) else {
        return web::refused(flow::FlowRefusal::UnknownFlow);
    };
    match finish::is_taken(ctx.store, &cur.link, &channel).await {
        Ok(true) => {
            finish::refuse_taken(ctx.store, &cur.link, &channel).await;
            return web::taken();
        }
        Ok(false) => {}
        Err(e) => return web::unavailable(&e),
    }
    if !cur.flow.subscribed {
        if let Err(e) = ctx
            .oauth
            .send(
                Call::post(
                    graph(live, &[version, "me", "subscribed_apps"]),
                    timeout(live),
                    vec![("subscribed_fields", FIELDS)],
                )
                .query("subscribed_fields", FIELDS)
                .bearer(&token),
            )
            .await
        {
            return web::provider_failed_with("subscribing your account to webhooks", &e, resume());
        }
        cur.flow.subscribed = true;
        if let Err(e) = cur.save(ctx).await {
            return web::unavailable(&e);
        }
    }
    let mut new = NewChannel::new(channel, SecretString::from(token.expose().to_owned()));
    new.graph = Some(GRAPH_INSTAGRAM.to_owned());
    new.expires_at = cur.flow.expires_at.clone();
    new.user_id = cur.flow.user_id.clone();
    new.username = cur.flow.username.clone();
    web::finished(ctx, &mut cur, &new).await
}
