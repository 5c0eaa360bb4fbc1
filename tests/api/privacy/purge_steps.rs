//! Purges in bounded steps: a backlog many times one step is purged whole, by many
//! short script calls instead of one long one, on one server and on a Cluster.

use switchboard::delivery::buffer::{shard_of, Entry, ReadSlot, RedisBuffer, RetryBuffer};
use switchboard::store::redis::RedisStore;
use switchboard::store::Keys;

use super::*;

const STEP: usize = 16;

/// Script calls (EVAL and EVALSHA) the servers on `ports` have run.
fn script_calls(ports: &[u16]) -> u64 {
    ports
        .iter()
        .map(|p| {
            redis_cli(*p, &["INFO", "commandstats"])
                .lines()
                .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
                .filter_map(|l| {
                    l.split("calls=")
                        .nth(1)?
                        .split(',')
                        .next()?
                        .parse::<u64>()
                        .ok()
                })
                .sum::<u64>()
        })
        .sum()
}

async fn purge_a_backlog_in_steps(store: RedisStore, ports: &[u16], dump: impl Fn() -> String) {
    let buffer = RetryBuffer::Redis(
        RedisBuffer::new(store, 2, Duration::from_secs(30)).with_purge_step(STEP),
    );
    let ttl = Duration::from_secs(600);
    buffer.prepare(ttl).await.unwrap();
    let now = switchboard::time::now_ms();
    let entry = |id: String, channel: &str, conv: String, due: i64| Entry {
        id,
        tenant: "acme".into(),
        channel: channel.into(),
        conv,
        attempts: 1,
        due,
        first: now - 1000,
        payload: "gAAAAAciphertext".into(),
    };
    let mut pushes = Vec::new();
    // Channel A: 300 waiting (more than a zset keeps in one listpack), 60 due now,
    // 5 conversations of a head and two parked, one of a head and 40 parked; channel B:
    // 20 due now, 20 waiting.
    for i in 0..300 {
        pushes.push(entry(
            format!("evt_aw{i}"),
            "whatsapp:A",
            String::new(),
            now + 60_000,
        ));
    }
    for i in 0..60 {
        pushes.push(entry(
            format!("evt_ad{i}"),
            "whatsapp:A",
            String::new(),
            now - 1000,
        ));
    }
    for c in 0..5 {
        for n in 0..3 {
            pushes.push(entry(
                format!("evt_ac{c}_{n}"),
                "whatsapp:A",
                format!("convA{c}"),
                now - 1000,
            ));
        }
    }
    // One conversation parks far more than a step behind its head.
    for n in 0..41 {
        pushes.push(entry(
            format!("evt_abig{n}"),
            "whatsapp:A",
            "convAbig".into(),
            now - 1000,
        ));
    }
    for i in 0..20 {
        pushes.push(entry(
            format!("evt_bd{i}"),
            "whatsapp:B",
            String::new(),
            now - 1000,
        ));
        pushes.push(entry(
            format!("evt_bw{i}"),
            "whatsapp:B",
            String::new(),
            now + 60_000,
        ));
    }
    for e in &pushes {
        buffer.push(e, true, ttl, 0).await.unwrap();
    }
    // Due entries move into the streams; one per shard is held in flight.
    for shard in 0..buffer.shards() {
        let mut slot = ReadSlot::default();
        buffer
            .take(shard, "w1", Duration::ZERO, ttl, &mut slot)
            .await
            .unwrap();
    }

    let before = script_calls(ports);
    let removed = buffer.purge_channel("whatsapp:A", &[]).await.unwrap();
    let calls = script_calls(ports) - before;
    assert_eq!(removed, 300 + 60 + 15 + 41);
    assert!(
        calls as usize >= (300 + 60) / STEP,
        "{calls} script calls: the purge was not done in steps of {STEP}"
    );
    let left = dump();
    assert!(!left.contains("evt_a"), "channel A left:\n{left}");
    assert!(!left.contains("convA"), "a conversation of A left");
    let depth = buffer.depths(&["acme".to_owned()]).await.unwrap();
    assert_eq!(depth[0].depth, 40, "{depth:?}");

    // One event found in a later step, in the zset and in the stream.
    for id in ["evt_bw17", "evt_bd19"] {
        let shard = shard_of(id, buffer.shards());
        let before = script_calls(ports);
        assert!(
            buffer.purge_event(shard, id, "", ttl).await.unwrap(),
            "{id}"
        );
        assert!(script_calls(ports) > before);
        assert!(!dump().contains(id), "{id} left");
    }
    assert!(!buffer.purge_event(0, "evt_nowhere", "", ttl).await.unwrap());
    let depth = buffer.depths(&["acme".to_owned()]).await.unwrap();
    assert_eq!(depth[0].depth, 38, "{depth:?}");
}

#[tokio::test]
async fn a_purge_larger_than_one_step_runs_in_steps_on_one_server() {
    let redis = RedisServer::start();
    let store = RedisStore::new(
        Keys::new("purgesteps:"),
        &SecretString::from(redis.url()),
        &[],
        Duration::from_secs(2),
    )
    .unwrap();
    let port: u16 = redis
        .url()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();
    purge_a_backlog_in_steps(store, &[port], || redis.dump_all()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_larger_than_one_step_runs_in_steps_on_a_cluster() {
    let cluster = RedisCluster::start(3);
    let nodes: Vec<SecretString> = cluster.urls().into_iter().map(SecretString::from).collect();
    let store = RedisStore::new(
        Keys::new("purgesteps:"),
        &SecretString::from(String::new()),
        &nodes,
        Duration::from_secs(2),
    )
    .unwrap();
    let ports = cluster.ports.clone();
    let dump = || {
        ports
            .iter()
            .map(|p| {
                let keys = redis_cli(*p, &["KEYS", "*"]);
                let mut out = keys.clone();
                for k in keys.lines().filter(|k| !k.is_empty()) {
                    let t = redis_cli(*p, &["TYPE", k]);
                    let v = match t.trim() {
                        "zset" => redis_cli(*p, &["ZRANGE", k, "0", "-1"]),
                        "stream" => redis_cli(*p, &["XRANGE", k, "-", "+"]),
                        "list" => redis_cli(*p, &["LRANGE", k, "0", "-1"]),
                        "string" => redis_cli(*p, &["GET", k]),
                        _ => String::new(),
                    };
                    out.push_str(&v);
                }
                out
            })
            .collect::<String>()
    };
    purge_a_backlog_in_steps(store, &cluster.ports, dump).await;
}
