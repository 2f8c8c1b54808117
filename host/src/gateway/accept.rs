//! The accept loop. Every TCP connection is counted, in all and per client
//! address, and until it has sent a complete request head it is
//! *unfinished*: it gets `limits.handshake_timeout_ms` to finish, one address
//! holds at most `limits.max_handshakes_per_ip` of them (a new one replaces
//! that address's oldest), and unfinished ones are the first to go when file
//! descriptors run short. So a flood of half-open sockets cannot lock out a
//! client that completes its handshake promptly — even one from the
//! attacker's own address — /healthz keeps answering, and everything
//! recovers by itself when the attacker lets go. Requests are served by
//! hyper (HTTP/1.1 with upgrades, for WebSockets); the axum router does the
//! rest.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use futures_util::task::AtomicWaker;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tower_service::Service;

use crate::App;

/// Who is connected, and who has not finished its handshake yet.
pub struct Admission {
    state: Mutex<State>,
    per_ip_handshakes: usize,
    per_ip_connections: usize,
    /// Connections (of every kind) past which unfinished ones are shed.
    pressure_at: usize,
}

#[derive(Default)]
struct State {
    next: u64,
    open: usize,
    ips: HashMap<IpAddr, IpState>,
    /// Unfinished connections, oldest first. Weak: the map must not keep
    /// a ticket (whose drop gives its place back) alive.
    unfinished: BTreeMap<u64, Weak<Ticket>>,
}

#[derive(Default)]
struct IpState {
    open: usize,
    unfinished: VecDeque<u64>,
}

/// One accepted connection's place in the count; given back on drop.
pub(crate) struct Ticket {
    id: u64,
    ip: IpAddr,
    admission: Arc<Admission>,
    /// Set when the connection is shed while unfinished. A flag and a
    /// waker slot inside the ticket, not a cancellation token: a token is
    /// an allocation of its own, and every connection kept it for life.
    shed: AtomicBool,
    /// The connection's task, waiting for `shed` (its only waiter).
    waker: AtomicWaker,
    finished: AtomicBool,
}

/// Why a connection was let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shed {
    /// Its address holds as many connections as allowed.
    AddressFull,
}

impl Admission {
    /// Counters for a process that may hold `capacity` connections (what
    /// its file descriptors allow), keeping `reserve` of them for requests
    /// and handshakes under pressure.
    pub fn new(limits: &crate::config::Limits, capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            per_ip_handshakes: limits.max_handshakes_per_ip.max(1),
            per_ip_connections: limits.max_connections_per_ip,
            pressure_at: capacity.saturating_sub(limits.fd_reserve / 2).max(1),
        })
    }

    /// Counts a new connection from `ip`, first making room: the oldest
    /// unfinished handshake of the same address past its share, and the
    /// oldest unfinished one anywhere under descriptor pressure.
    ///
    /// # Errors
    /// The address is at `limits.max_connections_per_ip`.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Arc<Ticket>, Shed> {
        // Shed after the lock is let go: a shed ticket's last reference may
        // drop with it, and a ticket's drop takes the lock.
        let mut shed = Vec::new();
        let ticket = {
            let mut state = self.state.lock();
            let state = &mut *state;
            let here = state.ips.entry(ip).or_default();
            if self.per_ip_connections > 0 && here.open >= self.per_ip_connections {
                return Err(Shed::AddressFull);
            }
            if here.unfinished.len() >= self.per_ip_handshakes {
                if let Some(oldest) = here.unfinished.pop_front() {
                    shed.extend(state.unfinished.remove(&oldest));
                }
            }
            if state.open >= self.pressure_at {
                shed.extend(shed_oldest(state));
            }
            let id = state.next;
            state.next += 1;
            state.open += 1;
            let here = state.ips.entry(ip).or_default();
            here.open += 1;
            here.unfinished.push_back(id);
            let ticket = Arc::new(Ticket {
                id,
                ip,
                admission: self.clone(),
                shed: AtomicBool::new(false),
                waker: AtomicWaker::new(),
                finished: AtomicBool::new(false),
            });
            state.unfinished.insert(id, Arc::downgrade(&ticket));
            ticket
        };
        shed.iter().for_each(Ticket::shed_weak);
        Ok(ticket)
    }

    /// Lets the oldest unfinished connection go (the process ran out of
    /// descriptors); false when there is none.
    pub(crate) fn shed_oldest(&self) -> bool {
        // Shed with the lock let go (see `admit`).
        let oldest = shed_oldest(&mut self.state.lock());
        oldest.as_ref().map(Ticket::shed_weak).is_some()
    }

    /// Connections open now, and how many of them are unfinished.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.state.lock();
        (state.open, state.unfinished.len())
    }
}

/// Takes the oldest unfinished connection off the lists; the caller sheds
/// it once the lock is let go.
fn shed_oldest(state: &mut State) -> Option<Weak<Ticket>> {
    let (id, ticket) = state.unfinished.pop_first()?;
    for ip in state.ips.values_mut() {
        if let Some(at) = ip.unfinished.iter().position(|x| *x == id) {
            ip.unfinished.remove(at);
            break;
        }
    }
    Some(ticket)
}

impl Ticket {
    /// Tells the connection's task to let go, if it is still there.
    fn shed_weak(ticket: &Weak<Ticket>) {
        if let Some(ticket) = ticket.upgrade() {
            ticket.shed.store(true, Ordering::Release);
            ticket.waker.wake();
        }
    }

    /// Resolves once the connection is shed.
    async fn shed(&self) {
        std::future::poll_fn(|cx| {
            if self.shed.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            if self.shed.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// The request head arrived: the connection is no longer sheddable.
    fn finish(&self) {
        if self.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut state = self.admission.state.lock();
        state.unfinished.remove(&self.id);
        if let Some(ip) = state.ips.get_mut(&self.ip) {
            ip.unfinished.retain(|x| *x != self.id);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.admission.state.lock();
        let state = &mut *state;
        state.open -= 1;
        state.unfinished.remove(&self.id);
        if let Some(ip) = state.ips.get_mut(&self.ip) {
            ip.open -= 1;
            ip.unfinished.retain(|x| *x != self.id);
            if ip.open == 0 {
                state.ips.remove(&self.ip);
            }
        }
    }
}

/// How many connections this process's descriptors allow: the open-file
/// limit (raised to its hard limit when allowed), less what the process
/// holds already and a little for files it opens later.
pub fn fd_capacity() -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024),
    };
    let held = std::fs::read_dir("/proc/self/fd").map_or(64, |d| d.count());
    usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(held + 32)
        .max(16)
}

/// Accepts until shutdown, serving each connection on its own task.
///
/// # Errors
/// Never: accept errors (descriptors exhausted) are waited out.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    app: Arc<App>,
) -> std::io::Result<()> {
    let shutdown = app.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // Out of descriptors (or another transient failure): make
                // room by letting the oldest unfinished handshake go.
                tracing::debug!(cause = %err, "accept failed");
                if app.admission.shed_oldest() {
                    app.metrics.disconnect("handshake_shed");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let ticket = match app.admission.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(Shed::AddressFull) => {
                app.metrics.disconnect("address_limit");
                continue;
            }
        };
        tokio::spawn(connection(
            stream,
            peer,
            ticket,
            router.clone(),
            app.clone(),
        ));
    }
}

/// Serves one connection: it must finish its request head in time, and
/// may be let go while it has not.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Arc<Ticket>,
    router: Router,
    app: Arc<App>,
) {
    // Frames are small and latency matters: without TCP_NODELAY, Nagle
    // can hold a frame behind a delayed ACK for up to 40 ms.
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(cause = %err, "cannot set TCP_NODELAY");
    }
    let timeout = app.config.limits.handshake_timeout();
    let on_request = ticket.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        on_request.finish();
        let extensions = request.extensions_mut();
        extensions.insert(ConnectInfo(peer));
        // The connection's count lives as long as a WebSocket made from it.
        extensions.insert(Held {
            _ticket: on_request.clone(),
        });
        router.clone().call(request)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        // Also bounds an idle keep-alive connection's wait for its next
        // request: hyper starts the clock whenever it waits for a head.
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut waiting = true;
    loop {
        let finished = ticket.finished.load(Ordering::Acquire);
        tokio::select! {
            result = &mut conn => {
                if let Err(err) = result {
                    tracing::debug!(cause = %err, "connection error");
                }
                break;
            }
            () = ticket.shed(), if !finished => {
                app.metrics.disconnect("handshake_shed");
                break;
            }
            () = &mut deadline, if waiting => {
                waiting = false;
                if !ticket.finished.load(Ordering::Acquire) {
                    app.metrics.disconnect("handshake_timeout");
                    break;
                }
            }
        }
    }
}

/// A connection's count, carried by its requests (and the WebSocket an
/// upgrade makes of it); it is given back when the last holder drops it.
#[derive(Clone)]
pub(crate) struct Held {
    _ticket: Arc<Ticket>,
}
