//! The load generator's connections: `conns` HTTP/1.1 keep-alive connections, each
//! sending its next request as soon as the previous answer is in (closed loop), for a
//! fixed time. Latency is measured per request, from send to the end of the answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::requests::Requests;

/// What one measured stretch gave.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Requests answered as expected.
    pub ok: u64,
    /// Answered otherwise (a non-200, or a webhook not delivered directly).
    pub failed: u64,
    /// Connection errors (each one reconnects).
    pub errors: u64,
    pub elapsed: Duration,
    /// Latencies of the `ok` requests, µs, sorted.
    pub latencies_us: Vec<u32>,
}

impl Sample {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile in ms (0 when nothing was measured).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * q).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

/// Sends requests over `conns` connections to `addr` for `duration`.
pub async fn drive(
    addr: SocketAddr,
    requests: Arc<Requests>,
    baseline: bool,
    conns: usize,
    duration: Duration,
) -> Sample {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let requests = requests.clone();
        tasks.push(tokio::spawn(connection(addr, requests, baseline, deadline)));
    }
    let mut all = Sample::default();
    for t in tasks {
        if let Ok(s) = t.await {
            all.ok += s.ok;
            all.failed += s.failed;
            all.errors += s.errors;
            all.latencies_us.extend(s.latencies_us);
        }
    }
    all.elapsed = started.elapsed();
    all.latencies_us.sort_unstable();
    all
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn connection(
    addr: SocketAddr,
    requests: Arc<Requests>,
    baseline: bool,
    deadline: Instant,
) -> Sample {
    let mut s = Sample::default();
    let mut sender: Option<Sender> = None;
    while Instant::now() < deadline {
        let tx = match sender.as_mut() {
            Some(tx) => tx,
            None => match connect(addr).await {
                Ok(tx) => sender.insert(tx),
                Err(_) => {
                    s.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let r = requests.next();
        let mut req = hyper::Request::post(r.path)
            .header("host", "127.0.0.1")
            .header("content-type", "application/json");
        for (name, value) in &r.headers {
            req = req.header(*name, value.as_str());
        }
        let Ok(req) = req.body(Full::new(r.body)) else {
            s.errors += 1;
            continue;
        };
        let started = Instant::now();
        let answer = async {
            tx.ready().await?;
            let resp = tx.send_request(req).await?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        }
        .await;
        match answer {
            Ok((status, body)) => {
                if requests.accepted(status, &body, baseline) {
                    s.ok += 1;
                    let us = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    s.latencies_us.push(us);
                } else {
                    s.failed += 1;
                }
            }
            Err(_) => {
                s.errors += 1;
                sender = None;
            }
        }
    }
    s
}

/// `GET path` on a fresh connection; the status, or None when nothing answers.
pub async fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut tx = connect(addr).await.ok()?;
    let req = hyper::Request::get(path)
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .ok()?;
    let resp = tx.send_request(req).await.ok()?;
    Some(resp.status().as_u16())
}
