//! `POST/GET/DELETE /v1/connect-links`: a CRM asks for a connect link, reads how it
//! went, or revokes it (tenant API key; another tenant's link is 404).

use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::bearer;
use super::body::{parse_json, read_limited, require_json};
use super::problem::ApiError;
use crate::connect::links::{self, CreateLink, LinkError};
use crate::live::Live;
use crate::state::AppState;
use crate::tenant::Tenant;

fn tenant(req: &HttpRequest, live: &Live) -> Result<std::sync::Arc<Tenant>, ApiError> {
    bearer(req)
        .and_then(|k| live.tenant_for_api_key(k))
        .ok_or_else(|| {
            ApiError::unauthorized("send `Authorization: Bearer <api key>` with a tenant's API key")
        })
}

fn link_error(e: LinkError) -> ApiError {
    match e {
        LinkError::Invalid { field, message } => {
            ApiError::invalid_field(field, format!("{field}: {message}"))
        }
        LinkError::NotFound => ApiError::not_found("no such connect link"),
        LinkError::Store(e) => {
            tracing::warn!(error = %e, "Connect link store call failed.");
            ApiError::unavailable("the store is unavailable; retry later")
        }
        LinkError::Corrupt(e) => {
            tracing::error!(error = %e, "A stored connect link is unreadable.");
            ApiError::internal()
        }
    }
}

/// `POST /v1/connect-links` → 201 with the link and its URL.
pub async fn create_link(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    let tenant = tenant(&req, &live)?;
    let body = read_limited(&req, payload, live.settings.server.max_body_bytes).await?;
    require_json(&req)?;
    let parsed: CreateLink = parse_json(
        &body,
        "{\"kind\", \"return_url\"?, \"external_ref\"?, \"expires_in_s\"?}",
        &[],
    )?;
    let view = links::create(&state.store, &live, &tenant.id, parsed)
        .await
        .map_err(link_error)?;
    Ok(HttpResponse::Created().json(view))
}

/// `GET /v1/connect-links/{id}`.
pub async fn get_link(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    let tenant = tenant(&req, &live)?;
    let link = links::get(&state.store, &tenant.id, &path.into_inner())
        .await
        .map_err(link_error)?;
    Ok(HttpResponse::Ok().json(link.view()))
}

/// `DELETE /v1/connect-links/{id}` → 204.
pub async fn delete_link(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    let tenant = tenant(&req, &live)?;
    links::revoke(&state.store, &tenant.id, &path.into_inner())
        .await
        .map_err(link_error)?;
    Ok(HttpResponse::NoContent().finish())
}
