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

/// Subscribes `n` clients (with `tokens[i % len]` if given), then publishes
/// `messages` and measures until every expected delivery arrived (or 60 s).
pub async fn measure(
    addr: SocketAddr,
    n: usize,
    messages: usize,
    tokens: &[String],
    tenants: usize,
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
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                        if let Some(sent) = v["data"]["t"].as_u64() {
                            let now = epoch.elapsed().as_micros() as u64;
                            latencies.push(now.saturating_sub(sent));
                        }
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

/// Runs the broadcast comparison for each subscriber count and prints it.
pub async fn run(counts: &[usize], messages: usize) {
    println!("\n### Broadcast fan-out: one publisher, {messages} messages, Switchboard vs Node.js ws (same run)\n");
    println!("| subscribers | server | deliveries/s | p50 µs | p99 µs | deliveries/s vs Node |");
    println!("|---:|---|---:|---:|---:|---:|");
    for &n in counts {
        let node = match start_node_baseline() {
            Some(server) => {
                let r = measure(server.addr, n, messages, &[], 1).await;
                drop(server);
                Some(r)
            }
            None => None,
        };
        let dir = tempfile::tempdir().expect("dir");
        let server = start_switchboard(
            dir.path(),
            "[limits]\noutbound_queue = 4096\n[plugins]\ndir = \"/nonexistent\"\nwatch = false\n",
        );
        let sb = measure(server.addr, n, messages, &[], 1).await;
        drop(server);
        if let Some(node) = &node {
            println!(
                "| {n} | Node.js ws (baseline) | {:.0} | {} | {} | 1.00 |",
                node.deliveries_per_sec, node.p50_us, node.p99_us
            );
        }
        let ratio = node.as_ref().map_or("n/a".into(), |b| {
            format!("{:.2}", sb.deliveries_per_sec / b.deliveries_per_sec)
        });
        println!(
            "| {n} | Switchboard | {:.0} | {} | {} | {ratio} |",
            sb.deliveries_per_sec, sb.p50_us, sb.p99_us
        );
    }
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
    println!("| run | deliveries/s | p50 µs | p99 µs | deliveries | guard calls | vs unfiltered |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| no filter (baseline; anonymous, no tenant) | {:.0} | {} | {} | {} | {} | 1.00 |",
        plain.deliveries_per_sec,
        plain.p50_us,
        plain.p99_us,
        plain.delivered,
        after_plain - before
    );
    println!(
        "| guard filter per subscriber | {:.0} | {} | {} | {} | {} | {:.2} |",
        guarded.deliveries_per_sec,
        guarded.p50_us,
        guarded.p99_us,
        guarded.delivered,
        calls,
        guarded.deliveries_per_sec / plain.deliveries_per_sec
    );
    println!(
        "\nGuard calls = one per subscribe ({n}) + one per publish ({messages}); deliveries made {}: the filters ran natively, no WASM call per recipient.",
        guarded.delivered
    );
}
