//! Live reload: keys and secrets rotated under load without a failed request; a broken
//! config refused while the running one keeps serving; SIGHUP and file changes on the
//! real binary, whose trace-level logs (like Redis and panic messages) never hold a
//! token or key.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{json, Value};
use switchboard::vault::Keyring;
use tokio::sync::RwLock;

use crate::helpers::*;

/// What Meta signs with and what the operator's scripts authenticate with, right now.
struct Clients {
    app_secret: String,
    admin_token: String,
}

/// One step of a rotation: what the config file says.
struct Step<'a> {
    vault_keys: Vec<&'a str>,
    app_secrets: Vec<&'a str>,
    admin_tokens: Vec<&'a str>,
    signing_secret: &'a str,
    extra_signing_secrets: Vec<&'a str>,
    /// A `[[channels]]` entry's Fernet token, if any.
    config_channel_token: Option<String>,
}

fn quoted(list: &[&str]) -> String {
    list.iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn config_for(app: &TestApp, step: &Step<'_>) -> String {
    let mut config = app.config.clone();
    config.vault_keys = step.vault_keys.iter().map(|k| (*k).to_owned()).collect();
    let mut text = config.render();
    text = text.replace(
        &format!("app_secrets = [\"{APP_SECRET}\"]"),
        &format!("app_secrets = [{}]", quoted(&step.app_secrets)),
    );
    text = text.replace(
        &format!("tokens = [\"{ADMIN_TOKEN}\"]"),
        &format!("tokens = [{}]", quoted(&step.admin_tokens)),
    );
    text = text.replace(
        &format!("signing_secret = \"{SIGNING_SECRET}\""),
        &format!(
            "signing_secret = \"{}\"\nextra_signing_secrets = [{}]",
            step.signing_secret,
            quoted(&step.extra_signing_secrets)
        ),
    );
    if let Some(token) = &step.config_channel_token {
        text.push_str(&format!(
            "\n[[channels]]\nkind = \"whatsapp\"\nid = \"123456123\"\ntenant = \"acme\"\ntoken = \"{token}\"\n"
        ));
    }
    text
}

/// Writes the step's config and waits until the app runs it.
async fn apply(app: &TestApp, step: &Step<'_>) {
    app.reload(&config_for(app, step), |live| {
        live.keyring.len() == step.vault_keys.len()
            && step.admin_tokens.iter().all(|t| live.is_admin_token(t))
            && live.settings.meta.app_secrets.len() == step.app_secrets.len()
            && live.settings.channels.len() == usize::from(step.config_channel_token.is_some())
    })
    .await;
}

/// A WhatsApp text webhook with a unique message id (so each one reaches the CRM).
fn unique_webhook(n: usize) -> Vec<u8> {
    String::from_utf8(fixture("whatsapp/text.json"))
        .unwrap()
        .replace(
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
            &format!("wamid.reload-{n}"),
        )
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reload_under_load_rotating_keys_and_secrets_fails_no_request() {
    let app = Arc::new(spawn_app().await);
    let k1 = app.vault_key.clone();
    let (k2, k3) = (Keyring::generate_key(), Keyring::generate_key());
    let (s1, s2, s3) = (APP_SECRET, "app-secret-two-5d1e", "app-secret-three-77b2");
    let (a1, a2, a3) = (
        ADMIN_TOKEN,
        "admin-token-two-0c4f",
        "admin-token-three-a9d3",
    );
    let (w1, w2) = (SIGNING_SECRET, OTHER_SIGNING_SECRET);
    let ring = |keys: &[&str]| {
        Keyring::new(
            &keys
                .iter()
                .map(|k| SecretString::from(k.to_string()))
                .collect::<Vec<_>>(),
        )
        .unwrap()
    };

    let clients = Arc::new(RwLock::new(Clients {
        app_secret: s1.to_owned(),
        admin_token: a1.to_owned(),
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));

    let mut tasks = Vec::new();
    for worker in 0..3 {
        let (app, clients, stop, sent, failures) = (
            app.clone(),
            clients.clone(),
            stop.clone(),
            sent.clone(),
            failures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = unique_webhook(worker * 1_000_000 + n);
                // Held for the whole request: Meta's in-flight deliveries signed with a
                // secret finish before the operator drops that secret.
                let c = clients.read().await;
                let resp = app
                    .http
                    .post(app.url("/webhooks/meta"))
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", meta_signature(&c.app_secret, &body))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                drop(c);
                sent.fetch_add(1, Ordering::Relaxed);
                if resp.status() != 200 {
                    let line = format!("webhook {}: {}", resp.status(), resp.text().await.unwrap());
                    failures.lock().unwrap().push(line);
                }
            }
        }));
    }
    for worker in 0..2 {
        let (app, clients, stop, sent, failures) = (
            app.clone(),
            clients.clone(),
            stop.clone(),
            sent.clone(),
            failures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let c = clients.read().await;
                let put = app
                    .http
                    .put(app.url(&format!("/admin/v1/channels/messenger/50{worker}")))
                    .bearer_auth(&c.admin_token)
                    .json(&json!({"tenant": "globex", "token": format!("EAAG-page-{n}")}))
                    .send()
                    .await
                    .unwrap();
                let listed = app
                    .http
                    .get(app.url("/admin/v1/channels"))
                    .bearer_auth(&c.admin_token)
                    .send()
                    .await
                    .unwrap();
                drop(c);
                sent.fetch_add(2, Ordering::Relaxed);
                if !put.status().is_success() {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("put {}", put.status()));
                }
                if listed.status() != 200 {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("list {}", listed.status()));
                    continue;
                }
                // No stored secret is ever unreadable to the running config.
                let body: Value = listed.json().await.unwrap();
                for ch in body["channels"].as_array().unwrap() {
                    if ch["status"] == "error" {
                        failures.lock().unwrap().push(format!("channel {ch}"));
                    }
                }
            }
        }));
    }

    // Each cycle: add the new key, app secret, admin token and CRM signing secret next
    // to the old ones; once every replica runs that, switch the clients; rotate; drop
    // the old ones.
    let cycles = [
        (&k1, k2.as_str(), s1, s2, a1, a2, w1, w2),
        (&k2, k3.as_str(), s2, s3, a2, a3, w2, w1),
    ];
    for (old_k, new_k, old_s, new_s, old_a, new_a, old_w, new_w) in cycles {
        let overlap = Step {
            vault_keys: vec![new_k, old_k],
            app_secrets: vec![old_s, new_s],
            admin_tokens: vec![old_a, new_a],
            signing_secret: new_w,
            extra_signing_secrets: vec![old_w],
            config_channel_token: Some(ring(&[old_k]).encrypt(b"EAAG-config-channel")),
        };
        apply(&app, &overlap).await;
        {
            let mut c = clients.write().await;
            c.app_secret = new_s.to_owned();
            c.admin_token = new_a.to_owned();
        }
        let report: Value = app
            .http
            .post(app.url("/admin/v1/vault/rotate"))
            .bearer_auth(new_a)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(report["rotated"].as_u64().unwrap() >= 3, "{report}");
        assert_eq!(
            report["config_channels_on_older_key"],
            json!(["whatsapp:123456123"])
        );
        let done = Step {
            vault_keys: vec![new_k],
            app_secrets: vec![new_s],
            admin_tokens: vec![new_a],
            signing_secret: new_w,
            extra_signing_secrets: vec![],
            config_channel_token: Some(ring(&[new_k]).encrypt(b"EAAG-config-channel")),
        };
        apply(&app, &done).await;
        // Let the load run a little on the new config before the next cycle.
        let until = sent.load(Ordering::Relaxed) + 20;
        let deadline = Instant::now() + Duration::from_secs(20);
        while sent.load(Ordering::Relaxed) < until {
            assert!(Instant::now() < deadline, "the load stalled");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} failed: {failures:#?}",
        failures.len()
    );
    let total = sent.load(Ordering::Relaxed);
    assert!(total >= 60, "only {total} requests");
    println!("reload under load: {total} requests, 0 failed, 4 reloads");

    // Every event the CRM got is signed with a secret it trusted at the time: the old
    // or the new one (both during the overlap).
    let reqs = app.crm_requests().await;
    assert!(!reqs.is_empty());
    for r in &reqs {
        let ok = [w1, w2]
            .iter()
            .any(|w| std::panic::catch_unwind(|| verify_standard_webhook(w, r)).is_ok());
        assert!(ok, "a CRM request verifies with neither secret");
    }
    // And everything stored opens with the final key alone.
    let final_ring = ring(&[&k3]);
    for (channel, record) in switchboard::store::StoreBackend::list_channels(&app.state.store)
        .await
        .unwrap()
    {
        use secrecy::ExposeSecret;
        assert!(
            final_ring.decrypt(record.token.expose_secret()).is_ok(),
            "{channel}"
        );
    }
}

/// A process-wide counter's value (the first line starting with `prefix`).
fn metric_value(app: &TestApp, prefix: &str) -> u64 {
    app.state
        .metrics
        .render()
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The number of refused reloads so far.
fn refused_reloads(app: &TestApp) -> u64 {
    metric_value(app, "switchboard_config_reloads_total{outcome=\"refused\"}")
}

#[tokio::test]
async fn broken_config_is_refused_and_the_running_one_keeps_serving() {
    let app = spawn_app().await;
    let before = app.state.live.load_full();
    let good = std::fs::read_to_string(&app.config_path).unwrap();
    let broken = [
        // Not TOML.
        good.replace("[vault]", "[vault"),
        // A bad Fernet key.
        good.replace(
            &format!("keys = [\"{}\"]", app.vault_key),
            &format!("keys = [\"{}\", \"not-a-fernet-key\"]", app.vault_key),
        ),
        // A channel of an undeclared tenant.
        format!("{good}\n[[channels]]\nkind = \"whatsapp\"\nid = \"1\"\ntenant = \"nobody\"\ntoken = \"x\"\n"),
        // A signing secret that is not whsec_.
        good.replace(SIGNING_SECRET, "not-a-signing-secret"),
        // Empty.
        String::new(),
    ];
    for text in &broken {
        std::fs::write(&app.config_path, text).unwrap();
        assert!(
            !switchboard::reload::reload(&app.state, Some(&app.config_path)).await,
            "applied: {text}"
        );
    }
    // The watcher also saw the last broken file, and refused it.
    let seen = refused_reloads(&app);
    std::fs::write(&app.config_path, &broken[1]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while refused_reloads(&app) <= seen {
        assert!(Instant::now() < deadline, "the watcher did not look");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(Arc::ptr_eq(&before, &app.state.live.load_full()));

    // The running config serves.
    let resp = app.post_meta(&fixture("whatsapp/text.json")).await;
    assert_eq!(resp.status(), 200);
    let resp = app
        .http
        .get(app.url("/admin/v1/channels"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // A good file afterwards is applied by the watcher.
    std::fs::write(
        &app.config_path,
        good.replace(ADMIN_TOKEN, "admin-token-after-repair"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app
        .state
        .live
        .load()
        .is_admin_token("admin-token-after-repair")
    {
        assert!(
            Instant::now() < deadline,
            "the repaired config was not applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!app.state.live.load().is_admin_token(ADMIN_TOKEN));
}

/// Runs the CLI with `stdin`; returns (success, stdout + stderr).
pub(crate) fn cli(config: &Path, args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "trace")
        .env_remove("SWITCHBOARD_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test]
async fn binary_reloads_on_sighup_refuses_broken_config_and_never_logs_a_secret() {
    let (k1, k2) = (Keyring::generate_key(), Keyring::generate_key());
    let admin2 = "admin-token-second-3c1d";
    let app_secret2 = "app-secret-second-91aa";
    let token_api = "EAAG-admin-api-plaintext-token";
    let token_cli = "EAAG-cli-plaintext-token";
    let token_cfg = "EAAG-config-plaintext-token";
    let tg_token = "7001234567:AAH-telegram-plaintext";
    let tg_secret = "tg-plaintext-webhook-secret";
    let typo_secret = "secret-on-a-broken-line-e4f0";
    let k1_ring = Keyring::new(&[SecretString::from(k1.clone())]).unwrap();
    let cfg_channel = k1_ring.encrypt(token_cfg.as_bytes());
    let config = |c: &TestConfig, keys: &str, admins: &str, secrets: &str| {
        let StoreConfig::Redis(redis) = &c.store else {
            unreachable!("the relay has a redis-server of its own")
        };
        format!(
            r#"
[server]
bind = "127.0.0.1:{port}"
workers = 1
[store]
backend = "redis"
redis_url = "{redis}"
[vault]
keys = [{keys}]
[meta]
app_secrets = [{secrets}]
verify_tokens = ["{VERIFY_TOKEN}"]
[admin]
tokens = [{admins}]
[reload]
watch_interval_ms = 0
[[tenants]]
id = "acme"
crm_url = "{crm}{CRM_PATH}"
signing_secret = "{SIGNING_SECRET}"
api_keys = ["{API_KEY}"]
[[channels]]
kind = "whatsapp"
id = "123456123"
tenant = "acme"
token = "{cfg_channel}"
"#,
            port = c.port,
            crm = c.crm,
        )
    };
    let first = |c: &TestConfig| {
        config(
            c,
            &format!("\"{k1}\""),
            &format!("\"{ADMIN_TOKEN}\""),
            &format!("\"{APP_SECRET}\""),
        )
    };
    let relay = TestApp::builder()
        .vault_key(&k1)
        .log_level("trace")
        .without_fixture_channels()
        .spawn_process_with(first)
        .await;
    let (config_path, first) = (&relay.peers.config_path, first(&relay.peers.config));
    let http = &relay.peers.http;
    let admin =
        |token: &str, m: reqwest::Method, p: &str| http.request(m, relay.url(p)).bearer_auth(token);

    // Admin API and CLI, with secrets in bodies and on stdin.
    let resp = admin(
        ADMIN_TOKEN,
        reqwest::Method::PUT,
        "/admin/v1/channels/whatsapp/106540352242922",
    )
    .json(&json!({"tenant": "acme", "token": token_api}))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = admin(
        ADMIN_TOKEN,
        reqwest::Method::PUT,
        "/admin/v1/channels/telegram/7001234567",
    )
    .json(&json!({"tenant": "acme", "token": tg_token, "webhook_secret": tg_secret}))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    let (ok, out) = cli(
        config_path,
        &[
            "channels",
            "put",
            "whatsapp",
            "1122334455667",
            "--tenant",
            "acme",
        ],
        &format!("{token_cli}\n"),
    );
    assert!(ok, "{out}");
    let mut outputs = vec![out];
    let (ok, cli_list) = cli(config_path, &["channels", "list"], "");
    assert!(ok, "{cli_list}");
    assert!(
        cli_list.contains("1122334455667") && cli_list.contains("primary_key"),
        "{cli_list}"
    );
    outputs.push(cli_list);
    let body = fixture("whatsapp/text.json");
    let resp = http
        .post(relay.url("/webhooks/meta"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", meta_signature(APP_SECRET, &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // SIGHUP with the new key, admin token and app secret next to the old ones.
    std::fs::write(
        config_path,
        config(
            &relay.peers.config,
            &format!("\"{k2}\", \"{k1}\""),
            &format!("\"{ADMIN_TOKEN}\", \"{admin2}\""),
            &format!("\"{APP_SECRET}\", \"{app_secret2}\""),
        ),
    )
    .unwrap();
    relay.hup();
    relay.wait_for_log("Config reloaded.", 1).await;
    let api_list = admin(admin2, reqwest::Method::GET, "/admin/v1/channels")
        .send()
        .await
        .unwrap();
    assert_eq!(api_list.status(), 200);
    let api_list = api_list.text().await.unwrap();
    let parsed: Value = serde_json::from_str(&api_list).unwrap();
    for c in parsed["channels"].as_array().unwrap() {
        let declared = c["kind"] == "whatsapp" && c["id"] == "123456123";
        assert_eq!(c["from_config"], declared, "{c}");
        assert_eq!(c["status"], "needs_rotation", "{c}");
    }
    outputs.push(api_list);
    let (ok, out) = cli(config_path, &["vault", "rotate"], "");
    assert!(ok, "{out}");
    assert!(out.contains("rotated 4 of 4"), "{out}");
    assert!(out.contains("whatsapp:123456123"), "{out}");
    outputs.push(out);
    let rotated: Value = admin(admin2, reqwest::Method::POST, "/admin/v1/vault/rotate")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rotated["rotated"], 0);

    // Broken configs, one with a secret on the broken line: refused, named, not echoed.
    std::fs::write(
        config_path,
        first.replace(
            &format!("app_secrets = [\"{APP_SECRET}\"]"),
            &format!("app_secrets = [\"{typo_secret}\" \"{typo_secret}\"]"),
        ),
    )
    .unwrap();
    relay.hup();
    relay.wait_for_log("Config reload refused", 1).await;
    std::fs::write(
        config_path,
        config(
            &relay.peers.config,
            &format!("\"{k2}\", \"{typo_secret}\""),
            "\"x\"",
            "\"y\"",
        ),
    )
    .unwrap();
    relay.hup();
    relay.wait_for_log("Config reload refused", 2).await;
    assert!(relay.logs().contains("vault.keys[1]"), "{}", relay.logs());
    // The running config still serves.
    let resp = admin(admin2, reqwest::Method::GET, "/admin/v1/channels")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http
        .post(relay.url("/webhooks/meta"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", meta_signature(app_secret2, &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let wrong = admin("wrong", reqwest::Method::GET, "/admin/v1/channels")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let (ok, out) = cli(
        config_path,
        &["vault", "encrypt"],
        &format!("{token_cli}\n"),
    );
    assert!(!ok, "a broken config must stop the CLI too: {out}");
    assert!(out.contains("vault.keys[1]"), "{out}");
    outputs.push(out);
    let mut relay = relay;
    relay.kill();
    let relay_logs = relay.logs();
    assert!(relay_logs.lines().count() > 50, "trace logs are on");

    let secrets = [
        token_api,
        token_cli,
        token_cfg,
        tg_token,
        tg_secret,
        typo_secret,
        &k1,
        &k2,
        ADMIN_TOKEN,
        admin2,
        APP_SECRET,
        app_secret2,
        SIGNING_SECRET,
        &SIGNING_SECRET["whsec_".len()..],
    ];
    let dump = relay.redis().dump_all();
    for s in secrets {
        assert!(!relay_logs.contains(s), "the logs hold {s}");
        for o in &outputs {
            assert!(!o.contains(s), "the CLI or the admin API printed {s}");
        }
        assert!(!dump.contains(s), "Redis holds {s}");
    }
    // Not even ciphertexts are logged.
    assert!(
        !relay_logs.contains("gAAAAA"),
        "the logs hold a Fernet token"
    );
}

#[test]
fn panics_and_debug_output_never_show_a_secret() {
    use secrecy::ExposeSecret;
    let key = Keyring::generate_key();
    let keyring = Keyring::new(&[SecretString::from(key.clone())]).unwrap();
    let plaintext = "EAAG-panic-probe-token";
    let token = keyring.encrypt(plaintext.as_bytes());
    let opened = keyring.decrypt_token(&token).unwrap();
    let record = switchboard::store::ChannelRecord {
        tenant: "acme".into(),
        token: SecretString::from(token.clone()),
        webhook_secret: Some(SecretString::from(plaintext.to_owned())),
        pin: Some(SecretString::from(plaintext.to_owned())),
        ..switchboard::store::ChannelRecord::new("acme", SecretString::from(String::new()))
    };
    let input = switchboard::registry::ChannelInput {
        webhook_secret: Some(SecretString::from(plaintext.to_owned())),
        pin: Some(SecretString::from(plaintext.to_owned())),
        ..switchboard::registry::ChannelInput::new("acme", SecretString::from(plaintext.to_owned()))
    };
    let mut shown = vec![
        format!("{keyring:?}"),
        format!("{opened:?}"),
        format!("{record:?}"),
        format!("{input:?}"),
    ];
    // What a panic on an unwrapped error prints: the error's Debug.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let bad_keys = [
        SecretString::from(key.clone()),
        SecretString::from(format!("{key}x")),
    ];
    for payload in [
        std::panic::catch_unwind(|| {
            Keyring::new(&bad_keys).unwrap();
        }),
        std::panic::catch_unwind(|| {
            keyring.decrypt(&token.replace('A', "B")).unwrap();
        }),
        std::panic::catch_unwind(|| {
            panic!("{:?}", keyring.decrypt_token(&token).map(|_| ()));
        }),
    ] {
        let p = payload.unwrap_err();
        shown.push(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap(),
        );
    }
    std::panic::set_hook(previous);
    assert_eq!(opened.expose(), plaintext);
    assert_eq!(record.token.expose_secret(), token);
    for s in &shown {
        assert!(!s.contains(plaintext), "{s}");
        assert!(!s.contains(&key), "{s}");
        assert!(!s.contains(&token), "{s}");
    }
}

#[tokio::test]
async fn config_channels_are_written_once_the_store_is_back_after_a_reload_during_an_outage() {
    let mut app = spawn_app().await;
    let token = app.keyring.encrypt(b"EAAG-config-during-outage");
    let text = format!(
        "{}\n[[channels]]\nkind = \"messenger\"\nid = \"4242\"\ntenant = \"globex\"\ntoken = \"{token}\"\n",
        std::fs::read_to_string(&app.config_path).unwrap()
    );
    let failures =
        |app: &TestApp| metric_value(app, "switchboard_config_channel_sync_failures_total");
    let before = failures(&app);
    app.redis_mut().stop();
    std::fs::write(&app.config_path, text).unwrap();
    // The reload is applied, and writing its channel fails while Redis is away.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.live.load().settings.channels.is_empty() || failures(&app) <= before {
        assert!(Instant::now() < deadline, "no reload, or no failed write");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.redis_mut().restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let tenant = app
            .redis()
            .cli(&["HGET", "switchboard:channel:messenger:4242", "tenant"]);
        if tenant.trim() == "globex" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the config channel was never written"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = app
        .redis()
        .cli(&["HGET", "switchboard:channel:messenger:4242", "token"]);
    assert_eq!(
        &*app.keyring.decrypt(stored.trim()).unwrap(),
        b"EAAG-config-during-outage"
    );
}
