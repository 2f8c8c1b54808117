//! One client's outbound queue, bounded twice: in events and in bytes.
//! Counting events alone let a client that never reads pin a thousand huge
//! messages; the byte bound makes what a slow client can hold proportional
//! to what was sent, and then it is a slow consumer and is dropped. Also
//! the close switch every session listens to.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;

use futures_util::task::AtomicWaker;
use tokio::sync::mpsc;

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

/// The bus's end of a client's queue.
pub(super) struct Outlet {
    tx: mpsc::Sender<Outbound>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The session's end: what it takes off is no longer counted.
pub struct Inbox {
    rx: mpsc::Receiver<Outbound>,
    queued: Arc<AtomicUsize>,
}

/// A queue of `frames` events and `bytes` bytes at most.
pub(super) fn queue(frames: usize, bytes: usize) -> (Outlet, Inbox) {
    let (tx, rx) = mpsc::channel(frames.max(1));
    let queued = Arc::new(AtomicUsize::new(0));
    let outlet = Outlet {
        tx,
        queued: queued.clone(),
        max_bytes: bytes,
    };
    (outlet, Inbox { rx, queued })
}

impl Outlet {
    /// Bytes queued now (waiting for the client).
    pub(super) fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Queues `out` without waiting. One event larger than the whole byte
    /// bound still goes to a client that is not behind at all.
    pub(super) fn offer(&self, out: Outbound) -> Result<(), Refused> {
        let cost = out.cost;
        let held = self.queued.fetch_add(cost, Ordering::AcqRel);
        if held > 0 && held + cost > self.max_bytes {
            self.queued.fetch_sub(cost, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        self.tx.try_send(out).map_err(|e| {
            self.queued.fetch_sub(cost, Ordering::AcqRel);
            match e {
                mpsc::error::TrySendError::Full(_) => Refused::Full,
                mpsc::error::TrySendError::Closed(_) => Refused::Closed,
            }
        })
    }
}

impl Inbox {
    /// The next event; none once the bus forgot the client.
    pub async fn recv(&mut self) -> Option<Outbound> {
        let out = self.rx.recv().await?;
        self.queued.fetch_sub(out.cost, Ordering::AcqRel);
        Some(out)
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        let out = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(out.cost, Ordering::AcqRel);
        Some(out)
    }

    /// Bytes queued now.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::Kill;
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
