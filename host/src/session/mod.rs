//! One task per connection: reads frames, applies commands, writes replies
//! and bus events, pings, and closes with a reason when it must.
//!
//! The loop never blocks on one thing: a slow socket write races the kill
//! switch, so a stuck client is dropped instead of wedging its task.

mod apply;
mod ratelimit;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::time::{sleep_until, Instant};

use crate::auth::Identity;
use crate::bus::{Kill, Outbound};
use crate::protocol::{encode_event, to_frame, Dialect};
use crate::App;

pub use apply::Session;

/// Close code for server shutdown and dead peers (1001: going away).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for oversized frames (1009: message too big).
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code for refused authentication (1008: policy violation).
pub const CLOSE_POLICY: u16 = 1008;

/// Why a socket write failed: the peer went away or we were told to close.
struct WriteAborted;

/// Serves one upgraded socket until it closes.
pub async fn serve_socket(
    socket: WebSocket,
    app: Arc<App>,
    dialect: &'static dyn Dialect,
    identity: Identity,
    query: Vec<(String, String)>,
) {
    let (sink, stream) = socket.split();
    run(sink, stream, app, dialect, identity, query).await;
}

/// The session loop, generic over the socket halves so unit tests can drive
/// it with channels.
pub async fn run<W, R>(
    mut sink: W,
    mut stream: R,
    app: Arc<App>,
    dialect: &'static dyn Dialect,
    identity: Identity,
    query: Vec<(String, String)>,
) where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let limits = app.config.limits.clone();
    let registration = app
        .bus
        .register(identity.user_id.clone(), limits.outbound_queue);
    let kill = registration.kill.clone();
    let mut rx = registration.rx;
    let mut session = Session::new(
        app.clone(),
        dialect,
        registration.id.clone(),
        identity,
        query,
    );
    app.metrics.connections.inc();
    app.metrics.connections_total.inc();
    tracing::debug!(client = %session.id, dialect = dialect.name(), "connected");

    let mut alive = true;
    for frame in session.greeting() {
        alive &= write(&mut sink, &kill, &app, Message::Text(to_frame(&frame)))
            .await
            .is_ok();
    }
    let mut ping_every = tokio::time::interval(limits.heartbeat_interval());
    ping_every.reset();
    let mut pong_deadline: Option<Instant> = None;

    let close = loop {
        if !alive {
            break None;
        }
        tokio::select! {
            biased;
            () = kill.requested() => break kill.reason().cloned(),
            () = app.shutdown.cancelled() => {
                break Some((CLOSE_GOING_AWAY, "server shutting down".to_owned()));
            }
            frame = stream.next() => match frame {
                Some(Ok(message)) => {
                    pong_deadline = None;
                    match message {
                        Message::Text(text) => {
                            for reply in session.handle_text(text.as_str()).await {
                                alive &= write(&mut sink, &kill, &app, Message::Text(to_frame(&reply))).await.is_ok();
                            }
                        }
                        Message::Binary(bytes) => {
                            let text = String::from_utf8_lossy(&bytes);
                            for reply in session.handle_text(&text).await {
                                alive &= write(&mut sink, &kill, &app, Message::Text(to_frame(&reply))).await.is_ok();
                            }
                        }
                        Message::Close(_) => break None,
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                Some(Err(err)) => break read_error_close(&app, &err),
                None => break None,
            },
            out = rx.recv() => match out {
                Some(out) => {
                    if let Some(text) = outbound_text(dialect, out) {
                        alive = write(&mut sink, &kill, &app, Message::Text(text)).await.is_ok();
                    }
                }
                None => break None,
            },
            _ = ping_every.tick() => {
                if pong_deadline.is_none() {
                    pong_deadline = Some(Instant::now() + limits.heartbeat_timeout());
                }
                alive = write(&mut sink, &kill, &app, Message::Ping(Default::default())).await.is_ok();
            }
            () = sleep_until(pong_deadline.unwrap_or_else(Instant::now)), if pong_deadline.is_some() => {
                app.metrics.disconnect("heartbeat_timeout");
                break Some((CLOSE_GOING_AWAY, "heartbeat timeout: no pong".to_owned()));
            }
        }
    };

    if let Some((code, reason)) = close {
        tracing::debug!(client = %session.id, code, %reason, "closing");
        let frame = Message::Close(Some(close_frame(code, &reason)));
        // Best effort: a peer that cannot take the close frame within a
        // second is gone anyway.
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(frame)).await;
    }
    let _ = tokio::time::timeout(Duration::from_millis(200), sink.close()).await;
    // Complete the closing handshake: read until the peer's close (or EOF),
    // so its last writes (pongs, say) do not meet a reset connection.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    app.bus.unregister(&session.id);
    app.metrics.connections.dec();
    tracing::debug!(client = %session.id, "disconnected");
}

/// The text of an outbound item for this session's dialect, if it shows it.
fn outbound_text(dialect: &dyn Dialect, out: Outbound) -> Option<Utf8Bytes> {
    match out {
        Outbound::Frame(text) => Some(text),
        Outbound::Event(envelope) => encode_event(dialect, &envelope),
    }
}

/// The close to send after a read error. Oversized frames get 1009 with the
/// limit; tungstenite reports them as "Space limit exceeded", which axum
/// passes through only as text.
fn read_error_close(app: &App, err: &axum::Error) -> Option<(u16, String)> {
    let text = err.to_string();
    if text.contains("Space limit exceeded") || text.contains("too long") {
        app.metrics.disconnect("payload_too_large");
        app.metrics.error(crate::error::ErrorCode::PayloadTooLarge);
        Some((
            CLOSE_TOO_BIG,
            format!(
                "PAYLOAD_TOO_LARGE: message exceeds {} bytes",
                app.config.limits.max_payload_bytes
            ),
        ))
    } else {
        tracing::debug!(cause = %err, "read error");
        None
    }
}

/// Writes one frame unless the session is told to close first.
async fn write<W>(
    sink: &mut W,
    kill: &Kill,
    app: &App,
    message: Message,
) -> Result<(), WriteAborted>
where
    W: Sink<Message> + Unpin,
{
    let is_data = matches!(message, Message::Text(_));
    tokio::select! {
        biased;
        () = kill.requested() => Err(WriteAborted),
        result = sink.send(message) => {
            if is_data {
                app.metrics.messages_out.inc();
            }
            result.map_err(|_| WriteAborted)
        }
    }
}

/// A close frame; the reason is cut to the 123 bytes the protocol allows.
pub fn close_frame(code: u16, reason: &str) -> CloseFrame {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code,
        reason: Utf8Bytes::from(&reason[..end]),
    }
}
