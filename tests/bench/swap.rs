//! Hot swap under load: C clients call a walker continuously while the
//! plugin file is replaced; failed calls, unanswered calls, lost channel
//! messages, and the swap latency (file installed → first reply from the
//! new version). The baseline is the same load with no swap.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::load::{
    connect_from, connect_many, next_json, request, send, source, start_switchboard,
};

#[derive(Default)]
struct Tally {
    calls: u64,
    failed: u64,
    unanswered: u64,
    first_v2: Option<Instant>,
}

async fn load(
    addr: std::net::SocketAddr,
    clients: usize,
    seconds: u64,
    swap: Option<(&Path, &Path, &Path)>,
) -> (Tally, u64, u64, Option<Duration>) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for ws in connect_many(addr, "/ws", clients, 256).await {
        let stop = stop.clone();
        let mut ws = ws;
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            let mut id = 0;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                match request(&mut ws, json!({"type": "walker", "walker": "version"}), id).await {
                    None => t.unanswered += 1,
                    Some(r) if r["type"] != "walker" => t.failed += 1,
                    Some(r) => {
                        if r["returns"]["version"] == 2 && t.first_v2.is_none() {
                            t.first_v2 = Some(Instant::now());
                        }
                    }
                }
                t.calls += 1;
            }
            t
        }));
    }
    // A channel stream alongside: every message must arrive.
    let mut sub = connect_from(addr, source(clients + 1), "/ws").await;
    request(
        &mut sub,
        json!({"type": "subscribe", "channel": "ticks"}),
        1,
    )
    .await;
    let mut publisher = connect_from(addr, source(clients + 2), "/ws").await;
    let started = Instant::now();
    let mut installed = None;
    let mut published = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        if let Some((dir, _, v2)) = swap {
            if installed.is_none() && started.elapsed() > Duration::from_secs(seconds) / 3 {
                let tmp = dir.join(".counter.tmp");
                std::fs::copy(v2, &tmp).expect("copy");
                std::fs::rename(&tmp, dir.join("counter.wasm")).expect("rename");
                installed = Some(Instant::now());
            }
        }
        send(
            &mut publisher,
            &json!({"type": "publish", "channel": "ticks", "message": {"n": published}}),
        )
        .await;
        published += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for task in tasks {
        let t = task.await.expect("client");
        total.calls += t.calls;
        total.failed += t.failed;
        total.unanswered += t.unanswered;
        total.first_v2 = match (total.first_v2, t.first_v2) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let mut received = 0u64;
    while received < published {
        match next_json(&mut sub, Duration::from_secs(5)).await {
            Some(m) if m["type"] == "message" => received += 1,
            Some(_) => {}
            None => break,
        }
    }
    let latency = installed
        .zip(total.first_v2)
        .map(|(i, f)| f.saturating_duration_since(i));
    (total, published, received, latency)
}

/// Runs the swap benchmark and prints the table.
pub async fn run(clients: usize, seconds: u64, v1: &Path, v2: &Path) {
    let mut rows = Vec::new();
    for swap in [false, true] {
        let dir = tempfile::tempdir().expect("dir");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).expect("dir");
        std::fs::copy(v1, plugins.join("counter.wasm")).expect("copy v1");
        let toml = format!(
            "[limits]\noutbound_queue = 8192\n[plugins]\ndir = \"{}\"\nwatch = true\n",
            plugins.display()
        );
        let server = start_switchboard(dir.path(), &toml);
        let args = swap.then_some((plugins.as_path(), v1, v2));
        rows.push((swap, load(server.addr, clients, seconds, args).await));
    }
    println!("\n### Hot swap under load: {clients} clients calling a walker for {seconds} s, plugin replaced at {:.1} s\n", seconds as f64 / 3.0);
    println!(
        "| run | calls/s | failed calls | unanswered | messages published | lost | swap latency |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (swap, (t, published, received, latency)) in rows {
        println!(
            "| {} | {:.0} | {} | {} | {} | {} | {} |",
            if swap {
                "v1 → v2 swap"
            } else {
                "no swap (baseline)"
            },
            t.calls as f64 / seconds as f64,
            t.failed,
            t.unanswered,
            published,
            published - received,
            latency.map_or("—".into(), |l| format!("{} ms", l.as_millis())),
        );
    }
}
