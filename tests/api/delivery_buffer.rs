//! The retry buffer against a real redis-server and a real HTTP CRM: events the CRM
//! does not take are answered 200, kept encrypted, and delivered later, once, in order.

use std::time::{Duration, Instant};

use switchboard::delivery::{BufferBackend, Outcome, Worker};
use switchboard::vault::Keyring;

use crate::helpers::*;

fn expected(convs: &[&str], per_conv: u32) -> Vec<(String, u32)> {
    convs
        .iter()
        .flat_map(|c| (1..=per_conv).map(move |n| (c.to_string(), n)))
        .collect()
}

#[tokio::test]
async fn crm_down_then_back_every_event_arrives_once_in_conversation_order() {
    let redis = RedisServer::start();
    let mut crm = ScriptedCrm::start().await;
    crm.set(Mode::Fail);
    let key = Keyring::generate_key();
    let relay = TestApp::builder()
        .delivering(Some(&redis.url()), &crm, 300, "")
        .vault_key(&key)
        .spawn()
        .await;

    let convs = [
        "4915110000001",
        "4915110000002",
        "4915110000003",
        "4915110000004",
    ];
    let per_conv = 8u32;
    // Two messages of a conversation per webhook, conversations interleaved; the CRM
    // fails, then drops connections, then is down, then comes back.
    for round in 0..per_conv / 2 {
        match round {
            1 => crm.set(Mode::Closed),
            2 => crm.down().await,
            _ => {}
        }
        for c in convs {
            let body = wa_webhook(WA_ACME, &[(c, round * 2 + 1), (c, round * 2 + 2)]);
            assert_eq!(relay.post_meta_status(&body).await, 200, "round {round}");
        }
    }
    assert!(relay.depth().await > 0, "the events wait in the buffer");
    assert!(crm.accepted_at(CRM_PATH).is_empty());

    crm.up().await;
    crm.set(Mode::Ok);
    let total = convs.len() * per_conv as usize;
    let got = crm
        .wait_accepted(CRM_PATH, total, Duration::from_secs(30))
        .await;
    assert!(relay.wait_drained(Duration::from_secs(10)).await);
    // Nothing more arrives once drained.
    let got_after = crm.accepted_at(CRM_PATH);
    assert_eq!(got.len(), got_after.len());
    let dups = assert_all_in_order(&got_after, &expected(&convs, per_conv));
    assert_eq!(dups, 0, "no event reached the CRM twice");
    // Signed per Standard Webhooks, webhook-id = event id, as for a direct delivery.
    for r in &got_after {
        let body = verify_standard_webhook(SIGNING_SECRET, r);
        assert_eq!(body["id"], r.webhook_id.as_str());
    }
    // The counters and gauges are exported.
    let metrics = relay
        .http
        .get(format!("{}/metrics", relay.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "switchboard_events_buffered_total",
        "switchboard_events_delivered_total",
        "switchboard_delivery_failures_total",
        "switchboard_delivery_latency_seconds_bucket",
        "switchboard_retry_buffer_depth",
        "switchboard_retry_buffer_oldest_age_seconds",
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(name) && l.contains("tenant=\"acme\"")),
            "{name} missing"
        );
    }
}

#[tokio::test]
async fn a_buffered_delivery_verifies_with_the_standardwebhooks_crate() {
    let app = TestApp::builder().spawn().await;
    app.crm_fails_once().await;
    assert_eq!(
        app.post_meta(&fixture("whatsapp/text.json")).await.status(),
        200
    );
    let reqs = app.wait_for_crm(CRM_PATH, 2).await;
    assert_eq!(reqs.len(), 2, "the worker redelivered the buffered event");
    let first = verify_standard_webhook(SIGNING_SECRET, &reqs[0]);
    let second = verify_standard_webhook(SIGNING_SECRET, &reqs[1]);
    assert_eq!(first, second, "the same body on every attempt");
    assert_eq!(
        reqs[0].headers.get("webhook-id"),
        reqs[1].headers.get("webhook-id")
    );
}

async fn relay_without_worker(
    redis: Option<&str>,
    crm: &ScriptedCrm,
    extra: &str,
) -> (TestApp, Worker) {
    let key = Keyring::generate_key();
    let relay = TestApp::builder()
        .delivering(redis, crm, 300, &format!("worker = false\n{extra}"))
        .vault_key(&key)
        .spawn()
        .await;
    let worker = Worker::new(
        relay.state.live.clone(),
        relay.state.dispatcher.clone(),
        "test-worker",
    );
    (relay, worker)
}

/// Steps the worker until `want` (or fails after 5 s).
async fn step_until(worker: &Worker, want: Outcome) -> Vec<Outcome> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    loop {
        let o = worker.deliver_next().await.unwrap();
        if o != Outcome::Idle {
            seen.push(o);
        }
        if o == want {
            return seen;
        }
        assert!(Instant::now() < deadline, "never {want:?}; saw {seen:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn later_events_of_a_conversation_queue_behind_buffered_ones_redis() {
    let redis = RedisServer::start();
    later_events_queue_behind(Some(&redis.url())).await;
}

#[tokio::test]
async fn later_events_of_a_conversation_queue_behind_buffered_ones_memory() {
    later_events_queue_behind(None).await;
}

async fn later_events_queue_behind(redis: Option<&str>) {
    let crm = ScriptedCrm::start().await;
    let (relay, worker) = relay_without_worker(redis, &crm, "").await;
    let a = "4915110000001";
    let b = "4915110000002";
    crm.set(Mode::Fail);
    assert_eq!(
        relay
            .post_meta_status(&wa_webhook(WA_ACME, &[(a, 1)]))
            .await,
        200
    );
    crm.set(Mode::Ok);
    // a#2 must wait behind a#1; b#1 goes straight through.
    assert_eq!(
        relay
            .post_meta_status(&wa_webhook(WA_ACME, &[(a, 2), (b, 1)]))
            .await,
        200
    );
    let direct = crm.accepted_at(CRM_PATH);
    assert_eq!(direct.len(), 1);
    assert_eq!(conv_and_n(&direct[0].body), (b.to_owned(), 1));
    assert_eq!(relay.depth().await, 2);

    assert_eq!(
        step_until(&worker, Outcome::Delivered).await.last(),
        Some(&Outcome::Delivered)
    );
    assert_eq!(
        step_until(&worker, Outcome::Delivered).await.last(),
        Some(&Outcome::Delivered)
    );
    assert_eq!(worker.deliver_next().await.unwrap(), Outcome::Idle);
    let got: Vec<_> = crm
        .accepted_at(CRM_PATH)
        .iter()
        .map(|r| conv_and_n(&r.body))
        .collect();
    assert_eq!(
        got,
        vec![(b.to_owned(), 1), (a.to_owned(), 1), (a.to_owned(), 2)]
    );
    assert_eq!(relay.depth().await, 0);
    // Delivered from the buffer counts as seen: a redelivery is a duplicate.
    assert_eq!(
        relay
            .post_meta_status(&wa_webhook(WA_ACME, &[(a, 1)]))
            .await,
        200
    );
    assert_eq!(crm.accepted_at(CRM_PATH).len(), 3);
}

#[tokio::test]
async fn a_redelivered_webhook_of_a_buffered_event_is_not_buffered_twice() {
    let redis = RedisServer::start();
    let crm = ScriptedCrm::start().await;
    let (relay, worker) = relay_without_worker(Some(&redis.url()), &crm, "").await;
    crm.set(Mode::Fail);
    let body = wa_webhook(WA_ACME, &[("4915110000001", 1)]);
    for _ in 0..3 {
        assert_eq!(relay.post_meta_status(&body).await, 200);
    }
    assert_eq!(relay.depth().await, 1);
    // Only the first webhook tried the CRM; the others found the event buffered.
    assert_eq!(crm.received().len(), 1);
    crm.set(Mode::Ok);
    step_until(&worker, Outcome::Delivered).await;
    assert_eq!(worker.deliver_next().await.unwrap(), Outcome::Idle);
    assert_eq!(crm.accepted_at(CRM_PATH).len(), 1);
}

#[tokio::test]
async fn retry_after_is_honoured_and_failed_attempts_back_off() {
    let redis = RedisServer::start();
    let crm = ScriptedCrm::start().await;
    let (relay, worker) = relay_without_worker(Some(&redis.url()), &crm, "").await;
    crm.set(Mode::RetryAfter(1));
    let started = Instant::now();
    assert_eq!(
        relay
            .post_meta_status(&wa_webhook(WA_ACME, &[("4915110000001", 1)]))
            .await,
        200
    );
    // Due in 1 s (Retry-After), not after the 50 ms base backoff.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(worker.deliver_next().await.unwrap(), Outcome::Idle);
    crm.set(Mode::Ok);
    step_until(&worker, Outcome::Delivered).await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn past_the_buffer_ttl_an_event_is_given_up_counted_and_deleted() {
    let redis = RedisServer::start();
    let crm = ScriptedCrm::start().await;
    let (relay, worker) =
        relay_without_worker(Some(&redis.url()), &crm, "retry_buffer_ttl_s = 1").await;
    crm.set(Mode::Fail);
    assert_eq!(
        relay
            .post_meta_status(&wa_webhook(
                WA_ACME,
                &[("4915110000001", 1), ("4915110000001", 2)]
            ))
            .await,
        200
    );
    assert_eq!(relay.depth().await, 2);
    let seen = step_until(&worker, Outcome::GivenUp).await;
    assert!(seen.contains(&Outcome::Retried), "{seen:?}");
    // The parked second event is next in line, and also past its TTL.
    step_until(&worker, Outcome::GivenUp).await;
    assert_eq!(relay.depth().await, 0);
    assert!(crm.accepted_at(CRM_PATH).is_empty());
    let (dump, _) = redis.dump_with_ttls();
    assert!(!dump.contains("pending:"), "{dump}");
    assert!(!dump.contains("evt_"), "no entry left: {dump}");
    let metrics = relay
        .http
        .get(format!("{}/metrics", relay.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "switchboard_events_given_up_total{tenant=\"acme\",type=\"message.received\"}"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn buffered_events_leave_no_text_phone_number_or_token_in_redis() {
    let redis = RedisServer::start();
    let crm = ScriptedCrm::start().await;
    let (relay, _worker) = relay_without_worker(Some(&redis.url()), &crm, "").await;
    crm.set(Mode::Fail);
    let convs = ["4915112345671", "4915112345672", "4915112345673"];
    for c in convs {
        let body = wa_webhook(WA_ACME, &[(c, 1), (c, 2)]);
        assert_eq!(relay.post_meta_status(&body).await, 200);
    }
    assert_eq!(relay.depth().await, 6);
    let (dump, ttls) = redis.dump_with_ttls();
    assert!(dump.contains("retry:{s"), "the buffer is in Redis: {dump}");
    assert!(dump.contains("gAAAAA"), "as Fernet tokens");
    for needle in [
        "secret text",
        "Sheena",
        "wa-token-secret",
        "wamid.",
        SIGNING_SECRET,
        &relay.vault_key,
    ] {
        assert!(!dump.contains(needle), "{needle} found in Redis:\n{dump}");
    }
    for c in convs {
        assert!(
            !dump.contains(c),
            "phone number {c} found in Redis:\n{dump}"
        );
    }
    // Everything but the channel records (the contract's public layout) expires.
    for (key, ttl) in ttls {
        if key.contains(":channel:") {
            continue;
        }
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
    // The payload opens with the vault key and holds the CRM body.
    let stream_or_zset = dump
        .lines()
        .find(|l| l.starts_with("{\"id\":\"evt_"))
        .expect("a delayed entry");
    let entry: switchboard::delivery::Entry = serde_json::from_str(stream_or_zset).unwrap();
    let sealed = entry.open(&relay.keyring).unwrap();
    assert!(sealed.body.contains("secret text"));
}

#[tokio::test]
async fn an_open_breaker_answers_a_failing_tenants_webhooks_without_waiting() {
    let redis = RedisServer::start();
    let crm = ScriptedCrm::start().await;
    let key = Keyring::generate_key();
    // Slow beyond the deadline: every direct attempt would cost the full 300 ms.
    crm.set_path(CRM_PATH, Mode::Slow(Duration::from_secs(5)));
    let relay = TestApp::builder()
        .delivering(
            Some(&redis.url()),
            &crm,
            300,
            "breaker_cooldown_ms = 60000\nworker = false",
        )
        .vault_key(&key)
        .spawn()
        .await;
    let mut took = Vec::new();
    for n in 1..=8 {
        let started = Instant::now();
        let body = wa_webhook(WA_ACME, &[(&format!("49151100000{n:02}"), 1)]);
        assert_eq!(relay.post_meta_status(&body).await, 200);
        took.push(started.elapsed());
    }
    assert!(took[0] >= Duration::from_millis(280), "{took:?}");
    for t in &took[3..] {
        assert!(
            *t < Duration::from_millis(150),
            "breaker open, yet {took:?}"
        );
    }
    assert_eq!(relay.depth().await, 8);
    // The other tenant is not affected.
    assert_eq!(
        relay
            .post_meta_status(&wa_webhook(WA_GLOBEX, &[("4915119999999", 1)]))
            .await,
        200
    );
    assert_eq!(crm.accepted_at(OTHER_CRM_PATH).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buffer_works_on_a_redis_cluster_with_one_slot_per_shard() {
    let cluster = RedisCluster::start(3);
    let app = TestApp::builder()
        .cluster(cluster.urls())
        .delivery_timeout_ms(500)
        .spawn()
        .await;
    let convs: Vec<String> = (1..=8).map(|i| format!("49151100000{i:02}")).collect();
    app.crm_fails(500, 3).await;
    for c in &convs {
        let resp = app.post_meta(&wa_webhook(WA_ACME, &[(c, 1), (c, 2)])).await;
        assert_eq!(resp.status(), 200);
    }
    // The shards' keys landed on more than one master.
    let nodes_with_retry_keys = cluster
        .ports
        .iter()
        .filter(|p| {
            let out = std::process::Command::new("redis-cli")
                .args([
                    "-p",
                    &p.to_string(),
                    "--scan",
                    "--pattern",
                    "switchboard:retry:*",
                ])
                .output()
                .unwrap();
            !out.stdout.is_empty()
        })
        .count();
    assert!(nodes_with_retry_keys >= 2, "{nodes_with_retry_keys}");
    // The first three conversations: #1 failed once directly, then #1 and #2 came from
    // the buffer; the others went straight through.
    let total = convs.len() * 2 + 3;
    let reqs = app.wait_for_crm(CRM_PATH, total).await;
    assert_eq!(reqs.len(), total);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let depth = app
            .state
            .dispatcher
            .buffer()
            .depths(&["acme".to_owned()])
            .await
            .unwrap();
        if depth[0].depth == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not drained: {depth:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bodies: Vec<serde_json::Value> = reqs
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    for c in &convs {
        let ns: Vec<u32> = bodies
            .iter()
            .map(conv_and_n)
            .filter(|(k, _)| k == c)
            .map(|(_, n)| n)
            .collect();
        let want = if convs[..3].contains(c) {
            vec![1, 1, 2]
        } else {
            vec![1, 2]
        };
        assert_eq!(ns, want, "{c}");
    }
}

#[tokio::test]
async fn the_memory_backend_buffers_and_its_worker_delivers_in_order() {
    let crm = ScriptedCrm::start().await;
    crm.set(Mode::Fail);
    let key = Keyring::generate_key();
    let relay = TestApp::builder()
        .delivering(None, &crm, 300, "")
        .vault_key(&key)
        .spawn()
        .await;
    let convs = ["4915110000001", "4915110000002", "4915110000003"];
    for n in [1, 3] {
        for c in convs {
            let body = wa_webhook(WA_ACME, &[(c, n), (c, n + 1)]);
            assert_eq!(relay.post_meta_status(&body).await, 200);
        }
    }
    assert_eq!(relay.depth().await, 12);
    crm.set(Mode::Ok);
    let got = crm
        .wait_accepted(CRM_PATH, 12, Duration::from_secs(20))
        .await;
    assert_eq!(got.len(), 12);
    assert!(relay.wait_drained(Duration::from_secs(5)).await);
    assert_eq!(assert_all_in_order(&got, &expected(&convs, 4)), 0);
}

#[tokio::test]
async fn a_foreign_stream_entry_is_given_up_and_consumers_of_gone_replicas_are_pruned() {
    let redis = RedisServer::start();
    let crm = ScriptedCrm::start().await;
    let (relay, worker) = relay_without_worker(Some(&redis.url()), &crm, "retry_shards = 1").await;
    let stream = "switchboard:retry:{s0}:stream";
    // Something other than the relay wrote to the stream: it can never be delivered.
    redis.cli(&["XADD", stream, "*", "foo", "bar"]);
    assert_eq!(worker.deliver_next().await.unwrap(), Outcome::Idle);
    assert_eq!(redis.cli(&["XLEN", stream]).trim(), "0");
    assert_eq!(redis.pending_entries(), 0);

    // A replica that read (and settled) an entry once, and is gone.
    let id = redis.cli(&["XADD", stream, "*", "foo", "bar"]);
    redis.cli(&[
        "XREADGROUP",
        "GROUP",
        "relay",
        "ghost",
        "COUNT",
        "1",
        "STREAMS",
        stream,
        ">",
    ]);
    redis.cli(&["XACK", stream, "relay", id.trim()]);
    redis.cli(&["XDEL", stream, id.trim()]);
    assert!(redis
        .cli(&["XINFO", "CONSUMERS", stream, "relay"])
        .contains("ghost"));
    let removed = relay
        .state
        .dispatcher
        .buffer()
        .prune_consumers(Duration::ZERO, worker.consumer())
        .await
        .unwrap();
    assert!(removed >= 1);
    let left = redis.cli(&["XINFO", "CONSUMERS", stream, "relay"]);
    assert!(!left.contains("ghost"), "{left}");
    assert!(
        left.contains("test-worker"),
        "the caller's own consumer stays: {left}"
    );
}

#[tokio::test]
async fn a_foreign_member_of_the_delay_set_is_dropped_and_never_stalls_the_shard() {
    let redis = RedisServer::start();
    let crm = ScriptedCrm::start().await;
    let (relay, worker) = relay_without_worker(Some(&redis.url()), &crm, "retry_shards = 1").await;
    let delayed = "switchboard:retry:{s0}:delayed";
    // Something other than the relay wrote to the delay set: not even JSON, and JSON
    // without the entry's fields.
    redis.cli(&["ZADD", delayed, "0", "not json"]);
    redis.cli(&["ZADD", delayed, "0", "{\"id\":7}"]);
    // A real event is buffered behind them.
    crm.set(Mode::Fail);
    assert_eq!(
        relay
            .post_meta_status(&wa_webhook(WA_ACME, &[("4915110000001", 1)]))
            .await,
        200
    );
    crm.set(Mode::Ok);
    step_until(&worker, Outcome::Delivered).await;
    assert_eq!(crm.accepted_at(CRM_PATH).len(), 1);
    assert_eq!(redis.cli(&["ZCARD", delayed]).trim(), "0");
}
