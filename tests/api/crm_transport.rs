//! How deliveries reach the CRM, through the real binary:
//! - behind TLS: the relay's CRM client (hyper over rustls with the platform's verifier)
//!   trusts what the platform trusts (`SSL_CERT_FILE` here, naming a test CA), sends the
//!   signed event over HTTPS, and refuses a certificate it cannot verify, keeping the
//!   event in the retry buffer;
//! - through the HTTP proxy the environment names (`HTTP_PROXY`), as before the client
//!   was hyper's own.
//!
//! The certificates are `tests/fixtures/tls/`: `ca.pem` (a test CA whose key was thrown
//! away) and `crm.pem` + `crm.key` (localhost and 127.0.0.1, valid until 2126).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// One request the TLS CRM received.
struct Received {
    head: String,
    body: Vec<u8>,
}

impl Delivered for Received {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().as_bytes())
        })
    }

    fn raw_body(&self) -> &[u8] {
        &self.body
    }
}

/// A CRM over HTTPS (HTTP/1.1, keep-alive) that answers every request 204: its port,
/// what it received, and how many TLS connections it accepted.
async fn start_tls_crm() -> (u16, Arc<Mutex<Vec<Received>>>, Arc<AtomicUsize>) {
    let certs = CertificateDer::pem_file_iter(fixture("crm.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("crm.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let (keep, count) = (received.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, keep, count) = (acceptor.clone(), keep.clone(), count.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match tls.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let mut req = Received {
                        head: String::from_utf8_lossy(&buf[..head_end]).into_owned(),
                        body: Vec::new(),
                    };
                    let len = req
                        .header("content-length")
                        .and_then(|v| std::str::from_utf8(v).ok()?.parse::<usize>().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        match tls.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    req.body = buf[head_end..head_end + len].to_vec();
                    buf.drain(..head_end + len);
                    keep.lock().unwrap().push(req);
                    let answer = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
                    if tls.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, received, connections)
}

/// The relay on the memory store, its tenant's CRM at `crm_url`, with `env`.
async fn relay_for(
    dir: &std::path::Path,
    crm_url: &str,
    env: &[(&str, &std::path::Path)],
) -> Binary {
    let relay_port = free_port();
    let config = crate::devtools::memory_config(dir, relay_port, 1);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&format!("http://127.0.0.1:1{CRM_PATH}"), crm_url);
    assert!(text.contains(crm_url));
    std::fs::write(&config, text).unwrap();
    Binary::start_with_env(dir, &config, relay_port, "info", env).await
}

/// POSTs one signed WhatsApp text from `sender` to the relay; its JSON answer.
async fn post_text(relay: &Binary, sender: &str, n: u32) -> serde_json::Value {
    let body = wa_webhook("555000111", &[(sender, n)]);
    post_meta_to(&reqwest::Client::new(), &relay.url("/webhooks/meta"), &body)
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn events_reach_a_crm_over_https_signed_on_one_connection_when_its_certificate_is_trusted() {
    let (port, received, connections) = start_tls_crm().await;
    let dir = tempfile::tempdir().unwrap();
    let crm_url = format!("https://localhost:{port}{CRM_PATH}");
    let ca = fixture("ca.pem");
    let relay = relay_for(dir.path(), &crm_url, &[("SSL_CERT_FILE", &ca)]).await;
    for n in 1..=2 {
        let v = post_text(&relay, "4915110000071", n).await;
        assert_eq!(v["delivered"], 1, "{v}\n{}", relay.logs());
    }
    let got = std::mem::take(&mut *received.lock().unwrap());
    assert_eq!(got.len(), 2);
    for req in &got {
        assert!(
            req.head.starts_with(&format!("POST {CRM_PATH} HTTP/1.1")),
            "{}",
            req.head
        );
        let event = verify_standard_webhook(SIGNING_SECRET, req);
        assert_eq!(event["type"], "message.received");
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "the second event reuses the first one's TLS connection"
    );
}

#[tokio::test]
async fn a_crm_certificate_that_does_not_verify_fails_the_attempt_and_the_event_waits() {
    let (port, received, _) = start_tls_crm().await;
    let dir = tempfile::tempdir().unwrap();
    let crm_url = format!("https://localhost:{port}{CRM_PATH}");
    // The test CA is not trusted: the platform's roots only.
    let relay = relay_for(dir.path(), &crm_url, &[]).await;
    let v = post_text(&relay, "4915110000072", 1).await;
    assert_eq!(v["delivered"], 0, "{v}");
    assert_eq!(v["buffered"], 1, "{v}");
    assert!(
        received.lock().unwrap().is_empty(),
        "nothing was sent over an unverified connection"
    );
    relay.wait_for_log("certificate", 1).await;
}

#[tokio::test]
async fn with_http_proxy_set_deliveries_go_through_that_proxy() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    // The proxy: it gets the request for the CRM's host (which does not resolve) and
    // answers for it.
    let proxy = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CRM_PATH))
        .respond_with(ResponseTemplate::new(204))
        .mount(&proxy)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let crm_url = format!("http://crm.example.invalid{CRM_PATH}");
    let proxy_url = PathBuf::from(proxy.uri());
    let relay = relay_for(dir.path(), &crm_url, &[("HTTP_PROXY", &proxy_url)]).await;
    let v = post_text(&relay, "4915110000073", 1).await;
    assert_eq!(v["delivered"], 1, "{v}\n{}", relay.logs());
    let got = proxy.received_requests().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].url.host_str(), Some("crm.example.invalid"));
    let event = verify_standard_webhook(SIGNING_SECRET, &got[0]);
    assert_eq!(event["type"], "message.received");
}
