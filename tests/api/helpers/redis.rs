//! Real `redis-server` processes for the tests: one server on a free loopback port
//! (in memory, or with an append-only file that survives a restart), and a three-master
//! Redis Cluster. Each is killed on drop; `redis-cli` reads what they hold.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// Starts `redis-server` on `port` with its files in `dir`, plus `extra` arguments.
fn spawn_redis(port: u16, dir: &Path, extra: &[&str]) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--dir", dir.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (apt-get install redis-server)")
}

/// Runs `redis-cli --raw` against the server on `port`; its stdout ("" if it failed).
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string(), "--raw"])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Polls `redis-cli args` on `port` until `ok` holds for its output (deadline 20 s).
fn wait_until(port: u16, args: &[&str], ok: impl Fn(&str) -> bool) {
    wait_until_with(|| redis_cli(port, args), port, ok)
}

fn wait_until_with(cli: impl Fn() -> String, port: u16, ok: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = cli();
        if ok(&out) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redis-server on port {port} not ready: {out}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A real `redis-server` on a free loopback port.
pub struct RedisServer {
    pub port: u16,
    /// Whether it keeps an append-only file (fsync always), so a restart keeps what it
    /// acknowledged: the production setup the retry buffer expects.
    persistent: bool,
    /// `requirepass`, when it has one (`redis-cli` then authenticates).
    password: Option<String>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// A server with no persistence: a restart comes back empty.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// A server with an append-only file (fsync always): a restart keeps its data.
    pub fn start_persistent() -> Self {
        Self::start_with(true)
    }

    /// A server with no persistence that requires `password` (`requirepass`).
    pub fn start_requiring(password: &str) -> Self {
        let mut s = Self {
            port: free_port(),
            persistent: false,
            password: Some(password.to_owned()),
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        s.spawn();
        s
    }

    fn start_with(persistent: bool) -> Self {
        let mut s = Self {
            port: free_port(),
            persistent,
            password: None,
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut extra: Vec<&str> = if self.persistent {
            vec!["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            vec!["--appendonly", "no"]
        };
        if let Some(p) = &self.password {
            extra.extend(["--requirepass", p]);
        }
        self.child = Some(spawn_redis(self.port, self.dir.path(), &extra));
        wait_until_with(
            || self.cli(&["PING"]),
            self.port,
            |out| out.trim() == "PONG",
        );
    }

    /// Freezes the server (SIGSTOP): its connections stay open and nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let ok = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(ok.success(), "kill {sig} {pid}");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs `redis-cli` against this server (authenticated where it needs it).
    pub fn cli(&self, args: &[&str]) -> String {
        match &self.password {
            Some(p) => {
                let mut all = vec!["--no-auth-warning", "-a", p.as_str()];
                all.extend_from_slice(args);
                redis_cli(self.port, &all)
            }
            None => redis_cli(self.port, args),
        }
    }

    /// Stops the server with SIGKILL (as if it crashed).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port: empty, or from its append-only file.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Every key and its value (strings, hashes, streams, ...), for privacy scans.
    pub fn dump_all(&self) -> String {
        let mut out = String::new();
        for key in self.keys() {
            out.push_str(&key);
            out.push('\n');
            out.push_str(&self.value(&key));
        }
        out
    }

    /// [`Self::dump_all`], and every key's PTTL (-1: none, -9: unreadable).
    pub fn dump_with_ttls(&self) -> (String, Vec<(String, i64)>) {
        let ttls = self
            .keys()
            .into_iter()
            .map(|key| {
                let ttl = self.cli(&["PTTL", &key]).trim().parse().unwrap_or(-9);
                (key, ttl)
            })
            .collect();
        (self.dump_all(), ttls)
    }

    /// The value of `key`, whatever its type, as `redis-cli --raw` prints it.
    fn value(&self, key: &str) -> String {
        match self.cli(&["TYPE", key]).trim() {
            "string" => self.cli(&["GET", key]),
            "hash" => self.cli(&["HGETALL", key]),
            "stream" => self.cli(&["XRANGE", key, "-", "+"]),
            "zset" => self.cli(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
            "set" => self.cli(&["SMEMBERS", key]),
            "list" => self.cli(&["LRANGE", key, "0", "-1"]),
            _ => String::new(),
        }
    }

    /// Every key (SCAN).
    pub fn keys(&self) -> Vec<String> {
        self.cli(&["--scan"])
            .lines()
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The number of entries in the pending lists of every retry stream.
    pub fn pending_entries(&self) -> u64 {
        self.cli(&["--scan", "--pattern", "switchboard:retry:*:stream"])
            .lines()
            .filter(|k| !k.is_empty())
            .map(|k| {
                self.cli(&["XPENDING", k, "relay"])
                    .lines()
                    .next()
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .sum()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis Cluster: `n` local `redis-server` masters joined with
/// `redis-cli --cluster create`.
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
                let conf = format!("nodes-{p}.conf");
                let args = [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &conf,
                    "--cluster-node-timeout",
                    "5000",
                    "--appendonly",
                    "no",
                ];
                spawn_redis(*p, dir.path(), &args)
            })
            .collect();
        let cluster = Self {
            ports,
            children,
            _dir: dir,
        };
        for p in &cluster.ports {
            wait_until(*p, &["PING"], |out| out.trim() == "PONG");
        }
        let addrs: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("redis-cli")
                .args(["--cluster", "create"])
                .args(&addrs)
                .arg("--cluster-yes")
                .output()
                .unwrap();
            if out.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "redis-cli --cluster create failed"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        for p in &cluster.ports {
            wait_until(*p, &["CLUSTER", "INFO"], |out| {
                out.contains("cluster_state:ok")
            });
        }
        cluster
    }

    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// How many keys each node holds.
    pub fn count_keys_per_node(&self) -> Vec<usize> {
        self.ports
            .iter()
            .map(|p| redis_cli(*p, &["DBSIZE"]).trim().parse().unwrap_or(0))
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
