//! Connections from slow clients, over raw TCP: a body trickled a byte at a time is cut
//! at `server.body_timeout_ms` with 408 (nothing processed) while `/healthz` answers;
//! a slow but honest body, and a pooled connection idle longer than actix's default
//! keep-alive, are not cut; connections past `server.max_connections` wait for one to close.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

const BODY_TIMEOUT_MS: u64 = 1000;

async fn app_with_body_timeout() -> TestApp {
    TestApp::builder()
        .memory()
        .server(&format!(
            "body_timeout_ms = {BODY_TIMEOUT_MS}\nheader_timeout_ms = 1000"
        ))
        .spawn()
        .await
}

/// `127.0.0.1:<port>` of the app, for raw TCP.
fn socket_of(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// The head of a signed Meta webhook whose body is `body`.
fn meta_head(body: &[u8]) -> String {
    format!(
        "POST /webhooks/meta HTTP/1.1\r\nhost: relay.test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nx-hub-signature-256: {}\r\n\r\n",
        body.len(),
        meta_signature(APP_SECRET, body)
    )
}

/// Reads until the peer closes the connection or `limit` passes; returns what came.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

/// Reads one HTTP answer with a `content-length` body (or gives up at `limit`).
async fn read_response(stream: &mut TcpStream, limit: Duration) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return text;
            }
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return text,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `head`, then the body one byte every `gap` until the relay stops reading; the
/// time from the head to the answer, and the answer.
async fn trickle(
    address: String,
    head: String,
    body: Vec<u8>,
    gap: Duration,
) -> (Duration, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        for b in body {
            if wr.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(gap).await;
        }
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let answer = loop {
        match tokio::time::timeout(Duration::from_secs(20), rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break String::from_utf8_lossy(&got).into_owned(),
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&got).contains("\r\n\r\n") {
                    break String::from_utf8_lossy(&got).into_owned();
                }
            }
            Err(_) => panic!("no answer within 20 s: the slow body held the connection"),
        }
    };
    let took = started.elapsed();
    writer.abort();
    (took, answer)
}

#[tokio::test]
async fn body_trickled_a_byte_at_a_time_gets_408_and_healthz_still_answers() {
    let app = app_with_body_timeout().await;
    let body = fixture("whatsapp/text.json");
    let address = socket_of(&app);

    // 20 slow clients at once, each sending one byte every 200 ms (the whole body would
    // take minutes).
    let mut slow = Vec::new();
    for _ in 0..20 {
        slow.push(tokio::spawn(trickle(
            address.clone(),
            meta_head(&body),
            body.clone(),
            Duration::from_millis(200),
        )));
    }
    // Meanwhile /healthz answers, each within a second.
    let mut health_worst = Duration::ZERO;
    let until = Instant::now() + Duration::from_millis(BODY_TIMEOUT_MS);
    while Instant::now() < until {
        let t = Instant::now();
        let resp = tokio::time::timeout(
            Duration::from_secs(1),
            app.http.get(app.url("/healthz")).send(),
        )
        .await
        .expect("/healthz answers while slow bodies are open")
        .unwrap();
        assert_eq!(resp.status(), 200);
        health_worst = health_worst.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut worst = Duration::ZERO;
    let mut best = Duration::MAX;
    for s in slow {
        let (took, answer) = s.await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "a body not received in time is answered 408: {answer}"
        );
        assert!(answer.contains("request_timeout"), "{answer}");
        worst = worst.max(took);
        best = best.min(took);
    }
    println!(
        "slow body: 20 clients, 1 byte / 200 ms, body_timeout_ms = {BODY_TIMEOUT_MS}: \
         408 after {best:?}..{worst:?}; /healthz meanwhile at most {health_worst:?}"
    );
    assert!(
        best >= Duration::from_millis(BODY_TIMEOUT_MS - 50),
        "{best:?}"
    );
    assert!(
        worst < Duration::from_millis(BODY_TIMEOUT_MS + 2000),
        "{worst:?}"
    );
    assert!(
        app.crm_requests().await.is_empty(),
        "nothing of an incomplete body is processed"
    );
}

#[tokio::test]
async fn connection_is_closed_after_the_408() {
    let app = app_with_body_timeout().await;
    let body = fixture("whatsapp/text.json");
    let mut stream = TcpStream::connect(socket_of(&app)).await.unwrap();
    stream.write_all(meta_head(&body).as_bytes()).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        closed,
        "the relay closes a connection whose body it gave up on"
    );
}

#[tokio::test]
async fn slow_but_complete_body_within_the_deadline_is_processed() {
    let app = app_with_body_timeout().await;
    let body = fixture("whatsapp/text.json");
    let mut stream = TcpStream::connect(socket_of(&app)).await.unwrap();
    stream.write_all(meta_head(&body).as_bytes()).await.unwrap();
    // The body in four pieces over ~600 ms: slow, but within body_timeout_ms.
    for piece in body.chunks(body.len().div_ceil(4)) {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let answer = read_response(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(app.wait_for_crm(CRM_PATH, 1).await.len(), 1);
}

#[tokio::test]
async fn kept_alive_connection_idle_longer_than_five_seconds_still_serves() {
    // actix's default keep-alive is 5 s: a CRM's pool (often 60–90 s idle) would find
    // its connection closed under it. The relay keeps it for server.keep_alive_s.
    let app = TestApp::builder().memory().spawn().await;
    let mut stream = TcpStream::connect(socket_of(&app)).await.unwrap();
    let get = "GET /healthz HTTP/1.1\r\nhost: relay.test\r\n\r\n";
    stream.write_all(get.as_bytes()).await.unwrap();
    let first = read_response(&mut stream, Duration::from_secs(5)).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    tokio::time::sleep(Duration::from_millis(6500)).await;
    stream.write_all(get.as_bytes()).await.unwrap();
    let second = read_response(&mut stream, Duration::from_secs(5)).await;
    assert!(
        second.starts_with("HTTP/1.1 200"),
        "the idle connection was closed: {second:?}"
    );
}

#[tokio::test]
async fn request_head_trickled_past_the_header_timeout_is_cut() {
    let app = app_with_body_timeout().await;
    let mut stream = TcpStream::connect(socket_of(&app)).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"POST /webhooks/meta HTTP/1.1\r\n")
        .await
        .unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        for b in b"x-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if wr.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut buf)).await;
    writer.abort();
    assert!(
        read.is_ok(),
        "the connection was held past the header timeout"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let answer = String::from_utf8_lossy(&buf);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

/// Sends `GET /healthz` on `stream` and reads the answer (or nothing, by `limit`).
async fn healthz_on(stream: &mut TcpStream, limit: Duration) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: relay.test\r\n\r\n")
        .await
        .unwrap();
    read_response(stream, limit).await
}

#[tokio::test]
async fn connections_past_max_connections_wait_until_one_closes() {
    // Two workers, one connection each: two at once in the process.
    let app = TestApp::builder()
        .memory()
        .server("max_connections = 2\nkeep_alive_s = 60")
        .spawn()
        .await;
    let address = socket_of(&app);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(&address).await.unwrap();
        let answer = healthz_on(&mut c, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        held.push(c);
    }
    // A third connection is not served while both are kept alive...
    let mut third = TcpStream::connect(&address).await.unwrap();
    let answer = healthz_on(&mut third, Duration::from_millis(1500)).await;
    assert!(answer.is_empty(), "served past max_connections: {answer}");
    // ...and is, once one of them closes.
    drop(held.pop());
    let started = Instant::now();
    let answer = read_response(&mut third, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The one still held is served as before.
    let answer = healthz_on(&mut held[0], Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
