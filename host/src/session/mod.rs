//! One task per connection: reads frames, hands them to a [`Handler`],
//! writes replies and bus events, pings, and closes with a reason when it
//! must. Dialect sessions ([`Session`]) and scripted sockets share this
//! loop, so heartbeat, limits and slow-consumer handling apply to both.
//!
//! The loop never blocks on one thing: a slow socket write races the kill
//! switch, so a stuck client is dropped instead of wedging its task.

mod apply;
mod channels;
mod data;
mod named_topics;
mod reauth;
mod scripted;
mod timers;
mod topics;
mod write;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;

use crate::wire::{CloseFrame, Message, Socket, Utf8Bytes, WireError};
use futures_util::{Sink, Stream, StreamExt};
use tokio::time::{sleep_until, Instant};

use timers::{Beat, ExpiryTimer, Heartbeat};
use write::write_all;

use crate::auth::Identity;
use crate::bus::{Inbox, Outbound, Registration};
use crate::protocol::{encode_event, to_frame, Dialect};
use crate::App;

pub use apply::{rate_limited, Session};
pub use named_topics::{NamedTopics, UserTopic};
pub use scripted::ScriptedSocket;

/// Close code for server shutdown and dead peers (1001: going away).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for protocol violations (1002).
pub const CLOSE_PROTOCOL: u16 = 1002;
/// Close code for a text frame that is not UTF-8 (1007: invalid payload).
pub const CLOSE_INVALID_DATA: u16 = 1007;
/// Close code for refused authentication (1008: policy violation).
pub const CLOSE_POLICY: u16 = 1008;
/// Close code for oversized frames (1009: message too big).
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code for a failed server-side script (1011: internal error).
pub const CLOSE_INTERNAL: u16 = 1011;

/// A close the handler asks for.
pub type Close = (u16, String);

/// What drives one connection: the frames it sends first, what it does with
/// client text and with bus deliveries.
pub trait Handler: Send {
    /// The connection's id.
    fn id(&self) -> &Arc<str>;
    /// Frames to send on connect (or a close, to refuse).
    fn greeting(&mut self) -> impl Future<Output = Result<Vec<Message>, Close>> + Send;
    /// Handles one client text frame; returns frames to send back.
    fn on_text(&mut self, text: &str) -> impl Future<Output = Result<Vec<Message>, Close>> + Send;
    /// Handles one client binary frame. Dialects read it as JSON text, as
    /// documented (invalid UTF-8 is replaced, so the parse fails with
    /// INVALID_JSON); scripted sockets get the bytes as they are.
    fn on_binary(
        &mut self,
        bytes: &[u8],
    ) -> impl Future<Output = Result<Vec<Message>, Close>> + Send {
        let text = String::from_utf8_lossy(bytes).into_owned();
        async move { self.on_text(&text).await }
    }
    /// Handles one bus delivery; returns frames to send.
    fn on_outbound(
        &mut self,
        out: Outbound,
    ) -> impl Future<Output = Result<Vec<Message>, Close>> + Send;
    /// Called once the connection is closed.
    fn on_close(&mut self) -> impl Future<Output = ()> + Send;
    /// When the connection's identity stops being valid (its token's `exp`,
    /// Unix milliseconds): the loop warns `auth.expiry_warning_ms` before
    /// and closes with 1008 at that moment, unless a fresh token moved it.
    fn expires_at_ms(&self) -> Option<u64> {
        None
    }
    /// The frames warning that the identity expires in `ms_left`.
    fn expiry_warning(&self, _ms_left: u64) -> Vec<Message> {
        Vec::new()
    }
    /// Whether the request just handled resumed a subscription: then its
    /// reply (with the replayed events) goes out before deliveries that
    /// queued meanwhile, which are newer.
    fn take_resumed(&mut self) -> bool {
        false
    }
}

/// The close for a connection whose token reached `exp`.
fn expired_close() -> Close {
    (CLOSE_POLICY, "UNAUTHORIZED: token expired".to_owned())
}

/// Who connected, as the gateway accepted it.
#[derive(Debug, Clone)]
pub struct Connected {
    /// The verified identity.
    pub identity: Identity,
    /// The query string's pairs.
    pub query: Vec<(String, String)>,
    /// The client's address.
    pub peer: Option<std::net::IpAddr>,
}

/// Serves one upgraded socket in `dialect` until it closes.
///
/// Not an `async fn`, like [`run`]: an `async fn` keeps its arguments in
/// its future beside the inner future they were moved into, and this
/// future lives as long as the connection.
pub fn serve_socket(
    socket: Socket,
    app: Arc<App>,
    dialect: &'static dyn Dialect,
    connected: Connected,
) -> impl Future<Output = ()> + Send {
    let registration = app
        .bus
        .register(connected.identity.user_id.clone(), dialect.name());
    let session = Session::new(app.clone(), dialect, registration.id.clone(), connected);
    run(socket, app, registration, session)
}

/// The connection loop, generic over the socket (so tests can drive it
/// with channels) and the handler.
///
/// The socket is one value, read and written by this task alone: split
/// halves would put a lock between them that every wake-up takes twice.
/// What the loop waits on that outlives one wake-up (the kill switch, the
/// heartbeat's timer) is created once and polled again, not
/// re-registered per delivery: each broadcast wakes every subscriber's
/// task once, so whatever a wake-up costs is paid once per recipient.
///
/// The loop is an `async move` block rather than an `async fn` body, which
/// would store the socket and handler twice (as arguments and as the
/// locals they are moved into): per idle connection that was 1.2 KB. For
/// the same reason only the wait is inline: every idle connection's
/// future is as large as the loop's largest await.
pub fn run<S, H>(
    mut socket: S,
    app: Arc<App>,
    registration: Registration,
    mut handler: H,
) -> impl Future<Output = ()> + Send
where
    S: Sink<Message> + Stream<Item = Result<Message, WireError>> + Unpin + Send,
    H: Handler,
{
    let Registration { mut rx, kill, .. } = registration;
    let id = handler.id().clone();
    async move {
        let limits = &app.config.limits;
        app.metrics.connections.inc();
        app.metrics.connections_total.inc();
        tracing::debug!(client = %id, "connected");

        let mut heartbeat = Heartbeat::new(
            limits.heartbeat_interval(),
            limits.heartbeat_timeout(),
            Instant::now(),
        );
        let mut beat = std::pin::pin!(sleep_until(heartbeat.due()));
        let mut expiry = ExpiryTimer::new(app.config.auth.expiry_warning_ms);
        // Shutdown arrives through it too (`Bus::close_all`).
        let mut killed = std::pin::pin!(kill.requested());
        let mut fast_run = 0;

        let close = match Box::pin(handler.greeting()).await {
            Err(close) => Some(close),
            Ok(frames) => {
                let mut alive = write_all(&mut socket, &kill, &app, frames).await;
                loop {
                    if !alive {
                        break None;
                    }
                    let exp = handler.expires_at_ms();
                    expiry.arm(exp);
                    // A delivery already queued is written straight away, not
                    // after a pass over every branch below: a broadcast wakes
                    // each subscriber's task for just that. Frames from the
                    // client still get their turn every FAST_RUN deliveries,
                    // and a kill or an expired identity always goes the long way.
                    let expired = exp.is_some_and(|exp| crate::now_ms() >= exp);
                    if fast_run < FAST_RUN && !expired && kill.reason().is_none() {
                        if let Some(out) = rx.try_recv() {
                            fast_run += 1;
                            match Box::pin(drain(&mut handler, &mut rx, out)).await {
                                Ok(frames) => {
                                    alive &= write_all(&mut socket, &kill, &app, frames).await
                                }
                                Err(close) => break Some(close),
                            }
                            continue;
                        }
                    }
                    fast_run = 0;
                    // The wait only says what happened; the handling, which
                    // may await a walker, a guard or the store, runs boxed
                    // below, so an idle connection's future holds the wait's
                    // state and not the handling's.
                    let event = tokio::select! {
                        biased;
                        () = &mut killed => Event::Killed,
                        () = expiry.fired() => Event::Expiry,
                        frame = socket.next() => Event::Frame(frame),
                        out = rx.recv() => Event::Delivery(out),
                        () = &mut beat => Event::Beat,
                    };
                    let step = match event {
                        Event::Killed => break kill.reason().cloned(),
                        Event::Expiry => {
                            let exp = exp.unwrap_or_default();
                            let now = crate::now_ms();
                            if now >= exp {
                                app.metrics.disconnect("token_expired");
                                break Some(expired_close());
                            }
                            expiry.warned = Some(exp);
                            Ok(handler.expiry_warning(exp - now))
                        }
                        // Nothing is done for an identity past its `exp`,
                        // even when the frame beat the timer to the loop.
                        Event::Frame(Some(Ok(_)))
                            if exp.is_some_and(|exp| crate::now_ms() >= exp) =>
                        {
                            app.metrics.disconnect("token_expired");
                            break Some(expired_close());
                        }
                        Event::Frame(Some(Ok(message))) => {
                            heartbeat.answered();
                            match message {
                                Message::Close(_) => break None,
                                Message::Ping(_) | Message::Pong(_) => Ok(Vec::new()),
                                message => {
                                    Box::pin(on_message(&mut handler, &mut rx, message)).await
                                }
                            }
                        }
                        Event::Frame(Some(Err(err))) => break read_error_close(&app, &err),
                        Event::Frame(None) | Event::Delivery(None) => break None,
                        Event::Delivery(Some(out)) => {
                            Box::pin(drain(&mut handler, &mut rx, out)).await
                        }
                        Event::Beat => {
                            let now = heartbeat.fired(Instant::now());
                            beat.as_mut().reset(heartbeat.due());
                            match now {
                                Beat::Dead => {
                                    app.metrics.disconnect("heartbeat_timeout");
                                    break Some((
                                        CLOSE_GOING_AWAY,
                                        "heartbeat timeout: no pong".to_owned(),
                                    ));
                                }
                                Beat::Ping => Ok(vec![Message::Ping(Default::default())]),
                                Beat::Idle => Ok(Vec::new()),
                            }
                        }
                    };
                    match step {
                        Ok(frames) => alive &= write_all(&mut socket, &kill, &app, frames).await,
                        Err(close) => break Some(close),
                    }
                }
            }
        };

        if let Some((code, reason)) = &close {
            tracing::debug!(client = %id, code, %reason, "closing");
        }
        Box::pin(write::close(&mut socket, close)).await;
        Box::pin(handler.on_close()).await;
        app.bus.unregister(&id);
        app.metrics.connections.dec();
        tracing::debug!(client = %id, "disconnected");
    }
}

/// What woke the connection loop.
enum Event {
    Killed,
    Expiry,
    Frame(Option<Result<Message, WireError>>),
    Delivery(Option<Outbound>),
    Beat,
}

/// One data frame from the client, handled, then what queued meanwhile
/// (see [`flush_then`]). The loop boxes it: request handling nests deep
/// (walker, guard, store), and inline it would make every idle
/// connection's future carry its state.
async fn on_message<H: Handler>(
    handler: &mut H,
    rx: &mut Inbox,
    message: Message,
) -> Result<Vec<Message>, Close> {
    let reply = match message {
        Message::Text(text) => handler.on_text(text.as_str()).await,
        Message::Binary(bytes) => handler.on_binary(&bytes).await,
        Message::Ping(_) | Message::Pong(_) | Message::Close(_) => Ok(Vec::new()),
    };
    flush_then(handler, rx, reply).await
}

/// Deliveries queued while a request was handled (a walker's notify-self,
/// say) go out before its reply, so the client sees them in causal order —
/// except after a resumed subscription, whose replayed events are older
/// than anything that queued meanwhile.
async fn flush_then<H: Handler>(
    handler: &mut H,
    rx: &mut Inbox,
    reply: Result<Vec<Message>, Close>,
) -> Result<Vec<Message>, Close> {
    let reply = reply?;
    let resumed = handler.take_resumed();
    let mut queued = Vec::new();
    while let Some(out) = rx.try_recv() {
        queued.extend(Box::pin(handler.on_outbound(out)).await?);
    }
    Ok(if resumed {
        reply.into_iter().chain(queued).collect()
    } else {
        queued.into_iter().chain(reply).collect()
    })
}

/// The frame of a bus delivery for `dialect`, if it shows it.
pub fn outbound_frame(dialect: &dyn Dialect, out: Outbound) -> Option<Message> {
    encode_event(dialect, &out).map(Message::Text)
}

/// The close to send after a read error, by RFC 6455's codes: an oversized
/// message (decompressed size, when compressed) gets 1009 with the limit, a
/// text frame that is not UTF-8 1007, any other protocol violation (an
/// unmasked frame, a reserved opcode or RSV bit, a fragmented or oversized
/// control frame, a stray continuation, a 1-byte close payload, bad deflate
/// data...) 1002 with what it was. The WebSocket layer usually sent its
/// own close already; this one then goes nowhere.
fn read_error_close(app: &App, err: &WireError) -> Option<Close> {
    let close = match err {
        WireError::TooBig => {
            app.metrics.disconnect("payload_too_large");
            app.metrics.error(crate::error::ErrorCode::PayloadTooLarge);
            let limit = app.config.limits.max_payload_bytes;
            (
                CLOSE_TOO_BIG,
                format!("PAYLOAD_TOO_LARGE: message exceeds {limit} bytes"),
            )
        }
        WireError::InvalidUtf8 => {
            app.metrics.disconnect("invalid_utf8");
            (
                CLOSE_INVALID_DATA,
                "INVALID_PAYLOAD: a text frame is not valid UTF-8".to_owned(),
            )
        }
        WireError::Protocol(violation) => {
            app.metrics.disconnect("protocol_error");
            (CLOSE_PROTOCOL, format!("PROTOCOL_ERROR: {violation}"))
        }
        WireError::Closed(cause) => {
            tracing::debug!(%cause, "read error");
            return None;
        }
    };
    Some(close)
}

/// Most deliveries taken off the queue per wake-up.
const BATCH: usize = 64;

/// Most deliveries written in a row without reading the client (see the
/// loop's fast path).
const FAST_RUN: u32 = 16;

/// A delivery plus whatever else is already queued (up to [`BATCH`]), so a
/// burst costs one flush instead of one write per frame.
async fn drain<H: Handler>(
    handler: &mut H,
    rx: &mut Inbox,
    first: Outbound,
) -> Result<Vec<Message>, Close> {
    let mut frames = handler.on_outbound(first).await?;
    for _ in 1..BATCH {
        let Some(out) = rx.try_recv() else { break };
        frames.extend(handler.on_outbound(out).await?);
    }
    Ok(frames)
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

/// Encodes JSON frames.
pub fn frames(values: &[serde_json::Value]) -> Vec<Message> {
    values.iter().map(|v| Message::Text(to_frame(v))).collect()
}
