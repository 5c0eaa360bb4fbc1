//! `switchboard buffer list|redrive|drop|stats` through the real binary, against a
//! relay binary on the same redis-server; and the admin API of that relay.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;

fn buffer_cli(config: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "buffer"])
        .args(args)
        .env_remove("SWITCHBOARD_CONFIG")
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("secret text"), "{args:?}: {text}");
    assert!(!text.contains(WA_ID), "{args:?}: {text}");
    (out.status.success(), text)
}

fn cli_json(config: &Path, args: &[&str]) -> Value {
    let (ok, text) = buffer_cli(config, args);
    assert!(ok, "{args:?}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

/// Polls `buffer list --json` until it lists `n` dead letters.
async fn wait_dead_letters(config: &Path, n: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = cli_json(config, &["list", "--json"]);
        if list["count"].as_u64() == Some(n) {
            return list;
        }
        assert!(Instant::now() < deadline, "never {n} dead letters: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_buffer_cli_lists_redrives_and_drops_dead_letters_of_a_running_relay() {
    let redis = RedisServer::start();
    let crm = ScriptedCrm::start().await;
    crm.set(Mode::Fail);
    let relay = TestApp::builder()
        .delivering(
            Some(&redis.url()),
            &crm,
            300,
            "retry_buffer_ttl_s = 1\ndead_letter_ttl_s = 600",
        )
        .log_level("trace")
        .spawn_process()
        .await;
    let path = relay.peers.config_path.clone();
    for n in [1, 2] {
        assert_eq!(
            relay
                .post_meta_status(&wa_webhook(WA_ACME, &[(WA_ID, n)]))
                .await,
            200
        );
    }

    // The relay's own worker gives both up (the CRM refuses every attempt).
    let list = wait_dead_letters(&path, 2).await;
    let ids: Vec<String> = list["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    for d in list["dead_letters"].as_array().unwrap() {
        assert_eq!(
            (d["tenant"].as_str(), d["type"].as_str()),
            (Some("acme"), Some("message.received")),
            "{d}"
        );
    }
    // The relay's gauge and counter say so too.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = relay
            .peers
            .http
            .get(relay.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("switchboard_dead_letters{tenant=\"acme\"} 2") {
            assert!(
                metrics.contains("switchboard_events_dead_lettered_total{tenant=\"acme\"} 2"),
                "{metrics}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no dead-letter gauge: {metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, table) = buffer_cli(&path, &["list"]);
    assert!(ok, "{table}");
    assert!(
        table.contains(&ids[0]) && table.contains("message.received"),
        "{table}"
    );
    assert!(table.contains("2 dead letter(s)"), "{table}");
    let (ok, stats) = buffer_cli(&path, &["stats"]);
    assert!(ok, "{stats}");
    let acme = stats
        .lines()
        .find(|l| l.starts_with("acme"))
        .unwrap_or_default();
    assert_eq!(
        acme.split_whitespace().collect::<Vec<_>>(),
        ["acme", "0", "-", "2"],
        "{stats}"
    );
    assert!(stats.contains("dead_letter_ttl_s = 600"), "{stats}");
    let refused = crm.received().len();
    assert!(refused >= 4, "{refused}");
    assert!(crm.accepted_at(CRM_PATH).is_empty());

    // Redrive the first to a CRM that accepts: it arrives once, verified.
    crm.set(Mode::Ok);
    let (ok, out) = buffer_cli(&path, &["redrive", &ids[0]]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "{} (tenant acme): back in the retry buffer",
            ids[0]
        )),
        "{out}"
    );
    let got = crm
        .wait_accepted(CRM_PATH, 1, Duration::from_secs(10))
        .await;
    assert_eq!(got.len(), 1);
    verify_standard_webhook(SIGNING_SECRET, &got[0]);
    assert_eq!(got[0].webhook_id, ids[0]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = cli_json(&path, &["stats", "--json"]);
        if s["buffered"] == 0 {
            assert_eq!(s["dead_letters"], 1, "{s}");
            assert_eq!(s["tenants"][0]["tenant"], "acme");
            break;
        }
        assert!(Instant::now() < deadline, "never drained: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(crm.accepted_at(CRM_PATH).len(), 1, "once");

    // Again: no such dead letter any more; drop the second; an unknown id fails.
    let (ok, out) = buffer_cli(&path, &["redrive", &ids[0]]);
    assert!(!ok && out.contains("no dead letter has the id"), "{out}");
    let (ok, out) = buffer_cli(&path, &["drop", &ids[1]]);
    assert!(ok && out.contains("dropped"), "{out}");
    let (ok, _) = buffer_cli(&path, &["drop", &ids[1]]);
    assert!(!ok);
    assert_eq!(wait_dead_letters(&path, 0).await["count"], 0);
    let (ok, out) = buffer_cli(&path, &["redrive"]);
    assert!(!ok, "an id or --all is required: {out}");
    assert_eq!(crm.accepted_at(CRM_PATH).len(), 1);

    // The admin API of the same relay: a third event, given up, listed, redriven.
    crm.set(Mode::Fail);
    assert_eq!(
        relay
            .post_meta_status(&wa_webhook(WA_ACME, &[(WA_ID, 3)]))
            .await,
        200
    );
    let third = wait_dead_letters(&path, 1).await["dead_letters"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = |method: reqwest::Method, p: String| {
        let req = relay
            .peers
            .http
            .request(method, relay.url(&p))
            .bearer_auth(ADMIN_TOKEN);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert!(
                !text.contains("secret text") && !text.contains(WA_ID),
                "{p}: {text}"
            );
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }
    };
    let (status, list) = call(get(), "/admin/v1/dead-letters".into()).await;
    assert_eq!(
        (status, list["dead_letters"][0]["id"].as_str()),
        (200, Some(third.as_str()))
    );
    let (status, stats) = call(get(), "/admin/v1/buffer/stats".into()).await;
    assert_eq!(
        (status, stats["dead_letters"].as_u64()),
        (200, Some(1)),
        "{stats}"
    );
    crm.set(Mode::Ok);
    let (status, r) = call(post(), format!("/admin/v1/dead-letters/{third}/redrive")).await;
    assert_eq!(
        (status, r["outcome"].as_str()),
        (200, Some("scheduled")),
        "{r}"
    );
    let got = crm
        .wait_accepted(CRM_PATH, 2, Duration::from_secs(10))
        .await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].webhook_id, third);
    verify_standard_webhook(SIGNING_SECRET, &got[1]);

    // The relay said it gave them up and kept them, and what it redrove, by id; never
    // the text.
    relay
        .wait_for_log("Dead letter redriven into the retry buffer.", 1)
        .await;
    let logs = relay.logs();
    assert!(logs.contains("Event given up"), "{logs}");
    assert!(logs.contains("\"dead_lettered\":true"), "{logs}");
    assert!(
        !logs.contains("secret text"),
        "the relay logged message text"
    );
    assert!(
        !logs.contains(WA_ID),
        "the relay logged the customer's number"
    );
    let (dump, _) = redis.dump_with_ttls();
    assert!(!dump.contains("secret text"), "{dump}");
}

#[tokio::test]
async fn the_buffer_cli_refuses_the_memory_store() {
    let app = TestApp::builder().memory().spawn().await;
    let path = app.config_path.clone();
    let (ok, out) = buffer_cli(&path, &["stats"]);
    assert!(!ok);
    assert!(out.contains("use the admin API"), "{out}");
}
