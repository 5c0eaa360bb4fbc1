//! What every connect page handler shares: the parts of the app state a flow uses, the
//! flow cookie read from the request, the link checks, and the error pages.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use secrecy::SecretString;

use super::flow::{self, Flow, FlowRefusal, LoadError};
use super::links::{self, Link, LinkStatus};
use super::pages::{self, Retry};
use super::provider::{OAuthClient, ProviderError};
use crate::channels::telegram::outbound::TelegramClient;
use crate::delivery::Dispatcher;
use crate::live::Live;
use crate::store::{Store, StoreError};

/// What a flow needs.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub dispatcher: &'a Dispatcher,
    pub live: &'a Live,
    pub oauth: &'a OAuthClient,
    pub telegram: &'a TelegramClient,
}

/// A flow in progress: its cookie, record and link.
pub struct Current {
    pub cookie: SecretString,
    pub flow: Flow,
    pub link: Link,
}

impl Current {
    pub async fn save(&self, ctx: &Ctx<'_>) -> Result<(), StoreError> {
        flow::save(ctx.store, ctx.live, &self.link, &self.cookie, &self.flow).await
    }
}

/// A page answer.
pub fn page(status: StatusCode, markup: maud::Markup) -> HttpResponse {
    pages::respond(status, markup, "", "")
}

/// The flow cookie of a request.
pub fn cookie_of(req: &HttpRequest) -> Option<SecretString> {
    let header = req
        .headers()
        .get(actix_web::http::header::COOKIE)?
        .to_str()
        .ok()?;
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == flow::COOKIE)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .map(SecretString::from)
}

/// The page for a link that cannot be used.
pub fn link_unusable(link: Option<&Link>) -> HttpResponse {
    let (status, title, what) = match link.map(Link::status_now) {
        None => (
            StatusCode::NOT_FOUND,
            "Link not found",
            "This connect link is not valid.",
        ),
        Some(LinkStatus::Connected) => (
            StatusCode::GONE,
            "Link already used",
            "This connect link was already used to connect a channel.",
        ),
        Some(LinkStatus::Revoked) => (
            StatusCode::GONE,
            "Link revoked",
            "This connect link was withdrawn.",
        ),
        Some(_) => (
            StatusCode::GONE,
            "Link expired",
            "This connect link has expired.",
        ),
    };
    page(
        status,
        pages::error(
            title,
            what,
            "Ask for a new link where you got this one (in your CRM's channel settings).",
            None,
        ),
    )
}

/// The page for a refused callback or form: nothing was stored.
pub fn refused(r: FlowRefusal) -> HttpResponse {
    let what = match r {
        FlowRefusal::NoCookie | FlowRefusal::UnknownFlow => {
            "This page was opened without the connect session it belongs to (a different browser, cookies blocked, or the session ended)."
        }
        _ => "The answer from the login page does not match this connect session, so it was not accepted.",
    };
    tracing::warn!(reason = %r, stage = "receiving", "Connect callback refused.");
    page(
        StatusCode::BAD_REQUEST,
        pages::error(
            "Could not continue",
            what,
            "Nothing was connected. Open the connect link again, in this browser, and start over.",
            None,
        ),
    )
}

/// The page for a store that cannot be reached.
pub fn unavailable(e: &StoreError) -> HttpResponse {
    tracing::error!(error = %e, "Connect page: store unavailable.");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::error(
            "Temporarily unavailable",
            "The relay cannot reach its storage right now.",
            "Nothing was connected. Wait a minute and try again.",
            None,
        ),
    )
}

/// The page for a provider step that failed; `retry` is a link to start again.
pub fn provider_failed(step: &str, e: &ProviderError, retry: Option<&str>) -> HttpResponse {
    provider_failed_with(step, e, retry.map_or(Retry::None, Retry::Link))
}

/// The page for a provider step that failed, offering `retry`.
pub fn provider_failed_with(step: &str, e: &ProviderError, retry: Retry<'_>) -> HttpResponse {
    tracing::warn!(error = %e, step, "Connect flow: provider step failed.");
    let what = match e {
        ProviderError::Refused { .. } => format!("Meta refused a step ({step}): {e}."),
        ProviderError::Unreachable(_) => format!("The provider could not be reached ({step})."),
    };
    let todo = match retry {
        Retry::Resume { .. } => "Nothing was connected yet. Try again: the steps already done are kept, so you will not have to log in again.",
        _ => "Nothing was connected. Try again; if it keeps failing, check the permissions you granted.",
    };
    page(
        StatusCode::BAD_GATEWAY,
        pages::error_with("Something went wrong", &what, todo, retry),
    )
}

/// The page for a channel another tenant owns.
pub fn taken() -> HttpResponse {
    page(
        StatusCode::CONFLICT,
        pages::error(
            "Already connected elsewhere",
            "This account is already connected to another organisation on this relay, so it was not taken over.",
            "Disconnect it there first, or connect another account.",
            None,
        ),
    )
}

/// Loads the flow of a request and its link (which must still be usable).
pub async fn current(ctx: &Ctx<'_>, req: &HttpRequest) -> Result<Current, HttpResponse> {
    let cookie = cookie_of(req);
    let flow = match flow::load(ctx.store, cookie.as_ref()).await {
        Ok(f) => f,
        Err(LoadError::Refused(r)) => return Err(refused(r)),
        Err(LoadError::Store(e)) => return Err(unavailable(&e)),
    };
    let cookie = cookie.ok_or_else(|| refused(FlowRefusal::NoCookie))?;
    let link = match links::load(ctx.store, &flow.link_id).await {
        Ok(Some(l)) => l,
        Ok(None) => return Err(link_unusable(None)),
        Err(links::LinkError::Store(e)) => return Err(unavailable(&e)),
        Err(_) => return Err(link_unusable(None)),
    };
    Ok(Current { cookie, flow, link })
}

/// Like [`current`], and the link must still be usable.
pub async fn usable(ctx: &Ctx<'_>, req: &HttpRequest) -> Result<Current, HttpResponse> {
    let cur = current(ctx, req).await?;
    if !cur.link.is_usable() {
        return Err(link_unusable(Some(&cur.link)));
    }
    Ok(cur)
}

/// The done page, ending the flow's cookie.
pub fn done(ctx: &Ctx<'_>, cur: &Current) -> HttpResponse {
    let label = cur.flow.done.clone().unwrap_or_default();
    let mut resp = page(
        StatusCode::OK,
        pages::done(cur.link.kind, &label, cur.link.return_url.as_deref()),
    );
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&flow::clear_cookie(ctx.live)) {
        resp.headers_mut()
            .append(actix_web::http::header::SET_COOKIE, v);
    }
    resp
}

/// The result of [`super::finish::complete`] as a page.
pub async fn finished(
    ctx: &Ctx<'_>,
    cur: &mut Current,
    new: &super::finish::NewChannel,
) -> HttpResponse {
    use super::finish::{complete, FinishError};
    match complete(ctx.store, ctx.dispatcher, ctx.live, &cur.link, new).await {
        Ok(()) => {
            cur.flow.done = Some(new.label());
            cur.flow.pages.clear();
            cur.flow.token = None;
            if let Err(e) = cur.save(ctx).await {
                tracing::warn!(error = %e, "Connect flow not saved after connecting.");
            }
            done(ctx, cur)
        }
        Err(FinishError::Taken(_)) => taken(),
        Err(FinishError::LinkUsed) => link_unusable(Some(&Link {
            status: LinkStatus::Connected,
            ..cur.link.clone()
        })),
        Err(FinishError::Store(e)) => unavailable(&e),
    }
}
