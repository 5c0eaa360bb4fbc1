//! A scripted CRM for the delivery tests: a small HTTP/1.1 server on a fixed loopback
//! port that can be switched between 200, 500, `Retry-After`, slow, hanging, closed
//! (connections dropped) and down (port closed), which wiremock cannot do, and that
//! records every request in the order it answered them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::free_port;
use super::signing::Delivered;

/// How the CRM answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok,
    Fail,
    /// 503 with `Retry-After: n` seconds.
    RetryAfter(u64),
    /// Answers 200 after this long.
    Slow(Duration),
    /// Answers 500 after this long (a CRM that hangs, then fails).
    Hang(Duration),
    /// Accepts connections and drops them without an answer.
    Closed,
}

/// One request the CRM received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub webhook_id: String,
    pub body: Value,
    pub raw: Vec<u8>,
    pub headers: HashMap<String, String>,
    pub accepted: bool,
}

#[derive(Default)]
struct CrmState {
    modes: HashMap<String, Mode>,
    default: Option<Mode>,
    received: Vec<Received>,
}

/// A small HTTP/1.1 CRM on a fixed loopback port; [`ScriptedCrm::down`] closes the port and
/// [`ScriptedCrm::up`] opens it again.
pub struct ScriptedCrm {
    pub port: u16,
    state: Arc<Mutex<CrmState>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl ScriptedCrm {
    pub async fn start() -> Self {
        let mut crm = Self {
            port: free_port(),
            state: Arc::new(Mutex::new(CrmState::default())),
            server: None,
        };
        crm.up().await;
        crm
    }

    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sets the mode of every path.
    pub fn set(&self, mode: Mode) {
        let mut s = self.state.lock().unwrap();
        s.modes.clear();
        s.default = Some(mode);
    }

    /// Sets the mode of one path (one tenant).
    pub fn set_path(&self, path: &str, mode: Mode) {
        self.state.lock().unwrap().modes.insert(path.into(), mode);
    }

    pub async fn up(&mut self) {
        if self.server.is_some() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("CRM port {}: {e}", self.port),
            }
        };
        let state = self.state.clone();
        self.server = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                conns.spawn(serve(stream, state.clone()));
                while conns.try_join_next().is_some() {}
            }
        }));
    }

    /// Closes the port (connections refused) and every open connection.
    pub async fn down(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
            let _ = s.await;
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The requests the CRM accepted (answered 2xx) on `path`.
    pub fn accepted_at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.accepted && r.path == path)
            .collect()
    }

    /// Polls until `n` requests were accepted on `path`.
    pub async fn wait_accepted(&self, path: &str, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.accepted_at(path);
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ScriptedCrm {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<CrmState>>) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        // Head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_owned();
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut headers = HashMap::new();
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);

        let mode = {
            let s = state.lock().unwrap();
            s.modes
                .get(&path)
                .copied()
                .or(s.default)
                .unwrap_or(Mode::Ok)
        };
        let (status, extra) = match mode {
            Mode::Closed => return,
            Mode::Ok => (200, String::new()),
            Mode::Fail => (500, String::new()),
            Mode::RetryAfter(n) => (503, format!("Retry-After: {n}\r\n")),
            Mode::Slow(d) => {
                tokio::time::sleep(d).await;
                (200, String::new())
            }
            Mode::Hang(d) => {
                tokio::time::sleep(d).await;
                (500, String::new())
            }
        };
        let received = Received {
            path,
            webhook_id: headers.get("webhook-id").cloned().unwrap_or_default(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            raw: body,
            headers,
            accepted: status == 200,
        };
        // Recorded before answering, so the order of records is the order the relay
        // saw answers in.
        state.lock().unwrap().received.push(received);
        let resp = format!(
            "HTTP/1.1 {status} X\r\ncontent-length: 0\r\n{extra}connection: keep-alive\r\n\r\n"
        );
        if stream.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

impl Delivered for Received {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name).map(|v| v.as_bytes())
    }

    fn raw_body(&self) -> &[u8] {
        &self.raw
    }
}
