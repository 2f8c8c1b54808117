//! Idle connections held: connect N clients to a Switchboard process and
//! report its RSS growth per connection and the time to connect them all.
//! The baseline is the same process's RSS with one connection.

use std::time::{Duration, Instant};

use crate::load::{connect_many, start_switchboard};

/// Connects `n` idle clients and prints the table.
pub async fn run(n: usize) {
    let limit = fd_limit();
    // Both this process and the server hold one descriptor per connection.
    let n = n.min(limit.saturating_sub(500) as usize);
    let dir = tempfile::tempdir().expect("dir");
    let server = start_switchboard(
        dir.path(),
        "[limits]\nheartbeat_interval_ms = 600000\n[plugins]\ndir = \"/nonexistent\"\nwatch = false\n",
    );
    let warm = connect_many(server.addr, "/ws", 1, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = server.rss();
    let started = Instant::now();
    let clients = connect_many(server.addr, "/ws", n, 512).await;
    let connect_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = server.rss();
    let per_conn = rss.saturating_sub(base) as f64 / n as f64;
    println!("\n### Idle connections held ({n} clients from 16 source addresses; fd limit {limit} per process)\n");
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| server RSS, 1 connection (baseline) | {:.1} MiB |",
        base as f64 / 1048576.0
    );
    println!(
        "| server RSS, {n} connections | {:.1} MiB |",
        rss as f64 / 1048576.0
    );
    println!("| RSS per connection | {:.2} KiB |", per_conn / 1024.0);
    println!(
        "| time to connect all | {:.2} s ({:.0} connections/s) |",
        connect_time.as_secs_f64(),
        n as f64 / connect_time.as_secs_f64()
    );
    drop(clients);
    drop(warm);
}

/// This process's open-file limit (the server inherits the same).
fn fd_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(1024)
}
