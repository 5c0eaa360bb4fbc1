//! HTTP routes only: each handler parses, calls the module that does the work, and
//! answers. Errors are [`problem::ApiError`] (problem+json).

pub mod admin;
pub mod auth;
pub mod body;
pub mod connect_links;
pub mod connect_pages;
pub mod dead_letters;
pub mod deadline;
pub mod health;
pub mod media;
pub mod privacy;
pub mod problem;
pub mod replies;
pub mod telegram;
pub mod webhooks;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{web, Error, HttpResponse};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

pub use problem::{ApiError, ErrorCode};

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    connect_pages::routes(cfg);
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/webhooks/meta", web::get().to(webhooks::meta_handshake))
        .route("/webhooks/meta", web::post().to(webhooks::meta_webhook))
        .route(
            "/webhooks/telegram/{bot_id}",
            web::post().to(telegram::telegram_webhook),
        )
        .route("/v1/messages", web::post().to(replies::send_message))
        .route(
            "/v1/connect-links",
            web::post().to(connect_links::create_link),
        )
        .route(
            "/v1/connect-links/{id}",
            web::get().to(connect_links::get_link),
        )
        .route(
            "/v1/connect-links/{id}",
            web::delete().to(connect_links::delete_link),
        )
        .route(
            "/v1/media/{kind}/{channel_id}/{media_id}",
            web::get().to(media::media),
        )
        .route("/meta/deauthorize", web::post().to(privacy::deauthorize))
        .route(
            "/meta/data-deletion",
            web::post().to(privacy::data_deletion),
        )
        .route(
            "/meta/data-deletion/{code}",
            web::get().to(privacy::deletion_status),
        )
        .route("/admin/v1/channels", web::get().to(admin::list_channels))
        .route(
            "/admin/v1/channels/{kind}/{id}",
            web::put().to(admin::put_channel),
        )
        .route(
            "/admin/v1/channels/{kind}/{id}",
            web::delete().to(admin::delete_channel),
        )
        .route(
            "/admin/v1/vault/rotate",
            web::post().to(admin::rotate_vault),
        )
        .route("/admin/v1/dead-letters", web::get().to(dead_letters::list))
        .route(
            "/admin/v1/dead-letters/redrive",
            web::post().to(dead_letters::redrive_many),
        )
        .route(
            "/admin/v1/dead-letters/{id}",
            web::get().to(dead_letters::get),
        )
        .route(
            "/admin/v1/dead-letters/{id}",
            web::delete().to(dead_letters::drop),
        )
        .route(
            "/admin/v1/dead-letters/{id}/redrive",
            web::post().to(dead_letters::redrive),
        )
        .route("/admin/v1/buffer/stats", web::get().to(dead_letters::stats))
        .route(
            "/admin/v1/tokens/check",
            web::post().to(admin::check_tokens),
        );
}

/// Answers unknown routes with problem+json.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("no such route"))
}

/// The root span of every request: method, route pattern (never the path or query:
/// they may hold a verify token or a media id), a request id, and the status.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        // Below `info` (production runs at `warn` or `info`), no span: nothing to build.
        if !tracing::level_enabled!(tracing::Level::INFO) {
            return Span::none();
        }
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let request_id = format!("{:016x}", rand::random::<u64>());
        tracing::info_span!(
            "request",
            method = %request.method(),
            route = %route,
            request_id = %request_id,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        match outcome {
            Ok(resp) => {
                span.record("status", resp.response().status().as_u16());
            }
            Err(e) => {
                span.record("status", e.as_response_error().status_code().as_u16());
            }
        }
    }
}
