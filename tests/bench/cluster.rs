//! A cluster under fan-out: S subscribers spread over N Switchboard nodes
//! sharing one `redis-server`, one publisher on the first node; beside it,
//! one node alone holding one node's share (S / N), measured the same way
//! in the same run. Subscribers live in worker processes (this bench run
//! as `bench worker`), one per node, because a process holds at most
//! ~19,500 sockets here.
//!
//! A worker connects its share, subscribes, says `ready`, then reads until
//! the publisher's `end` message and prints what it saw: burst deliveries
//! and their last arrival, and a histogram of paced latencies (wall clock
//! microseconds, same machine).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::load::{connect_from, request, source, start_switchboard, ServerProcess};

/// Histogram buckets: 2% wide, from 1 µs to ~17 minutes.
const BUCKETS: usize = 1_400;

fn bucket(us: u64) -> usize {
    (((us.max(1) as f64).ln() / 1.02f64.ln()) as usize).min(BUCKETS - 1)
}

fn bucket_value(i: usize) -> u64 {
    1.02f64.powi(i as i32 + 1) as u64
}

/// The `"phase"` a frame's message carries.
fn phase(frame: &str) -> Option<&str> {
    let at = frame.find("\"phase\":\"")? + 9;
    let rest = &frame[at..];
    Some(&rest[..rest.find('"')?])
}

/// The unsigned number after `key` in a frame.
fn number_after(frame: &str, key: &str) -> Option<u64> {
    let rest = &frame[frame.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// What one worker reports.
#[derive(Default)]
struct Seen {
    connect_ms: f64,
    burst: u64,
    burst_last_us: u64,
    paced: Vec<u64>,
}

/// The worker side: `bench worker --worker-addr A --worker-count N
/// --worker-first I --messages M`. Prints `ready`, then `burst` once every
/// subscriber has its M burst messages (or nothing came for 5 s), then
/// `done` with its report after the `end` message.
pub async fn worker(addr: SocketAddr, count: usize, first: usize, messages: usize) {
    let started = Instant::now();
    let mut subs = connect_many_from(addr, count, first).await;
    for ws in subs.iter_mut() {
        let reply = request(ws, json!({"type": "subscribe", "channel": "fan"}), 1).await;
        assert_eq!(reply.map(|r| r["type"].clone()), Some(json!("subscribed")));
    }
    let connect_ms = started.elapsed().as_secs_f64() * 1000.0;
    let bursts = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let readers: Vec<_> = subs
        .into_iter()
        .map(|mut ws| {
            let bursts = bursts.clone();
            tokio::spawn(async move {
                let mut seen = Seen {
                    paced: vec![0; BUCKETS],
                    ..Seen::default()
                };
                loop {
                    let Ok(Some(Ok(msg))) =
                        tokio::time::timeout(Duration::from_secs(120), ws.next()).await
                    else {
                        break;
                    };
                    let Message::Text(text) = msg else { continue };
                    let now = unix_us();
                    // Scan rather than parse: the load generator must stay
                    // cheap next to the servers it measures.
                    match phase(&text) {
                        Some("burst") => {
                            seen.burst += 1;
                            seen.burst_last_us = now;
                            bursts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Some("paced") => {
                            let sent = number_after(&text, "\"t\":").unwrap_or(now);
                            seen.paced[bucket(now.saturating_sub(sent))] += 1;
                        }
                        Some("end") => break,
                        _ => {}
                    }
                }
                seen
            })
        })
        .collect();
    println!("ready {connect_ms:.0}");
    let _ = std::io::stdout().flush();
    let expected = (count * messages) as u64;
    tokio::spawn(async move {
        let (mut last, mut since) = (0, Instant::now());
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = bursts.load(std::sync::atomic::Ordering::Relaxed);
            if now != last {
                (last, since) = (now, Instant::now());
            }
            if now >= expected || (now > 0 && since.elapsed() > Duration::from_secs(5)) {
                println!("burst {now}");
                let _ = std::io::stdout().flush();
                break;
            }
        }
    });
    let mut total = Seen {
        connect_ms,
        paced: vec![0; BUCKETS],
        ..Seen::default()
    };
    for r in readers {
        let seen = r.await.expect("reader");
        total.burst += seen.burst;
        total.burst_last_us = total.burst_last_us.max(seen.burst_last_us);
        for (t, s) in total.paced.iter_mut().zip(seen.paced) {
            *t += s;
        }
    }
    let sparse: Vec<(usize, u64)> = total
        .paced
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (i, *n))
        .collect();
    println!(
        "done {}",
        json!({"connect_ms": total.connect_ms, "burst": total.burst,
               "burst_last_us": total.burst_last_us, "paced": sparse})
    );
}

async fn connect_many_from(addr: SocketAddr, count: usize, first: usize) -> Vec<crate::load::Ws> {
    let mut out = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(256) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|&i| {
                tokio::spawn(async move { connect_from(addr, source(first + i), "/ws").await })
            })
            .collect();
        for task in batch {
            out.push(task.await.expect("connect"));
        }
    }
    out
}

/// A worker process.
struct Worker {
    child: Child,
    lines: BufReader<std::process::ChildStdout>,
}

impl Worker {
    fn spawn(addr: SocketAddr, count: usize, first: usize, messages: usize) -> Self {
        let exe = std::env::current_exe().expect("exe");
        let mut child = Command::new(exe)
            .args(["worker", "--worker-addr", &addr.to_string()])
            .args([
                "--worker-count",
                &count.to_string(),
                "--worker-first",
                &first.to_string(),
            ])
            .args(["--messages", &messages.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start worker");
        let lines = BufReader::new(child.stdout.take().expect("stdout"));
        Self { child, lines }
    }

    fn line(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            if self.lines.read_line(&mut line).unwrap_or(0) == 0 {
                panic!("worker exited before `{prefix}`");
            }
            if let Some(rest) = line.trim().strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One configuration's figures.
struct Run {
    nodes: usize,
    subscribers: usize,
    connect_s: f64,
    rss_per_conn_kib: Vec<f64>,
    burst_per_s: f64,
    p50_us: u64,
    p99_us: u64,
    lost: u64,
}

/// Subscribes `per_node` clients on each node, publishes on the first.
async fn measure(nodes: &[ServerProcess], per_node: usize, messages: usize, paced: usize) -> Run {
    let base: Vec<u64> = nodes.iter().map(ServerProcess::rss).collect();
    let started = Instant::now();
    let mut workers: Vec<Worker> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| Worker::spawn(n.addr, per_node, i * per_node, messages))
        .collect();
    for w in &mut workers {
        w.line("ready");
    }
    let connect_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_per_conn_kib = nodes
        .iter()
        .zip(&base)
        .map(|(n, b)| n.rss().saturating_sub(*b) as f64 / per_node as f64 / 1024.0)
        .collect();
    let total = per_node * nodes.len();
    let mut publisher = connect_from(nodes[0].addr, source(total + 7), "/ws").await;
    let publish = |phase: &str, i: usize| {
        json!({"type": "publish", "channel": "fan",
               "message": {"phase": phase, "i": i, "t": unix_us(), "body": "x".repeat(64)}})
    };
    // Warm up (every node subscribed to Redis with its first subscriber).
    for i in 0..10 {
        request(&mut publisher, publish("warm", i), 5).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let burst_started = unix_us();
    for i in 0..messages {
        request(&mut publisher, publish("burst", i), 10 + i as u64).await;
    }
    for w in &mut workers {
        w.line("burst");
    }
    // Paced: one message per interval long enough for an unbatched
    // broadcast to finish on this machine (30 µs per subscriber, as in the
    // fan-out bench), so latency is delivery, not queueing behind the last.
    let pace = Duration::from_micros((total as u64 * 30).clamp(100_000, 5_000_000));
    for i in 0..paced {
        request(&mut publisher, publish("paced", i), 1000 + i as u64).await;
        tokio::time::sleep(pace).await;
    }
    request(&mut publisher, publish("end", 0), 9999).await;
    let mut burst = 0;
    let mut last = 0;
    let mut hist = vec![0u64; BUCKETS];
    for w in &mut workers {
        let done: Value = serde_json::from_str(&w.line("done")).expect("worker report");
        burst += done["burst"].as_u64().unwrap_or(0);
        last = last.max(done["burst_last_us"].as_u64().unwrap_or(0));
        for pair in done["paced"].as_array().into_iter().flatten() {
            let (i, n) = (
                pair[0].as_u64().unwrap_or(0) as usize,
                pair[1].as_u64().unwrap_or(0),
            );
            hist[i.min(BUCKETS - 1)] += n;
        }
    }
    let paced_seen: u64 = hist.iter().sum();
    let percentile = |p: f64| {
        let target = (paced_seen as f64 * p).ceil() as u64;
        let mut acc = 0;
        hist.iter()
            .position(|n| {
                acc += n;
                acc >= target.max(1)
            })
            .map_or(0, bucket_value)
    };
    let expected = (total * (messages + paced)) as u64;
    Run {
        nodes: nodes.len(),
        subscribers: total,
        connect_s,
        rss_per_conn_kib,
        burst_per_s: burst as f64 / ((last.saturating_sub(burst_started)) as f64 / 1e6).max(1e-6),
        p50_us: percentile(0.5),
        p99_us: percentile(0.99),
        lost: expected.saturating_sub(burst + paced_seen),
    }
}

/// Runs the single node and the cluster and prints the table.
pub async fn run(subscribers: usize, nodes: usize, messages: usize) {
    let redis = integration_tests::redis::RedisServer::start();
    let per_node = subscribers.div_ceil(nodes.max(1));
    let paced = 20;
    let toml = |cluster: bool| {
        let cluster = if cluster {
            format!("[cluster]\nredis_url = \"{}\"\n", redis.url())
        } else {
            String::new()
        };
        format!("{cluster}[limits]\noutbound_queue = 4096\nheartbeat_interval_ms = 600000\n[plugins]\ndir = \"/nonexistent\"\nwatch = false\n")
    };
    let dir = tempfile::tempdir().expect("dir");
    let single = {
        let node = start_switchboard(&dir.path().join("single").tap_mkdir(), &toml(false));
        measure(std::slice::from_ref(&node), per_node, messages, paced).await
    };
    let cluster = {
        let servers: Vec<ServerProcess> = (0..nodes)
            .map(|i| start_switchboard(&dir.path().join(format!("n{i}")).tap_mkdir(), &toml(true)))
            .collect();
        measure(&servers, per_node, messages, paced).await
    };
    println!("\n### Cluster fan-out: {subscribers} subscribers on {nodes} nodes + one Redis, one publisher on node 1 (same run, this 2-core machine)\n");
    println!("Single node = one node alone holding one node's share ({per_node}). Burst = {messages} messages published back to back; paced = {paced} messages, one per interval.\n");
    println!("| setup | subscribers | connect all | RSS / connection (per node) | burst deliveries/s | vs single | paced p50 ms | paced p99 ms | lost |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, r) in [("single node (baseline)", &single), ("cluster", &cluster)] {
        let rss: Vec<String> = r
            .rss_per_conn_kib
            .iter()
            .map(|k| format!("{k:.1}"))
            .collect();
        println!(
            "| {name}, {} node{} | {} | {:.1} s | {} KiB | {:.0} | {:.2} | {:.1} | {:.1} | {} |",
            r.nodes,
            if r.nodes == 1 { "" } else { "s" },
            r.subscribers,
            r.connect_s,
            rss.join(" / "),
            r.burst_per_s,
            r.burst_per_s / single.burst_per_s,
            r.p50_us as f64 / 1000.0,
            r.p99_us as f64 / 1000.0,
            r.lost
        );
    }
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).expect("dir");
        self
    }
}
