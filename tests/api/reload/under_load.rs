//! Reloads under load: rotating keys, app secrets and signing secrets while webhooks and replies run fails no request.

use super::*;

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
