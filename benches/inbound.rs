//! Inbound normalization without I/O, per provider: every Instagram and Messenger
//! fixture through the shared Meta walk, every Telegram update fixture through the
//! Telegram normalizer (parse → events), and a 50-item Messenger batch.
//!
//!     cargo bench --bench inbound

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use switchboard::channels::meta_webhook;
use switchboard::channels::telegram::inbound as telegram;
use switchboard::channels::{NormalizeContext, Verified};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixtures(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(format!("{FIXTURES}/{dir}"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .filter_map(|e| {
                    let body = std::fs::read(e.path()).ok()?;
                    Some((e.file_name().to_string_lossy().into_owned(), body))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn inbound(c: &mut Criterion) {
    let ctx = NormalizeContext {
        public_url: "https://relay.example.com",
    };
    let mut group = c.benchmark_group("inbound");
    for dir in ["instagram", "messenger"] {
        let all = fixtures(dir);
        group.throughput(Throughput::Elements(all.len() as u64));
        group.bench_function(format!("normalize_all/{dir}"), |b| {
            b.iter(|| {
                all.iter()
                    .map(|(_, body)| {
                        let v = Verified::assume_verified_for_tests(body);
                        meta_webhook::normalize(black_box(&v), &ctx).map_or(0, |(_, e)| e.len())
                    })
                    .sum::<usize>()
            })
        });
    }
    let updates: Vec<(String, Vec<u8>)> = fixtures("telegram")
        .into_iter()
        .filter(|(_, b)| {
            serde_json::from_slice::<serde_json::Value>(b)
                .map(|v| v.get("update_id").is_some())
                .unwrap_or(false)
        })
        .collect();
    group.throughput(Throughput::Elements(updates.len() as u64));
    group.bench_function("normalize_all/telegram", |b| {
        b.iter(|| {
            updates
                .iter()
                .map(|(_, body)| {
                    let v = Verified::assume_verified_for_tests(body);
                    telegram::normalize("5000000001", black_box(&v), &ctx).map_or(0, |e| e.len())
                })
                .sum::<usize>()
        })
    });
    // One webhook carrying 50 messages for one Page.
    let items: Vec<String> = (0..50)
        .map(|i| {
            format!(
                r#"{{"sender":{{"id":"6547891234567890"}},"recipient":{{"id":"682498302938465"}},"timestamp":1458692752478,"message":{{"mid":"m_{i}","text":"hello number {i} \u00e4\u00f6 \ud83d\ude0d"}}}}"#
            )
        })
        .collect();
    let batch = format!(
        r#"{{"object":"page","entry":[{{"id":"682498302938465","time":1,"messaging":[{}]}}]}}"#,
        items.join(",")
    )
    .into_bytes();
    group.throughput(Throughput::Elements(50));
    group.bench_function("normalize_batch50/messenger", |b| {
        let v = Verified::assume_verified_for_tests(&batch);
        b.iter(|| meta_webhook::normalize(black_box(&v), &ctx).map_or(0, |(_, e)| e.len()))
    });
    group.finish();
}

criterion_group!(benches, inbound);
criterion_main!(benches);
