//! Broadcast fan-out: one publisher, N subscribers on one channel;
//! deliveries per second and publish-to-receive latency, against a minimal
//! Node.js `ws` broadcast server measured the same way in the same run.
//! With `--guarded`, each subscriber holds a guard filter (tenant) and the
//! plugin call counter shows no WASM call per recipient.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::load::{
    connect_from, connect_many, counter_sum, metrics, request, source, start_node_baseline,
    start_switchboard,
};
use crate::percentile;

/// One measurement.
pub struct Fanout {
    pub deliveries_per_sec: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub delivered: u64,
}

/// The `"t":<micros>` field a publish embedded.
pub fn sent_time(frame: &str) -> Option<u64> {
    let at = frame.find("\"t\":")? + 4;
    let digits: &str = &frame[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// Subscribes `n` clients (with `tokens[i % len]` if given), then publishes
/// `messages` and measures until every expected delivery arrived (or 60 s).
pub async fn measure(
    addr: SocketAddr,
    n: usize,
    messages: usize,
    tokens: &[String],
    tenants: usize,
) -> Fanout {
    measure_paced(addr, n, messages, tokens, tenants, Duration::ZERO).await
}

/// As [`measure`], publishing one message every `pace` (zero: as fast as
/// the server acknowledges them).
pub async fn measure_paced(
    addr: SocketAddr,
    n: usize,
    messages: usize,
    tokens: &[String],
    tenants: usize,
    pace: Duration,
) -> Fanout {
    let paths: Vec<String> = if tokens.is_empty() {
        vec!["/ws".into()]
    } else {
        tokens.iter().map(|t| format!("/ws?token={t}")).collect()
    };
    let mut subs = Vec::with_capacity(n);
    for (k, path) in paths.iter().enumerate() {
        let count = n / paths.len() + usize::from(k < n % paths.len());
        subs.extend(connect_many(addr, path, count, 256).await);
    }
    for ws in subs.iter_mut() {
        let reply = request(ws, json!({"type": "subscribe", "channel": "fan"}), 1).await;
        assert_eq!(reply.map(|r| r["type"].clone()), Some(json!("subscribed")));
    }
    let epoch = Arc::new(Instant::now());
    // Each subscriber expects its tenant's share (all of them when unguarded).
    let expected_per_sub = if tenants > 1 {
        messages / tenants
    } else {
        messages
    };
    let mut readers = Vec::with_capacity(n);
    for mut ws in subs {
        let epoch = epoch.clone();
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(expected_per_sub);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while latencies.len() < expected_per_sub {
                let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await else {
                    break;
                };
                if let Message::Text(text) = msg {
                    // Only the send time is needed: scan for it rather than
                    // parse the frame, so the load generator stays cheap
                    // next to the servers it measures.
                    if let Some(sent) = sent_time(&text) {
                        let now = epoch.elapsed().as_micros() as u64;
                        latencies.push(now.saturating_sub(sent));
                    }
                }
            }
            latencies
        }));
    }
    let mut publisher = connect_from(addr, source(n), &paths[0]).await;
    let started = Instant::now();
    for i in 0..messages {
        let t = epoch.elapsed().as_micros() as u64;
        let message = json!({"t": t, "i": i, "tenant": format!("t{}", i % tenants.max(1)), "body": "x".repeat(64)});
        request(
            &mut publisher,
            json!({"type": "publish", "channel": "fan", "message": message}),
            i as u64 + 10,
        )
        .await;
        if !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
    }
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await.expect("reader"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    Fanout {
        deliveries_per_sec: all.len() as f64 / elapsed,
        p50_us: percentile(&all, 0.5),
        p99_us: percentile(&all, 0.99),
        delivered: all.len() as u64,
    }
}

/// Runs the broadcast comparison for each subscriber count and prints it:
/// a burst (throughput: publish as fast as acknowledged) and a paced run
/// (latency: one message per [`pace`], so queueing does not dominate).
pub async fn run(counts: &[usize], messages: usize) {
    println!("\n### Broadcast fan-out: one publisher, {messages} messages, Switchboard vs Node.js ws (same run)\n");
    println!("Burst = publish as fast as each publish is acknowledged (deliveries/s); paced = {} messages, one per pace interval, long enough for either server to finish a broadcast before the next (latency without queueing).\n", messages / 2);
    println!(
        "| subscribers | server | burst deliveries/s | vs Node | pace ms | paced p50 µs | paced p99 µs |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for &n in counts {
        let pace = pace(n);
        let node = match start_node_baseline() {
            Some(server) => {
                let burst = measure(server.addr, n, messages, &[], 1).await;
                drop(server);
                let server = start_node_baseline().expect("node started once already");
                let paced = measure_paced(server.addr, n, messages / 2, &[], 1, pace).await;
                Some((burst, paced))
            }
            None => None,
        };
        let dir = tempfile::tempdir().expect("dir");
        let toml =
            "[limits]\noutbound_queue = 4096\n[plugins]\ndir = \"/nonexistent\"\nwatch = false\n";
        let server = start_switchboard(dir.path(), toml);
        let burst = measure(server.addr, n, messages, &[], 1).await;
        drop(server);
        let server = start_switchboard(dir.path(), toml);
        let paced = measure_paced(server.addr, n, messages / 2, &[], 1, pace).await;
        drop(server);
        if let Some((b, p)) = &node {
            println!(
                "| {n} | Node.js ws (baseline) | {:.0} | 1.00 | {} | {} | {} |",
                b.deliveries_per_sec,
                pace.as_millis(),
                p.p50_us,
                p.p99_us
            );
        }
        let ratio = node.as_ref().map_or("n/a".into(), |(b, _)| {
            format!("{:.2}", burst.deliveries_per_sec / b.deliveries_per_sec)
        });
        println!(
            "| {n} | Switchboard | {:.0} | {ratio} | {} | {} | {} |",
            burst.deliveries_per_sec,
            pace.as_millis(),
            paced.p50_us,
            paced.p99_us
        );
    }
}

/// The paced run's interval for `n` subscribers: 100 ms, or 30 µs per
/// subscriber when that is longer. On this machine a broadcast to 10,000
/// loopback sockets takes either server about 100 ms, so at a fixed 100 ms
/// each message would queue behind the last and p99 would measure the
/// backlog rather than delivery.
fn pace(n: usize) -> Duration {
    Duration::from_micros((n as u64 * 30).max(100_000))
}

/// Permission-aware fan-out: every subscriber holds a guard filter.
pub async fn run_guarded(n: usize, messages: usize, guard_wasm: &std::path::Path) {
    const TENANTS: usize = 10;
    let dir = tempfile::tempdir().expect("dir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    std::fs::copy(guard_wasm, plugins.join("guard.wasm")).expect("copy guard");
    let toml = format!(
        "[limits]\noutbound_queue = 4096\n[plugins]\ndir = \"{}\"\nwatch = false\n",
        plugins.display()
    );
    let server = start_switchboard(dir.path(), &toml);
    let tokens: Vec<String> = (0..TENANTS)
        .map(|t| {
            integration_tests::token(
                &format!("user{t}"),
                Some("user"),
                json!({"tenant": format!("t{t}")}),
            )
        })
        .collect();
    let before = counter_sum(
        &metrics(server.addr).await,
        "switchboard_plugin_calls_total",
    );
    let plain = measure(server.addr, n, messages, &[], 1).await;
    let after_plain = counter_sum(
        &metrics(server.addr).await,
        "switchboard_plugin_calls_total",
    );
    drop(server);
    let server = start_switchboard(dir.path(), &toml);
    let guarded = measure(server.addr, n, messages, &tokens, TENANTS).await;
    let calls = counter_sum(
        &metrics(server.addr).await,
        "switchboard_plugin_calls_total",
    );
    println!("\n### Permission-aware fan-out: {n} subscribers, each with a guard filter ({TENANTS} tenants), {messages} messages\n");
    // Events evaluated: every message is checked against every subscription.
    let checks = (n * messages) as f64;
    let per_sec = |f: &Fanout| checks / (f.delivered as f64 / f.deliveries_per_sec);
    println!("| run | events evaluated/s | deliveries | deliveries/s | p50 µs | p99 µs | plugin calls | vs unfiltered |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, f, c) in [
        (
            "no filter (baseline: anonymous subscribers)",
            &plain,
            after_plain - before,
        ),
        ("guard filter per subscriber", &guarded, calls),
    ] {
        println!(
            "| {name} | {:.0} | {} | {:.0} | {} | {} | {c} | {:.2} |",
            per_sec(f),
            f.delivered,
            f.deliveries_per_sec,
            f.p50_us,
            f.p99_us,
            per_sec(f) / per_sec(&plain)
        );
    }
    println!(
        "\nPlugin calls in each run = {} connects + {n} subscribes + {messages} publishes (the guard is consulted for each); \
         {} events were evaluated against the guard filters natively: no WASM call per recipient.",
        n + 1,
        n * messages
    );
}
