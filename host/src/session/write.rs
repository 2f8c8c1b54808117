//! Writing to the client: frames fed in order with one flush, raced against
//! the kill switch and the write timeout only when the socket cannot take
//! them at once.
//!
//! Why it is polled by hand: the connection loop's future is as large as
//! its largest await, and every idle connection carries that size. An
//! `async` write (feed, flush, a select with a sleep) made the loop's
//! future 440 bytes larger for a state it spends microseconds in. Here the
//! common case is a small struct polled once; only a write that waits for
//! the client to read moves into a boxed future with its timer.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};

use super::{close_frame, Close};
use crate::bus::Kill;
use crate::wire::{Message, WireError};
use crate::App;

/// Frames being written: each fed when the sink is ready, then one flush.
/// The sink is asked to be ready only for a frame there is to send (as
/// `SinkExt::feed` does): a sink may refuse readiness it does not need.
struct Sending<'a, W> {
    sink: &'a mut W,
    frames: std::vec::IntoIter<Message>,
}

impl<W: Sink<Message> + Unpin> Future for Sending<'_, W> {
    /// Whether every frame went out.
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let this = self.get_mut();
        while !this.frames.as_slice().is_empty() {
            if ready!(Pin::new(&mut *this.sink).poll_ready(cx)).is_err() {
                return Poll::Ready(false);
            }
            let Some(frame) = this.frames.next() else {
                break;
            };
            if Pin::new(&mut *this.sink).start_send(frame).is_err() {
                return Poll::Ready(false);
            }
        }
        Pin::new(&mut *this.sink)
            .poll_flush(cx)
            .map(|flushed| flushed.is_ok())
    }
}

/// Writes frames with one flush at the end, unless told to close first; a
/// client that does not take them within the write timeout is killed as a
/// slow consumer. Returns whether the connection is still usable.
pub(super) async fn write_all<W>(sink: &mut W, kill: &Kill, app: &App, frames: Vec<Message>) -> bool
where
    W: Sink<Message> + Unpin,
{
    if frames.is_empty() {
        return true;
    }
    let data = frames
        .iter()
        .filter(|f| matches!(f, Message::Text(_) | Message::Binary(_)))
        .count() as u64;
    let mut sending = Sending {
        sink,
        frames: frames.into_iter(),
    };
    // Nearly every write completes at once; only one that waits for the
    // client to read pays for a timer (and a box).
    let ok = match futures_util::future::poll_immediate(&mut sending).await {
        Some(ok) => ok,
        None => Box::pin(wait_for_reader(sending, kill, app)).await,
    };
    if ok {
        app.metrics.messages_out.inc_by(data);
    }
    ok
}

/// The slow path of [`write_all`]: the rest of the write, raced against the
/// kill switch and the write timeout.
async fn wait_for_reader<W>(sending: Sending<'_, W>, kill: &Kill, app: &App) -> bool
where
    W: Sink<Message> + Unpin,
{
    tokio::select! {
        biased;
        () = kill.requested() => false,
        ok = sending => ok,
        () = tokio::time::sleep(app.config.limits.write_timeout()) => {
            // A client that leaves its replies unread holds them: it is
            // a slow consumer like one whose queue is full.
            app.metrics.disconnect("slow_consumer");
            kill.kill(crate::bus::CLOSE_SLOW_CONSUMER, "slow consumer: replies not read in time");
            false
        }
    }
}

/// Ends the connection: the close frame (when there is a reason), the
/// socket's own close, then reading until the peer's close or EOF, so its
/// last writes (pongs, say) do not meet a reset connection. Each step is
/// bounded: a peer that cannot take the close within a second is gone.
pub(super) async fn close<S>(socket: &mut S, close: Option<Close>)
where
    S: Sink<Message> + Stream<Item = Result<Message, WireError>> + Unpin,
{
    if let Some((code, reason)) = close {
        let frame = Message::Close(Some(close_frame(code, &reason)));
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.send(frame)).await;
    }
    let _ = tokio::time::timeout(Duration::from_millis(200), socket.close()).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
}
