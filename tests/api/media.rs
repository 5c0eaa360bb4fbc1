//! `GET /v1/media/{kind}/{channel_id}/{media_id}`: WhatsApp (lookup, then download with
//! the same Bearer), Telegram (getFile, then download; the bot token never reaches the
//! CRM), Instagram/Messenger (the attachment URL, allowed hosts only). Streamed, capped,
//! content type passed on, the tenant's own channels only; and a 50 MB file through the
//! proxy with the process's peak memory measured.

use std::time::Instant;

use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{TestApp, API_KEY, OTHER_API_KEY};
use crate::replies_support::*;

async fn get(app: &TestApp, rel: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = app.http.get(app.url(rel));
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    req.send().await.unwrap()
}

fn pct(s: &str) -> String {
    switchboard::channels::urlencode_path_segment(s)
}

#[tokio::test]
async fn media_whatsapp_is_looked_up_then_downloaded_with_the_same_bearer() {
    let app = replies_app().await;
    let download = format!("{}/whatsapp-cdn/file-2621233374848975", app.graph.uri());
    let mut lookup = fixture_json("whatsapp/outbound/media_url_response.json");
    lookup["url"] = download.clone().into();
    Mock::given(method("GET"))
        .and(path("/v23.0/2621233374848975"))
        .and(header(
            "authorization",
            format!("Bearer {WA_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(lookup))
        .expect(1)
        .mount(&app.graph)
        .await;
    let jpeg = vec![0xFFu8, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4];
    Mock::given(method("GET"))
        .and(path("/whatsapp-cdn/file-2621233374848975"))
        .and(header(
            "authorization",
            format!("Bearer {WA_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(jpeg.clone(), "image/jpeg"))
        .expect(1)
        .mount(&app.graph)
        .await;
    let resp = get(
        &app,
        &format!("/v1/media/whatsapp/{WA}/2621233374848975"),
        Some(API_KEY),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(resp.headers()["cache-control"], "private, no-store");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), jpeg);
    let lookup_req = &received(&app.graph).await[0];
    assert_eq!(
        lookup_req.url.query(),
        Some(&*format!("phone_number_id={WA}"))
    );
}

#[tokio::test]
async fn media_telegram_uses_getfile_and_never_shows_the_bot_token() {
    let app = replies_app().await;
    let file = fixture_json("telegram/api_getfile_ok.json");
    let file_id = file["result"]["file_id"].as_str().unwrap().to_owned();
    Mock::given(method("POST"))
        .and(path(format!("/bot{BOT_TOKEN}/getFile")))
        .and(body_json(json!({ "file_id": file_id })))
        .respond_with(ResponseTemplate::new(200).set_body_json(file))
        .expect(1)
        .mount(&app.telegram)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/file/bot{BOT_TOKEN}/documents/file_0.pdf")))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(b"%PDF-1.7 test".to_vec(), "application/pdf"),
        )
        .expect(1)
        .mount(&app.telegram)
        .await;
    let resp = get(
        &app,
        &format!("/v1/media/telegram/{BOT}/{file_id}"),
        Some(API_KEY),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    for (k, v) in resp.headers() {
        assert!(
            !v.to_str().unwrap_or_default().contains(BOT_TOKEN),
            "header {k}"
        );
    }
    assert_eq!(&resp.bytes().await.unwrap()[..], b"%PDF-1.7 test");

    // A Telegram refusal is mapped and still never shows the token.
    app.telegram.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"ok": false, "error_code": 400, "description": "Bad Request: invalid file_id"}),
        ))
        .mount(&app.telegram)
        .await;
    let resp = get(
        &app,
        &format!("/v1/media/telegram/{BOT}/nope"),
        Some(API_KEY),
    )
    .await;
    assert_eq!(resp.status(), 502);
    assert!(!resp.text().await.unwrap().contains(BOT_TOKEN));
}

#[tokio::test]
async fn media_instagram_fetches_allowed_attachment_urls_only() {
    let app =
        replies_app_with(TestApp::builder().toml("[media]\nallowed_hosts = [\"127.0.0.1\"]\n"))
            .await;
    Mock::given(method("GET"))
        .and(path("/ig_messaging_cdn/abc.jpg"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(b"jpegdata".to_vec(), "image/jpeg"))
        .expect(2)
        .mount(&app.graph)
        .await;
    let url = format!(
        "{}/ig_messaging_cdn/abc.jpg?asset_id=1&signature=x",
        app.graph.uri()
    );
    for (kind, id) in [("instagram", IG), ("messenger", PAGE)] {
        let resp = get(
            &app,
            &format!("/v1/media/{kind}/{id}/{}", pct(&url)),
            Some(API_KEY),
        )
        .await;
        assert_eq!(resp.status(), 200, "{kind}");
        assert_eq!(&resp.bytes().await.unwrap()[..], b"jpegdata");
    }
    let r = &received(&app.graph).await[0];
    assert!(
        r.headers.get("authorization").is_none(),
        "CDN URLs get no token"
    );
    assert_eq!(r.url.query(), Some("asset_id=1&signature=x"));

    for bad in [
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "file:///etc/passwd".to_owned(),
        "https://evil.example.com/x.jpg".to_owned(),
        "not a url".to_owned(),
    ] {
        let resp = get(
            &app,
            &format!("/v1/media/instagram/{IG}/{}", pct(&bad)),
            Some(API_KEY),
        )
        .await;
        assert_eq!(resp.status(), 400, "{bad}");
        assert_eq!(problem(resp).await["field"], "media_id");
    }
}

#[tokio::test]
async fn media_is_for_the_tenants_own_channels_with_its_api_key() {
    let app = replies_app().await;
    let rel = format!("/v1/media/whatsapp/{WA}/123");
    assert_eq!(get(&app, &rel, None).await.status(), 401);
    assert_eq!(get(&app, &rel, Some("wrong")).await.status(), 401);
    assert_eq!(get(&app, &rel, Some(OTHER_API_KEY)).await.status(), 403);
    assert_eq!(
        get(&app, "/v1/media/whatsapp/555/123", Some(API_KEY))
            .await
            .status(),
        404
    );
    assert_eq!(
        get(&app, "/v1/media/fax/555/123", Some(API_KEY))
            .await
            .status(),
        404
    );
    assert!(received(&app.graph).await.is_empty());
}

#[tokio::test]
async fn media_larger_than_the_cap_is_refused() {
    let app = replies_app_with(
        TestApp::builder().toml("[media]\nmax_bytes = 1000\nallowed_hosts = [\"127.0.0.1\"]\n"),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/big.bin"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(vec![7u8; 5000], "application/octet-stream"),
        )
        .mount(&app.graph)
        .await;
    let url = format!("{}/big.bin", app.graph.uri());
    let resp = get(
        &app,
        &format!("/v1/media/messenger/{PAGE}/{}", pct(&url)),
        Some(API_KEY),
    )
    .await;
    assert_eq!(resp.status(), 502);
    assert!(problem(resp).await["detail"]
        .as_str()
        .unwrap()
        .contains("media.max_bytes"));
}

/// A tiny HTTP/1.1 server that streams `size` generated bytes (byte i = i mod 251) to
/// a request carrying `Authorization: Bearer <token>`, without ever holding them: the
/// test's memory figure is then the relay's and the client's, not the mock's.
async fn streaming_server(size: u64, token: &'static str) -> String {
    streaming_server_with(size, token, true).await
}

/// As [`streaming_server`]; without `content_length` the body ends when the connection
/// closes (nothing tells the relay the size in advance).
async fn streaming_server_with(size: u64, token: &'static str, content_length: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                if !head.contains(&format!(
                    "authorization: bearer {}",
                    token.to_ascii_lowercase()
                )) {
                    let _ = sock
                        .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    return;
                }
                let length = if content_length {
                    format!("content-length: {size}\r\n")
                } else {
                    String::new()
                };
                let _ = sock
                    .write_all(
                        format!("HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\n{length}connection: close\r\n\r\n")
                            .as_bytes(),
                    )
                    .await;
                let chunk: Vec<u8> = (0..251u32 * 261).map(|i| (i % 251) as u8).collect();
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    if sock.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n as u64;
                }
            });
        }
    });
    format!("http://{addr}")
}

/// The process's peak resident set size (VmHWM), in KiB.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn media_50_mb_streams_through_with_flat_memory() {
    const SIZE: u64 = 50 * 1024 * 1024;
    let app = replies_app().await;
    let cdn = streaming_server(SIZE, WA_TOKEN).await;
    Mock::given(method("GET"))
        .and(path("/v23.0/5050"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp", "url": format!("{cdn}/video"), "mime_type": "video/mp4",
            "file_size": SIZE, "id": "5050"
        })))
        .mount(&app.graph)
        .await;

    let before = vm_hwm_kib();
    let started = Instant::now();
    let resp = get(
        &app,
        &format!("/v1/media/whatsapp/{WA}/5050"),
        Some(API_KEY),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "video/mp4");
    assert_eq!(resp.headers()["content-length"], SIZE.to_string().as_str());
    let mut stream = resp.bytes_stream();
    let mut got: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        for (i, b) in chunk.iter().enumerate() {
            assert_eq!(
                *b,
                ((got + i as u64) % 251) as u8,
                "byte {}",
                got + i as u64
            );
        }
        got += chunk.len() as u64;
    }
    let elapsed = started.elapsed();
    let after = vm_hwm_kib();
    assert_eq!(got, SIZE);
    let grown_mib = (after.saturating_sub(before)) as f64 / 1024.0;
    println!(
        "media 50 MiB through the proxy: {:.2} s, peak RSS (VmHWM) {before} KiB -> {after} KiB (+{grown_mib:.1} MiB)",
        elapsed.as_secs_f64()
    );
    // Buffering the file would add at least 50 MiB; streaming adds a few chunks. The
    // margin leaves room for the other tests running in this process at the same time.
    assert!(grown_mib < 25.0, "peak memory grew by {grown_mib:.1} MiB");
}

#[tokio::test]
async fn media_of_unknown_size_is_cut_off_past_the_cap() {
    let app = replies_app_with(TestApp::builder().toml("[media]\nmax_bytes = 1000000\n")).await;
    let cdn = streaming_server_with(5_000_000, WA_TOKEN, false).await;
    Mock::given(method("GET"))
        .and(path("/v23.0/77"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"url": format!("{cdn}/v"), "id": "77"})),
        )
        .mount(&app.graph)
        .await;
    let resp = get(&app, &format!("/v1/media/whatsapp/{WA}/77"), Some(API_KEY)).await;
    assert_eq!(resp.status(), 200, "the size is only known while streaming");
    let mut stream = resp.bytes_stream();
    let mut got = 0usize;
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => got += c.len(),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(got <= 1_000_000, "never more than media.max_bytes: {got}");
    assert!(
        failed,
        "the response is aborted, not silently truncated ({got} bytes)"
    );
}

#[tokio::test]
async fn media_with_a_refused_token_is_424_and_tells_the_tenant() {
    let app = replies_app().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            crate::helpers::fixture("meta/graph_error_190_invalid_token.json"),
            "application/json",
        ))
        .mount(&app.graph)
        .await;
    let resp = get(&app, &format!("/v1/media/whatsapp/{WA}/123"), Some(API_KEY)).await;
    assert_eq!(resp.status(), 424);
    assert_eq!(problem(resp).await["code"], "token_invalid");
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = app.crm_events().await;
        if events
            .iter()
            .any(|e| e["type"] == "channel.reauth_required")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no channel.reauth_required: {events:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn whatsapp_media_url_outside_meta_hosts_never_gets_the_token() {
    let app = replies_app().await;
    for url in [
        "https://attacker.example/steal",
        "ftp://lookaside.fbsbx.com/x",
    ] {
        Mock::given(method("GET"))
            .and(path("/v23.0/6060"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "messaging_product": "whatsapp", "url": url, "mime_type": "image/jpeg", "id": "6060"
            })))
            .up_to_n_times(1)
            .mount(&app.graph)
            .await;
        let resp = get(
            &app,
            &format!("/v1/media/whatsapp/{WA}/6060"),
            Some(API_KEY),
        )
        .await;
        assert_eq!(resp.status(), 502, "{url}");
        let p = problem(resp).await;
        assert_eq!(p["code"], "provider_error", "{url}: {p}");
    }
}
