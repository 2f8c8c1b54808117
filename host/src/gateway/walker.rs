//! `POST /walker/{name}`: walkers over HTTP, with the same auth as sockets
//! (Bearer header, `?token=`, cookie). The body is the walker's context;
//! the reply is jac-cloud's shape `{status, reports, returns}`.

use std::sync::Arc;

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::plugins::Transport;
use crate::App;

/// Calls a walker with the request body as context.
pub(super) async fn call(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let actor = match super::request::caller(&app, peer, &query, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let context = match super::request::object_body(&app, &body) {
        Ok(context) => context,
        Err(e) => return super::request::error(&app, &e),
    };
    match app
        .plugins
        .call_walker(&name, &context, &actor, Transport::Http)
        .await
    {
        Ok(out) => {
            let status = StatusCode::from_u16(out.status).unwrap_or(StatusCode::OK);
            (
                status,
                Json(json!({"status": out.status, "reports": out.reports, "returns": out.returns})),
            )
                .into_response()
        }
        Err(e) => super::request::error(&app, &e.to_client(&name)),
    }
}
