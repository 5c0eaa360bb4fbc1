//! The admin API of the retry buffer and its dead-letter list (`Authorization: Bearer
//! <admin token>`): `GET /admin/v1/dead-letters`, `GET|DELETE
//! /admin/v1/dead-letters/{id}`, `POST /admin/v1/dead-letters/{id}/redrive`, `POST
//! /admin/v1/dead-letters/redrive` (many) and `GET /admin/v1/buffer/stats`. Ids,
//! tenant, type, attempts and ages only, never content; the work is in
//! [`crate::delivery::dead_letter::tools`], shared with `switchboard buffer …`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::admin::{authorize, store_error};
use super::problem::{ApiError, ErrorCode};
use crate::delivery::dead_letter::tools::{self, ToolError, DEFAULT_LIMIT, MAX_LIMIT};
use crate::state::AppState;

fn tool_error(e: ToolError) -> ApiError {
    match e {
        ToolError::NotFound(id) => ApiError::not_found(format!("no dead letter has the id {id}")),
        e @ ToolError::TenantNotConfigured { .. } => {
            ApiError::new(StatusCode::CONFLICT, ErrorCode::InvalidRequest, "Conflict")
                .with_detail(format!("{e}; configure it to redrive, or drop the event"))
        }
        e @ ToolError::BufferFull { .. } => {
            ApiError::unavailable(format!("{e}; retry once the buffer drains"))
        }
        ToolError::Store(e) => store_error(e),
        ToolError::Buffer(e) => {
            tracing::error!(error = %e, "Admin request failed: retry buffer unavailable.");
            ApiError::unavailable("the retry buffer is unavailable; retry later")
        }
    }
}

/// `?tenant=…&limit=…` of the list and the bulk redrive.
#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

impl ListQuery {
    fn limit(&self) -> Result<usize, ApiError> {
        match self.limit.as_deref() {
            None => Ok(DEFAULT_LIMIT),
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(ApiError::invalid_field(
                    "limit",
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                )),
            },
        }
    }

    fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref().filter(|t| !t.is_empty())
    }
}

/// `GET /admin/v1/dead-letters`: oldest given up first.
pub async fn list(
    req: HttpRequest,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    authorize(&req, &live)?;
    let limit = query.limit()?;
    let found = tools::list(&state.dispatcher, &live, query.tenant(), limit)
        .await
        .map_err(tool_error)?;
    Ok(HttpResponse::Ok().json(found))
}

/// `GET /admin/v1/dead-letters/{id}`.
pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    authorize(&req, &live)?;
    let view = tools::get(&state.dispatcher, &path)
        .await
        .map_err(tool_error)?;
    Ok(HttpResponse::Ok().json(view))
}

/// `POST /admin/v1/dead-letters/{id}/redrive`: back into the retry buffer.
pub async fn redrive(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    authorize(&req, &live)?;
    let report = tools::redrive(&state.dispatcher, &live, &path)
        .await
        .map_err(tool_error)?;
    Ok(HttpResponse::Ok().json(report))
}

/// `POST /admin/v1/dead-letters/redrive?tenant=…&limit=…`: up to `limit` at once.
pub async fn redrive_many(
    req: HttpRequest,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    authorize(&req, &live)?;
    let limit = query.limit()?;
    let reports = tools::redrive_all(&state.dispatcher, &live, query.tenant(), limit)
        .await
        .map_err(tool_error)?;
    Ok(HttpResponse::Ok().json(json!({"count": reports.len(), "redriven": reports})))
}

/// `DELETE /admin/v1/dead-letters/{id}`: 204, or 404.
pub async fn drop(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    authorize(&req, &live)?;
    tools::drop(&state.dispatcher, &path)
        .await
        .map_err(tool_error)?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /admin/v1/buffer/stats`: depth, oldest age and dead letters per tenant.
pub async fn stats(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    authorize(&req, &live)?;
    let stats = tools::stats(&state.dispatcher, &live)
        .await
        .map_err(tool_error)?;
    Ok(HttpResponse::Ok().json(stats))
}
