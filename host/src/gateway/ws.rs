//! WebSocket upgrades: connection cap, token extraction, authentication,
//! then hand-off to a session in the route's dialect.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};

use crate::auth::AuthError;
use crate::protocol::Dialect;
use crate::session::{self, close_frame, CLOSE_POLICY};
use crate::App;

/// A GET route upgrading to `dialect`.
pub(super) fn route(dialect: &'static dyn Dialect) -> MethodRouter<Arc<App>> {
    get(
        move |State(app): State<Arc<App>>,
              headers: HeaderMap,
              Query(query): Query<Vec<(String, String)>>,
              ws: WebSocketUpgrade| async move { upgrade(app, &headers, query, ws, dialect) },
    )
}

fn upgrade(
    app: Arc<App>,
    headers: &HeaderMap,
    query: Vec<(String, String)>,
    ws: WebSocketUpgrade,
    dialect: &'static dyn Dialect,
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
            match identity {
                Ok(identity) => session::serve_socket(socket, app, dialect, identity, query).await,
                Err(err) => refuse(socket, &app, &err).await,
            }
        })
}

/// Closes a socket whose token was refused, saying why.
async fn refuse(mut socket: WebSocket, app: &App, err: &AuthError) {
    app.metrics.disconnect("unauthorized");
    app.metrics.error(crate::error::ErrorCode::Unauthorized);
    let reason = format!("UNAUTHORIZED: {err}");
    let _ = socket
        .send(Message::Close(Some(close_frame(CLOSE_POLICY, &reason))))
        .await;
}

/// The token from `?token=`, `Authorization: Bearer`, or a `token` cookie,
/// in that order.
fn token_from(query: &[(String, String)], headers: &HeaderMap) -> Option<String> {
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
