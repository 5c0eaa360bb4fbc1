//! The connect pages: each kind's maud template rendered into the answer the relay
//! sends (HTML, Content-Security-Policy and headers), without I/O; then opening a
//! link through the real application (memory store: the link looked up, a flow
//! started and saved, the page rendered) over loopback HTTP.
//!
//!     cargo bench -j2 --bench connect_pages -- --quick
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use actix_web::http::StatusCode;
use criterion::{criterion_group, criterion_main, Criterion};
use switchboard::app::Application;
use switchboard::channels::ChannelKind;
use switchboard::config::Settings;
use switchboard::connect::pages;
use switchboard::vault::Keyring;

const FORM: &str = "Zm9ybS10b2tlbi1vZi10aGUtZmxvdy0zMi1ieXRlcy1sb25n";
const DIALOG: &str = "https://www.facebook.com/v23.0/dialog/oauth?client_id=1234567890&redirect_uri=https%3A%2F%2Frelay.example.com%2Fconnect%2Fcallback%2Ffacebook&response_type=code&state=cl_01J.nonce.mac&config_id=1";

fn render(c: &mut Criterion) {
    let picker: Vec<(String, String)> = (0..25)
        .map(|i| (format!("1000000000{i:02}"), format!("Acme Page {i}")))
        .collect();
    let mut g = c.benchmark_group("connect_page_render");
    let respond = |m: maud::Markup| pages::respond(StatusCode::OK, m, "", "");
    g.bench_function("telegram", |b| {
        b.iter(|| respond(pages::telegram(black_box(FORM), None, None)))
    });
    g.bench_function("telegram_takeover_warning", |b| {
        b.iter(|| {
            respond(pages::telegram(
                black_box(FORM),
                Some("This bot already sends its updates to https://elsewhere.example.com/hook."),
                None,
            ))
        })
    });
    g.bench_function("messenger_login", |b| {
        b.iter(|| respond(pages::login(ChannelKind::Messenger, black_box(DIALOG))))
    });
    g.bench_function("instagram_login", |b| {
        b.iter(|| respond(pages::login(ChannelKind::Instagram, black_box(DIALOG))))
    });
    g.bench_function("messenger_picker_25_pages", |b| {
        b.iter(|| respond(pages::page_picker(black_box(FORM), &picker)))
    });
    g.bench_function("whatsapp", |b| {
        b.iter(|| {
            pages::respond(
                StatusCode::OK,
                pages::whatsapp(
                    black_box(FORM),
                    "1234567890",
                    "wa-config-1",
                    "v23.0",
                    "https://www.facebook.com",
                    "https://connect.facebook.net/en_US/sdk.js",
                ),
                "https://connect.facebook.net",
                "https://www.facebook.com https://connect.facebook.net",
            )
        })
    });
    g.bench_function("error_with_resume", |b| {
        b.iter(|| {
            respond(pages::error_with(
                "Something went wrong",
                "Meta refused a step (subscribing the Page to webhooks): the provider refused (HTTP 500, code Some(2)): temporary.",
                "Nothing was connected yet. Try again.",
                pages::Retry::Resume {
                    action: "/connect/flow/messenger/page",
                    form: black_box(FORM),
                    fields: &[("page_id", "111")],
                },
            ))
        })
    });
    g.bench_function("done", |b| {
        b.iter(|| {
            respond(pages::done(
                ChannelKind::Whatsapp,
                black_box("Acme"),
                Some("https://crm.example.com/channels"),
            ))
        })
    });
    g.finish();
}

/// Opening a link through the real application: `GET /connect/{secret}` per kind.
fn open_link(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = Keyring::generate_key();
    let toml = format!(
        r#"
[server]
bind = "127.0.0.1:0"
public_url = "http://relay.test"
workers = 1
[store]
backend = "memory"
[vault]
keys = ["{key}"]
[meta]
app_id = "1234567890"
whatsapp_config_id = "wa-config-1"
[log]
level = "error"
[[tenants]]
id = "acme"
crm_url = "http://127.0.0.1:9/crm"
signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
api_keys = ["bench-api-key"]
"#
    );
    let (base, http) = rt.block_on(async {
        let app = Application::build(Settings::from_toml(&toml).unwrap(), None)
            .await
            .unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        (base, reqwest::Client::builder().no_proxy().build().unwrap())
    });
    let mut g = c.benchmark_group("connect_page_open_link");
    for kind in ["telegram", "messenger", "instagram", "whatsapp"] {
        let url: String = rt.block_on(async {
            let link: serde_json::Value = http
                .post(format!("{base}/v1/connect-links"))
                .bearer_auth("bench-api-key")
                .json(&serde_json::json!({"kind": kind}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            link["url"]
                .as_str()
                .unwrap()
                .replace("http://relay.test", &base)
        });
        g.bench_function(kind, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let resp = http.get(&url).send().await.unwrap();
                    assert_eq!(resp.status(), 200);
                    resp.bytes().await.unwrap().len()
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, render, open_link);
criterion_main!(benches);
