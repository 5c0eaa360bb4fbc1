//! The admin API (`/admin/v1/…`, `Authorization: Bearer <admin token>`): channels in the
//! store, vault rotation and the token health check. Handlers only parse and answer; the
//! work is in [`crate::registry`], [`crate::vault::rotation`] and [`crate::tokens`],
//! shared with the CLI.

use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use super::auth::bearer;
use super::body::{parse_json, read_limited, require_json};
use super::problem::ApiError;
use crate::live::Live;
use crate::registry::{self, ChannelInput, PutOutcome, RegistryError};
use crate::state::AppState;
use crate::store::StoreError;
use crate::vault::rotation;

/// Checks the bearer token against `admin.tokens` (constant time).
pub(super) fn authorize(req: &HttpRequest, live: &Live) -> Result<(), ApiError> {
    match bearer(req) {
        Some(t) if live.is_admin_token(t) => Ok(()),
        Some(_) => {
            metrics::counter!("switchboard_admin_unauthorized_total").increment(1);
            tracing::warn!("Admin request with a wrong token refused.");
            Err(ApiError::unauthorized("the admin token is not valid"))
        }
        None => {
            metrics::counter!("switchboard_admin_unauthorized_total").increment(1);
            tracing::warn!("Admin request without a bearer token refused.");
            Err(ApiError::unauthorized(
                "an `Authorization: Bearer <admin token>` header is required",
            ))
        }
    }
}

pub(super) fn store_error(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "Admin request failed: store unavailable.");
    ApiError::unavailable("the store is unavailable; retry later")
}

fn registry_error(e: RegistryError) -> ApiError {
    match e {
        RegistryError::Invalid { field, message } => {
            ApiError::invalid_field(field, format!("{field}: {message}"))
        }
        RegistryError::NotFound(c) => {
            ApiError::channel_not_found(format!("channel {c} is not in the store"))
        }
        RegistryError::Store(e) => store_error(e),
    }
}

/// The body of `PUT /admin/v1/channels/{kind}/{id}`: plaintext secrets, which are never
/// logged and are encrypted before they are stored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutChannelBody {
    tenant: String,
    token: SecretString,
    #[serde(default)]
    webhook_secret: Option<SecretString>,
    /// The Meta user who connected the channel (optional; kept when absent).
    #[serde(default)]
    user_id: Option<String>,
    /// v2, optional, kept when absent: WhatsApp's WABA, `graph = "instagram"` for
    /// Instagram Login channels, the token's `expires_at` (RFC 3339), and WhatsApp's
    /// two-step `pin` (plaintext, 6 digits; stored Fernet-encrypted).
    #[serde(default)]
    waba_id: Option<String>,
    #[serde(default)]
    graph: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    pin: Option<SecretString>,
}

/// `PUT /admin/v1/channels/{kind}/{id}`: 201 when created, 200 when replaced.
pub async fn put_channel(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    authorize(&req, &live)?;
    let (kind, id) = path.into_inner();
    let channel = registry::parse_channel(&kind, &id).map_err(registry_error)?;
    let body = read_limited(&req, payload, live.settings.server.max_body_bytes).await?;
    require_json(&req)?;
    // A secret given as another JSON type (a number) would be quoted: say only that.
    let parsed: PutChannelBody = parse_json(
        &body,
        "{\"tenant\", \"token\", \"webhook_secret\"}",
        &["token", "webhook_secret", "pin"],
    )?;
    // The body held the plaintext secrets: wipe it now that they sit in secret types.
    if let Ok(mut raw) = body.try_into_mut() {
        zeroize::Zeroize::zeroize(raw.as_mut());
    }
    let input = ChannelInput {
        tenant: parsed.tenant,
        token: parsed.token,
        webhook_secret: parsed.webhook_secret,
        user_id: parsed.user_id,
        waba_id: parsed.waba_id,
        graph: parsed.graph,
        expires_at: parsed.expires_at,
        pin: parsed.pin,
    };
    let (view, outcome) = registry::put(&state.store, &live, &channel, input)
        .await
        .map_err(registry_error)?;
    Ok(match outcome {
        PutOutcome::Created => HttpResponse::Created().json(view),
        PutOutcome::Replaced => HttpResponse::Ok().json(view),
    })
}

/// `GET /admin/v1/channels`: every channel in the store, without secrets.
pub async fn list_channels(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    authorize(&req, &live)?;
    let channels = registry::list(&state.store, &live)
        .await
        .map_err(store_error)?;
    Ok(HttpResponse::Ok().json(json!({
        "count": channels.len(),
        "channels": channels,
    })))
}

#[derive(Deserialize)]
pub struct DeleteQuery {
    /// `true`: first revoke the app's access at the provider ([`crate::privacy::revoke`]).
    #[serde(default)]
    revoke: Option<String>,
}

/// `DELETE /admin/v1/channels/{kind}/{id}`: 204, or 404 when absent. With
/// `?revoke=true` the app's access is revoked at the provider first; when that fails,
/// nothing is deleted.
pub async fn delete_channel(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<DeleteQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    authorize(&req, &live)?;
    let revoke = match query.revoke.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid_field("revoke", "must be true or false")),
    };
    let (kind, id) = path.into_inner();
    let channel = registry::parse_channel(&kind, &id).map_err(registry_error)?;
    if revoke {
        crate::privacy::revoke::revoke_then_delete(&state.store, &live, &state.revoker, &channel)
            .await
            .map_err(revoke_error)?;
    } else {
        registry::delete(&state.store, &channel)
            .await
            .map_err(registry_error)?;
    }
    Ok(HttpResponse::NoContent().finish())
}

fn revoke_error(e: crate::privacy::revoke::RevokeDeleteError) -> ApiError {
    use crate::privacy::revoke::{RevokeDeleteError, RevokeError};
    match e {
        RevokeDeleteError::NotFound(c) => {
            ApiError::channel_not_found(format!("channel {c} is not in the store"))
        }
        RevokeDeleteError::Store(e) => store_error(e),
        RevokeDeleteError::Revoke(e @ RevokeError::NoUserId) => {
            ApiError::invalid_field("user_id", e.to_string())
        }
        RevokeDeleteError::Revoke(e @ RevokeError::Undecryptable) => {
            ApiError::invalid_field("token", e.to_string())
        }
        RevokeDeleteError::Revoke(e) if e.is_retryable() => {
            ApiError::unavailable(format!("{e}; nothing was deleted, retry later"))
        }
        RevokeDeleteError::Revoke(e) => ApiError::new(
            actix_web::http::StatusCode::BAD_GATEWAY,
            crate::http::ErrorCode::ProviderError,
            "Provider error",
        )
        .with_detail(format!("{e}; nothing was deleted")),
    }
}

/// `POST /admin/v1/vault/rotate`: re-encrypts every stored secret under the primary key.
pub async fn rotate_vault(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    authorize(&req, &live)?;
    let report = rotation::rotate_all(&state.store, &live.keyring, &live.settings)
        .await
        .map_err(store_error)?;
    Ok(HttpResponse::Ok().json(report))
}

/// `POST /admin/v1/tokens/check`: runs the token health check now (every channel, paged,
/// each under its lock) and answers `{"checked", "refreshed", "invalid", …}`.
pub async fn check_tokens(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    authorize(&req, &live)?;
    let report = state
        .token_health()
        .check_all(&live)
        .await
        .map_err(store_error)?;
    Ok(HttpResponse::Ok().json(report))
}
