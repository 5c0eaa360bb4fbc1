//! Reply throughput: `POST /v1/messages` through the real application (memory store,
//! token opened from the vault on every send) to a local mock Graph API (an actix
//! server answering WhatsApp's send response), over loopback HTTP/1.1 keep-alive.
//!
//!     cargo bench --bench replies
//!
//! Criterion measures one request at a time; a second pass sends 5 000 requests with
//! 32 in flight and prints throughput and p50/p99/max latencies.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::stream::{self, StreamExt};
use switchboard::app::Application;
use switchboard::config::Settings;
use switchboard::vault::Keyring;

const API_KEY: &str = "bench-api-key";
const WA: &str = "106540352242922";

/// A mock Graph API: every POST gets WhatsApp's send response.
async fn mock_graph() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(|| {
        App::new().default_service(web::to(|| async {
            HttpResponse::Ok().content_type("application/json").body(
                r#"{"messaging_product":"whatsapp","contacts":[{"input":"15551234567","wa_id":"15551234567"}],"messages":[{"id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA"}]}"#,
            )
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://{addr}")
}

async fn start_relay() -> (String, reqwest::Client) {
    let graph = mock_graph().await;
    let key = Keyring::generate_key();
    let keyring = Keyring::new(&[secrecy::SecretString::from(key.clone())]).unwrap();
    let token = keyring.encrypt(b"EAAG-bench-token");
    let toml = format!(
        r#"
[server]
bind = "127.0.0.1:0"
workers = 2
[store]
backend = "memory"
[vault]
keys = ["{key}"]
[meta]
graph_api_base = "{graph}"
[log]
level = "error"
[[tenants]]
id = "acme"
crm_url = "http://127.0.0.1:9/crm"
signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
api_keys = ["{API_KEY}"]
[[channels]]
kind = "whatsapp"
id = "{WA}"
tenant = "acme"
token = "{token}"
"#
    );
    let settings = Settings::from_toml(&toml).unwrap();
    let app = Application::build(settings, None).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    // Wait until the config's channel is in the store.
    let deadline = Instant::now() + Duration::from_secs(10);
    while send(&http, &base).await != 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (base, http)
}

const BODY: &str = r#"{"channel":{"kind":"whatsapp","id":"106540352242922"},"to":"15551234567","message":{"kind":"text","text":"Hello from the bench"}}"#;

async fn send(http: &reqwest::Client, base: &str) -> u16 {
    http.post(format!("{base}/v1/messages"))
        .header("authorization", format!("Bearer {API_KEY}"))
        .header("content-type", "application/json")
        .body(BODY)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn replies(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (base, http) = rt.block_on(start_relay());

    c.bench_function("replies/whatsapp_text_sequential", |b| {
        b.iter(|| {
            let status = rt.block_on(send(&http, &base));
            assert_eq!(status, 200);
        })
    });

    // Concurrent pass: throughput and tail latency.
    let (n, in_flight) = (5_000usize, 32usize);
    let (elapsed, mut latencies) = rt.block_on(async {
        let started = Instant::now();
        let latencies: Vec<Duration> = stream::iter(0..n)
            .map(|_| {
                let http = http.clone();
                let base = base.clone();
                async move {
                    let t = Instant::now();
                    assert_eq!(send(&http, &base).await, 200);
                    t.elapsed()
                }
            })
            .buffer_unordered(in_flight)
            .collect()
            .await;
        (started.elapsed(), latencies)
    });
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "replies/whatsapp_text_concurrent: {n} requests, {in_flight} in flight: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        n as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
        latencies[latencies.len() - 1].as_secs_f64() * 1000.0,
    );
}

criterion_group!(benches, replies);
criterion_main!(benches);
