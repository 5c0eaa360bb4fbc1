//! Messenger via Facebook Login: the dialog (`config_id` when set, else the scope
//! list), the code exchange, the long-lived token, `/me`, `/me/accounts`; a picker when
//! several Pages; `subscribed_apps` with the full field list, read back; then
//! `messenger:{page_id}` with the Page token. The Pages (tokens encrypted) and the
//! user id are kept in the flow, so a failed subscribe or read-back is retried from
//! there ("Try again" posts the Page again), without a new login.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use super::finish::{self, NewChannel};
use super::flow::{self, PageChoice};
use super::pages::{self, Retry};
use super::provider::{Call, ProviderError};
use super::web::{self, Ctx, Current};
use crate::channels::{ChannelKind, ChannelRef};
use crate::live::Live;
use crate::vault::AccessToken;

/// The classic login's permissions (without a Login for Business configuration).
pub const SCOPE: &str = "pages_show_list,pages_messaging,pages_manage_metadata,pages_read_engagement,business_management";
/// The Page webhook fields subscribed (and checked on read-back).
pub const FIELDS: &str = "messages,messaging_postbacks,message_reactions,message_reads,message_deliveries,messaging_optins,messaging_referrals,message_edits,message_echoes";

/// The OAuth redirect URI registered in the Meta app.
pub fn redirect_uri(live: &Live) -> String {
    format!("{}/connect/callback/facebook", live.public_url)
}

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

/// The login dialog URL, with a fresh state.
pub fn dialog_url(live: &Live, cur: &mut Current) -> String {
    let state = flow::new_state(&cur.cookie, &mut cur.flow);
    let m = &live.settings.meta;
    let mut u = match url::Url::parse(&format!(
        "{}/{}/dialog/oauth",
        m.oauth_dialog_base.trim_end_matches('/'),
        m.graph_api_version
    )) {
        Ok(u) => u,
        Err(_) => return String::new(),
    };
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("client_id", &m.app_id)
            .append_pair("redirect_uri", &redirect_uri(live))
            .append_pair("response_type", "code")
            .append_pair("state", &state);
        if m.login_config_id.is_empty() {
            q.append_pair("scope", SCOPE);
        } else {
            q.append_pair("config_id", &m.login_config_id)
                .append_pair("override_default_response_type", "true");
        }
    }
    u.into()
}

/// The first page of a fresh flow.
pub async fn page(ctx: &Ctx<'_>, mut cur: Current) -> HttpResponse {
    let url = dialog_url(ctx.live, &mut cur);
    if let Err(e) = cur.save(ctx).await {
        return web::unavailable(&e);
    }
    web::page(StatusCode::OK, pages::login(ChannelKind::Messenger, &url))
}

/// The callback's query.
#[derive(Deserialize)]
pub struct Callback {
    pub code: Option<SecretString>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_reason: Option<String>,
}

/// A denied login: nothing stored, the person may try again.
pub async fn denied(
    ctx: &Ctx<'_>,
    cur: &mut Current,
    retry: String,
    reason: Option<&str>,
) -> HttpResponse {
    if let Err(e) = cur.save(ctx).await {
        return web::unavailable(&e);
    }
    tracing::info!(connect_link = %cur.link.id, reason = reason.unwrap_or("unknown"), "Connect: login not granted.");
    web::page(
        StatusCode::BAD_REQUEST,
        pages::error(
            "Login cancelled",
            "The login was cancelled or the permissions were not granted, so nothing was connected.",
            "Try again and allow every permission asked for: the relay needs them to receive and send your messages.",
            Some(&retry),
        ),
    )
}

/// `GET /connect/callback/facebook`.
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
    let m = &live.settings.meta;
    let Some(app_secret) = m.app_secrets.first() else {
        return web::provider_failed(
            "configuration",
            &ProviderError::Unreachable("meta.app_secrets is empty".into()),
            None,
        );
    };
    let redirect = redirect_uri(live);
    let short = match ctx
        .oauth
        .send(
            Call::get(graph(live, &["oauth", "access_token"]), timeout(live))
                .query("client_id", &m.app_id)
                .secret_query("client_secret", app_secret.expose_secret())
                .query("redirect_uri", &redirect)
                .secret_query("code", code.expose_secret()),
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return web::provider_failed("code exchange", &e, Some(&retry)),
    };
    let Some(short) = short
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return web::provider_failed(
            "code exchange",
            &ProviderError::Unreachable("no access_token".into()),
            Some(&retry),
        );
    };
    let long = match ctx
        .oauth
        .send(
            Call::get(graph(live, &["oauth", "access_token"]), timeout(live))
                .query("grant_type", "fb_exchange_token")
                .query("client_id", &m.app_id)
                .secret_query("client_secret", app_secret.expose_secret())
                .secret_query("fb_exchange_token", &short),
        )
        .await
    {
        Ok(v) => v
            .get("access_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or(short),
        Err(e) => return web::provider_failed("long-lived token", &e, Some(&retry)),
    };
    let user_token = AccessToken::new(long);
    let me = match ctx
        .oauth
        .send(
            Call::get(graph(live, &["me"]), timeout(live))
                .query("fields", "id,name")
                .bearer(&user_token),
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return web::provider_failed("reading who logged in", &e, Some(&retry)),
    };
    let accounts = match ctx
        .oauth
        .send(
            Call::get(graph(live, &["me", "accounts"]), timeout(live))
                .query("fields", "id,name,access_token")
                .query("limit", "100")
                .bearer(&user_token),
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return web::provider_failed("listing your Pages", &e, Some(&retry)),
    };
    cur.flow.user_id = me.get("id").and_then(Value::as_str).map(str::to_owned);
    cur.flow.pages = accounts
        .get("data")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    let id = p.get("id")?.as_str()?;
                    let token = p.get("access_token")?.as_str()?;
                    ChannelRef::parse(ChannelKind::Messenger, id)
                        .ok()
                        .map(|_| PageChoice {
                            id: id.to_owned(),
                            name: p
                                .get("name")
                                .and_then(Value::as_str)
                                .unwrap_or(id)
                                .to_owned(),
                            token: live.keyring.encrypt(token.as_bytes()),
                        })
                })
                .collect()
        })
        .unwrap_or_default();
    if let Err(e) = cur.save(ctx).await {
        return web::unavailable(&e);
    }
    match cur.flow.pages.len() {
        0 => web::page(
            StatusCode::BAD_REQUEST,
            pages::error(
                "No Page found",
                "Your Facebook account did not give access to any Page, so nothing was connected.",
                "Try again and select the Page to connect when Facebook asks which Pages to allow.",
                Some(&retry),
            ),
        ),
        1 => {
            let id = cur.flow.pages[0].id.clone();
            connect_page(ctx, cur, &id).await
        }
        _ => picker(&cur),
    }
}

fn picker(cur: &Current) -> HttpResponse {
    let choices: Vec<(String, String)> = cur
        .flow
        .pages
        .iter()
        .map(|p| (p.id.clone(), p.name.clone()))
        .collect();
    web::page(
        StatusCode::OK,
        pages::page_picker(&flow::form_token(&cur.cookie, &cur.flow), &choices),
    )
}

/// Where the picker (and a failed Page step's "Try again") posts.
pub const PICK_PATH: &str = "/connect/flow/messenger/page";

/// The picker's form.
#[derive(Deserialize)]
pub struct PickForm {
    #[serde(default)]
    pub form: String,
    #[serde(default)]
    pub page_id: String,
}

/// `POST /connect/flow/messenger/page`.
pub async fn pick(ctx: &Ctx<'_>, cur: Current, form: PickForm) -> HttpResponse {
    if !flow::check_form_token(&cur.cookie, &cur.flow, &form.form) {
        return web::refused(flow::FlowRefusal::AlteredState);
    }
    if !cur.flow.pages.iter().any(|p| p.id == form.page_id) {
        return web::page(
            StatusCode::BAD_REQUEST,
            pages::error(
                "Unknown Page",
                "That Page was not among those you gave access to.",
                "Pick one of the listed Pages.",
                None,
            ),
        );
    }
    connect_page(ctx, cur, &form.page_id.clone()).await
}

async fn connect_page(ctx: &Ctx<'_>, mut cur: Current, page_id: &str) -> HttpResponse {
    let live = ctx.live;
    let Some(choice) = cur.flow.pages.iter().find(|p| p.id == page_id).cloned() else {
        return web::refused(flow::FlowRefusal::UnknownFlow);
    };
    // A stored choice was parsed when the Pages were listed.
    let Ok(channel) = ChannelRef::parse(ChannelKind::Messenger, page_id) else {
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
    let Ok(page_token) = live.keyring.decrypt_token(&choice.token) else {
        return web::refused(flow::FlowRefusal::UnknownFlow);
    };
    // A failure below offers to resume with the same Page (the saved Page token), no
    // new login: subscribing is idempotent, and the read-back runs again after it.
    let form = flow::form_token(&cur.cookie, &cur.flow);
    let fields = [("page_id", page_id)];
    let resume = || Retry::Resume {
        action: PICK_PATH,
        form: &form,
        fields: &fields,
    };
    let path = graph(live, &[channel.id(), "subscribed_apps"]);
    if let Err(e) = ctx
        .oauth
        .send(
            Call::post(
                path.clone(),
                timeout(live),
                vec![("subscribed_fields", FIELDS)],
            )
            .query("subscribed_fields", FIELDS)
            .bearer(&page_token),
        )
        .await
    {
        return web::provider_failed_with("subscribing the Page to webhooks", &e, resume());
    }
    match ctx
        .oauth
        .send(Call::get(path, timeout(live)).bearer(&page_token))
        .await
    {
        Ok(v) if subscription_complete(&v, &live.settings.meta.app_id) => {}
        Ok(_) => {
            return web::provider_failed_with(
                "checking the Page's webhook subscription",
                &ProviderError::Refused {
                    status: 200,
                    code: None,
                    message: "the Page does not list the relay's app with every field".into(),
                },
                resume(),
            )
        }
        Err(e) => {
            return web::provider_failed_with(
                "checking the Page's webhook subscription",
                &e,
                resume(),
            )
        }
    }
    let mut new = NewChannel::new(channel, SecretString::from(page_token.expose().to_owned()));
    new.user_id = cur.flow.user_id.clone();
    new.name = Some(choice.name.clone());
    web::finished(ctx, &mut cur, &new).await
}

/// Whether `GET /{page}/subscribed_apps` lists the app (when `app_id` is set) with
/// every field.
pub fn subscription_complete(v: &Value, app_id: &str) -> bool {
    v.get("data").and_then(Value::as_array).is_some_and(|apps| {
        apps.iter().any(|a| {
            let app_ok = app_id.is_empty() || a.get("id").and_then(Value::as_str) == Some(app_id);
            let fields: Vec<&str> = a
                .get("subscribed_fields")
                .and_then(Value::as_array)
                .map(|f| f.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            app_ok
                && FIELDS
                    .split(',')
                    .filter(|f| *f != "message_echoes")
                    .all(|f| fields.contains(&f))
        })
    })
}
