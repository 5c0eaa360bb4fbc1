//! The connect pages' routes (HTML; the WhatsApp page's own JSON calls): opening a
//! link, the forms, Meta's OAuth callbacks, the done page, the relay's own script.

use actix_web::http::header::{HeaderValue, SET_COOKIE};
use actix_web::http::StatusCode;
use actix_web::{web as aweb, HttpRequest, HttpResponse};

use crate::channels::ChannelKind;
use crate::connect::web::{self, Ctx, Current};
use crate::connect::{flow, instagram, links, messenger, pages, telegram, whatsapp};
use crate::state::AppState;

fn ctx<'a>(state: &'a AppState, live: &'a crate::live::Live) -> Ctx<'a> {
    Ctx {
        store: &state.store,
        dispatcher: &state.dispatcher,
        live,
        oauth: &state.connect,
        telegram: &state.providers.telegram,
    }
}

/// Runs `step` on the request's flow when it is one of `kind`; another kind's flow is
/// refused with `wrong`, a missing or ended one with its own page.
async fn in_flow(
    req: &HttpRequest,
    state: &AppState,
    kind: ChannelKind,
    wrong: flow::FlowRefusal,
    step: impl AsyncFnOnce(&Ctx<'_>, Current) -> HttpResponse,
) -> HttpResponse {
    let live = state.live.load_full();
    let c = ctx(state, &live);
    match web::usable(&c, req).await {
        Ok(cur) if cur.link.kind == kind => step(&c, cur).await,
        Ok(_) => web::refused(wrong),
        Err(resp) => resp,
    }
}

/// `GET /connect/{secret}`: the connect page of the link's kind; a fresh flow cookie.
pub async fn open_link(path: aweb::Path<String>, state: aweb::Data<AppState>) -> HttpResponse {
    let live = state.live.load_full();
    let c = ctx(&state, &live);
    let link = match links::by_secret(c.store, &path.into_inner()).await {
        Ok(Some(l)) if l.is_usable() => l,
        Ok(other) => return web::link_unusable(other.as_ref()),
        Err(links::LinkError::Store(e)) => return web::unavailable(&e),
        Err(_) => return web::link_unusable(None),
    };
    let (cookie, flow_record) = match flow::start(c.store, c.live, &link).await {
        Ok(f) => f,
        Err(e) => return web::unavailable(&e),
    };
    let set_cookie = flow::set_cookie(c.live, &link, &cookie);
    let cur = Current {
        cookie,
        flow: flow_record,
        link,
    };
    let mut resp = match cur.link.kind {
        ChannelKind::Telegram => telegram::page(&cur),
        ChannelKind::Messenger => messenger::page(&c, cur).await,
        ChannelKind::Instagram => instagram::page(&c, cur).await,
        ChannelKind::Whatsapp => whatsapp::page(&c, &cur),
    };
    if let Ok(v) = HeaderValue::from_str(&set_cookie) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
    resp
}

/// `POST /connect/flow/telegram`.
pub async fn telegram_submit(
    req: HttpRequest,
    form: aweb::Form<telegram::TokenForm>,
    state: aweb::Data<AppState>,
) -> HttpResponse {
    let step = async |c: &Ctx<'_>, cur| telegram::submit(c, cur, form.into_inner()).await;
    in_flow(
        &req,
        &state,
        ChannelKind::Telegram,
        flow::FlowRefusal::UnknownFlow,
        step,
    )
    .await
}

/// `GET /connect/callback/facebook`.
pub async fn facebook_callback(
    req: HttpRequest,
    query: aweb::Query<messenger::Callback>,
    state: aweb::Data<AppState>,
) -> HttpResponse {
    let step = async |c: &Ctx<'_>, cur| messenger::callback(c, cur, query.into_inner()).await;
    in_flow(
        &req,
        &state,
        ChannelKind::Messenger,
        flow::FlowRefusal::ForeignState,
        step,
    )
    .await
}

/// `POST /connect/flow/messenger/page`.
pub async fn messenger_pick(
    req: HttpRequest,
    form: aweb::Form<messenger::PickForm>,
    state: aweb::Data<AppState>,
) -> HttpResponse {
    let step = async |c: &Ctx<'_>, cur| messenger::pick(c, cur, form.into_inner()).await;
    in_flow(
        &req,
        &state,
        ChannelKind::Messenger,
        flow::FlowRefusal::UnknownFlow,
        step,
    )
    .await
}

/// `GET /connect/callback/instagram`.
pub async fn instagram_callback(
    req: HttpRequest,
    query: aweb::Query<messenger::Callback>,
    state: aweb::Data<AppState>,
) -> HttpResponse {
    let step = async |c: &Ctx<'_>, cur| instagram::callback(c, cur, query.into_inner()).await;
    in_flow(
        &req,
        &state,
        ChannelKind::Instagram,
        flow::FlowRefusal::ForeignState,
        step,
    )
    .await
}

/// `POST /connect/flow/instagram/resume`: "Try again" after a failed step.
pub async fn instagram_resume(
    req: HttpRequest,
    form: aweb::Form<instagram::ResumeForm>,
    state: aweb::Data<AppState>,
) -> HttpResponse {
    let step = async |c: &Ctx<'_>, cur| instagram::resume(c, cur, form.into_inner()).await;
    in_flow(
        &req,
        &state,
        ChannelKind::Instagram,
        flow::FlowRefusal::UnknownFlow,
        step,
    )
    .await
}

/// `POST /connect/flow/whatsapp` (JSON, from the page's script).
pub async fn whatsapp_complete(
    req: HttpRequest,
    body: aweb::Json<whatsapp::Complete>,
    state: aweb::Data<AppState>,
) -> HttpResponse {
    let live = state.live.load_full();
    let c = ctx(&state, &live);
    match web::usable(&c, &req).await {
        Ok(cur) if cur.link.kind == ChannelKind::Whatsapp => {
            whatsapp::complete(&c, cur, body.into_inner()).await
        }
        Ok(_) => whatsapp::json_error(
            StatusCode::BAD_REQUEST,
            "This session is not a WhatsApp connection.",
        ),
        Err(_) => whatsapp::json_error(
            StatusCode::BAD_REQUEST,
            "This connect session has ended. Open the connect link again.",
        ),
    }
}

/// `POST /connect/flow/whatsapp/cancel`: the person gave up.
pub async fn whatsapp_cancel(
    req: HttpRequest,
    body: aweb::Json<whatsapp::Cancel>,
    state: aweb::Data<AppState>,
) -> HttpResponse {
    let live = state.live.load_full();
    let c = ctx(&state, &live);
    match web::usable(&c, &req).await {
        Ok(cur) if cur.link.kind == ChannelKind::Whatsapp => {
            whatsapp::cancel(&c, cur, body.into_inner()).await
        }
        _ => whatsapp::json_error(StatusCode::BAD_REQUEST, "This connect session has ended."),
    }
}

/// `GET /connect/flow/done`: the done page of a connected flow.
pub async fn done(req: HttpRequest, state: aweb::Data<AppState>) -> HttpResponse {
    let live = state.live.load_full();
    let c = ctx(&state, &live);
    match web::current(&c, &req).await {
        Ok(cur) if cur.flow.done.is_some() => web::done(&c, &cur),
        Ok(cur) => web::link_unusable(Some(&cur.link)),
        Err(resp) => resp,
    }
}

/// `GET /connect/flow/ended`: the page after giving up.
pub async fn ended() -> HttpResponse {
    web::page(
        StatusCode::OK,
        pages::error(
            "Nothing was connected",
            "You stopped before the end, so nothing was connected.",
            "You can open the connect link again while it is valid.",
            None,
        ),
    )
}

/// `GET /connect/assets/whatsapp.js`: the relay's own script.
pub async fn whatsapp_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(pages::WHATSAPP_JS)
}

/// Registers the routes.
pub fn routes(cfg: &mut aweb::ServiceConfig) {
    cfg.route(
        "/connect/callback/facebook",
        aweb::get().to(facebook_callback),
    )
    .route(
        "/connect/callback/instagram",
        aweb::get().to(instagram_callback),
    )
    .route("/connect/flow/telegram", aweb::post().to(telegram_submit))
    .route(
        "/connect/flow/messenger/page",
        aweb::post().to(messenger_pick),
    )
    .route(instagram::RESUME_PATH, aweb::post().to(instagram_resume))
    .route("/connect/flow/whatsapp", aweb::post().to(whatsapp_complete))
    .route(
        "/connect/flow/whatsapp/cancel",
        aweb::post().to(whatsapp_cancel),
    )
    .route("/connect/flow/done", aweb::get().to(done))
    .route("/connect/flow/ended", aweb::get().to(ended))
    .route("/connect/assets/whatsapp.js", aweb::get().to(whatsapp_js))
    .route("/connect/{secret}", aweb::get().to(open_link));
}
