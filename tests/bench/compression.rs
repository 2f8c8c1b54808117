//! permessage-deflate on and off: the same broadcast of JSON rows to N
//! subscribers that offer compression and N that do not (one client
//! library, yawc, for both, so only the extension differs), with the bytes
//! each delivery costs on the wire counted under the client's socket; and
//! the RSS an idle connection costs plain, compressed with pooled deflate
//! state (the default) and compressed with kept context.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use yawc::{Frame, OpCode, Options, WebSocket};

use crate::load::{connect_from, request, source, start_switchboard};
use crate::percentile;

/// A socket that counts the bytes read through it.
struct Counted {
    inner: TcpStream,
    read: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type Sub = WebSocket<Counted>;

/// Connects a subscriber from source address `i`, offering
/// permessage-deflate when `offer`.
async fn subscriber(addr: SocketAddr, i: usize, offer: bool, read: Arc<AtomicU64>) -> Sub {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((source(i), 0))).expect("bind");
    let inner = socket.connect(addr).await.expect("connect");
    let options = if offer {
        Options::default().with_low_latency_compression()
    } else {
        Options::default().without_compression()
    };
    let url = format!("ws://{addr}/ws").parse().expect("url");
    let mut ws = WebSocket::handshake(url, Counted { inner, read }, options)
        .await
        .expect("handshake");
    next_text(&mut ws).await.expect("greeting");
    ws
}

async fn next_text(ws: &mut Sub) -> Option<String> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .ok()??;
        match frame.opcode() {
            OpCode::Text => return Some(frame.as_str().to_owned()),
            OpCode::Close => return None,
            _ => continue,
        }
    }
}

/// N subscribed clients.
async fn subscribe_all(addr: SocketAddr, n: usize, offer: bool, read: &Arc<AtomicU64>) -> Vec<Sub> {
    let mut subs = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(256) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|&i| tokio::spawn(subscriber(addr, i, offer, read.clone())))
            .collect();
        for task in tasks {
            subs.push(task.await.expect("connect"));
        }
    }
    for ws in subs.iter_mut() {
        let subscribe = json!({"type": "subscribe", "channel": "rows", "requestId": 1});
        ws.send(Frame::text(subscribe.to_string()))
            .await
            .expect("send");
        let reply = next_text(ws).await.expect("reply");
        assert!(reply.contains("subscribed"), "{reply}");
    }
    subs
}

/// `rows` JSON rows as dashboards and feeds send them (one row: an
/// update; many: a page or snapshot), stamped with the send time.
fn message(t: u64, i: usize, rows: usize) -> Value {
    let rows: Vec<Value> = (i..i + rows)
        .map(|i| {
            json!({
                "id": format!("q-{i}"), "symbol": "ACME", "venue": "XNAS", "currency": "USD",
                "bid": 100.25 + (i % 13) as f64 / 100.0, "ask": 100.27 + (i % 11) as f64 / 100.0,
                "bid_size": 300 + i % 17, "ask_size": 200 + i % 19, "status": "open",
                "updated_by": "feed-7", "tags": ["equity", "us", "nasdaq", "level1"],
                "note": "regular trading session; quotes are consolidated across venues",
            })
        })
        .collect();
    json!({"t": t, "i": i, "table": "quotes", "rows": rows})
}

struct Run {
    deliveries_per_sec: f64,
    p50_us: u64,
    p99_us: u64,
    wire_per_delivery: f64,
}

/// Publishes `messages` rows (one per `pace`, or as fast as acknowledged)
/// and reads them at every subscriber.
async fn broadcast(
    addr: SocketAddr,
    subs: Vec<Sub>,
    (messages, rows): (usize, usize),
    pace: Duration,
    read: &Arc<AtomicU64>,
) -> (Run, Vec<Sub>) {
    let epoch = Arc::new(Instant::now());
    let mut readers = Vec::with_capacity(subs.len());
    for mut ws in subs {
        let epoch = epoch.clone();
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(messages);
            while latencies.len() < messages {
                let Some(text) = next_text(&mut ws).await else {
                    break;
                };
                if let Some(sent) = crate::fanout::sent_time(&text) {
                    latencies.push((epoch.elapsed().as_micros() as u64).saturating_sub(sent));
                }
            }
            (latencies, ws)
        }));
    }
    let mut publisher = connect_from(addr, source(60_000), "/ws").await;
    let before = read.load(Ordering::Relaxed);
    let started = Instant::now();
    for i in 0..messages {
        let body = message(epoch.elapsed().as_micros() as u64, i, rows);
        request(
            &mut publisher,
            json!({"type": "publish", "channel": "rows", "message": body}),
            i as u64 + 10,
        )
        .await;
        if !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
    }
    let mut all = Vec::new();
    let mut subs = Vec::new();
    for reader in readers {
        let (latencies, ws) = reader.await.expect("reader");
        all.extend(latencies);
        subs.push(ws);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let wire = read.load(Ordering::Relaxed) - before;
    all.sort_unstable();
    let run = Run {
        deliveries_per_sec: all.len() as f64 / elapsed,
        p50_us: percentile(&all, 0.5),
        p99_us: percentile(&all, 0.99),
        wire_per_delivery: wire as f64 / all.len().max(1) as f64,
    };
    (run, subs)
}

/// Runs the comparison for each subscriber count and message size and
/// prints the tables.
pub async fn run(counts: &[usize], messages: usize) {
    println!("\n### permessage-deflate: one publisher, {messages} messages of JSON rows to N subscribers, offered vs not (same run, same client library)\n");
    println!("Server defaults: `limits.compression = \"on\"`, level 1, no context takeover (pooled deflate state), `compression_threshold_bytes = 1024`; the last rows set the threshold to 0, compressing a single row too. Wire bytes = what each subscriber's socket read, frame headers included.\n");
    println!("| subscribers | message | threshold | subscribers offer deflate | burst deliveries/s | vs plain | paced p50 µs | paced p99 µs | wire bytes / delivery | vs plain |");
    println!("|---:|---|---:|---|---:|---:|---:|---:|---:|---:|");
    for (rows, threshold) in [(1, 1024), (20, 1024), (1, 0)] {
        let dir = tempfile::tempdir().expect("dir");
        let server = start_switchboard(
            dir.path(),
            &format!("[limits]\nheartbeat_interval_ms = 600000\nrate_limit_max_requests = 0\ncompression_threshold_bytes = {threshold}\n[plugins]\ndir = \"/nonexistent\"\nwatch = false\n"),
        );
        let size = message(0, 0, rows).to_string().len();
        for &n in counts {
            let mut plain: Option<(f64, f64)> = None;
            for offer in [false, true] {
                let read = Arc::new(AtomicU64::new(0));
                let subs = subscribe_all(server.addr, n, offer, &read).await;
                let (burst, subs) =
                    broadcast(server.addr, subs, (messages, rows), Duration::ZERO, &read).await;
                let pace = Duration::from_micros((n as u64 * 30).max(100_000));
                let (paced, subs) =
                    broadcast(server.addr, subs, (messages / 2, rows), pace, &read).await;
                drop(subs);
                let (rate, wire) =
                    *plain.get_or_insert((burst.deliveries_per_sec, burst.wire_per_delivery));
                println!(
                    "| {n} | {rows} row(s), {size} B | {threshold} | {} | {:.0} | {:.2} | {} | {} | {:.0} | {:.2} |",
                    if offer { "yes" } else { "no" },
                    burst.deliveries_per_sec,
                    burst.deliveries_per_sec / rate,
                    paced.p50_us,
                    paced.p99_us,
                    burst.wire_per_delivery,
                    burst.wire_per_delivery / wire,
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    idle(counts.iter().copied().max().unwrap_or(1000)).await;
}

/// RSS per idle connection: plain, pooled deflate, kept deflate context.
async fn idle(n: usize) {
    println!(
        "\n### Idle connections with compression ({n} connections each, server RSS growth / n)\n"
    );
    println!("| connections | server | RSS per connection |");
    println!("|---|---|---:|");
    let cases = [
        ("plain (no offer)", false, ""),
        ("deflate, no context takeover (default)", true, ""),
        (
            "deflate, context takeover",
            true,
            "compression_context_takeover = true\ncompression_memory_bytes = 8589934592\n",
        ),
    ];
    for (what, offer, extra) in cases {
        let dir = tempfile::tempdir().expect("dir");
        let server = start_switchboard(
            dir.path(),
            &format!("[limits]\nheartbeat_interval_ms = 600000\n{extra}[plugins]\ndir = \"/nonexistent\"\nwatch = false\n"),
        );
        let read = Arc::new(AtomicU64::new(0));
        let warm = subscriber(server.addr, 0, offer, read.clone()).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let base = server.rss();
        let subs = subscribe_all(server.addr, n, offer, &read).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let per = server.rss().saturating_sub(base) as f64 / n as f64 / 1024.0;
        println!("| {n} | {what} | {per:.2} KiB |");
        drop(subs);
        drop(warm);
    }
}
