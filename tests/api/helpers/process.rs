//! The real `switchboard` binary as a child process, for tests that need one: signals
//! (SIGHUP reload, SIGTERM drain, SIGKILL crash), its memory, and a scan of everything
//! it printed. Its stdout and stderr go to files; it is killed on drop.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use switchboard::channels::ChannelKind;
use switchboard::store::Store;

use super::app::{post_meta_to, Peers};
use super::channels::{put_channel_into, NewChannel};

/// The binary on a config file, with `RUST_LOG` set and its output in files.
pub struct Binary {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    pub child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Binary {
    /// Starts `switchboard --config <config> serve` (which binds `port`), its output in
    /// `dir`, and waits until `/readyz` answers 200 (deadline 30 s).
    pub async fn start(dir: &Path, config: &Path, port: u16, rust_log: &str) -> Self {
        Self::start_with_env(dir, config, port, rust_log, &[]).await
    }

    /// [`Self::start`] with more environment variables (e.g. `SSL_CERT_FILE`).
    pub async fn start_with_env(
        dir: &Path,
        config: &Path,
        port: u16,
        rust_log: &str,
        env: &[(&str, &Path)],
    ) -> Self {
        let out = dir.join("stdout.log");
        let err = dir.join("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .envs(env.iter().copied())
            .env("RUST_LOG", rust_log)
            .env_remove("SWITCHBOARD_CONFIG")
            .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&err).unwrap()))
            .spawn()
            .expect("the switchboard binary");
        let binary = Self {
            address: format!("http://127.0.0.1:{port}"),
            child,
            out,
            err,
        };
        let http = super::test_client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(binary.url("/readyz")).send().await {
                if r.status().is_success() {
                    return binary;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the relay did not become ready:\n{}",
                binary.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Everything the process printed so far.
    pub fn logs(&self) -> String {
        let mut s = std::fs::read_to_string(&self.out).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(&self.err).unwrap_or_default());
        s
    }

    /// Polls until the logs hold `needle` at least `count` times (deadline 15 s).
    pub async fn wait_for_log(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.logs().matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "no {count}× {needle:?} in the logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([name, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {name}");
    }

    /// Sends SIGHUP (config reload).
    pub fn hup(&self) {
        self.signal("-HUP");
    }

    /// SIGTERM, then waits (up to `within`) for the exit status.
    pub async fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        self.signal("-TERM");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: gone at once, like a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Resident memory in kB (Linux).
    pub fn rss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The binary of a [`super::TestAppBuilder`]: its peers and a client of its store.
pub struct RelayProcess {
    pub binary: Binary,
    /// The peers, the config and its file (rewrite it, then [`Binary::hup`]).
    pub peers: Peers,
    /// A client of the same store, as another replica would be.
    pub store: Store,
}

impl Deref for RelayProcess {
    type Target = Binary;

    fn deref(&self) -> &Binary {
        &self.binary
    }
}

impl DerefMut for RelayProcess {
    fn deref_mut(&mut self) -> &mut Binary {
        &mut self.binary
    }
}

impl RelayProcess {
    /// Starts the binary on the peers' config file, `RUST_LOG` at its log level.
    pub(super) async fn start(peers: Peers, store: Store) -> Self {
        let binary = Binary::start(
            peers.dir.path(),
            &peers.config_path,
            peers.config.port,
            &peers.config.log_level,
        )
        .await;
        Self {
            binary,
            peers,
            store,
        }
    }

    pub fn redis(&self) -> &super::RedisServer {
        self.peers
            .redis
            .as_ref()
            .expect("this relay has no redis of its own")
    }

    /// Stores a channel through the shared store, as an operator would.
    pub async fn put(&self, kind: ChannelKind, id: &str, new: &NewChannel<'_>) {
        put_channel_into(&self.store, &self.peers.keyring, kind, id, new).await;
    }

    /// POSTs a signed Meta webhook; the status (0 when the request itself failed).
    pub async fn post_meta_status(&self, body: &[u8]) -> u16 {
        status_or_zero(post_meta_to(&self.peers.http, &self.url("/webhooks/meta"), body).await)
    }
}

/// A response's status, or 0 when the request failed (connection refused, timeout).
pub fn status_or_zero(r: reqwest::Result<reqwest::Response>) -> u16 {
    r.map(|r| r.status().as_u16()).unwrap_or(0)
}

/// Runs the CLI with `stdin`; returns (success, stdout + stderr).
pub fn run_cli(config: &Path, args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "trace")
        .env_remove("SWITCHBOARD_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}
