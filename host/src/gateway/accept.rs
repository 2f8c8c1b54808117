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
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
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
    /// Unfinished connections, oldest first.
    unfinished: BTreeMap<u64, CancellationToken>,
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
    cancel: CancellationToken,
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
        let mut state = self.state.lock();
        let state = &mut *state;
        let here = state.ips.entry(ip).or_default();
        if self.per_ip_connections > 0 && here.open >= self.per_ip_connections {
            return Err(Shed::AddressFull);
        }
        if here.unfinished.len() >= self.per_ip_handshakes {
            if let Some(oldest) = here.unfinished.pop_front() {
                if let Some(cancel) = state.unfinished.remove(&oldest) {
                    cancel.cancel();
                }
            }
        }
        if state.open >= self.pressure_at {
            shed_oldest(state);
        }
        let id = state.next;
        state.next += 1;
        state.open += 1;
        let here = state.ips.entry(ip).or_default();
        here.open += 1;
        here.unfinished.push_back(id);
        let cancel = CancellationToken::new();
        state.unfinished.insert(id, cancel.clone());
        Ok(Arc::new(Ticket {
            id,
            ip,
            admission: self.clone(),
            cancel,
            finished: AtomicBool::new(false),
        }))
    }

    /// Lets the oldest unfinished connection go (the process ran out of
    /// descriptors); false when there is none.
    pub(crate) fn shed_oldest(&self) -> bool {
        shed_oldest(&mut self.state.lock())
    }

    /// Connections open now, and how many of them are unfinished.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.state.lock();
        (state.open, state.unfinished.len())
    }
}

fn shed_oldest(state: &mut State) -> bool {
    let Some((id, cancel)) = state.unfinished.pop_first() else {
        return false;
    };
    cancel.cancel();
    for ip in state.ips.values_mut() {
        if let Some(at) = ip.unfinished.iter().position(|x| *x == id) {
            ip.unfinished.remove(at);
            break;
        }
    }
    true
}

impl Ticket {
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
            () = ticket.cancel.cancelled(), if !finished => {
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
