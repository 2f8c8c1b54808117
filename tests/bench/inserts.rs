//! Inserts per second into a resource with change events fanned out to N
//! subscribers, on redb and on PostgreSQL (a local server with durable
//! commits: fsync and synchronous_commit on); the baselines are redb with
//! the same subscribers, and the same store with none.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use integration_tests::postgres::PgServer;
use integration_tests::{start, test_config};
use serde_json::json;

use crate::load::{connect_from, request, source};
use switchboard::config::ResourceConfig;

const WRITERS: usize = 8;

struct Row {
    store: &'static str,
    subscribers: usize,
    inserts_per_sec: f64,
    events_per_sec: f64,
}

async fn measure(postgres: Option<&PgServer>, subscribers: usize, duration: Duration) -> Row {
    let mut config = test_config();
    config.store.url = postgres.map(PgServer::database);
    config.limits.outbound_queue = 1 << 16;
    // Throughput, not the per-identity limits: eight anonymous writers on
    // one address, flat out.
    config.limits.rate_limit_max_requests = 0;
    config.limits.write_quota_bytes = 0;
    config
        .resources
        .insert("bench".into(), ResourceConfig::default());
    let server = start(config).await;
    let addr = server.addr;
    let received = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    // The load generator's clients (small read buffers), so the readers
    // and writers in this process leave the CPU to the server under test.
    for k in 0..subscribers {
        let mut c = connect_from(addr, source(k), "/ws").await;
        request(&mut c, json!({"type": "subscribe", "resource": "bench"}), 0)
            .await
            .expect("subscribed");
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(_)) = c.next().await {
                received.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let deadline = Instant::now() + duration;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        writers.push(tokio::spawn(async move {
            let mut c = connect_from(addr, source(w), "/ws").await;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let reply = request(
                    &mut c,
                    json!({"type": "insert", "resource": "bench", "data": {"w": w, "n": n, "text": "hello world"}}),
                    n,
                )
                .await
                .expect("insert reply");
                assert_eq!(reply["type"], "data", "{reply}");
                n += 1;
            }
            n
        }));
    }
    let mut inserts = 0;
    for w in writers {
        inserts += w.await.expect("writer");
    }
    // Let in-flight events land before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = received.load(Ordering::Relaxed);
    for r in readers {
        r.abort();
    }
    server.shutdown();
    let secs = duration.as_secs_f64();
    Row {
        store: if postgres.is_some() {
            "PostgreSQL"
        } else {
            "redb"
        },
        subscribers,
        inserts_per_sec: inserts as f64 / secs,
        events_per_sec: events as f64 / secs,
    }
}

/// Runs the insert benchmark on both stores and prints its table, with
/// PostgreSQL's own rate for the same transaction (`pgbench`, the same
/// number of clients) as the baseline.
pub async fn run(duration: Duration) {
    let pg = PgServer::start_with(true);
    let pgbench = pg.pgbench_inserts(WRITERS, duration.as_secs().max(1));
    let mut rows = Vec::new();
    for subscribers in [0, 10, 100, 1000] {
        rows.push(measure(None, subscribers, duration).await);
        rows.push(measure(Some(&pg), subscribers, duration).await);
    }
    println!(
        "\n### Inserts with change events ({WRITERS} writers, {} s each, durable commits: redb, and PostgreSQL on this machine)\n",
        duration.as_secs()
    );
    println!(
        "| subscribers | store | inserts/s | events delivered/s | vs pgbench | vs redb | vs 0 subscribers |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|");
    println!("| – | pgbench, {WRITERS} clients (baseline) | {pgbench:.0} | – | 1.00 | – | – |");
    for r in &rows {
        let redb = rows
            .iter()
            .find(|b| b.store == "redb" && b.subscribers == r.subscribers)
            .map_or(1.0, |b| b.inserts_per_sec);
        let idle = rows
            .iter()
            .find(|b| b.store == r.store && b.subscribers == 0)
            .map_or(1.0, |b| b.inserts_per_sec);
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} |",
            r.subscribers,
            r.store,
            r.inserts_per_sec,
            r.events_per_sec,
            r.inserts_per_sec / pgbench,
            r.inserts_per_sec / redb,
            r.inserts_per_sec / idle
        );
    }
}
