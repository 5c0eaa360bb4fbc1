//! The Redis store's connection for the hot path (one server over plain TCP): it
//! authenticates and selects the URL's database, keeps many commands' replies apart,
//! survives callers that give up, sends dedupe marks ahead of what follows without
//! waiting for them, and fails within the store's deadline when Redis stops answering,
//! then connects again.

use std::time::{Duration, Instant};

use futures_util::FutureExt;
use secrecy::SecretString;
use switchboard::store::redis::RedisStore;
use switchboard::store::{Keys, StoreBackend};

use crate::helpers::*;

fn store_at(url: String, timeout: Duration) -> RedisStore {
    RedisStore::new(Keys::new("conn:"), &SecretString::from(url), &[], timeout).unwrap()
}

#[tokio::test]
async fn the_hot_path_authenticates_and_uses_the_urls_database() {
    let redis = RedisServer::start_requiring("s3cret-pw");
    let url = format!("redis://:s3cret-pw@127.0.0.1:{}/3", redis.port);
    let app = TestApp::builder().redis_url(url).spawn().await;
    let body = wa_webhook(WA_ACME, &[("4915110000061", 1)]);
    let v: serde_json::Value = app.post_meta(&body).await.json().await.unwrap();
    assert_eq!(v["delivered"], 1, "{v}");
    let seen = |db: &str| {
        redis
            .cli(&["-n", db, "--scan", "--pattern", "switchboard:dedupe:*"])
            .lines()
            .filter(|l| !l.is_empty())
            .count()
    };
    assert_eq!(seen("3"), 1, "marked seen in database 3");
    assert_eq!(seen("0"), 0, "nothing in database 0");
    let v: serde_json::Value = app.post_meta(&body).await.json().await.unwrap();
    assert_eq!(
        v["duplicates"], 1,
        "the redelivery is read from database 3: {v}"
    );
    assert_eq!(app.crm_requests().await.len(), 1);
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_the_servers_reason_and_not_the_password() {
    let redis = RedisServer::start_requiring("right-pw");
    let store = store_at(
        format!("redis://:wrong-pw@127.0.0.1:{}", redis.port),
        Duration::from_secs(2),
    );
    let err = store.mget(&["conn:a"]).await.unwrap_err().to_string();
    assert!(err.contains("AUTH"), "{err}");
    assert!(
        !err.contains("wrong-pw") && !err.contains("right-pw"),
        "{err}"
    );
    let err = store
        .set_ex("conn:a", "1", Duration::from_secs(60))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("AUTH"), "{err}");
    // Each refused attempt closes its connection: none piles up.
    for _ in 0..20 {
        assert!(store.mget(&["conn:a"]).await.is_err());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = redis.cli(&["INFO", "clients"]);
        let clients: u32 = info
            .lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap();
        // redis-cli itself is one.
        if clients <= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{clients} connections left open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn many_commands_at_once_each_get_their_own_reply() {
    let redis = RedisServer::start();
    let store = store_at(redis.url(), Duration::from_secs(2));
    let writes = (0..300).map(|i| {
        let store = store.clone();
        async move {
            store
                .set_ex(
                    &format!("conn:k{i}"),
                    &format!("v{i}"),
                    Duration::from_secs(60),
                )
                .await
        }
    });
    for r in futures_util::future::join_all(writes).await {
        r.unwrap();
    }
    let reads = (0..300).map(|i| {
        let store = store.clone();
        async move {
            let (a, b) = (format!("conn:k{i}"), format!("conn:absent{i}"));
            (i, store.mget(&[&a, &b]).await.unwrap())
        }
    });
    for (i, values) in futures_util::future::join_all(reads).await {
        assert_eq!(values, vec![Some(format!("v{i}").into_bytes()), None]);
    }
    assert_eq!(
        redis.cli(&["PTTL", "conn:k7"]).trim().len(),
        5,
        "a TTL in ms"
    );
}

#[tokio::test]
async fn a_caller_that_gives_up_does_not_shift_the_next_callers_reply() {
    let redis = RedisServer::start();
    let store = store_at(redis.url(), Duration::from_secs(2));
    store
        .set_ex("conn:x", "x", Duration::from_secs(60))
        .await
        .unwrap();
    store
        .set_ex("conn:y", "y", Duration::from_secs(60))
        .await
        .unwrap();
    for _ in 0..50 {
        // Polled once (sent), then dropped before its reply can have come.
        let gave_up = store.mget(&["conn:x"]).now_or_never();
        assert!(gave_up.is_none(), "no reply without a wait");
        let got = store.mget(&["conn:y"]).await.unwrap();
        assert_eq!(got, vec![Some(b"y".to_vec())]);
    }
}

#[tokio::test]
async fn a_frozen_redis_fails_commands_within_the_deadline_then_a_new_connection_works() {
    let redis = RedisServer::start();
    let store = store_at(redis.url(), Duration::from_millis(500));
    store.mget(&["conn:a"]).await.unwrap();
    redis.pause();
    let started = Instant::now();
    let err = store.mget(&["conn:a"]).await.unwrap_err().to_string();
    let waited = started.elapsed();
    redis.resume();
    assert!(err.contains("timeout_ms"), "{err}");
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(5),
        "failed after the deadline, not before and not never: {waited:?}"
    );
    store
        .set_ex("conn:a", "back", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        store.mget(&["conn:a"]).await.unwrap(),
        vec![Some(b"back".to_vec())]
    );
}

#[tokio::test]
async fn a_webhook_while_redis_is_frozen_is_a_503_and_the_next_one_is_delivered() {
    let app = spawn_app().await;
    let first = wa_webhook(WA_ACME, &[("4915110000071", 1)]);
    let v: serde_json::Value = app.post_meta(&first).await.json().await.unwrap();
    assert_eq!(v["delivered"], 1, "{v}");
    app.redis().pause();
    let second = wa_webhook(WA_ACME, &[("4915110000072", 1)]);
    let (status, v) = status_and_problem(app.post_meta(&second).await).await;
    app.redis().resume();
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["code"], "upstream_unavailable");
    assert_eq!(app.crm_requests().await.len(), 1, "nothing reached the CRM");
    let v: serde_json::Value = app.post_meta(&second).await.json().await.unwrap();
    assert_eq!(v["delivered"], 1, "Meta's redelivery goes through: {v}");
}

#[tokio::test]
async fn marks_sent_without_waiting_are_read_back_by_the_next_command() {
    let redis = RedisServer::start();
    let store = store_at(redis.url(), Duration::from_secs(2));
    let one = vec!["conn:dedupe:a".to_owned()];
    let three: Vec<String> = (0..3).map(|i| format!("conn:dedupe:b{i}")).collect();
    store
        .send_ex_all(&one, "1", Duration::from_secs(600))
        .await
        .unwrap();
    store
        .send_ex_all(&three, "1", Duration::from_secs(600))
        .await
        .unwrap();
    // The same thread's next command goes out after them on the same connection.
    let got = store
        .mget(&[
            "conn:dedupe:a",
            "conn:dedupe:b0",
            "conn:dedupe:b2",
            "conn:other",
        ])
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            Some(b"1".to_vec()),
            Some(b"1".to_vec()),
            Some(b"1".to_vec()),
            None
        ]
    );
    let ttl: i64 = redis
        .cli(&["PTTL", "conn:dedupe:b1"])
        .trim()
        .parse()
        .unwrap();
    assert!(ttl > 590_000, "the window is the TTL: {ttl}");
}
