//! The real binary: SIGHUP reloads, a broken config is refused, and no secret reaches a log, a panic or a `Debug` print.

use super::*;

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
    let (ok, out) = run_cli(
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
    let (ok, cli_list) = run_cli(config_path, &["channels", "list"], "");
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
    let (ok, out) = run_cli(config_path, &["vault", "rotate"], "");
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
    let (ok, out) = run_cli(
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
