//! Walker round trips per second: the `echo` walker of `plugins/chat.wasm`
//! against `native_echo`, a Rust walker doing the same work, registered in
//! the same server process (see `tests/bin/switchboard.rs`) and called by
//! the same clients from this process.

use std::time::{Duration, Instant};

use integration_tests::{example_plugin, plugin_dir};
use serde_json::json;

use crate::load::{connect_from, request, source, start_switchboard};
use crate::percentile;

pub(crate) struct Sample {
    pub(crate) calls_per_sec: f64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
}

pub(crate) async fn measure(
    addr: std::net::SocketAddr,
    walker: &'static str,
    clients: usize,
    duration: Duration,
) -> Sample {
    let mut tasks = Vec::new();
    let deadline = Instant::now() + duration;
    // Walkers serve authenticated callers (jac-cloud's default).
    let path = format!(
        "/ws?token={}",
        integration_tests::token("bench", None, json!({}))
    );
    for k in 0..clients {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let mut ws = connect_from(addr, source(k), &path).await;
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let started = Instant::now();
                let reply = request(
                    &mut ws,
                    json!({"type": "walker", "walker": walker, "context": {"k": k, "n": n, "text": "hello"}}),
                    n,
                )
                .await
                .expect("walker reply");
                assert_eq!(reply["type"], "walker", "{reply}");
                latencies.push(started.elapsed().as_micros() as u64);
                n += 1;
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    all.sort_unstable();
    Sample {
        calls_per_sec: all.len() as f64 / duration.as_secs_f64(),
        p50_us: percentile(&all, 0.5),
        p99_us: percentile(&all, 0.99),
    }
}

/// Rounds of the comparison; the median ratio is reported.
const ROUNDS: usize = 3;

/// Runs the walker benchmark and prints its table.
pub async fn run(duration: Duration, clients: usize) {
    let dir = plugin_dir(&[example_plugin("chat")]);
    let toml = format!(
        "[limits]\nrate_limit_max_requests = 0\n[plugins]\ndir = \"{}\"\nwatch = false\n",
        dir.path().display()
    );
    let server = start_switchboard(dir.path(), &toml);
    // Warm both paths (compilation cache, connections, allocator).
    measure(server.addr, "echo", 2, Duration::from_millis(300)).await;
    measure(server.addr, "native_echo", 2, Duration::from_millis(300)).await;

    println!(
        "\n### Walker round trips ({clients} clients, {} s per phase, same server, {ROUNDS} rounds)\n",
        duration.as_secs()
    );
    println!("Each round measures both walkers back to back (order alternating), so drift in the machine's speed hits both; the ratio is per round.\n");
    println!("| round | native rt/s (baseline) | p50 µs | p99 µs | WASM rt/s (chat.wasm echo) | p50 µs | p99 µs | WASM vs native |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut ratios = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let (native, wasm) = if round % 2 == 0 {
            let n = measure(server.addr, "native_echo", clients, duration).await;
            (n, measure(server.addr, "echo", clients, duration).await)
        } else {
            let w = measure(server.addr, "echo", clients, duration).await;
            (
                measure(server.addr, "native_echo", clients, duration).await,
                w,
            )
        };
        let ratio = wasm.calls_per_sec / native.calls_per_sec;
        ratios.push(ratio);
        println!(
            "| {} | {:.0} | {} | {} | {:.0} | {} | {} | {ratio:.2} |",
            round + 1,
            native.calls_per_sec,
            native.p50_us,
            native.p99_us,
            wasm.calls_per_sec,
            wasm.p50_us,
            wasm.p99_us,
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!("\nMedian WASM / native ratio: {:.2}", ratios[ROUNDS / 2]);
}
