//! The relay on a real Redis Cluster: three local `redis-server` masters joined with
//! `redis-cli --cluster create`. Keys land on different slots and nodes; routing, dedupe
//! and channel listing (SCAN on every master) must still work.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::store::StoreBackend;

use crate::helpers::*;

pub struct RedisCluster {
    pub ports: Vec<u16>,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

/// A free port whose cluster bus port (+10000) is valid too.
fn cluster_port() -> u16 {
    loop {
        let p = free_port();
        if p < 55_000 {
            return p;
        }
    }
}

impl RedisCluster {
    pub fn start(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..n).map(|_| cluster_port()).collect();
        let children = ports
            .iter()
            .map(|p| {
                Command::new("redis-server")
                    .args([
                        "--port",
                        &p.to_string(),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &format!("nodes-{p}.conf"),
                        "--cluster-node-timeout",
                        "5000",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        dir.path().to_str().unwrap(),
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server")
            })
            .collect();
        let cluster = Self {
            ports,
            children,
            _dir: dir,
        };
        for p in &cluster.ports {
            cluster.wait(*p, |out| out.trim() == "PONG", &["PING"]);
        }
        let addrs: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let mut created = false;
        for _ in 0..5 {
            let out = Command::new("redis-cli")
                .args(["--cluster", "create"])
                .args(&addrs)
                .arg("--cluster-yes")
                .output()
                .unwrap();
            if out.status.success() {
                created = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(created, "redis-cli --cluster create failed");
        for p in &cluster.ports {
            cluster.wait(
                *p,
                |out| out.contains("cluster_state:ok"),
                &["CLUSTER", "INFO"],
            );
        }
        cluster
    }

    fn wait(&self, port: u16, ok: impl Fn(&str) -> bool, args: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new("redis-cli")
                .args(["-p", &port.to_string()])
                .args(args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            if ok(&out) {
                return;
            }
            assert!(Instant::now() < deadline, "node {port} not ready: {out}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// Which node holds `key` (by asking for its slot's owner).
    pub fn count_keys_per_node(&self) -> Vec<usize> {
        self.ports
            .iter()
            .map(|p| {
                let out = Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "DBSIZE"])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .unwrap_or(0)
            })
            .collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_on_a_redis_cluster_routes_dedupes_and_lists_channels_across_nodes() {
    let cluster = RedisCluster::start(3);
    let app = spawn_app_with(TestOptions {
        redis: false,
        cluster_nodes: cluster.urls(),
        ..Default::default()
    })
    .await;

    // Many channels, so their keys spread over the three masters.
    for i in 0..30 {
        app.put_channel(ChannelKind::Messenger, &format!("90000{i}"), "acme", "t")
            .await;
    }
    let per_node = cluster.count_keys_per_node();
    assert!(
        per_node.iter().filter(|n| **n > 0).count() >= 2,
        "keys should spread over several nodes: {per_node:?}"
    );
    let listed = app.state.store.list_channels().await.unwrap();
    assert_eq!(
        listed.len(),
        30 + WHATSAPP_FIXTURE_CHANNELS.len(),
        "SCAN must visit every master"
    );
    assert!(listed
        .iter()
        .any(|(c, _)| *c == ChannelRef::new(ChannelKind::Messenger, "9000029")));

    // Webhooks route through the cluster store and dedupe there.
    for name in [
        "whatsapp/text.json",
        "whatsapp/location.json",
        "whatsapp/status_sent.json",
    ] {
        for _ in 0..2 {
            let resp = app.post_meta(&fixture(name)).await;
            assert_eq!(resp.status(), 200, "{name}");
        }
    }
    let events = app.crm_events().await;
    assert_eq!(
        events.len(),
        3,
        "each event once: dedupe works on the cluster"
    );
    assert_eq!(
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
