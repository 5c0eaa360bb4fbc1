//! The run: start the systems, measure them in alternating rounds, print one table.
//!
//! Systems under test (each pinned to `--relay-cpu`): the baseline forwarder, the relay
//! on the memory store, the relay on the Redis store. On `--load-cpu`: this load
//! generator, the sink (nginx answering 204 as the CRM and WhatsApp's send answer as the
//! Graph API) and redis-server. Each round measures every case once, starting one case
//! later than the round before, so drift on the machine spreads over all of them; the
//! table gives the medians over the rounds, and each ratio to the baseline is the median
//! of the rounds' own ratios (a system against the baseline measured beside it).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::client::{self, Sample};
use crate::peers::GRAPH_SEND_ANSWER;
use crate::procs::{self, free_port, loopback, Proc, Scratch};
use crate::requests::{Requests, PHONE_NUMBER_ID};

const APP_SECRET: &str = "load-app-secret";
const API_KEY: &str = "load-api-key";
const PINNED_ENV: &str = "SWITCHBOARD_LOAD_PINNED";

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Rounds (every case once per round).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds measured per case and round.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of load before each measurement (not counted).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Short rounds (3 × 3 s, 1 s warm-up) to check that everything runs.
    #[arg(long)]
    quick: bool,
    /// Connections kept open by the load generator.
    #[arg(long, default_value_t = 64)]
    conns: usize,
    /// The relay binary (a release build).
    #[arg(long, default_value = "target/release/switchboard")]
    relay: PathBuf,
    /// The core of the systems under test.
    #[arg(long, default_value = "0")]
    relay_cpu: String,
    /// The core(s) of the load generator, the sink and redis-server.
    #[arg(long, default_value = "1")]
    load_cpu: String,
    /// Only the webhook path or only the reply path.
    #[arg(long, value_parser = ["webhook", "reply"])]
    only: Option<String>,
    /// Instead of rounds: the webhook path on one store for this many seconds, one line
    /// per `--window` (throughput over time, resident memory).
    #[arg(long)]
    soak: Option<u64>,
    /// The store of `--soak` (`forwarder`: the baseline instead of the relay, to compare
    /// profiles).
    #[arg(long, default_value = "redis", value_parser = ["memory", "redis", "forwarder"])]
    store: String,
    /// Seconds per line of `--soak`.
    #[arg(long, default_value_t = 30)]
    window: u64,
    /// The CRM and Graph sink: nginx (when installed) or the built-in one.
    #[arg(long, default_value = "auto", value_parser = ["auto", "nginx", "builtin"])]
    sink: String,
}

/// A system under test.
struct System {
    label: &'static str,
    proc: Proc,
    port: u16,
    baseline: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Webhook,
    Reply,
}

impl Path {
    fn label(self) -> &'static str {
        match self {
            Path::Webhook => "webhook",
            Path::Reply => "reply",
        }
    }
}

struct Case {
    path: Path,
    system: usize,
    samples: Vec<Sample>,
    rss_kib: (u64, u64),
}

pub fn run(mut args: RunArgs) -> anyhow::Result<()> {
    if std::env::var_os(PINNED_ENV).is_none() {
        // Run this process (and the sink and Redis it starts) on the load core.
        let exe = std::env::current_exe()?;
        let err = std::process::Command::new("taskset")
            .arg("-c")
            .arg(&args.load_cpu)
            .arg(exe)
            .args(std::env::args_os().skip(1))
            .env(PINNED_ENV, "1")
            .exec();
        return Err(err).context("re-running under taskset (is util-linux installed?)");
    }
    if args.quick {
        args.duration = 3;
        args.warmup = 1;
    }
    anyhow::ensure!(
        args.relay.is_file(),
        "{} not found: build it first (cargo build --release)",
        args.relay.display()
    );
    let scratch = Scratch::new()?;
    let load_avg_before = load_avg();

    // The sink: the CRM (204) and the Graph API (a send answer).
    let sink_port = free_port()?;
    let nginx = procs::find_program("nginx");
    let use_nginx = match args.sink.as_str() {
        "nginx" => true,
        "builtin" => false,
        _ => nginx.is_some(),
    };
    let mut sink = if use_nginx {
        let nginx = nginx.context("nginx not found")?;
        let conf = scratch.path("nginx.conf");
        std::fs::write(
            &conf,
            procs::nginx_config(&scratch.0, sink_port, GRAPH_SEND_ANSWER),
        )?;
        let prefix = scratch.0.display().to_string();
        let conf = conf.display().to_string();
        Proc::pinned(
            "nginx",
            &args.load_cpu,
            &nginx,
            &["-e", "stderr", "-p", &prefix, "-c", &conf],
            &scratch.path("nginx.log"),
        )?
    } else {
        let bind = format!("127.0.0.1:{sink_port}");
        Proc::pinned(
            "sink",
            &args.load_cpu,
            &std::env::current_exe()?,
            &["sink", "--bind", &bind],
            &scratch.path("sink.log"),
        )?
    };
    procs::wait_listening(loopback(sink_port), "the sink", &mut sink)?;

    let redis_port = free_port()?;
    let redis_bin = procs::find_program("redis-server").context("redis-server not found")?;
    let redis_port_s = redis_port.to_string();
    let mut redis = Proc::pinned(
        "redis-server",
        &args.load_cpu,
        &redis_bin,
        &[
            "--port",
            &redis_port_s,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        &scratch.path("redis.log"),
    )?;
    procs::wait_listening(loopback(redis_port), "redis-server", &mut redis)?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let mut systems = Vec::new();
    let stores: Vec<&str> = match args.soak {
        Some(_) if args.store == "forwarder" => vec![],
        Some(_) => vec![args.store.as_str()],
        None => vec!["memory", "redis"],
    };
    if args.soak.is_none() || args.store == "forwarder" {
        let port = free_port()?;
        let bind = format!("127.0.0.1:{port}");
        let upstream = format!("http://127.0.0.1:{sink_port}/hook");
        let mut proc = Proc::pinned(
            "forwarder",
            &args.relay_cpu,
            &std::env::current_exe()?,
            &["forwarder", "--bind", &bind, "--upstream", &upstream],
            &scratch.path("forwarder.log"),
        )?;
        procs::wait_listening(loopback(port), "the forwarder", &mut proc)?;
        systems.push(System {
            label: "forwarder (actix-web + reqwest)",
            proc,
            port,
            baseline: true,
        });
    }
    for store in stores {
        let port = free_port()?;
        let conf = scratch.path(&format!("relay-{store}.toml"));
        std::fs::write(&conf, relay_config(port, sink_port, redis_port, store)?)?;
        let conf = conf.display().to_string();
        let mut proc = Proc::pinned(
            "switchboard",
            &args.relay_cpu,
            &args.relay,
            &["--config", &conf, "serve"],
            &scratch.path(&format!("relay-{store}.log")),
        )?;
        procs::wait_listening(loopback(port), "the relay", &mut proc)?;
        let ready = rt.block_on(async {
            for _ in 0..100 {
                if client::get_status(loopback(port), "/readyz").await == Some(200) {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        });
        anyhow::ensure!(ready, "the relay ({store} store) did not become ready");
        systems.push(System {
            label: if store == "memory" {
                "switchboard, memory store"
            } else {
                "switchboard, Redis store"
            },
            proc,
            port,
            baseline: false,
        });
    }

    let webhooks = Arc::new(Requests::webhooks(APP_SECRET)?);
    let replies = Arc::new(Requests::replies(API_KEY));

    if let Some(total) = args.soak {
        return soak(&rt, &mut systems[0], webhooks, &args, total);
    }

    let mut cases = Vec::new();
    for path in [Path::Webhook, Path::Reply] {
        if args.only.as_deref().is_some_and(|o| o != path.label()) {
            continue;
        }
        for system in 0..systems.len() {
            cases.push(Case {
                path,
                system,
                samples: Vec::new(),
                rss_kib: (0, 0),
            });
        }
    }
    let n = cases.len();
    eprintln!(
        "{} rounds × {} cases × {} s (+{} s warm-up), {} connections",
        args.rounds, n, args.duration, args.warmup, args.conns
    );
    for round in 0..args.rounds {
        for k in 0..n {
            let case = &mut cases[(round + k) % n];
            let sys = &mut systems[case.system];
            sys.proc.check_alive()?;
            let requests = match case.path {
                Path::Webhook => webhooks.clone(),
                Path::Reply => replies.clone(),
            };
            let addr = loopback(sys.port);
            let sample = rt.block_on(async {
                if args.warmup > 0 {
                    let _ = client::drive(
                        addr,
                        requests.clone(),
                        sys.baseline,
                        args.conns,
                        Duration::from_secs(args.warmup),
                    )
                    .await;
                }
                client::drive(
                    addr,
                    requests,
                    sys.baseline,
                    args.conns,
                    Duration::from_secs(args.duration),
                )
                .await
            });
            eprintln!(
                "  round {} {:7} {:32} {:>8.0} req/s  p99 {:>6.2} ms  failed {}  errors {}",
                round + 1,
                case.path.label(),
                sys.label,
                sample.rate(),
                sample.quantile_ms(0.99),
                sample.failed,
                sample.errors
            );
            case.samples.push(sample);
            case.rss_kib = sys.proc.rss_kib();
        }
    }
    print_table(&args, &systems, &cases, load_avg_before);
    Ok(())
}

fn soak(
    rt: &tokio::runtime::Runtime,
    sys: &mut System,
    requests: Arc<Requests>,
    args: &RunArgs,
    total: u64,
) -> anyhow::Result<()> {
    let windows = total.div_ceil(args.window.max(1));
    println!(
        "soak: webhook path, {}, {} connections, {} × {} s (load average before: {})",
        sys.label,
        args.conns,
        windows,
        args.window,
        load_avg()
    );
    println!("| minute | req/s | p50 | p99 | RSS | peak RSS | failed |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for w in 0..windows {
        sys.proc.check_alive()?;
        let s = rt.block_on(client::drive(
            loopback(sys.port),
            requests.clone(),
            sys.baseline,
            args.conns,
            Duration::from_secs(args.window),
        ));
        let (peak, now) = sys.proc.rss_kib();
        println!(
            "| {:.1} | {:.0} | {:.2} ms | {:.2} ms | {} | {} | {} |",
            ((w + 1) * args.window) as f64 / 60.0,
            s.rate(),
            s.quantile_ms(0.5),
            s.quantile_ms(0.99),
            mib(now),
            mib(peak),
            s.failed + s.errors
        );
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

#[allow(clippy::print_stdout)]
fn print_table(args: &RunArgs, systems: &[System], cases: &[Case], load_before: String) {
    println!();
    println!(
        "{} rounds × {} s per case ({} s warm-up), {} connections, medians over the rounds \
         (vs baseline: the median of each round's ratio); systems on CPU {}, load generator + \
         sink + redis-server on CPU {}",
        args.rounds, args.duration, args.warmup, args.conns, args.relay_cpu, args.load_cpu
    );
    println!(
        "load average before: {load_before}, after: {} (other work on the machine makes \
         these figures noisy)",
        load_avg()
    );
    println!();
    println!("| path | system | req/s | vs baseline | p50 | p99 | peak RSS | failed |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let rate = |c: &Case| median(c.samples.iter().map(Sample::rate).collect());
    for c in cases {
        let sys = &systems[c.system];
        let base = cases
            .iter()
            .find(|b| b.path == c.path && systems[b.system].baseline);
        let r = rate(c);
        // Each round's rate over the baseline's in the same round (measured next to it in
        // time), then the median of those: drift on the machine over the run cancels out
        // of each pair instead of adding to the spread.
        let ratios: Vec<f64> = base
            .map(|b| {
                c.samples
                    .iter()
                    .zip(&b.samples)
                    .filter(|(_, b)| b.rate() > 0.0)
                    .map(|(s, b)| s.rate() / b.rate())
                    .collect()
            })
            .unwrap_or_default();
        let ratio = if ratios.is_empty() {
            "-".into()
        } else {
            format!("{:.2}x", median(ratios))
        };
        let p50 = median(c.samples.iter().map(|s| s.quantile_ms(0.5)).collect());
        let p99 = median(c.samples.iter().map(|s| s.quantile_ms(0.99)).collect());
        let failed: u64 = c.samples.iter().map(|s| s.failed + s.errors).sum();
        println!(
            "| {} | {} | {:.0} | {} | {:.2} ms | {:.2} ms | {} | {} |",
            c.path.label(),
            sys.label,
            r,
            ratio,
            p50,
            p99,
            mib(c.rss_kib.0),
            failed
        );
    }
    println!();
    println!(
        "failed = answers other than 200 (for the relay's webhooks: not delivered to the CRM \
         directly) and connection errors, over all rounds. Peak RSS is the process's \
         (VmHWM) after its last round; the relays serve both paths."
    );
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| {
            let parts: Vec<&str> = s.split_whitespace().take(3).collect();
            (parts.len() == 3).then(|| parts.join(" "))
        })
        .unwrap_or_else(|| "?".into())
}

fn relay_config(port: u16, sink_port: u16, redis_port: u16, store: &str) -> anyhow::Result<String> {
    let key = fernet::Fernet::generate_key();
    let fernet = fernet::Fernet::new(&key).context("a generated Fernet key")?;
    let token = fernet.encrypt(b"EAAG-load-test-token");
    Ok(format!(
        r#"[server]
bind = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
workers = 1

[store]
backend = "{store}"
redis_url = "redis://127.0.0.1:{redis_port}"

[vault]
keys = ["{key}"]

[meta]
app_secrets = ["{APP_SECRET}"]
graph_api_base = "http://127.0.0.1:{sink_port}"

[log]
level = "warn"

[[tenants]]
id = "load"
crm_url = "http://127.0.0.1:{sink_port}/hook"
signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
api_keys = ["{API_KEY}"]

[[channels]]
kind = "whatsapp"
id = "{PHONE_NUMBER_ID}"
tenant = "load"
token = "{token}"
"#
    ))
}
