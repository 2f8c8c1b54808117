//! One client's outbound queue, bounded twice: in events and in bytes.
//! Counting events alone let a client that never reads pin a thousand huge
//! messages; the byte bound makes what a slow client can hold proportional
//! to what was sent, and then it is a slow consumer and is dropped. Also
//! the close switch every session listens to.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;

use futures_util::task::AtomicWaker;

use super::Outbound;

/// Asks one session to close, with a code and reason, from anywhere.
///
/// Only the session's own task waits on it, so one waker slot is enough:
/// polling it is two atomic operations, where a cancellation token takes a
/// lock and queues a waiter on every poll — and the session loop polls it
/// on every delivery.
#[derive(Debug, Default)]
pub struct Kill {
    reason: OnceLock<(u16, String)>,
    waker: AtomicWaker,
}

impl Kill {
    /// Requests the close; the first reason given wins.
    pub fn kill(&self, code: u16, reason: impl Into<String>) {
        let _ = self.reason.set((code, reason.into()));
        self.waker.wake();
    }

    /// Resolves once a close was requested. Awaited by one task only (the
    /// session's): a second task's wait would take the first one's slot.
    pub fn requested(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            if self.reason.get().is_some() {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // A kill between the check and the registration woke nobody.
            if self.reason.get().is_some() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// The requested close code and reason.
    pub fn reason(&self) -> Option<&(u16, String)> {
        self.reason.get()
    }
}

/// Why an event could not be queued.
pub(super) enum Refused {
    /// The client is too far behind (events or bytes).
    Full,
    /// The client is gone.
    Closed,
}

/// What both ends share. A plain locked deque and one waker slot, not a
/// channel: a tokio channel costs ~740 bytes per connection before its
/// first event (two cache-padded halves, a semaphore and a first block
/// of 32 slots), and every connection has one. The deque holds nothing
/// until something is queued and gives its room back once drained.
#[derive(Debug)]
struct Shared {
    state: parking_lot::Mutex<State>,
    /// The session's task, woken by each event queued and by the bus
    /// forgetting the client.
    waker: AtomicWaker,
    /// Bytes queued now.
    queued: AtomicUsize,
    max_events: usize,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct State {
    events: VecDeque<Outbound>,
    /// The session stopped taking events.
    receiver_gone: bool,
    /// The bus forgot the client: once drained, there is nothing more.
    sender_gone: bool,
}

/// Room a drained deque keeps; more is given back.
const KEPT_SLOTS: usize = 8;

/// The bus's end of a client's queue.
pub(super) struct Outlet {
    shared: Arc<Shared>,
}

/// The session's end: what it takes off is no longer counted.
pub struct Inbox {
    shared: Arc<Shared>,
}

/// A queue of `frames` events and `bytes` bytes at most.
pub(super) fn queue(frames: usize, bytes: usize) -> (Outlet, Inbox) {
    let shared = Arc::new(Shared {
        state: parking_lot::Mutex::new(State::default()),
        waker: AtomicWaker::new(),
        queued: AtomicUsize::new(0),
        max_events: frames.max(1),
        max_bytes: bytes,
    });
    (
        Outlet {
            shared: shared.clone(),
        },
        Inbox { shared },
    )
}

impl Outlet {
    /// Bytes queued now (waiting for the client).
    pub(super) fn queued_bytes(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    /// Queues `out` without waiting. One event larger than the whole byte
    /// bound still goes to a client that is not behind at all.
    pub(super) fn offer(&self, out: Outbound) -> Result<(), Refused> {
        let cost = out.cost;
        let shared = &*self.shared;
        {
            let mut state = shared.state.lock();
            if state.receiver_gone {
                return Err(Refused::Closed);
            }
            let held = shared.queued.load(Ordering::Acquire);
            if state.events.len() >= shared.max_events
                || (held > 0 && held + cost > shared.max_bytes)
            {
                return Err(Refused::Full);
            }
            shared.queued.fetch_add(cost, Ordering::AcqRel);
            state.events.push_back(out);
        }
        shared.waker.wake();
        Ok(())
    }
}

impl Drop for Outlet {
    fn drop(&mut self) {
        self.shared.state.lock().sender_gone = true;
        self.shared.waker.wake();
    }
}

impl Inbox {
    /// The next event; none once the bus forgot the client and everything
    /// queued before was taken.
    pub async fn recv(&mut self) -> Option<Outbound> {
        std::future::poll_fn(|cx| {
            if let Some(out) = self.take() {
                return Poll::Ready(Some(out));
            }
            self.shared.waker.register(cx.waker());
            // An event queued between the look and the registration woke
            // nobody: look again.
            match self.take() {
                Some(out) => Poll::Ready(Some(out)),
                None if self.shared.state.lock().sender_gone => Poll::Ready(None),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        self.take()
    }

    fn take(&self) -> Option<Outbound> {
        let out = {
            let mut state = self.shared.state.lock();
            let out = state.events.pop_front()?;
            if state.events.is_empty() && state.events.capacity() > KEPT_SLOTS {
                state.events.shrink_to(KEPT_SLOTS);
            }
            out
        };
        self.shared.queued.fetch_sub(out.cost, Ordering::AcqRel);
        Some(out)
    }

    /// Bytes queued now.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let drained = {
            let mut state = self.shared.state.lock();
            state.receiver_gone = true;
            std::mem::take(&mut state.events)
        };
        self.shared.queued.store(0, Ordering::Release);
        drop(drained);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{queue, Kill, Refused, KEPT_SLOTS};
    use crate::bus::{Bus, BusLimits};

    #[tokio::test]
    async fn a_kill_wakes_the_waiting_task_and_the_first_reason_wins() {
        let kill = Arc::new(Kill::default());
        let waiter = tokio::spawn({
            let kill = kill.clone();
            async move { kill.requested().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "no kill yet");
        kill.kill(4001, "first");
        kill.kill(4002, "second");
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .expect("no panic");
        assert_eq!(kill.reason(), Some(&(4001, "first".to_owned())));
        // Once killed, a fresh wait resolves at once.
        kill.requested().await;
    }

    fn event(bytes: usize) -> crate::bus::Outbound {
        crate::bus::Envelope::new(crate::bus::Event::Message {
            channel: "c".into(),
            from: None,
            data: serde_json::Value::String("x".repeat(bytes)),
            position: None,
        })
    }

    #[tokio::test]
    async fn the_queue_is_bounded_in_events_and_bytes_and_gives_room_back() {
        let (outlet, mut inbox) = queue(4, 1 << 20);
        for _ in 0..4 {
            assert!(outlet.offer(event(10)).is_ok());
        }
        assert!(matches!(outlet.offer(event(10)), Err(Refused::Full)));
        assert!(inbox.queued_bytes() > 40);
        for _ in 0..4 {
            assert!(inbox.recv().await.is_some());
        }
        assert_eq!(inbox.queued_bytes(), 0);
        assert!(inbox.try_recv().is_none());

        // Bytes: one event over the bound still goes to a client that is
        // not behind; a second one does not.
        let (outlet, mut inbox) = queue(1024, 1000);
        assert!(outlet.offer(event(5000)).is_ok());
        assert!(matches!(outlet.offer(event(10)), Err(Refused::Full)));
        assert!(inbox.try_recv().is_some());
        assert!(outlet.offer(event(10)).is_ok());

        // A burst's room is given back once drained.
        let (outlet, mut inbox) = queue(1024, 1 << 30);
        for _ in 0..1000 {
            assert!(outlet.offer(event(1)).is_ok());
        }
        while inbox.try_recv().is_some() {}
        assert!(inbox.shared.state.lock().events.capacity() <= KEPT_SLOTS);
    }

    #[tokio::test]
    async fn each_end_sees_the_other_go() {
        let (outlet, mut inbox) = queue(8, 1 << 20);
        assert!(outlet.offer(event(1)).is_ok());
        let waiter = tokio::spawn(async move {
            let first = inbox.recv().await.is_some();
            let then = inbox.recv().await.is_none();
            (first, then)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(outlet);
        let (first, then) = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .expect("no panic");
        assert!(first, "what was queued before is still taken");
        assert!(then, "then nothing more");

        let (outlet, inbox) = queue(8, 1 << 20);
        drop(inbox);
        assert!(matches!(outlet.offer(event(1)), Err(Refused::Closed)));
    }

    #[tokio::test]
    async fn close_all_reaches_connections_that_register_afterwards() {
        let limits = BusLimits::from_config(&crate::config::Limits::default());
        let bus = Bus::new(Arc::default(), limits);
        let before = bus.register(None, "native");
        bus.close_all(1001, "server shutting down");
        let after = bus.register(None, "native");
        for registration in [before, after] {
            tokio::time::timeout(Duration::from_secs(1), registration.kill.requested())
                .await
                .expect("asked to close");
            assert_eq!(
                registration.kill.reason(),
                Some(&(1001, "server shutting down".to_owned()))
            );
        }
    }
}
