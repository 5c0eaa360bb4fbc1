//! One error type for every HTTP answer that is not a success: RFC 9457
//! `application/problem+json` with the contract's stable `code`. 5xx bodies say nothing
//! about the cause; the log line does.

use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// The contract's error codes (and a few more, for what the contract does not name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    ChannelNotFound,
    InvalidRequest,
    TokenInvalid,
    OutsideWindow,
    /// The person cannot be reached now (blocked, deactivated): 422.
    RecipientUnavailable,
    RateLimited,
    ProviderError,
    UpstreamUnavailable,
    /// No such route or record (other than a channel).
    NotFound,
    /// A request larger than `server.max_body_bytes`.
    PayloadTooLarge,
    /// A request body not received in full within `server.body_timeout_ms`.
    RequestTimeout,
    /// A body that is not `application/json` where JSON is expected.
    UnsupportedMediaType,
    /// A bug: the log has the cause.
    InternalError,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: &'static str,
    pub title: String,
    pub status: u16,
    pub code: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The offending field of an invalid request, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What the provider said (code and message), for provider errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<serde_json::Value>,
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

/// An error answered as problem+json.
#[derive(Debug, Clone)]
pub struct ApiError(pub Box<Problem>);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.0.code, self.0.title)
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, title: impl Into<String>) -> Self {
        Self(Box::new(Problem {
            type_uri: "about:blank",
            title: title.into(),
            status: status.as_u16(),
            code,
            detail: None,
            field: None,
            provider: None,
            retry_after: None,
        }))
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.0.field = Some(field.into());
        self
    }

    pub fn with_provider(mut self, provider: serde_json::Value) -> Self {
        self.0.provider = Some(provider);
        self
    }

    pub fn with_retry_after(mut self, d: Duration) -> Self {
        self.0.retry_after = Some(d);
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "Unauthorized",
        )
        .with_detail(detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, "Forbidden").with_detail(detail)
    }

    pub fn channel_not_found(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ChannelNotFound,
            "Channel not found",
        )
        .with_detail(detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "Not found").with_detail(detail)
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            "Invalid request",
        )
        .with_detail(detail)
    }

    pub fn invalid_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::invalid(detail).with_field(field)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            "Payload too large",
        )
        .with_detail(format!(
            "the body exceeds server.max_body_bytes ({limit} bytes)"
        ))
    }

    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::RequestTimeout,
            "Request timeout",
        )
        .with_detail("the body was not received in full within server.body_timeout_ms")
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "Unsupported media type",
        )
        .with_detail(detail)
    }

    /// The store (or every CRM path) is unavailable: retry later.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::UpstreamUnavailable,
            "Upstream unavailable",
        )
        .with_detail(detail)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "Internal error",
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        resp.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if let Some(d) = self.0.retry_after {
            resp.insert_header((header::RETRY_AFTER, d.as_secs().max(1).to_string()));
        }
        resp.body(serde_json::to_vec(&*self.0).unwrap_or_default())
    }
}
