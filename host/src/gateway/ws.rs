//! WebSocket upgrades: connection cap, token extraction, authentication,
//! then hand-off to a session in the route's dialect.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Extension;
use futures_util::FutureExt;

use super::accept::Held;
use crate::policy::Actor;
use crate::protocol::Dialect;
use crate::session::{self, close_frame, Connected, CLOSE_POLICY};
use crate::wire::{Message, Socket, Upgrade as WsUpgrade};
use crate::App;

/// A GET route upgrading to `dialect`.
pub(super) fn route(dialect: &'static dyn Dialect, path: &str) -> MethodRouter<Arc<App>> {
    let path: Arc<str> = Arc::from(path);
    get(
        move |State(app): State<Arc<App>>,
              ConnectInfo(peer): ConnectInfo<SocketAddr>,
              held: Option<Extension<Held>>,
              headers: HeaderMap,
              Query(query): Query<Vec<(String, String)>>,
              ws: WsUpgrade| async move {
            let serve: Serve = Box::new(move |socket, app, connected, keep| {
                let session = session::serve_socket(socket, app, dialect, connected);
                tokio::spawn(keep.around(session));
            });
            let request = Upgrade {
                headers: &headers,
                query,
                peer,
                path: path.clone(),
                held,
            };
            accept(app, request, ws, serve)
        },
    )
}

/// Starts serving an accepted, authorized socket: spawns its session.
///
/// The route spawns it, not the handshake, because only the route knows
/// the session's type: handing back a boxed future would put the session
/// in a box and its task in a second allocation, for every connection.
type Serve = Box<dyn FnOnce(Socket, Arc<App>, Connected, Keep) + Send>;

/// What a session keeps for its whole life: its place in the connection
/// cap, the shutdown wait's count and the accept loop's count.
struct Keep {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _tracked: tokio_util::task::task_tracker::TaskTrackerToken,
    _held: Option<Extension<Held>>,
}

impl Keep {
    /// `session`, holding these until it ends (or is dropped). A map over
    /// the future, not an `async` block around it: the block would keep
    /// `session` twice, as its capture and as the future it awaits.
    fn around(self, session: impl Future<Output = ()> + Send) -> impl Future<Output = ()> + Send {
        session.map(move |()| drop(self))
    }
}

/// What an upgrade request brings.
struct Upgrade<'a> {
    headers: &'a HeaderMap,
    query: Vec<(String, String)>,
    peer: SocketAddr,
    path: Arc<str>,
    /// The connection's place in the accept loop's count: the WebSocket
    /// keeps it.
    held: Option<Extension<Held>>,
}

/// Every upgrade goes through here: refuse while shutting down or at the
/// connection cap (HTTP 503), apply the payload limit, then — once
/// upgraded — authenticate and ask the connect guards, closing with 1008
/// and the reason if either says no, before handing the socket to `serve`.
fn accept(app: Arc<App>, request: Upgrade<'_>, ws: WsUpgrade, serve: Serve) -> Response {
    let Upgrade {
        headers,
        query,
        peer,
        path,
        held,
    } = request;
    if app.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "server shutting down").into_response();
    }
    let Ok(permit) = app.connections.clone().try_acquire_owned() else {
        app.metrics.disconnect("connection_limit");
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    };
    let token = super::origin::token_from(&query, headers);
    if let Err(reason) =
        super::origin::check(&app.config.auth, headers, token.as_ref().map(|t| t.1))
    {
        app.metrics.disconnect("cross_site");
        return (StatusCode::FORBIDDEN, format!("FORBIDDEN: {reason}")).into_response();
    }
    let token = token.map(|(token, _)| token);
    let tracked = app.sessions.token();
    // Small socket buffers (the layer's options): idle connections must
    // stay cheap. Compression is agreed here, if offered and on.
    let (response, socket) = match app.wire.upgrade(ws) {
        Ok(pair) => pair,
        Err(refused) => return *refused,
    };
    // Two tasks: this one upgrades, authenticates and asks the guards,
    // then hands the socket to a task of the session's own. A task's
    // memory is its future's largest state, so one task doing both would
    // keep the handshake's room (1.2 KB) for the connection's life.
    tokio::spawn(async move {
        let Some(socket) = socket.await.map(Box::new) else {
            return;
        };
        // Boxed, like the guard below: verification may fetch an
        // identity provider's keys.
        let identity = match Box::pin(app.auth.authenticate(token.as_deref())).await {
            Ok(identity) => identity,
            Err(err) => {
                let reason = format!("UNAUTHORIZED: {err}");
                return Box::pin(refuse(socket, &app, &reason)).await;
            }
        };
        // Boxed: a plugin call's state is large, and inline it would size
        // this task's future for every connection's handshake.
        let actor = Actor::new(Arc::new(identity.clone()), None);
        let allowed = Box::pin(app.resources.policy().connect(&actor, &path, &query)).await;
        drop(actor);
        if let Err(err) = allowed {
            let reason = format!("FORBIDDEN: {}", err.message);
            return Box::pin(refuse(socket, &app, &reason)).await;
        }
        let connected = Connected {
            identity,
            query,
            peer: Some(peer.ip()),
        };
        // The connection's place in the count, the cap and the shutdown
        // wait go with the session.
        let keep = Keep {
            _permit: permit,
            _tracked: tracked,
            _held: held,
        };
        serve(*socket, app, connected, keep);
    });
    response
}

/// Closes a socket whose token or connect guard refused it, saying why.
async fn refuse(mut socket: Box<Socket>, app: &App, reason: &str) {
    app.metrics.disconnect("refused");
    let close = Message::Close(Some(close_frame(CLOSE_POLICY, reason)));
    let _ = futures_util::SinkExt::send(&mut *socket, close).await;
}

/// Everything no route claims: a plugin's scripted socket, or 404.
pub(super) async fn scripted(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    held: Option<Extension<Held>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    ws: Result<WsUpgrade, StatusCode>,
) -> Response {
    let path = uri.path().to_owned();
    let Some(plugin) = app.plugins.snapshot().socket(&path).cloned() else {
        return (
            StatusCode::NOT_FOUND,
            format!("nothing is served at {path}"),
        )
            .into_response();
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let socket_path = path.clone();
    // The loop's future is built and spawned here as it is: an `async`
    // block around it would keep the socket twice for the connection's life.
    let serve: Serve = Box::new(move |socket, app, connected, keep| {
        let registration = app
            .bus
            .register(connected.identity.user_id.clone(), "socket");
        let handler = session::ScriptedSocket::new(
            registration.id.clone(),
            app.clone(),
            plugin,
            socket_path,
            connected,
        );
        tokio::spawn(keep.around(session::run(socket, app, registration, handler)));
    });
    let request = Upgrade {
        headers: &headers,
        query,
        peer,
        path: Arc::from(path.as_str()),
        held,
    };
    accept(app, request, ws, serve)
}
