//! At-least-once across replicas and outages: a replica SIGKILLed while it holds
//! buffered events, Redis restarted under load, and a graceful stop in mid-delivery.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard::vault::Keyring;

use crate::helpers::*;

/// An event `(conversation, n)` and the status its webhook got.
type Answered = ((String, u32), u16);

/// Polls `f` until it holds (deadline `within`).
async fn wait_until(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_while_holding_buffered_events_leaves_them_to_the_other() {
    let redis = RedisServer::start();
    let crm = ScriptedCrm::start().await;
    // The CRM hangs past the deadline, then fails: attempts are in flight for 400 ms.
    crm.set(Mode::Hang(Duration::from_secs(2)));
    let key = Keyring::generate_key();
    let delivery = "breaker_failures = 100000\nworker_concurrency = 8";
    let mut a = TestApp::builder()
        .delivering(Some(&redis.url()), &crm, 400, delivery)
        .vault_key(&key)
        .log_level("warn")
        .spawn_process()
        .await;

    let convs = [
        "4915110000001",
        "4915110000002",
        "4915110000003",
        "4915110000004",
    ];
    let per_conv = 4u32;
    let http = a.peers.http.clone();
    let url = a.url("/webhooks/meta");
    let posts = convs.iter().map(|c| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            for n in 1..=per_conv {
                let body = wa_webhook(WA_ACME, &[(c, n)]);
                assert_eq!(
                    status_or_zero(post_meta_to(&http, &url, &body).await),
                    200,
                    "{c}#{n}"
                );
            }
        }
    });
    futures_util::future::join_all(posts).await;

    // Kill A while its worker holds entries (read, not yet acknowledged).
    wait_until(Duration::from_secs(10), "A holds entries", || {
        redis.pending_entries() > 0
    })
    .await;
    a.kill();
    let held = redis.pending_entries();
    assert!(held > 0, "the dead replica's entries are still pending");

    // B, on the same Redis, claims them after the visibility timeout.
    crm.set(Mode::Ok);
    let b = TestApp::builder()
        .delivering(Some(&redis.url()), &crm, 400, delivery)
        .vault_key(&key)
        .spawn()
        .await;
    let total = convs.len() * per_conv as usize;
    let got = crm
        .wait_accepted(CRM_PATH, total, Duration::from_secs(30))
        .await;
    assert_eq!(got.len(), total, "held {held}; delivered {}", got.len());
    assert!(b.wait_drained(Duration::from_secs(10)).await);
    assert_eq!(redis.pending_entries(), 0);
    let expected: Vec<(String, u32)> = convs
        .iter()
        .flat_map(|c| (1..=per_conv).map(move |n| (c.to_string(), n)))
        .collect();
    let dups = assert_all_in_order(&crm.accepted_at(CRM_PATH), &expected);
    assert_eq!(dups, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_under_load_means_503_while_away_and_no_200_is_lost() {
    let mut redis = RedisServer::start_persistent();
    let crm = ScriptedCrm::start().await;
    crm.set(Mode::Fail);
    let relay = Arc::new(
        TestApp::builder()
            .delivering(Some(&redis.url()), &crm, 300, "")
            .spawn()
            .await,
    );

    // Load: three conversations, one webhook at a time, each status recorded.
    let statuses: Arc<Mutex<Vec<Answered>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (relay, statuses, stop) = (relay.clone(), statuses.clone(), stop.clone());
        tokio::spawn(async move {
            let convs = ["4915110000001", "4915110000002", "4915110000003"];
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                for c in convs {
                    let status = relay
                        .post_meta_status(&wa_webhook(WA_ACME, &[(c, n)]))
                        .await;
                    statuses.lock().unwrap().push(((c.to_owned(), n), status));
                }
            }
        })
    };
    let count = |code: u16| {
        statuses
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| *s == code)
            .count()
    };
    wait_until(Duration::from_secs(20), "events buffered", || {
        count(200) >= 15
    })
    .await;
    redis.stop();
    wait_until(Duration::from_secs(20), "503s while Redis is away", || {
        count(503) >= 6
    })
    .await;
    let before_restart = statuses.lock().unwrap().len();
    redis.restart();
    crm.set(Mode::Ok);
    wait_until(Duration::from_secs(30), "200s again", || {
        statuses.lock().unwrap()[before_restart..]
            .iter()
            .filter(|(_, s)| *s == 200)
            .count()
            >= 15
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();

    let statuses = statuses.lock().unwrap().clone();
    assert!(
        statuses.iter().all(|(_, s)| *s == 200 || *s == 503),
        "only 200 or 503: {statuses:?}"
    );
    let accepted: Vec<(String, u32)> = statuses
        .iter()
        .filter(|(_, s)| *s == 200)
        .map(|(e, _)| e.clone())
        .collect();
    // Every event answered 200 reaches the CRM: the buffered ones survived the restart.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got: std::collections::HashSet<(String, u32)> = crm
            .accepted_at(CRM_PATH)
            .iter()
            .map(|r| conv_and_n(&r.body))
            .collect();
        let missing: Vec<_> = accepted.iter().filter(|e| !got.contains(e)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "answered 200 but lost: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(relay.wait_drained(Duration::from_secs(10)).await);
    // In order per conversation (first arrivals).
    let mut last: std::collections::HashMap<String, u32> = Default::default();
    let mut seen = std::collections::HashSet::new();
    for r in crm.accepted_at(CRM_PATH) {
        let (c, n) = conv_and_n(&r.body);
        if !seen.insert((c.clone(), n)) {
            continue;
        }
        let l = last.entry(c.clone()).or_insert(0);
        assert!(n > *l, "{c}: #{n} after #{l}");
        *l = n;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_settles_attempts_in_flight_and_loses_nothing() {
    let redis = RedisServer::start();
    let crm = ScriptedCrm::start().await;
    crm.set(Mode::Fail);
    let key = Keyring::generate_key();
    let delivery = "breaker_failures = 100000";
    let mut relay = TestApp::builder()
        .delivering(Some(&redis.url()), &crm, 1000, delivery)
        .vault_key(&key)
        .spawn()
        .await;
    let convs: Vec<String> = (1..=12).map(|i| format!("49151100000{i:02}")).collect();
    for c in &convs {
        assert_eq!(
            relay
                .post_meta_status(&wa_webhook(WA_ACME, &[(c, 1)]))
                .await,
            200
        );
    }
    // Slow but successful: the worker's attempts take 300 ms each.
    crm.set(Mode::Slow(Duration::from_millis(300)));
    wait_until(Duration::from_secs(10), "attempts in flight", || {
        redis.pending_entries() > 0
    })
    .await;
    let started = Instant::now();
    relay.stop().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "stopped in {took:?}");
    // Nothing is left held by the stopped replica, and nothing is lost: each event was
    // delivered or is back in the buffer.
    assert_eq!(redis.pending_entries(), 0);
    let accepted = crm.accepted_at(CRM_PATH);
    let (dump, _) = redis.dump_with_ttls();
    let buffered = buffered_convs(&dump, &relay.keyring);
    for c in &convs {
        let delivered = accepted.iter().any(|r| conv_and_n(&r.body).0 == *c);
        assert!(
            delivered || buffered.contains(c),
            "{c} neither delivered nor buffered"
        );
    }
    assert_eq!(
        accepted.len() + buffered.len(),
        convs.len(),
        "nothing delivered is still buffered (no needless duplicate)"
    );

    crm.set(Mode::Ok);
    let next = TestApp::builder()
        .delivering(Some(&redis.url()), &crm, 1000, delivery)
        .vault_key(&key)
        .spawn()
        .await;
    crm.wait_accepted(CRM_PATH, convs.len(), Duration::from_secs(20))
        .await;
    assert!(next.wait_drained(Duration::from_secs(10)).await);
    let expected: Vec<(String, u32)> = convs.iter().map(|c| (c.clone(), 1)).collect();
    assert_eq!(
        assert_all_in_order(&crm.accepted_at(CRM_PATH), &expected),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_binary_after_its_attempts_in_flight_settle() {
    let redis = RedisServer::start();
    let crm = ScriptedCrm::start().await;
    crm.set(Mode::Fail);
    let mut relay = TestApp::builder()
        .delivering(Some(&redis.url()), &crm, 1000, "breaker_failures = 100000")
        .log_level("warn")
        .spawn_process()
        .await;
    let convs: Vec<String> = (1..=12).map(|i| format!("49151100000{i:02}")).collect();
    for c in &convs {
        let body = wa_webhook(WA_ACME, &[(c, 1)]);
        assert_eq!(relay.post_meta_status(&body).await, 200);
    }
    crm.set(Mode::Slow(Duration::from_millis(300)));
    wait_until(Duration::from_secs(10), "attempts in flight", || {
        redis.pending_entries() > 0
    })
    .await;
    let status = relay.terminate(Duration::from_secs(10)).await;
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");
    assert_eq!(redis.pending_entries(), 0, "nothing left in flight");
    let accepted = crm.accepted_at(CRM_PATH);
    let (dump, _) = redis.dump_with_ttls();
    let buffered = buffered_convs(&dump, &relay.peers.keyring);
    for c in &convs {
        let delivered = accepted.iter().any(|r| conv_and_n(&r.body).0 == *c);
        assert!(delivered || buffered.contains(c), "{c} lost");
    }
}

/// The conversations of the events the buffer holds, read from a Redis dump by opening
/// every entry's ciphertext with the vault key.
fn buffered_convs(dump: &str, keyring: &Keyring) -> std::collections::HashSet<String> {
    dump.lines()
        .filter_map(|l| {
            if l.starts_with("{\"id\":\"evt_") {
                serde_json::from_str::<switchboard::delivery::Entry>(l)
                    .ok()
                    .map(|e| e.payload)
            } else if l.starts_with("gAAAA") {
                Some(l.to_owned())
            } else {
                None
            }
        })
        .filter_map(|p| keyring.decrypt(&p).ok())
        .filter_map(|plain| serde_json::from_slice::<switchboard::delivery::Sealed>(&plain).ok())
        .filter_map(|s| serde_json::from_str::<serde_json::Value>(&s.body).ok())
        .map(|body| conv_and_n(&body).0)
        .collect()
}
