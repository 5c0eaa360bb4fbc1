//! Key rotation: old keys still decrypt, rotation moves every secret to the primary key, never overwrites a concurrent write, and reaches every cluster master.

use super::*;

#[tokio::test]
async fn old_key_token_works_and_rotation_moves_every_secret_to_the_new_key() {
    let app = spawn_app().await;
    let old = app.vault_key.clone();
    let new = Keyring::generate_key();
    let old_ring = app.keyring.clone();
    // A Telegram channel with a webhook secret, and one written by Python, under old.
    app.put_channel_with_secret(
        ChannelKind::Telegram,
        "7001234567",
        "acme",
        TELEGRAM_TOKEN,
        Some(TELEGRAM_SECRET),
    )
    .await;
    app.redis().cli(&[
        "HSET",
        "switchboard:channel:messenger:42",
        "tenant",
        "globex",
        "token",
        &python_fernet(&old, "EAAG-python-old"),
    ]);

    set_vault_keys(&app, &[&new, &old]).await;
    let channels = list(&app).await;
    assert_eq!(channels.len(), 5);
    for c in &channels {
        assert_eq!(c["status"], "needs_rotation", "{c}");
        assert_eq!(c["token"], "older_key");
    }
    // Under [new, old] a token under old works: for routing and for opening.
    let resp = app.post_meta(&fixture("whatsapp/text.json")).await;
    assert_eq!(resp.status(), 200);
    let live = app.state.live.load_full();
    let tg = ChannelRef::parse(ChannelKind::Telegram, "7001234567").unwrap();
    let opened = registry::open(&app.state.store, &live.keyring, &tg)
        .await
        .unwrap();
    assert_eq!(opened.token.expose(), TELEGRAM_TOKEN);
    let before_ts = hget(
        &app,
        "switchboard:channel:telegram:7001234567",
        "updated_at",
    );

    let resp = admin(&app, reqwest::Method::POST, "/admin/v1/vault/rotate", None).await;
    assert_eq!(resp.status(), 200);
    let report: Value = resp.json().await.unwrap();
    assert_eq!(report["rotated"], 5, "{report}");
    assert_eq!(
        report["primary_key_id"],
        ring_of(&new).primary_id(),
        "{report}"
    );
    assert_eq!(report["checked"], 5);
    assert!(report["failed"].as_array().unwrap().is_empty());

    // Every stored secret now opens under new alone, to the same plaintext, and not
    // under old.
    let new_only = Keyring::new(&[SecretString::from(new.clone())]).unwrap();
    for c in app.state.store.list_channels().await.unwrap() {
        let (channel, record) = c;
        assert_eq!(
            new_only.key_match(record.token.expose_secret()),
            KeyMatch::Primary,
            "{channel}"
        );
        assert!(old_ring.decrypt(record.token.expose_secret()).is_err());
        if let Some(ws) = &record.webhook_secret {
            assert_eq!(
                &*new_only.decrypt(ws.expose_secret()).unwrap(),
                TELEGRAM_SECRET.as_bytes()
            );
        }
    }
    let opened = registry::open(&app.state.store, &new_only, &tg)
        .await
        .unwrap();
    assert_eq!(opened.token.expose(), TELEGRAM_TOKEN);
    let py = registry::open(
        &app.state.store,
        &new_only,
        &ChannelRef::parse(ChannelKind::Messenger, "42").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(py.token.expose(), "EAAG-python-old");
    // Rotation keeps the record's other fields.
    assert_eq!(
        hget(
            &app,
            "switchboard:channel:telegram:7001234567",
            "updated_at"
        ),
        before_ts
    );

    // Idempotent: nothing left to do.
    let again: Value = admin(&app, reqwest::Method::POST, "/admin/v1/vault/rotate", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["rotated"], 0);
    assert_eq!(again["already_current"], 5);

    // Drop old: everything still opens and routes.
    set_vault_keys(&app, &[&new]).await;
    for c in list(&app).await {
        assert_eq!(c["status"], "ok", "{c}");
    }
    app.forget_dedupe().await;
    let resp = app.post_meta(&fixture("whatsapp/text.json")).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn rotation_never_overwrites_a_concurrent_write() {
    let app = spawn_app().await;
    let old = app.vault_key.clone();
    let new = Keyring::generate_key();
    let old_ring = app.keyring.clone();
    set_vault_keys(&app, &[&new, &old]).await;
    let channel = ChannelRef::parse(ChannelKind::Whatsapp, "106540352242922").unwrap();

    // The compare-and-set itself: a stale expectation changes nothing.
    let current = app
        .state
        .store
        .get_channel(&channel)
        .await
        .unwrap()
        .unwrap();
    let stale = ChannelRecord {
        token: SecretString::from(old_ring.encrypt(b"something else")),
        ..current.clone()
    };
    let replacement = ChannelRecord {
        token: SecretString::from("gAAAAA-would-be-lost".to_owned()),
        ..current.clone()
    };
    assert!(!app
        .state
        .store
        .replace_channel_secrets(&channel, &stale, &replacement)
        .await
        .unwrap());
    assert_eq!(
        hget(
            &app,
            "switchboard:channel:whatsapp:106540352242922",
            "token"
        ),
        current.token.expose_secret()
    );

    // Another replica (still on the old key) keeps writing while rotations run: the
    // last write must survive, and rotations must not resurrect an older value.
    let store = app.state.store.clone();
    let both = app.state.live.load().keyring.clone();
    let writer = {
        let old_ring = old_ring.clone();
        let channel = channel.clone();
        tokio::spawn(async move {
            for i in 0..200u32 {
                let record = ChannelRecord::new(
                    "acme",
                    SecretString::from(old_ring.encrypt(format!("token-{i}").as_bytes())),
                );
                store.put_channel(&channel, &record).await.unwrap();
                // Never older than what was just written.
                let back = store.get_channel(&channel).await.unwrap().unwrap();
                let plain = both.decrypt(back.token.expose_secret()).unwrap();
                let n: u32 = std::str::from_utf8(&plain).unwrap()["token-".len()..]
                    .parse()
                    .unwrap();
                assert!(n >= i, "a rotation brought back token-{n} after token-{i}");
            }
        })
    };
    let mut rotated = 0;
    while !writer.is_finished() {
        let resp = admin(&app, reqwest::Method::POST, "/admin/v1/vault/rotate", None).await;
        assert_eq!(resp.status(), 200);
        let report: Value = resp.json().await.unwrap();
        // A record that changes on every attempt is left for the next run, never
        // forced.
        for f in report["failed"].as_array().unwrap() {
            assert!(
                f["reason"].as_str().unwrap().contains("changed"),
                "{report}"
            );
        }
        rotated += report["rotated"].as_u64().unwrap();
    }
    writer.await.unwrap();
    assert!(rotated > 0);
    let live = app.state.live.load_full();
    let record = app
        .state
        .store
        .get_channel(&channel)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &*live.keyring.decrypt(record.token.expose_secret()).unwrap(),
        b"token-199"
    );
}

#[tokio::test]
async fn rotation_on_a_redis_cluster_reaches_every_master() {
    let cluster = RedisCluster::start(3);
    let app = TestApp::builder().cluster(cluster.urls()).spawn().await;
    for i in 0..30 {
        app.put_channel(ChannelKind::Messenger, &format!("80000{i}"), "acme", "t")
            .await;
    }
    let new = Keyring::generate_key();
    let mut config = app.config.clone();
    config.vault_keys = vec![new.clone(), app.vault_key.clone()];
    app.reload(&config.render(), |live| live.keyring.len() == 2)
        .await;
    let report: Value = admin(&app, reqwest::Method::POST, "/admin/v1/vault/rotate", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["rotated"], 33, "{report}");
    let channels = list(&app).await;
    assert_eq!(channels.len(), 33);
    assert!(channels.iter().all(|c| c["token"] == "primary_key"));
    let new_only = ring_of(&new);
    for (c, r) in app.state.store.list_channels().await.unwrap() {
        assert!(new_only.decrypt(r.token.expose_secret()).is_ok(), "{c}");
    }
    let again: Value = admin(&app, reqwest::Method::POST, "/admin/v1/vault/rotate", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["rotated"], 0);
}
