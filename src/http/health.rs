//! `/healthz` (the process answers), `/readyz` (store reachable, config loaded) and
//! `/metrics` (Prometheus text; behind `Authorization: Bearer <metrics.token>` when set).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::auth::bearer;
use super::problem::ApiError;
use crate::state::AppState;
use crate::store::StoreBackend;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready", "store": "ok"})),
        Err(e) => {
            tracing::warn!(error = %e, "Not ready: the store is unreachable.");
            HttpResponse::ServiceUnavailable()
                .json(json!({"status": "unavailable", "store": "unreachable"}))
        }
    }
}

pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !state.live.load().may_read_metrics(bearer(&req)) {
        tracing::warn!("Metrics request without the metrics token refused.");
        return Err(ApiError::unauthorized(
            "an `Authorization: Bearer <metrics token>` header is required",
        ));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render()))
}
