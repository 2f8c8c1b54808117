//! Load-generation helpers: the server under test runs as its own process
//! (so its RSS is its own), clients connect from several 127.0.0.x source
//! addresses (to get past one address's ephemeral ports), and everything
//! stays on loopback and stops by itself.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A raw benchmark client.
pub type Ws = WebSocketStream<TcpStream>;

/// A server process under test; killed on drop.
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Resident memory of the process, in bytes (from /proc).
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
}

/// The `switchboard` command line built beside this benchmark.
fn switchboard_exe() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.with_file_name("switchboard-cli")
}

/// A command starting a server under test: pinned to the CPUs in
/// `BENCH_SERVER_CPUS` (a `taskset -c` list) when set, so that, with the
/// bench itself run under `taskset` on the other CPUs, server and load
/// generator never compete for a core.
pub fn server_command(program: &Path) -> Command {
    match std::env::var("BENCH_SERVER_CPUS") {
        Ok(cpus) => {
            let mut command = Command::new("taskset");
            command.args(["-c", &cpus]).arg(program);
            command
        }
        Err(_) => Command::new(program),
    }
}

/// Starts Switchboard with `toml` (listen on 127.0.0.1:0 is prepended).
pub fn start_switchboard(dir: &Path, toml: &str) -> ServerProcess {
    let config = dir.join("bench.toml");
    let body = format!(
        "listen = \"127.0.0.1:0\"\n[store]\npath = \"{}\"\n{toml}",
        dir.join("bench.redb").display()
    );
    std::fs::write(&config, body).expect("write config");
    let mut child = server_command(&switchboard_exe())
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "error")
        // The secret benchmark clients mint their tokens with.
        .env(
            "SWITCHBOARD_AUTH__JWT_SECRET",
            integration_tests::TEST_SECRET,
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start switchboard (build it with: cargo build --release -p integration-tests)");
    let addr = read_port(&mut child, "ws://");
    ServerProcess { child, addr }
}

/// Starts the Node.js `ws` baseline (installing `ws` from npm on first use).
pub fn start_node_baseline() -> Option<ServerProcess> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/node-baseline");
    if !dir.join("node_modules/ws").exists() {
        let ok = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("note: npm install ws failed; skipping the Node.js baseline");
            return None;
        }
    }
    let mut child = server_command(Path::new("node"))
        .arg("server.js")
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr = read_port(&mut child, "listening ");
    Some(ServerProcess { child, addr })
}

fn read_port(child: &mut Child, marker: &str) -> SocketAddr {
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("banner");
    let tail = line.trim().rsplit(marker).next().unwrap_or_default();
    tail.parse()
        .or_else(|_| {
            tail.parse::<u16>()
                .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
        })
        .unwrap_or_else(|_| panic!("unexpected banner: {line:?}"))
}

/// Source address for client `i`: 127.0.0.1 … 127.0.0.16.
pub fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 1 + (i % 16) as u8)
}

/// Connects from `src` and reads the greeting frame.
pub async fn connect_from(addr: SocketAddr, src: Ipv4Addr, path: &str) -> Ws {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((src, 0)))
        .expect("bind source");
    let stream = socket.connect(addr).await.expect("connect");
    // Frames here are small: a 4 KiB read buffer instead of tungstenite's
    // 128 KiB, which it zero-fills on every read, keeps the load generator
    // from eating the CPU the server under test needs.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(
        format!("ws://{addr}{path}"),
        stream,
        Some(config),
    )
    .await
    .expect("handshake");
    next_json(&mut ws, Duration::from_secs(30))
        .await
        .expect("greeting");
    ws
}

/// Sends a JSON frame.
pub async fn send(ws: &mut Ws, value: &Value) {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .expect("send");
}

/// The next JSON text frame within `wait`.
pub async fn next_json(ws: &mut Ws, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return serde_json::from_str(&t).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Sends a request and waits for the frame with its requestId.
pub async fn request(ws: &mut Ws, mut value: Value, id: u64) -> Option<Value> {
    value["requestId"] = Value::from(id);
    send(ws, &value).await;
    loop {
        let v = next_json(ws, Duration::from_secs(30)).await?;
        if v["requestId"] == id {
            return Some(v);
        }
    }
}

/// Connects `n` clients, `parallel` at a time; returns them in order.
pub async fn connect_many(addr: SocketAddr, path: &str, n: usize, parallel: usize) -> Vec<Ws> {
    let mut out = Vec::with_capacity(n);
    let path: std::sync::Arc<str> = path.into();
    let mut start = 0;
    while start < n {
        let end = (start + parallel).min(n);
        let batch: Vec<_> = (start..end)
            .map(|i| {
                let path = path.clone();
                tokio::spawn(async move { connect_from(addr, source(i), &path).await })
            })
            .collect();
        for task in batch {
            out.push(task.await.expect("connect task"));
        }
        start = end;
    }
    out
}

/// The server's `/metrics` text.
pub async fn metrics(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

/// Sums every sample of a counter family in metrics text.
pub fn counter_sum(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
