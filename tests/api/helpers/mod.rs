//! The one test harness. [`TestApp::builder`] starts the real application (in this
//! process, or the real binary with its logs captured) on a real throwaway
//! `redis-server`, with wiremock servers as its CRM, Graph API and Telegram peers.
//! Split by idea: `builder` (what varies, and starting an app), `app` (the in-process
//! app and its helpers), `channels` (channels stored as an operator would), `process` (the binary),
//! `config` (the config file), `redis` (redis-server and Redis Cluster), `signing`
//! (Meta's and Standard Webhooks' signatures), `crm` (a CRM that misbehaves on cue),
//! `traffic` (webhooks made to order for the delivery tests), `schema` (answers and
//! events checked against the published schemas).

mod app;
mod browser;
mod builder;
mod channels;
mod config;
mod crm;
mod process;
mod redis;
mod schema;
mod signing;
mod traffic;

use std::net::TcpListener;
use std::path::PathBuf;

pub use app::*;
pub use browser::*;
pub use builder::*;
pub use channels::*;
pub use config::*;
pub use crm::*;
pub use process::*;
pub use redis::*;
pub use schema::*;
pub use signing::*;
pub use traffic::*;

/// The WhatsApp phone_number_ids used by the fixtures; all belong to tenant `acme`.
pub const WHATSAPP_FIXTURE_CHANNELS: &[&str] = &["106540352242922", "1122334455667", "123456123"];

/// The WhatsApp Business Account of Meta's account-level examples (tests/fixtures/
/// whatsapp/account/): the first fixture channel's `waba_id`.
pub const FIXTURE_WABA: &str = "102290129340398";

pub fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

pub fn fixture_names(dir: &str) -> Vec<String> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut names: Vec<String> = std::fs::read_dir(p)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy()))
        .collect();
    names.sort();
    names
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a Python snippet (the project venv's `python3`, with the libraries we check
/// against); its trimmed stdout.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
