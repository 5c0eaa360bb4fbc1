//! Meta's app callbacks and the data-deletion status page:
//! `POST /meta/deauthorize`, `POST /meta/data-deletion` (form field `signed_request`)
//! and `GET /meta/data-deletion/{code}`. The work is in [`crate::privacy`].

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::body::read_limited;
use super::problem::ApiError;
use crate::live::Live;
use crate::privacy::deletion::{self, DeletionStatus};
use crate::privacy::{self, signed_request, PrivacyError, SignedRequest, SignedRequestError};
use crate::state::AppState;

/// Reads the bounded form body and verifies its `signed_request`.
async fn read_signed_request(
    req: &HttpRequest,
    payload: web::Payload,
    live: &Live,
    callback: &'static str,
) -> Result<SignedRequest, ApiError> {
    let body = read_limited(req, payload, live.settings.server.max_body_bytes).await?;
    require_form(req)?;
    let raw = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "signed_request")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| {
            ApiError::invalid_field(
                "signed_request",
                "the form field signed_request is required",
            )
        })?;
    signed_request::verify(&raw, &live.app_secrets).map_err(|e| {
        metrics::counter!("switchboard_signature_failures_total", "provider" => "meta_callback")
            .increment(1);
        tracing::warn!(error = %e, callback, stage = "receiving", "Meta callback refused.");
        signed_request_error(e)
    })
}

fn signed_request_error(e: SignedRequestError) -> ApiError {
    if e.is_unauthorized() {
        ApiError::unauthorized(e.to_string())
    } else {
        ApiError::invalid_field("signed_request", e.to_string())
    }
}

/// Refuses (415) a declared content type other than a form; an absent one is accepted.
fn require_form(req: &HttpRequest) -> Result<(), ApiError> {
    match req.headers().get(header::CONTENT_TYPE) {
        None => Ok(()),
        Some(v) => {
            let essence = v
                .to_str()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if essence == "application/x-www-form-urlencoded" {
                Ok(())
            } else {
                Err(ApiError::unsupported_media_type(
                    "the body must be application/x-www-form-urlencoded",
                ))
            }
        }
    }
}

fn privacy_error(e: PrivacyError) -> ApiError {
    match e {
        PrivacyError::NoSubject | PrivacyError::NoUserId => {
            ApiError::invalid_field("signed_request", e.to_string())
        }
        PrivacyError::Buffer(e) => {
            tracing::error!(error = %e, stage = "processing", "Retry buffer unavailable; Meta callback refused so Meta retries.");
            ApiError::unavailable("the store is unavailable; retry later")
        }
        PrivacyError::Store(e) => {
            tracing::error!(error = %e, stage = "processing", "Store unavailable; Meta callback refused so Meta retries.");
            ApiError::unavailable("the store is unavailable; retry later")
        }
    }
}

/// `POST /meta/deauthorize`: removes the tokens of the user's channels and tells their
/// tenants (`channel.deauthorized`).
pub async fn deauthorize(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    let signed = read_signed_request(&req, payload, &live, "deauthorize").await?;
    let outcome = privacy::deauthorize(&state.store, &state.dispatcher, &live, &signed)
        .await
        .map_err(privacy_error)?;
    Ok(HttpResponse::Ok().json(json!({
        "channels_removed": outcome.channels_removed,
        "tenants_notified": outcome.report.delivered + outcome.report.duplicates,
        "tenants_pending": outcome.report.buffered,
    })))
}

/// `POST /meta/data-deletion`: purges what the relay holds for the user and answers
/// Meta's `{"url", "confirmation_code"}`.
pub async fn data_deletion(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    let signed = read_signed_request(&req, payload, &live, "data_deletion").await?;
    let outcome = deletion::delete_user_data(&state.store, &state.dispatcher, &live, &signed)
        .await
        .map_err(privacy_error)?;
    let url = deletion::status_url(&live, &outcome.confirmation_code);
    Ok(HttpResponse::Ok().json(json!({
        "url": url,
        "confirmation_code": outcome.confirmation_code,
    })))
}

/// `GET /meta/data-deletion/{code}`: the status, as a small HTML page or (with
/// `Accept: application/json`) JSON. Unknown or expired → 404.
pub async fn deletion_status(
    req: HttpRequest,
    code: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let code = code.into_inner();
    let status = deletion::deletion_status(&state.store, &code)
        .await
        .map_err(|e| privacy_error(PrivacyError::Store(e)))?
        .ok_or_else(|| ApiError::not_found("no deletion request with this code (or it expired)"))?;
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("x-robots-tag", "noindex"));
    if wants_json {
        return Ok(resp.json(json!({
            "confirmation_code": code,
            "status": status.status,
            "requested_at": status.requested_at,
            "completed_at": status.completed_at,
            "channels_removed": status.channels_removed,
            "buffered_events_removed": status.buffered_events_removed,
            "idempotency_records_removed": status.idempotency_records_removed,
            "tenants_notified": status.tenants_notified,
            "tenants_pending": status.tenants_pending,
            "tenants_not_reached": status.tenants_not_reached,
        })));
    }
    Ok(resp
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'",
        ))
        .body(render_page(&code, &status)))
}

/// Escapes text for HTML.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The status page: a checked code, counts and times (escaped all the same: the record
/// comes from a store others may write).
fn render_page(code: &str, s: &DeletionStatus) -> String {
    let asked = s.tenants_notified + s.tenants_pending;
    let notified = if asked + s.tenants_not_reached == 0 {
        "The relay held no channel connected by you, so no business had to be asked.".to_owned()
    } else {
        let mut text = format!(
            "{asked} business system(s) that received your conversations were asked to delete them"
        );
        if s.tenants_pending > 0 {
            text.push_str(&format!(
                " ({} of them will receive the request as soon as they are reachable)",
                s.tenants_pending
            ));
        }
        if s.tenants_not_reached > 0 {
            text.push_str(&format!("; {} could not be reached", s.tenants_not_reached));
        }
        text.push('.');
        text
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Data deletion request</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}code{{background:#eee;padding:.1rem .3rem}}</style>
</head><body>
<h1>Data deletion request</h1>
<p>Confirmation code: <code>{code}</code></p>
<p>Status: <strong>{status}</strong> (requested {requested}, completed {completed}).</p>
<p>This relay passes messages on and does not keep their content. It has deleted what it held about you:
{channels} connected channel(s) with their access tokens, {buffered} undelivered message(s) waiting for retry, and {idem} record(s) of sent replies.</p>
<p>{notified}</p>
</body></html>
"#,
        code = escape(code),
        status = escape(&s.status),
        requested = escape(&s.requested_at),
        completed = escape(&s.completed_at),
        channels = s.channels_removed,
        buffered = s.buffered_events_removed,
        idem = s.idempotency_records_removed,
    )
}
