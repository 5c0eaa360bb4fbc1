//! `GET /v1/media/{kind}/{channel_id}/{media_id}`: an inbound media file, streamed from
//! the provider (see [`crate::replies::media`]). Authenticated by the tenant's API key
//! and limited to its own channels. The body is relayed chunk by chunk (flat memory)
//! with the provider's content type; a body growing past `media.max_bytes` is cut off
//! (the client sees an aborted response, never a silently truncated file).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use super::auth::bearer;
use super::problem::ApiError;
use crate::channels::outbound::SendError;
use crate::channels::{ChannelKind, ChannelRef};
use crate::replies::{self, ReplyError};
use crate::state::AppState;

/// `GET /v1/media/{kind}/{channel_id}/{media_id}`.
pub async fn media(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = state.live.load_full();
    let tenant = replies::authenticate(&live, bearer(&req))?;
    let (kind, channel_id, media_id) = path.into_inner();
    let kind: ChannelKind = kind
        .parse()
        .map_err(|e: crate::channels::UnknownChannelKind| {
            ApiError::channel_not_found(e.to_string())
        })?;
    let channel = ChannelRef::parse(kind, channel_id)
        .map_err(|_| ApiError::channel_not_found("not a channel id"))?;
    let open = replies::open_channel(&state.store, &live, &tenant, &channel).await?;
    let opened = replies::media::open(
        &state.providers,
        &live,
        kind,
        channel.id(),
        &media_id,
        &open,
    )
    .await
    .inspect_err(|e| {
        tracing::warn!(tenant = %tenant.id, channel = %channel, error = %e, stage = "sending", "Media not fetched.");
        if let ReplyError::Send(SendError::TokenInvalid(d)) = e {
            replies::notify_reauth(&state.store, &state.dispatcher, live.clone(), channel.clone(), d);
        }
    })?;
    metrics::counter!("switchboard_media_requests_total", "channel" => kind.as_str()).increment(1);

    let max = live.settings.media.max_bytes;
    let mut sent: u64 = 0;
    let body = opened
        .response
        .bytes_stream()
        .map(move |chunk| match chunk {
            Ok(bytes) => {
                sent += bytes.len() as u64;
                if sent > max {
                    Err(std::io::Error::other(
                        "the media file is larger than media.max_bytes",
                    ))
                } else {
                    Ok(bytes)
                }
            }
            // Without the URL: Telegram's holds the token.
            Err(e) => Err(std::io::Error::other(e.without_url().to_string())),
        });
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::CONTENT_TYPE, opened.content_type))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .insert_header(("x-content-type-options", "nosniff"));
    if let Some(len) = opened.content_length {
        resp.no_chunking(len);
    }
    Ok(resp.streaming(body))
}
