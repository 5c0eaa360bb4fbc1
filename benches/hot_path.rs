//! The webhook hot path without I/O: verify (HMAC over the raw body) → normalize (parse
//! into events) → render the CRM body → sign (Standard Webhooks), over real fixtures.
//!
//!     cargo bench --bench hot_path

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use secrecy::SecretString;
use switchboard::channels::meta::AppSecrets;
use switchboard::channels::meta_webhook;
use switchboard::channels::{NormalizeContext, Verified};
use switchboard::signing::Signer;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn load(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_default()
}

fn sign_header(secrets: &AppSecrets, body: &[u8]) -> Vec<u8> {
    secrets.sign(body).unwrap_or_default().into_bytes()
}

fn hot_path(c: &mut Criterion) {
    let secrets = AppSecrets::new(&[SecretString::from("bench-app-secret".to_owned())]);
    let signer = Signer::new(
        &SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()),
        &[],
    )
    .unwrap_or_else(|_| unreachable!());
    let ctx = NormalizeContext {
        public_url: "https://relay.example.com",
    };

    let mut group = c.benchmark_group("webhook");
    for name in [
        "whatsapp/text.json",
        "whatsapp/image.json",
        "whatsapp/status_read.json",
        "whatsapp/contacts_unicode.json",
        "messenger/text_quick_reply.json",
        "instagram/text.json",
    ] {
        let body = load(name);
        if body.is_empty() {
            continue;
        }
        let header = sign_header(&secrets, &body);
        group.throughput(Throughput::Bytes(body.len() as u64));

        group.bench_function(format!("verify/{name}"), |b| {
            b.iter(|| {
                secrets
                    .verify(Some(black_box(&header)), black_box(&body))
                    .is_ok()
            })
        });
        group.bench_function(format!("normalize/{name}"), |b| {
            let verified = Verified::assume_verified_for_tests(&body);
            b.iter(|| meta_webhook::normalize(black_box(&verified), &ctx).map(|(_, e)| e.len()))
        });
        group.bench_function(format!("verify_normalize_sign/{name}"), |b| {
            b.iter(|| {
                let verified = match secrets.verify(Some(&header), black_box(&body)) {
                    Ok(v) => v,
                    Err(_) => return 0,
                };
                let Ok((_, events)) = meta_webhook::normalize(&verified, &ctx) else {
                    return 0;
                };
                let mut n = 0;
                for e in &events {
                    let out = e.to_body("acme", false);
                    let sig = signer.sign(e.id.as_str(), 1_700_000_000, &out);
                    n += out.len() + sig.len();
                }
                n
            })
        });
    }
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
