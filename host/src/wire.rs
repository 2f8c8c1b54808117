//! The WebSocket layer: yawc under axum, adapted to the frames sessions
//! speak (axum's [`Message`]), and permessage-deflate (RFC 7692) with its
//! memory bounded.
//!
//! Why yawc and not axum's own tungstenite: tungstenite has no
//! permessage-deflate (tungstenite-rs#426 is still open), while yawc
//! negotiates it, inflates with the payload limit applied to the
//! *decompressed* size (a compression bomb closes with 1009 before more is
//! allocated) and can lend deflate state from a shared pool to connections
//! that keep no context, so an idle compressed connection costs nothing.
//! The session loop never sees yawc: it reads and writes [`Message`]s and
//! reads [`WireError`]s, so it stays testable with plain channels.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

pub use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{Sink, Stream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use yawc::close::CloseCode;
use yawc::{CompressionLevel, DeflateOptions, DeflatePool, Frame, OpCode, Options};

use crate::config::{Compression, Limits};

/// The upgrade request, as axum extracts it: yawc's, after the
/// extension header is cut to its first permessage-deflate offer (yawc
/// reads a header holding several alternatives as none at all, and RFC
/// 7692 lets the server accept any one of them).
pub struct Upgrade {
    inner: yawc::IncomingUpgrade,
    /// Whether the client offered permessage-deflate.
    offered: bool,
}

impl<S: Sync> axum::extract::FromRequestParts<S> for Upgrade {
    type Rejection = axum::http::StatusCode;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let offered = first_deflate_offer(&mut parts.headers);
        let inner = yawc::IncomingUpgrade::from_request_parts(parts, state).await?;
        Ok(Self { inner, offered })
    }
}

/// Keeps only the first permessage-deflate offer of the request's
/// `Sec-WebSocket-Extensions` (all its lines together); says whether
/// there was one.
fn first_deflate_offer(headers: &mut HeaderMap) -> bool {
    use axum::http::header::SEC_WEBSOCKET_EXTENSIONS;
    let first = headers
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|offer| is_deflate(offer))
        .and_then(|offer| axum::http::HeaderValue::from_str(offer.trim()).ok());
    headers.remove(SEC_WEBSOCKET_EXTENSIONS);
    let offered = first.is_some();
    if let Some(first) = first {
        headers.insert(SEC_WEBSOCKET_EXTENSIONS, first);
    }
    offered
}

/// Whether one offer names permessage-deflate.
fn is_deflate(offer: &str) -> bool {
    offer
        .split(';')
        .next()
        .is_some_and(|name| name.trim().eq_ignore_ascii_case("permessage-deflate"))
}

/// Why reading or writing a socket failed. The variants are what the
/// session answers differently (RFC 6455's close codes), so nothing ever
/// matches on a message's text.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// A frame or message — decompressed, if compressed — reached the
    /// payload limit (1009).
    #[error("message exceeds the payload limit")]
    TooBig,
    /// A text message is not UTF-8 (1007).
    #[error("a text frame is not valid UTF-8")]
    InvalidUtf8,
    /// Any other protocol violation (1002): reserved bits or opcodes,
    /// fragmented or oversized control frames, bad close frames, a
    /// compressed frame where no compression was agreed, bad deflate data.
    #[error("{0}")]
    Protocol(String),
    /// The connection is closed or the transport failed.
    #[error("connection closed: {0}")]
    Closed(String),
}

impl From<yawc::WebSocketError> for WireError {
    fn from(err: yawc::WebSocketError) -> Self {
        use yawc::WebSocketError as E;
        match err {
            E::FrameTooLarge => Self::TooBig,
            E::InvalidUTF8 => Self::InvalidUtf8,
            E::ConnectionClosed | E::IoError(_) => Self::Closed(err.to_string()),
            other => Self::Protocol(other.to_string()),
        }
    }
}

/// How connections are upgraded: the options every socket gets, and the
/// memory budget of the deflate state kept per connection.
pub struct Layer {
    plain: Options,
    compressed: Option<Options>,
    /// Per-connection deflate state's estimated size, in KiB, when it is
    /// kept between messages (context takeover); `None` when it is pooled.
    kept_kib: Option<u32>,
    /// KiB of kept deflate state still free.
    budget: Arc<Semaphore>,
}

impl Layer {
    /// The layer `limits` describe.
    pub fn new(limits: &Limits) -> Self {
        // yawc's payload limit is exclusive; ours admits exactly the limit.
        let max = limits.max_payload_bytes.saturating_add(1);
        let plain = Options::default()
            .with_limits(max, max)
            .with_read_buffer_capacity(limits.read_chunk_bytes.max(64))
            // Empty until written: every idle connection holds one. It
            // grows for a burst, is kept up to the backpressure boundary
            // and shrinks back past it once written out.
            .with_write_buffer_capacity(0)
            .with_backpressure_boundary(16 * 1024)
            .without_compression();
        let bits = limits.compression_window_bits;
        let compressed = (limits.compression == Compression::On).then(|| {
            let keep = limits.compression_context_takeover;
            Options {
                compression: Some(DeflateOptions {
                    level: CompressionLevel::new(limits.compression_level.min(9)),
                    server_max_window_bits: Some(bits),
                    client_max_window_bits: Some(bits),
                    server_no_context_takeover: !keep,
                    client_no_context_takeover: !keep,
                    compression_threshold: limits.compression_threshold_bytes,
                    // Enough idle state for the messages compressed at one
                    // moment (about one per worker thread, both ways).
                    pool: (!keep).then(|| DeflatePool::new(64)),
                }),
                ..plain.clone()
            }
        });
        let kept_kib = limits
            .compression_context_takeover
            .then(|| kept_state_kib(bits));
        let budget_kib = (limits.compression_memory_bytes / 1024).min(Semaphore::MAX_PERMITS);
        Self {
            plain,
            compressed,
            kept_kib,
            budget: Arc::new(Semaphore::new(budget_kib)),
        }
    }

    /// Answers an upgrade: the HTTP response to send, and the socket once
    /// the connection has switched protocols (or the refusal to send).
    /// Compression is agreed when the client offers it, it is on, and
    /// (with kept state) the budget has room; otherwise the socket is
    /// plain, as if it had never been offered.
    ///
    /// # Errors
    /// A response refusing a request yawc cannot answer.
    pub fn upgrade(
        &self,
        upgrade: Upgrade,
    ) -> Result<
        (
            Response,
            impl Future<Output = Option<Socket>> + Send + 'static,
        ),
        Box<Response>,
    > {
        let mut permit = None;
        let options = match (&self.compressed, self.kept_kib) {
            (Some(compressed), None) if upgrade.offered => compressed.clone(),
            (Some(compressed), Some(kib)) if upgrade.offered => {
                match self.budget.clone().try_acquire_many_owned(kib) {
                    Ok(held) => {
                        permit = Some(held);
                        compressed.clone()
                    }
                    Err(_) => {
                        tracing::debug!("compression budget spent: serving uncompressed");
                        self.plain.clone()
                    }
                }
            }
            _ => self.plain.clone(),
        };
        let (response, socket) = upgrade.inner.upgrade(options).map_err(|err| {
            Box::new((axum::http::StatusCode::BAD_REQUEST, err.to_string()).into_response())
        })?;
        let socket = async move {
            match socket.await {
                Ok(ws) => Some(Socket {
                    ws,
                    aborted: false,
                    _budget: permit,
                }),
                Err(err) => {
                    tracing::debug!(%err, "upgrade failed");
                    None
                }
            }
        };
        Ok((response.map(axum::body::Body::new), socket))
    }
}

/// zlib's own sizing: a deflater holds `2^(bits+2)` of window and hash
/// plus `2^(memLevel+9)` (memLevel 8) of pending output, an inflater its
/// `2^bits` window; a few KiB of state on each side.
fn kept_state_kib(bits: u8) -> u32 {
    let bytes = (1u32 << (bits + 2)) + (1 << 17) + (1 << bits) + 16 * 1024;
    bytes / 1024
}

/// One upgraded connection, speaking [`Message`]s.
pub struct Socket {
    ws: yawc::WebSocket<yawc::HttpStream>,
    /// Set when the peer sent a close frame over the control-frame limit.
    /// yawc 0.5.0 checks that limit for pings only and has already queued
    /// its echo of such a close by the time we see it, so the connection
    /// is failed by dropping it (RFC 6455 §7.1.7 lets an endpoint close
    /// without a close frame): nothing more is read or written.
    aborted: bool,
    /// The kept deflate state's share of the budget, given back on drop.
    _budget: Option<OwnedSemaphorePermit>,
}

/// RFC 6455 §5.5: a control frame's payload is at most 125 bytes.
const MAX_CONTROL_PAYLOAD: usize = 125;

impl Socket {
    /// The frame as a message, after the checks yawc leaves out: a pong or
    /// close over [`MAX_CONTROL_PAYLOAD`] is a protocol error, and an
    /// oversized close aborts the connection (see [`Socket::aborted`]).
    fn receive(&mut self, frame: Frame) -> Result<Message, WireError> {
        let opcode = frame.opcode();
        if matches!(opcode, OpCode::Close | OpCode::Pong)
            && frame.payload().len() > MAX_CONTROL_PAYLOAD
        {
            self.aborted = opcode == OpCode::Close;
            return Err(WireError::Protocol(format!(
                "a {opcode:?} frame over {MAX_CONTROL_PAYLOAD} bytes"
            )));
        }
        from_frame(frame)
    }

    fn check_open(&self) -> Result<(), WireError> {
        if self.aborted {
            Err(WireError::Closed(
                "failed on an oversized close frame".into(),
            ))
        } else {
            Ok(())
        }
    }
}

impl Stream for Socket {
    type Item = Result<Message, WireError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.aborted {
            return Poll::Ready(None);
        }
        match ready!(this.ws.poll_next_frame(cx)) {
            Ok(frame) => Poll::Ready(Some(this.receive(frame))),
            Err(yawc::WebSocketError::ConnectionClosed) => Poll::Ready(None),
            Err(err) => Poll::Ready(Some(Err(err.into()))),
        }
    }
}

impl Sink<Message> for Socket {
    type Error = WireError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WireError>> {
        let this = self.get_mut();
        this.check_open()?;
        Pin::new(&mut this.ws).poll_ready(cx).map_err(Into::into)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), WireError> {
        let this = self.get_mut();
        this.check_open()?;
        Pin::new(&mut this.ws)
            .start_send(to_frame(message))
            .map_err(Into::into)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WireError>> {
        let this = self.get_mut();
        this.check_open()?;
        Pin::new(&mut this.ws).poll_flush(cx).map_err(Into::into)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WireError>> {
        let this = self.get_mut();
        this.check_open()?;
        Pin::new(&mut this.ws).poll_close(cx).map_err(Into::into)
    }
}

/// A reassembled (and inflated) frame as a [`Message`]; text is checked
/// for UTF-8 here, once.
fn from_frame(frame: Frame) -> Result<Message, WireError> {
    let close = frame.close_code().map(|code| CloseFrame {
        code: code.into(),
        reason: frame
            .close_reason()
            .ok()
            .flatten()
            .map(Utf8Bytes::from)
            .unwrap_or_default(),
    });
    let (opcode, _, payload) = frame.into_parts();
    Ok(match opcode {
        OpCode::Text => {
            Message::Text(Utf8Bytes::try_from(payload).map_err(|_| WireError::InvalidUtf8)?)
        }
        OpCode::Binary => Message::Binary(payload),
        OpCode::Ping => Message::Ping(payload),
        OpCode::Pong => Message::Pong(payload),
        OpCode::Close => Message::Close(close),
        OpCode::Continuation => {
            return Err(WireError::Protocol("a stray continuation frame".into()))
        }
    })
}

/// A [`Message`] as the frame to send.
fn to_frame(message: Message) -> Frame {
    match message {
        Message::Text(text) => Frame::text(bytes::Bytes::from(text)),
        Message::Binary(bytes) => Frame::binary(bytes),
        Message::Ping(bytes) => Frame::ping(bytes),
        Message::Pong(bytes) => Frame::pong(bytes),
        Message::Close(Some(close)) => {
            Frame::close(CloseCode::from(close.code), close.reason.as_bytes())
        }
        Message::Close(None) => Frame::close(CloseCode::Normal, b""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_deflate_offer_counts() {
        let mut headers = HeaderMap::new();
        assert!(!first_deflate_offer(&mut headers));
        headers.insert(
            axum::http::header::SEC_WEBSOCKET_EXTENSIONS,
            "x-webkit-deflate-frame, permessage-deflate; client_max_window_bits"
                .parse()
                .unwrap(),
        );
        assert!(first_deflate_offer(&mut headers));
        headers.insert(
            axum::http::header::SEC_WEBSOCKET_EXTENSIONS,
            "permessage-deflater".parse().unwrap(),
        );
        assert!(!first_deflate_offer(&mut headers));
    }

    #[test]
    fn several_offers_are_cut_to_the_first_deflate_one() {
        use axum::http::header::SEC_WEBSOCKET_EXTENSIONS;
        let mut headers = HeaderMap::new();
        headers.append(
            SEC_WEBSOCKET_EXTENSIONS,
            "x-webkit-deflate-frame".parse().unwrap(),
        );
        headers.append(
            SEC_WEBSOCKET_EXTENSIONS,
            "permessage-deflate; server_max_window_bits=9, permessage-deflate"
                .parse()
                .unwrap(),
        );
        assert!(first_deflate_offer(&mut headers));
        let kept: Vec<_> = headers.get_all(SEC_WEBSOCKET_EXTENSIONS).iter().collect();
        assert_eq!(kept, ["permessage-deflate; server_max_window_bits=9"]);
        let mut none = HeaderMap::new();
        none.insert(SEC_WEBSOCKET_EXTENSIONS, "x-other".parse().unwrap());
        assert!(!first_deflate_offer(&mut none));
        assert!(none.get(SEC_WEBSOCKET_EXTENSIONS).is_none());
    }

    #[test]
    fn kept_state_grows_with_the_window() {
        assert!(kept_state_kib(15) > 250);
        assert!(kept_state_kib(9) < kept_state_kib(15));
    }
}
