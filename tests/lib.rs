//! Test support: start the real server on port 0 and talk to it with real
//! WebSocket clients (tokio-tungstenite).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard::{Config, Server};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod idp;
pub mod postgres;
pub mod process;
pub mod redis;

/// How long a test waits for a frame it expects.
pub const WAIT: Duration = Duration::from_secs(10);

/// The HS256 secret test servers verify with (tests configure it: the
/// server has no built-in one).
pub const TEST_SECRET: &str = "switchboard-test-secret";

/// A config for tests: port 0 on loopback, no plugins folder, a temp store,
/// [`TEST_SECRET`].
pub fn test_config() -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..Config::default()
    };
    config.auth.jwt_secret = Some(TEST_SECRET.into());
    config.plugins.dir = std::env::temp_dir().join(format!("sb-no-plugins-{}", std::process::id()));
    config.plugins.watch = false;
    // Share compiled components between tests (and runs): the cache is
    // keyed by content hash, so it can never serve a stale plugin.
    config.plugins.cache_dir = Some(target_dir().join("wasm-cache"));
    config.store.path = fresh_store_path();
    // `SB_TEST_STORE=postgres` runs the same tests on PostgreSQL (a fresh
    // database each, on one server per test process).
    if std::env::var("SB_TEST_STORE").as_deref() == Ok("postgres") {
        config.store.url = Some(postgres::shared().database());
    }
    config
}

/// Whether this run's servers store resources in PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("SB_TEST_STORE").as_deref() == Ok("postgres")
}

/// A store file no other test uses (under `target/test-stores/`).
pub fn fresh_store_path() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = target_dir().join("test-stores");
    std::fs::create_dir_all(&dir).expect("store dir");
    let path = dir.join(format!("{}-{n}.redb", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// The workspace's `target/` folder.
pub fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// Starts a server with `config`.
pub async fn start(config: Config) -> Server {
    Server::start(config).await.expect("server starts")
}

/// Starts a server with the test defaults.
pub async fn start_default() -> Server {
    start(test_config()).await
}

/// A connected WebSocket client.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames that arrived while [`Client::request`] waited for its reply;
    /// `recv` returns them first, so nothing is lost.
    pending: std::collections::VecDeque<Value>,
}

/// Connects to `path` (with its query) on `addr`.
pub async fn connect(addr: SocketAddr, path: &str) -> Client {
    connect_with(addr, path, &[]).await
}

/// Connects with extra request headers.
pub async fn connect_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Client {
    match try_connect_with(addr, path, headers).await {
        Ok(client) => client,
        Err(status) => panic!("websocket upgrade refused with HTTP {status}"),
    }
}

/// Connects with extra request headers; a refused upgrade gives its HTTP
/// status.
pub async fn try_connect_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Client, u16> {
    let mut request = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                .expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(Client {
            ws,
            pending: Default::default(),
        }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("websocket connect failed: {e}"),
    }
}

/// Connects to the native endpoint and reads the `connected` frame.
pub async fn connect_native(addr: SocketAddr, query: &str) -> (Client, Value) {
    let mut client = connect(addr, &format!("/ws{query}")).await;
    let hello = client.recv().await;
    assert_eq!(hello["type"], "connected", "first frame: {hello}");
    (client, hello)
}

impl Client {
    /// Sends a JSON frame.
    pub async fn send(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, data: &[u8]) {
        self.ws
            .send(Message::Binary(data.to_vec().into()))
            .await
            .expect("send");
    }

    /// The next data frame as it came: `Ok(text)` or `Err(bytes)` for a
    /// binary one (pings skipped); panics on a close or after [`WAIT`].
    pub async fn recv_frame(&mut self) -> Result<String, Vec<u8>> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => return Ok(text.to_string()),
                Ok(Some(Ok(Message::Binary(bytes)))) => return Err(bytes.to_vec()),
                Ok(Some(Ok(Message::Close(frame)))) => panic!("unexpected close: {frame:?}"),
                Ok(Some(Ok(_))) => continue,
                other => panic!("no frame within {WAIT:?}: {other:?}"),
            }
        }
    }

    /// The next JSON text frame (pings are answered by the library and skipped).
    pub async fn recv(&mut self) -> Value {
        match self.try_recv(WAIT).await {
            Some(v) => v,
            None => panic!("no frame within {WAIT:?}"),
        }
    }

    /// The next JSON text frame within `wait`, or none.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        if let Some(v) = self.pending.pop_front() {
            return Some(v);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match next.expect("read") {
                Message::Text(text) => {
                    return Some(serde_json::from_str(&text).expect("server sends JSON"))
                }
                Message::Close(frame) => panic!("unexpected close: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// The next text frame, or the close (code, reason) the server sent
    /// instead; panics after [`WAIT`].
    pub async fn recv_or_close(&mut self) -> Result<Value, (u16, String)> {
        if let Some(v) = self.pending.pop_front() {
            return Ok(v);
        }
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Ok(serde_json::from_str(&text).expect("server sends JSON"))
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Err(frame.map_or((0, String::new()), |f| {
                        (u16::from(f.code), f.reason.to_string())
                    }))
                }
                Ok(Some(Ok(_))) => continue,
                other => panic!("no frame within {WAIT:?}: {other:?}"),
            }
        }
    }

    /// Reads until a frame matches, skipping others; panics after [`WAIT`].
    pub async fn recv_until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.recv().await;
            if pred(&v) {
                return v;
            }
        }
    }

    /// Sends a request and returns the reply carrying its requestId;
    /// other frames that arrive meanwhile stay queued for `recv`.
    pub async fn request(&mut self, mut value: Value, request_id: &str) -> Value {
        value["requestId"] = Value::from(request_id);
        self.send(value).await;
        let mut others = Vec::new();
        loop {
            let v = self.recv().await;
            if v["requestId"] == request_id {
                self.pending.extend(others);
                return v;
            }
            others.push(v);
        }
    }

    /// Asserts that no text frame arrives within `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Some(v) = self.try_recv(wait).await {
            panic!("expected no frame, got {v}");
        }
    }

    /// Reads until the server's close frame; returns it (None if the
    /// stream ended without one).
    pub async fn recv_close(&mut self) -> Option<CloseFrame> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("no close within {WAIT:?}"),
                Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(Message::Close(frame)))) => return frame,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The raw stream, for tests that need control over reading.
    pub fn raw(&mut self) -> &mut WebSocketStream<MaybeTlsStream<TcpStream>> {
        &mut self.ws
    }
}

/// GETs a path over plain HTTP/1.1 and returns (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_request(addr, "GET", path, None, "").await
}

/// A minimal HTTP/1.1 request (Connection: close) for health, metrics and
/// the walker endpoint, so tests need no HTTP client crate.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    http_raw(addr, method, path, &auth, body).await
}

/// As [`http_request`], with `headers` given as raw `Name: value\r\n` lines.
pub async fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Signs `claims` as an HS256 JWT with `secret`, exactly as given (no
/// claims added), for tests that shape tokens by hand.
pub fn sign_hs256(secret: &str, claims: &Value) -> String {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode")
}

/// Mints a token with the test config's secret.
pub fn token(sub: &str, role: Option<&str>, extra: Value) -> String {
    let extra = extra.as_object().cloned().unwrap_or_default();
    switchboard::auth::mint_token(TEST_SECRET, sub, role, 3600, extra).expect("mint")
}

/// Where the example plugins' components are built (`plugins/*.wasm`).
pub fn example_plugin(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../plugins/{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-guests.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Where the misbehaving fixture guests are built (`target/guests/*.wasm`).
pub fn fixture_plugin(name: &str) -> PathBuf {
    let path = target_dir().join(format!("guests/{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-guests.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A fresh plugins folder holding copies of `files` (named by their file name).
pub fn plugin_dir(files: &[PathBuf]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for file in files {
        std::fs::copy(file, dir.path().join(file.file_name().expect("file name")))
            .expect("copy plugin");
    }
    dir
}

/// Installs `src` as `dir/name` atomically (write aside, then rename), as a
/// deploy tool would.
pub fn install_plugin(dir: &std::path::Path, src: &std::path::Path, name: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::copy(src, &tmp).expect("copy");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

/// A test config serving the plugins in `dir`.
pub fn config_with_plugins(dir: &std::path::Path, watch: bool) -> Config {
    let mut config = test_config();
    config.plugins.dir = dir.to_owned();
    config.plugins.watch = watch;
    config
}

/// Polls `f` every 50 ms until it returns true; panics after [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// A test config for a node of the cluster on `redis`; channels named
/// `hist:*` keep 100 messages of history.
pub fn cluster_config(redis: &redis::RedisServer) -> Config {
    let mut config = test_config();
    config.cluster.redis_url = Some(redis.url());
    keep_history(&mut config, "hist:*", 100);
    config
}

/// Makes channels matching `pattern` keep `size` messages of history.
pub fn keep_history(config: &mut Config, pattern: &str, size: usize) {
    config.channels.insert(
        pattern.into(),
        switchboard::config::ChannelOptions {
            history_size: size,
            history_ttl_ms: 0,
        },
    );
}

/// Waits until every node has sent what its bus handed its cluster link so
/// far (its Redis subscriptions hold, its members and users are written).
pub async fn settle(servers: &[&Server]) {
    for server in servers {
        if let Some(link) = server.app.bus.link() {
            link.settled().await;
        }
    }
}
