//! Request bodies as raw bytes, bounded: signatures are checked over exactly what was
//! received, and nothing larger than `server.max_body_bytes` is buffered.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use bytes::BytesMut;
use futures_util::StreamExt;

use super::problem::ApiError;

/// Reads the whole body, refusing (413) a declared or actual size above `limit`.
pub async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    // A body that arrives in one chunk (the usual case) is kept as it came, no copy;
    // only a body in several chunks is joined.
    let mut whole = bytes::Bytes::new();
    let mut joined: Option<BytesMut> = None;
    let mut total = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::invalid(format!("the body could not be read: {e}")))?;
        total += chunk.len();
        if total > limit {
            return Err(ApiError::too_large(limit));
        }
        match &mut joined {
            Some(buf) => buf.extend_from_slice(&chunk),
            None if whole.is_empty() => whole = chunk,
            None => {
                let mut buf =
                    BytesMut::with_capacity(declared.unwrap_or(total).clamp(total, limit));
                buf.extend_from_slice(&whole);
                buf.extend_from_slice(&chunk);
                joined = Some(buf);
            }
        }
    }
    Ok(joined.map_or(whole, BytesMut::freeze))
}

/// Refuses (415) a declared content type other than JSON; an absent one is accepted.
pub fn require_json(req: &HttpRequest) -> Result<(), ApiError> {
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
            if essence == "application/json" || essence.ends_with("+json") {
                Ok(())
            } else {
                Err(ApiError::unsupported_media_type(
                    "the body must be application/json",
                ))
            }
        }
    }
}

/// Parses a JSON body into `T`, naming the field at fault (400 `invalid_request`).
/// `shape` describes the expected body for errors that name no field; for `secret_fields`
/// a wrong JSON type is reported as "must be a string", since serde would quote the value.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    shape: &str,
    secret_fields: &[&str],
) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        // serde's message names the problem (missing or unknown field, wrong type); for
        // string fields it never quotes the value.
        let message = e.into_inner().to_string();
        let field = if path == "." || path.is_empty() {
            // "missing field `tenant`", "unknown field `tokn`, expected …"
            message.split('`').nth(1).map(str::to_owned)
        } else {
            Some(path)
        };
        let message = match field.as_deref() {
            Some(f) if secret_fields.contains(&f) && message.starts_with("invalid type") => {
                "must be a string".to_owned()
            }
            _ => message,
        };
        match field {
            Some(f) => ApiError::invalid_field(f.clone(), format!("{f}: {message}")),
            None => ApiError::invalid(format!("the body must be {shape}: {message}")),
        }
    })
}
