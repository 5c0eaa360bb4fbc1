//! Token health over many channels: one round (`TokenHealth::check_all`) over 10,000
//! Telegram channels on the memory store and, when `redis-server` is on `PATH`, on a
//! throwaway redis-server, against a local Bot API mock whose `getWebhookInfo` answers
//! the relay's own URL (every channel healthy). Each round's report is printed:
//! `largest_page` is the most channels the round held at once (one SCAN page).
//!
//!     cargo bench -j2 --bench token_health -- --quick
//!
//! `TOKEN_BENCH_CHANNELS` changes the number of channels (default 10000).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use criterion::{criterion_group, criterion_main, Criterion};
use secrecy::SecretString;
use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::config::Settings;
use switchboard::live::Live;
use switchboard::store::{ChannelRecord, StoreBackend};
use switchboard::tokens::{Clients, TokenHealth};
use switchboard::vault::Keyring;

const PUBLIC_URL: &str = "https://relay.example.com";
const PAGE_SIZE: usize = 100;

/// A Bot API whose `getWebhookInfo` says every bot's webhook is the relay's.
async fn mock_telegram() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(|| {
        App::new().default_service(web::to(|req: HttpRequest| async move {
            let bot = req
                .path()
                .strip_prefix("/bot")
                .and_then(|p| p.split(':').next())
                .unwrap_or_default()
                .to_owned();
            HttpResponse::Ok().json(serde_json::json!({"ok": true, "result": {
                "url": format!("{PUBLIC_URL}/webhooks/telegram/{bot}"),
                "has_custom_certificate": false, "pending_update_count": 0}}))
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://{addr}")
}

/// A redis-server on a free port (killed on drop), when one is installed.
struct Redis(Child, u16);

impl Redis {
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self(child, port))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A token health checker on `store` (TOML lines of `[store]`) with `n` channels.
async fn seeded(store: &str, telegram: &str, n: usize) -> (TokenHealth, Arc<Live>) {
    let key = Keyring::generate_key();
    let toml = format!(
        r#"
[server]
bind = "127.0.0.1:0"
public_url = "{PUBLIC_URL}"
[store]
{store}
[vault]
keys = ["{key}"]
[telegram]
api_base = "{telegram}"
[tokens]
page_size = {PAGE_SIZE}
concurrency = 16
[log]
level = "error"
[[tenants]]
id = "acme"
crm_url = "http://127.0.0.1:9/crm"
signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
api_keys = ["bench-api-key"]
"#
    );
    let settings = Settings::from_toml(&toml).unwrap();
    let store = switchboard::app::open_store(&settings).unwrap();
    let client = switchboard::delivery::CrmClient::new(Duration::from_secs(2), 1 << 20).unwrap();
    let dispatcher =
        switchboard::delivery::Dispatcher::new(store.clone(), client, &settings.delivery);
    let live = Arc::new(Live::new(settings).unwrap());
    for i in 0..n {
        let bot = 7_000_000_000u64 + i as u64;
        let token = format!("{bot}:AAH-bench-bot-token-{i:08}-abcdefghijk");
        let record = ChannelRecord {
            tenant: "acme".into(),
            token: SecretString::from(live.keyring.encrypt(token.as_bytes())),
            webhook_secret: None,
            updated_at: None,
            user_id: None,
            waba_id: None,
            graph: None,
            expires_at: None,
            pin: None,
        };
        store
            .put_channel(
                &ChannelRef::parse(ChannelKind::Telegram, bot.to_string()).unwrap(),
                &record,
            )
            .await
            .unwrap();
    }
    let health = TokenHealth {
        store,
        dispatcher,
        clients: Clients {
            oauth: switchboard::connect::provider::OAuthClient::new().unwrap(),
            telegram: switchboard::channels::telegram::outbound::TelegramClient::new().unwrap(),
        },
    };
    (health, live)
}

fn token_health(c: &mut Criterion) {
    let n: usize = std::env::var("TOKEN_BENCH_CHANNELS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let telegram = rt.block_on(mock_telegram());
    let redis = Redis::start();
    let mut stores = vec![("memory", "backend = \"memory\"".to_owned())];
    if let Some(r) = &redis {
        stores.push((
            "redis",
            format!(
                "backend = \"redis\"\nredis_url = \"redis://127.0.0.1:{}\"",
                r.1
            ),
        ));
    }
    let mut group = c.benchmark_group("token_health");
    group.sample_size(10);
    for (name, store) in stores {
        let (health, live) = rt.block_on(seeded(&store, &telegram, n));
        let started = Instant::now();
        let report = rt.block_on(health.check_all(&live)).unwrap();
        println!(
            "token_health/{name}: {n} channels in {:.2?}, first round: {}",
            started.elapsed(),
            serde_json::to_string(&report).unwrap()
        );
        assert_eq!(report.checked, n as u64);
        // The memory store's pages hold `page_size` at most; Redis' SCAN COUNT is a hint.
        if name == "memory" {
            assert!(report.largest_page as usize <= PAGE_SIZE, "{report:?}");
        }
        group.bench_function(format!("round_{n}_channels/{name}"), |b| {
            b.iter(|| rt.block_on(health.check_all(&live)).unwrap().checked)
        });
    }
    group.finish();
}

criterion_group!(benches, token_health);
criterion_main!(benches);
