//! Walker round trips over `/websocket` against jac-cloud itself: the same
//! walker (`echo`, reporting its context back: `bench/jac/echo.jac` on
//! jac-cloud's side, `plugins/chat`'s on ours), the same authenticated
//! clients, the same frames, one server after the other, so users of the
//! jac-cloud seed see what moving costs or saves.
//!
//! jac-cloud runs as shipped (0.1.24 from PyPI, its LocalDB and FakeRedis
//! defaults) from a virtualenv: `JAC_BIN`, or `$TMPDIR/venv-jac/bin/jac`
//! (README's Benchmarks section says how to make it). Without it the
//! scenario says so and is skipped.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use integration_tests::{example_plugin, http_request, plugin_dir};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::load::{server_command, start_switchboard, Ws};
use crate::percentile;

/// Rounds of the comparison; the median ratio is reported.
const ROUNDS: usize = 3;

/// A jac-cloud server; killed on drop.
struct Jac {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Jac {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn jac_bin() -> Option<PathBuf> {
    let bin = std::env::var_os("JAC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("venv-jac/bin/jac"));
    bin.exists().then_some(bin)
}

impl Jac {
    /// Serves `bench/jac/echo.jac` from a temp directory (its database
    /// there too) and waits until `POST /walker/init` answers.
    async fn start(bin: &Path) -> Self {
        let dir = tempfile::tempdir().expect("jac dir");
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/jac/echo.jac");
        std::fs::copy(&source, dir.path().join("echo.jac")).expect("copy echo.jac");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = server_command(bin)
            .args(["serve", "echo.jac", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .current_dir(dir.path())
            .env("DATABASE_PATH", dir.path().join("db"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start jac serve");
        let jac = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if tokio::net::TcpStream::connect(jac.addr).await.is_ok() {
                let (status, body) =
                    http_request(jac.addr, "POST", "/walker/init", None, "{}").await;
                assert_eq!(status, 200, "jac-cloud /walker/init: {body}");
                return jac;
            }
            assert!(Instant::now() < deadline, "jac-cloud did not start");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A token from jac-cloud's own user endpoints.
    async fn token(&self) -> String {
        let cred = r#"{"email": "bench@example.com", "password": "password123"}"#;
        http_request(self.addr, "POST", "/user/register", None, cred).await;
        let (status, body) = http_request(self.addr, "POST", "/user/login", None, cred).await;
        assert_eq!(status, 200, "jac-cloud /user/login: {body}");
        let reply: Value = serde_json::from_str(&body).expect("login JSON");
        reply["token"].as_str().expect("token").to_owned()
    }
}

/// Connects to `/websocket` with a bearer token and reads the
/// `connection` event.
async fn connect(addr: SocketAddr, token: &str) -> Ws {
    let mut request = format!("ws://{addr}/websocket")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("handshake");
    let first = next_json(&mut ws).await;
    assert_eq!(first["type"], "connection", "{first}");
    ws
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).expect("JSON");
        }
    }
}

struct Sample {
    /// Calls answered with their own value and status 200, per second.
    calls_per_sec: f64,
    p50_us: u64,
    p99_us: u64,
    /// Calls answered otherwise (an error report, a wrong value).
    errors: usize,
}

/// `clients` connections calling `echo` one call after another for
/// `duration`; every reply is checked (status 200, its own value back), and
/// those that fail are counted, not timed.
async fn measure(addr: SocketAddr, token: &str, clients: usize, duration: Duration) -> Sample {
    let mut sockets = Vec::with_capacity(clients);
    for _ in 0..clients {
        sockets.push(connect(addr, token).await);
    }
    let deadline = Instant::now() + duration;
    let tasks = sockets.into_iter().map(|mut ws| {
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut val = 0u64;
            while Instant::now() < deadline {
                val += 1;
                let call = json!({"type": "walker", "walker": "echo", "response": true,
                    "context": {"val": val, "message": "hi"}});
                let started = Instant::now();
                ws.send(Message::Text(call.to_string().into()))
                    .await
                    .expect("send");
                let reply = next_json(&mut ws).await;
                if reply["status"] == 200 && reply["reports"][0]["val"] == val {
                    latencies.push(started.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
            }
            let _ = ws.close(None).await;
            (latencies, errors)
        })
    });
    let mut all = Vec::new();
    let mut errors = 0;
    for task in futures_util::future::join_all(tasks).await {
        let (latencies, failed) = task.expect("client");
        all.extend(latencies);
        errors += failed;
    }
    all.sort_unstable();
    Sample {
        calls_per_sec: all.len() as f64 / duration.as_secs_f64(),
        p50_us: percentile(&all, 0.5),
        p99_us: percentile(&all, 0.99),
        errors,
    }
}

/// Runs the comparison and prints its table.
pub async fn run(duration: Duration, clients: usize) {
    let Some(bin) = jac_bin() else {
        println!("\n### Walker round trips against jac-cloud: skipped (no jac-cloud: set JAC_BIN, or see README's Benchmarks)\n");
        return;
    };
    let jac = Jac::start(&bin).await;
    let jac_token = jac.token().await;
    let dir = plugin_dir(&[example_plugin("chat")]);
    let toml = format!(
        "[limits]\nrate_limit_max_requests = 0\n[plugins]\ndir = \"{}\"\nwatch = false\n",
        dir.path().display()
    );
    let switchboard = start_switchboard(dir.path(), &toml);
    let token = integration_tests::token("bench", None, json!({}));
    // Warm both (jac's first walker run, our compilation cache).
    measure(jac.addr, &jac_token, 2, Duration::from_millis(500)).await;
    measure(switchboard.addr, &token, 2, Duration::from_millis(500)).await;

    println!(
        "\n### Walker round trips over /websocket against jac-cloud 0.1.24 ({clients} authenticated clients, `echo`, {} s per phase, {ROUNDS} rounds)\n",
        duration.as_secs()
    );
    println!("| round | jac-cloud calls/s (baseline) | p50 ms | p99 ms | failed | Switchboard calls/s | p50 ms | p99 ms | failed | Switchboard vs jac-cloud |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let ms = |us: u64| us as f64 / 1000.0;
    let mut ratios = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let (theirs, ours) = if round % 2 == 0 {
            let t = measure(jac.addr, &jac_token, clients, duration).await;
            (
                t,
                measure(switchboard.addr, &token, clients, duration).await,
            )
        } else {
            let o = measure(switchboard.addr, &token, clients, duration).await;
            (measure(jac.addr, &jac_token, clients, duration).await, o)
        };
        let ratio = ours.calls_per_sec / theirs.calls_per_sec;
        ratios.push(ratio);
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {} | {:.0} | {:.2} | {:.2} | {} | {ratio:.1}× |",
            round + 1,
            theirs.calls_per_sec,
            ms(theirs.p50_us),
            ms(theirs.p99_us),
            theirs.errors,
            ours.calls_per_sec,
            ms(ours.p50_us),
            ms(ours.p99_us),
            ours.errors,
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "\nMedian Switchboard / jac-cloud ratio: {:.1}×",
        ratios[ROUNDS / 2]
    );
}
