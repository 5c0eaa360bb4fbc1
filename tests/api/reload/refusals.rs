//! What a reload refuses (a broken config keeps the running one serving) and what it completes later (config channels written once the store is back).

use super::*;

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
