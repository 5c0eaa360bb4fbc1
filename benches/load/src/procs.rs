//! The processes of a run, each pinned with `taskset` and killed when dropped; the
//! scratch directory (configs, logs) is removed at the end.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A child process; killed (and reaped) on drop.
pub struct Proc {
    pub name: &'static str,
    child: Child,
}

impl Proc {
    /// Starts `program args` on `cpus` (a `taskset -c` list), output into `log`.
    pub fn pinned(
        name: &'static str,
        cpus: &str,
        program: &Path,
        args: &[&str],
        log: &Path,
    ) -> anyhow::Result<Self> {
        let out = std::fs::File::create(log)?;
        let child = Command::new("taskset")
            .arg("-c")
            .arg(cpus)
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        Ok(Self { name, child })
    }

    /// taskset execs the program, so this is the program's own pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak and current resident set size, in KiB (VmHWM, VmRSS).
    pub fn rss_kib(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    /// Fails when the process has already exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            Some(status) => anyhow::bail!("{} exited: {status}", self.name),
            None => Ok(()),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The run's scratch directory; removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("switchboard-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Waits until `addr` accepts connections.
pub fn wait_listening(addr: SocketAddr, what: &str, proc: &mut Proc) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        proc.check_alive()?;
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("{what} did not listen on {addr} within 20 s")
}

/// Whether `program` is on PATH (or in /usr/sbin, where nginx lives).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// nginx as the CRM and Graph API: one process (no master), 204 to the CRM's path and
/// WhatsApp's send answer to `…/messages`, keep-alive without a request limit.
pub fn nginx_config(dir: &Path, port: u16, graph_answer: &str) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx.err warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  client_body_buffer_size 64k;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  server {{
    listen 127.0.0.1:{port};
    location ~ /messages$ {{ default_type application/json; return 200 '{graph_answer}'; }}
    location / {{ return 204; }}
  }}
}}
"#
    )
}
