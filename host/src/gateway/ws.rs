//! WebSocket upgrades: connection cap, token extraction, authentication,
//! then hand-off to a session in the route's dialect.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};

use crate::protocol::Dialect;
use crate::session::{self, close_frame, CLOSE_POLICY};
use crate::App;

/// A GET route upgrading to `dialect`.
pub(super) fn route(dialect: &'static dyn Dialect, path: &str) -> MethodRouter<Arc<App>> {
    let path: Arc<str> = Arc::from(path);
    get(
        move |State(app): State<Arc<App>>,
              headers: HeaderMap,
              Query(query): Query<Vec<(String, String)>>,
              ws: WebSocketUpgrade| async move {
            upgrade(app, &headers, query, ws, dialect, path)
        },
    )
}

fn upgrade(
    app: Arc<App>,
    headers: &HeaderMap,
    query: Vec<(String, String)>,
    ws: WebSocketUpgrade,
    dialect: &'static dyn Dialect,
    path: Arc<str>,
) -> Response {
    if app.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "server shutting down").into_response();
    }
    let Ok(permit) = app.connections.clone().try_acquire_owned() else {
        app.metrics.disconnect("connection_limit");
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    };
    let token = token_from(&query, headers);
    let identity = app.auth.authenticate(token.as_deref());
    let limits = &app.config.limits;
    let tracked = app.sessions.token();
    ws.max_message_size(limits.max_payload_bytes)
        .max_frame_size(limits.max_payload_bytes)
        .on_upgrade(move |socket| async move {
            let _permit = permit;
            let _tracked = tracked;
            let identity = match identity {
                Ok(identity) => identity,
                Err(err) => return refuse(socket, &app, &format!("UNAUTHORIZED: {err}")).await,
            };
            if let Err(err) = connect_guard(&app, &path, &identity, &query).await {
                return refuse(socket, &app, &format!("FORBIDDEN: {err}")).await;
            }
            session::serve_socket(socket, app, dialect, identity, query).await;
        })
}

/// Closes a socket whose token or connect guard refused it, saying why.
async fn refuse(mut socket: WebSocket, app: &App, reason: &str) {
    app.metrics.disconnect("refused");
    let _ = socket
        .send(Message::Close(Some(close_frame(CLOSE_POLICY, reason))))
        .await;
}

/// Asks the `connect` guards; the payload is the query string as an object
/// (without the token).
pub(crate) async fn connect_guard(
    app: &App,
    path: &str,
    identity: &crate::auth::Identity,
    query: &[(String, String)],
) -> Result<(), crate::plugins::GuardError> {
    let payload = serde_json::Value::Object(
        query
            .iter()
            .filter(|(k, _)| k != "token")
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    );
    app.plugins
        .guard(
            crate::plugins::Operation::Connect,
            path,
            identity,
            None,
            &payload,
        )
        .await
        .map(|_| ())
}

/// The token from `?token=`, `Authorization: Bearer`, or a `token` cookie,
/// in that order.
pub(super) fn token_from(query: &[(String, String)], headers: &HeaderMap) -> Option<String> {
    if let Some((_, token)) = query.iter().find(|(k, _)| k == "token") {
        return Some(token.clone());
    }
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return Some(crate::auth::strip_bearer(value).to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == "token")
        .map(|c| c.value().to_owned())
}

/// Everything no route claims: a plugin's scripted socket, or 404.
pub(super) async fn scripted(
    State(app): State<Arc<App>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
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
    let Ok(permit) = app.connections.clone().try_acquire_owned() else {
        app.metrics.disconnect("connection_limit");
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    };
    let identity = app
        .auth
        .authenticate(token_from(&query, &headers).as_deref());
    let tracked = app.sessions.token();
    let limits = &app.config.limits;
    ws.max_message_size(limits.max_payload_bytes)
        .max_frame_size(limits.max_payload_bytes)
        .on_upgrade(move |socket| async move {
            let _permit = permit;
            let _tracked = tracked;
            let identity = match identity {
                Ok(identity) => identity,
                Err(err) => return refuse(socket, &app, &format!("UNAUTHORIZED: {err}")).await,
            };
            if let Err(err) = connect_guard(&app, &path, &identity, &query).await {
                return refuse(socket, &app, &format!("FORBIDDEN: {err}")).await;
            }
            let registration = app
                .bus
                .register(identity.user_id.clone(), limits_queue(&app));
            let handler = crate::plugins::socket::ScriptedSocket::new(
                registration.id.clone(),
                app.clone(),
                plugin,
                path,
                identity,
                query,
            );
            let (sink, stream) = futures_util::StreamExt::split(socket);
            session::run(sink, stream, app, registration, handler).await;
        })
}

fn limits_queue(app: &App) -> usize {
    app.config.limits.outbound_queue
}
