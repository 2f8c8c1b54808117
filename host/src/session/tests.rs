//! The session loop driven without a socket (axum's testing-websockets
//! way): channels stand in for the socket, so the loop's own rules —
//! replies, expiry warning and close, the kill switch, a clean close — are
//! checked frame by frame.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::wire::{Message, WireError};
use futures_util::{sink, stream, Sink, Stream};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{run, Connected, Session};
use crate::auth::Identity;
use crate::bus::Registration;
use crate::protocol::native::Native;
use crate::{App, Config};

/// An app on a temp store, with no plugins and no instance pool.
fn app(dir: &tempfile::TempDir, warning_ms: u64) -> Arc<App> {
    let mut config = Config::default();
    config.store.path = dir.path().join("store.redb");
    config.auth.jwt_secret = Some("unit".into());
    config.auth.expiry_warning_ms = warning_ms;
    config.plugins.dir = dir.path().join("plugins");
    config.plugins.watch = false;
    config.plugins.cache_dir = None;
    config.plugins.pool_instances = 0;
    App::new(config).expect("app")
}

/// A socket made of a stream (what the client sends) and a sink (what the
/// loop writes), as the loop takes one value that is both.
struct Duplex<R, W> {
    reader: R,
    writer: W,
}

impl<R: Stream + Unpin, W: Unpin> Stream for Duplex<R, W> {
    type Item = R::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<R::Item>> {
        Pin::new(&mut self.reader).poll_next(cx)
    }
}

impl<R: Unpin, W: Sink<Message> + Unpin> Sink<Message> for Duplex<R, W> {
    type Error = W::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), W::Error>> {
        Pin::new(&mut self.writer).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), W::Error> {
        Pin::new(&mut self.writer).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), W::Error>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), W::Error>> {
        Pin::new(&mut self.writer).poll_close(cx)
    }
}

/// A socket whose reads come from `reader` and whose writes go to the
/// returned receiver.
fn duplex<R>(
    reader: R,
) -> (
    impl Sink<Message> + Stream<Item = Result<Message, WireError>> + Unpin + Send,
    mpsc::UnboundedReceiver<Message>,
)
where
    R: Stream<Item = Result<Message, WireError>> + Unpin + Send,
{
    let (to_test, from_loop) = mpsc::unbounded_channel::<Message>();
    let writer = Box::pin(sink::unfold(to_test, |tx, m: Message| async move {
        let _ = tx.send(m);
        Ok::<_, std::convert::Infallible>(tx)
    }));
    (Duplex { reader, writer }, from_loop)
}

/// The socket as channels: what the test sends, what the loop wrote.
#[allow(clippy::type_complexity)]
fn socket() -> (
    mpsc::UnboundedSender<Message>,
    impl Sink<Message> + Stream<Item = Result<Message, WireError>> + Unpin + Send,
    mpsc::UnboundedReceiver<Message>,
) {
    let (to_loop, from_test) = mpsc::unbounded_channel::<Message>();
    let reader = Box::pin(stream::unfold(from_test, |mut rx| async move {
        rx.recv().await.map(|m| (Ok(m), rx))
    }));
    let (socket, from_loop) = duplex(reader);
    (to_loop, socket, from_loop)
}

/// A native session of `identity`, registered on the bus.
fn native_session(app: &Arc<App>, identity: Identity) -> (Registration, Session) {
    let registration = app.bus.register(identity.user_id.clone(), "native");
    let connected = Connected {
        identity,
        query: Vec::new(),
        peer: None,
    };
    let session = Session::new(app.clone(), &Native, registration.id.clone(), connected);
    (registration, session)
}

/// Starts the loop for a native session of `identity`.
fn start(
    app: &Arc<App>,
    identity: Identity,
) -> (
    mpsc::UnboundedSender<Message>,
    mpsc::UnboundedReceiver<Message>,
    tokio::task::JoinHandle<()>,
    Arc<str>,
) {
    let (to_loop, socket, from_loop) = socket();
    let (registration, session) = native_session(app, identity);
    let id = registration.id.clone();
    let task = tokio::spawn(run(socket, app.clone(), registration, session));
    (to_loop, from_loop, task, id)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Message>) -> Message {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a frame in time")
        .expect("loop alive")
}

async fn next_json(rx: &mut mpsc::UnboundedReceiver<Message>) -> Value {
    match next(rx).await {
        Message::Text(text) => serde_json::from_str(text.as_str()).expect("json"),
        other => panic!("expected text, got {other:?}"),
    }
}

#[tokio::test]
async fn replies_then_ends_on_the_clients_close() {
    let dir = tempfile::tempdir().expect("dir");
    let app = app(&dir, 60_000);
    let (tx, mut rx, task, _) = start(&app, Identity::anonymous());
    assert_eq!(next_json(&mut rx).await["type"], "connected");
    tx.send(Message::Text(r#"{"type":"ping","requestId":1}"#.into()))
        .expect("send");
    let pong = next_json(&mut rx).await;
    assert_eq!(
        (pong["type"].clone(), pong["requestId"].clone()),
        (json!("pong"), json!(1))
    );
    tx.send(Message::Close(None)).expect("send");
    drop(tx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("loop ends")
        .expect("no panic");
    assert_eq!(app.bus.client_count(), 0, "unregistered");
}

#[tokio::test]
async fn an_expiring_identity_is_warned_then_closed_with_1008() {
    let dir = tempfile::tempdir().expect("dir");
    let app = app(&dir, 300);
    let identity = Identity {
        user_id: Some("eve".into()),
        expires_at_ms: Some(crate::now_ms() + 600),
        ..Identity::default()
    };
    let (_tx, mut rx, task, _) = start(&app, identity);
    assert_eq!(next_json(&mut rx).await["type"], "connected");
    let warning = next_json(&mut rx).await;
    assert_eq!(warning["code"], "TOKEN_EXPIRED", "{warning}");
    match next(&mut rx).await {
        Message::Close(Some(frame)) => {
            assert_eq!(frame.code, 1008);
            assert_eq!(frame.reason.as_str(), "UNAUTHORIZED: token expired");
        }
        other => panic!("expected the close, got {other:?}"),
    }
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("loop ends")
        .expect("no panic");
}

#[tokio::test]
async fn nothing_is_served_after_exp() {
    let dir = tempfile::tempdir().expect("dir");
    let app = app(&dir, 0);
    let identity = Identity {
        user_id: Some("eve".into()),
        expires_at_ms: Some(crate::now_ms() + 200),
        ..Identity::default()
    };
    let (tx, mut rx, _task, _) = start(&app, identity);
    assert_eq!(next_json(&mut rx).await["type"], "connected");
    tokio::time::sleep(Duration::from_millis(250)).await;
    tx.send(Message::Text(r#"{"type":"ping"}"#.into()))
        .expect("send");
    match next(&mut rx).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, 1008),
        other => panic!("expected the close, got {other:?}"),
    }
}

#[tokio::test]
async fn the_kill_switch_closes_with_its_code_and_reason() {
    let dir = tempfile::tempdir().expect("dir");
    let app = app(&dir, 60_000);
    let (_tx, mut rx, _task, id) = start(&app, Identity::anonymous());
    assert_eq!(next_json(&mut rx).await["type"], "connected");
    assert!(app.bus.kill(&id, 4000, "bye"));
    match next(&mut rx).await {
        Message::Close(Some(frame)) => {
            assert_eq!((frame.code, frame.reason.as_str()), (4000, "bye"));
        }
        other => panic!("expected the close, got {other:?}"),
    }
}

#[tokio::test]
async fn read_errors_close_with_their_rfc_6455_codes() {
    use futures_util::StreamExt;
    let dir = tempfile::tempdir().expect("dir");
    let app = app(&dir, 60_000);
    let cases = [
        (WireError::TooBig, 1009, "PAYLOAD_TOO_LARGE"),
        (WireError::InvalidUtf8, 1007, "INVALID_PAYLOAD"),
        (
            WireError::Protocol("bad".into()),
            1002,
            "PROTOCOL_ERROR: bad",
        ),
    ];
    for (error, code, reason) in cases {
        let reader = Box::pin(stream::iter([Err(error)]).chain(stream::pending()));
        let (socket, mut from_loop) = duplex(reader);
        let (registration, session) = native_session(&app, Identity::anonymous());
        let task = tokio::spawn(run(socket, app.clone(), registration, session));
        assert_eq!(next_json(&mut from_loop).await["type"], "connected");
        match next(&mut from_loop).await {
            Message::Close(Some(frame)) => {
                assert_eq!(frame.code, code);
                assert!(
                    frame.reason.as_str().starts_with(reason),
                    "{}",
                    frame.reason
                );
            }
            other => panic!("expected a close, got {other:?}"),
        }
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("loop ends")
            .expect("no panic");
    }
}

/// Every idle connection carries the loop's future at its largest state,
/// so that size is held down by design (handling runs boxed, writes are
/// polled by hand): this fails if an await inline in the loop grows it.
/// Measured beside the socket and the session it holds, which are what
/// they are.
#[tokio::test]
async fn the_loops_own_state_stays_small() {
    let dir = tempfile::tempdir().expect("dir");
    let app = app(&dir, 0);
    let (_to_loop, socket, _from_loop) = socket();
    let socket_size = std::mem::size_of_val(&socket);
    let (registration, session) = native_session(&app, Identity::anonymous());
    let session_size = std::mem::size_of_val(&session);
    let future = run(socket, app.clone(), registration, session);
    let own = std::mem::size_of_val(&future) - socket_size - session_size;
    eprintln!(
        "loop future {} bytes: socket {socket_size}, session {session_size}, own {own}",
        std::mem::size_of_val(&future)
    );
    // 680 bytes when this was written; inline handling once made it 2 KB and more.
    assert!(own <= 720, "the loop's own state is {own} bytes");
}

/// A sink with room for one frame, read by the test when it likes: the
/// write path's slow side (the socket full, the client not reading).
fn narrow_sink() -> (
    tokio_util::sync::PollSender<Message>,
    mpsc::Receiver<Message>,
) {
    let (tx, rx) = mpsc::channel(1);
    (tokio_util::sync::PollSender::new(tx), rx)
}

fn texts(n: usize) -> Vec<Message> {
    (0..n)
        .map(|i| Message::Text(i.to_string().into()))
        .collect()
}

#[tokio::test]
async fn a_write_the_socket_cannot_take_at_once_completes_in_order() {
    let dir = tempfile::tempdir().expect("dir");
    let app = app(&dir, 0);
    let kill = crate::bus::Kill::default();
    let (mut sink, mut rx) = narrow_sink();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            match rx.recv().await {
                Some(Message::Text(t)) => got.push(t.as_str().to_owned()),
                other => panic!("expected text, got {other:?}"),
            }
        }
        got
    });
    assert!(super::write::write_all(&mut sink, &kill, &app, texts(3)).await);
    assert_eq!(reader.await.expect("reader"), ["0", "1", "2"]);
    assert!(
        kill.reason().is_none(),
        "a slow but reading client is not killed"
    );
}

#[tokio::test]
async fn a_client_that_never_reads_is_killed_at_the_write_timeout() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = (*app(&dir, 0).config).clone();
    config.limits.write_timeout_ms = 100;
    config.store.path = dir.path().join("other.redb");
    let app = App::new(config).expect("app");
    let kill = crate::bus::Kill::default();
    let (mut sink, _rx) = narrow_sink();
    let started = std::time::Instant::now();
    assert!(!super::write::write_all(&mut sink, &kill, &app, texts(3)).await);
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(
        kill.reason().map(|r| r.0),
        Some(crate::bus::CLOSE_SLOW_CONSUMER),
        "killed as a slow consumer"
    );
}

#[tokio::test]
async fn a_kill_ends_a_waiting_write() {
    let dir = tempfile::tempdir().expect("dir");
    let app = app(&dir, 0);
    let kill = Arc::new(crate::bus::Kill::default());
    let (mut sink, _rx) = narrow_sink();
    let killer = kill.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        killer.kill(4000, "test");
    });
    assert!(!super::write::write_all(&mut sink, &kill, &app, texts(3)).await);
    assert_eq!(kill.reason().map(|r| r.0), Some(4000));
}
