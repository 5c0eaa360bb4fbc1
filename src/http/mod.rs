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
pub mod request_span;
pub mod telegram;
pub mod webhooks;

use actix_web::{web, HttpResponse};

pub use problem::{ApiError, ErrorCode};

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // The hot paths first: the router tries routes in order.
    cfg.route("/webhooks/meta", web::post().to(webhooks::meta_webhook))
        .route("/v1/messages", web::post().to(replies::send_message))
        .route(
            "/webhooks/telegram/{bot_id}",
            web::post().to(telegram::telegram_webhook),
        )
        .route("/webhooks/meta", web::get().to(webhooks::meta_handshake))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics));
    connect_pages::routes(cfg);
    cfg.route(
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
