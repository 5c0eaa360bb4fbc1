//! Inbound media, fetched from the provider with the channel's token and streamed to the
//! CRM: never stored, never buffered whole, capped at `media.max_bytes`.
//!
//! - WhatsApp: `GET /{version}/{media_id}?phone_number_id=…` (Bearer) gives a URL valid
//!   for 5 minutes, fetched with the same Bearer token.
//! - Telegram: `getFile`, then `{api_base}/file/bot<token>/<file_path>`; the token stays
//!   between the relay and Telegram (no redirect, no URL in any answer or log).
//! - Instagram / Messenger: the media id is the attachment's CDN URL (percent-encoded by
//!   the inbound adapter). It is fetched without a token, and only if it is http(s) on a
//!   host of `media.allowed_hosts` (or a subdomain): the relay never fetches an arbitrary
//!   URL for a caller (SSRF). Redirects are not followed.
//! - Instagram Login channels (`graph = "instagram"`) use `instagram.graph_base`: a URL
//!   on that host is fetched with the channel's token (the token goes nowhere else), and
//!   a numeric id (an Instagram media object, e.g. a commented post) is looked up there
//!   (`GET /{version}/{id}?fields=media_url,media_type`) and its `media_url` fetched.

use serde_json::Value;

use super::{GraphApi, OpenChannel, Providers, ReplyError};
use crate::channels::meta::graph::{GraphEndpoint, GraphPath};
use crate::channels::outbound::{ProviderDetail, SendError};
use crate::channels::telegram::outbound::TelegramEndpoint;
use crate::channels::ChannelKind;
use crate::live::Live;

/// A media response whose headers are in; the body is still to be streamed.
pub struct MediaStream {
    pub content_type: String,
    pub content_length: Option<u64>,
    pub response: reqwest::Response,
}

fn bad_id(detail: &str) -> ReplyError {
    ReplyError::Invalid(crate::channels::outbound::ParseError {
        field: "media_id".into(),
        detail: detail.into(),
    })
}

/// Whether `host` is one of `allowed` or a subdomain of one.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    allowed.iter().any(|a| {
        let a = a.trim_start_matches('.').to_ascii_lowercase();
        host == a || host.ends_with(&format!(".{a}"))
    })
}

/// Opens the media file `media_id` of a channel.
pub async fn open(
    providers: &Providers,
    live: &Live,
    kind: ChannelKind,
    channel_id: &str,
    media_id: &str,
    channel: &OpenChannel,
) -> Result<MediaStream, ReplyError> {
    let token = &channel.token;
    let graph = channel.api.endpoint(live);
    let (response, fallback_type) = match kind {
        ChannelKind::Whatsapp => {
            // Any text but `.` and `..` is one encoded path segment ([`GraphPath`]).
            if media_id.is_empty() || media_id.len() > 128 || matches!(media_id, "." | "..") {
                return Err(bad_id("not a WhatsApp media id"));
            }
            let info = providers
                .graph
                .get_json(
                    &graph,
                    &GraphPath::new(&[media_id]).query("phone_number_id", channel_id),
                    token,
                )
                .await?;
            let url = info
                .get("url")
                .and_then(Value::as_str)
                .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                .ok_or_else(|| {
                    SendError::Provider(Box::new(ProviderDetail {
                        provider: "graph",
                        http_status: 200,
                        message: "the media lookup gave no URL".into(),
                        ..ProviderDetail::default()
                    }))
                })?;
            // The Bearer token goes with this download: only to a Meta host
            // (media.allowed_hosts) or the Graph base's own host, and only over https
            // (http only when the Graph base itself is http: a local mock or proxy).
            let graph_base = url::Url::parse(&live.settings.meta.graph_api_base).ok();
            let trusted = url::Url::parse(url).ok().is_some_and(|u| {
                let host = u.host_str().unwrap_or_default();
                let scheme_ok = u.scheme() == "https"
                    || (u.scheme() == "http"
                        && graph_base.as_ref().is_some_and(|g| g.scheme() == "http"));
                let host_ok = host_allowed(host, &live.settings.media.allowed_hosts)
                    || graph_base.as_ref().and_then(|g| g.host_str()) == Some(host);
                scheme_ok && host_ok
            });
            if !trusted {
                return Err(SendError::Provider(Box::new(ProviderDetail {
                    provider: "graph",
                    http_status: 200,
                    message: "the media lookup gave a URL outside media.allowed_hosts".into(),
                    ..ProviderDetail::default()
                }))
                .into());
            }
            let mime = info
                .get("mime_type")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let resp = providers
                .graph
                .get_stream(url, Some(token), graph.timeout())
                .await?;
            (resp, mime)
        }
        ChannelKind::Telegram => {
            if media_id.is_empty() || media_id.len() > 256 {
                return Err(bad_id("not a Telegram file_id"));
            }
            let endpoint = TelegramEndpoint::from_settings(&live.settings.telegram);
            let resp = providers
                .telegram
                .download(&endpoint, token, media_id)
                .await?;
            (resp, None)
        }
        ChannelKind::Instagram if channel.api == GraphApi::Instagram => {
            instagram_login(providers, live, &graph, media_id, channel).await?
        }
        ChannelKind::Instagram | ChannelKind::Messenger => {
            let url = url::Url::parse(media_id).map_err(|_| bad_id("not an attachment URL"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(bad_id("only http(s) attachment URLs are fetched"));
            }
            let host = url.host_str().unwrap_or_default();
            if !host_allowed(host, &live.settings.media.allowed_hosts) {
                return Err(bad_id(
                    "the attachment URL's host is not in media.allowed_hosts",
                ));
            }
            let resp = providers
                .graph
                .get_stream(url.as_str(), None, graph.timeout())
                .await?;
            (resp, None)
        }
    };
    let max = live.settings.media.max_bytes;
    let content_length = response.content_length();
    if content_length.is_some_and(|n| n > max) {
        return Err(ReplyError::MediaTooLarge(max));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(fallback_type)
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    Ok(MediaStream {
        content_type,
        content_length,
        response,
    })
}

/// An Instagram Login channel's media: a URL on `instagram.graph_base`'s host (with the
/// token), a CDN URL of `media.allowed_hosts` (without), or a numeric media object id
/// looked up on `instagram.graph_base`.
async fn instagram_login(
    providers: &Providers,
    live: &Live,
    graph: &GraphEndpoint,
    media_id: &str,
    channel: &OpenChannel,
) -> Result<(reqwest::Response, Option<String>), ReplyError> {
    let token = &channel.token;
    let is_object_id = !media_id.is_empty()
        && media_id.len() <= 64
        && media_id.bytes().all(|b| b.is_ascii_digit());
    let url = if is_object_id {
        let info = providers
            .graph
            .get_json(
                graph,
                &GraphPath::new(&[media_id]).query("fields", "media_url,media_type"),
                token,
            )
            .await?;
        info.get("media_url")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                SendError::Provider(Box::new(ProviderDetail {
                    provider: "graph",
                    http_status: 200,
                    message: "the media lookup gave no media_url".into(),
                    ..ProviderDetail::default()
                }))
            })?
            .to_owned()
    } else {
        media_id.to_owned()
    };
    let parsed = url::Url::parse(&url).map_err(|_| bad_id("not an attachment URL"))?;
    let base = url::Url::parse(graph.base()).ok();
    let on_graph_host = base.as_ref().is_some_and(|b| {
        b.host_str().is_some()
            && b.host_str() == parsed.host_str()
            && (parsed.scheme() == "https" || (parsed.scheme() == "http" && b.scheme() == "http"))
    });
    let on_cdn = matches!(parsed.scheme(), "http" | "https")
        && host_allowed(
            parsed.host_str().unwrap_or_default(),
            &live.settings.media.allowed_hosts,
        );
    if !on_graph_host && !on_cdn {
        return Err(if is_object_id {
            SendError::Provider(Box::new(ProviderDetail {
                provider: "graph",
                http_status: 200,
                message: "the media lookup gave a URL outside media.allowed_hosts".into(),
                ..ProviderDetail::default()
            }))
            .into()
        } else {
            bad_id("the attachment URL's host is neither instagram.graph_base's nor in media.allowed_hosts")
        });
    }
    // The token goes only to the Instagram Graph API's own host.
    let resp = providers
        .graph
        .get_stream(
            parsed.as_str(),
            on_graph_host.then_some(token),
            graph.timeout(),
        )
        .await?;
    Ok((resp, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_or_as_subdomains() {
        let allowed = vec!["fbcdn.net".to_owned(), "fbsbx.com".to_owned()];
        assert!(host_allowed("scontent.xx.fbcdn.net", &allowed));
        assert!(host_allowed("fbcdn.net", &allowed));
        assert!(host_allowed("lookaside.fbsbx.com", &allowed));
        assert!(!host_allowed("evilfbcdn.net", &allowed));
        assert!(!host_allowed("fbcdn.net.evil.com", &allowed));
        assert!(!host_allowed("169.254.169.254", &allowed));
    }
}
