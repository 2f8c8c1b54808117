//! `POST /walker/{name}`: walkers over HTTP, with the same auth as sockets
//! (Bearer header, `?token=`, cookie). The body is the walker's context;
//! the reply is jac-cloud's shape `{status, reports, returns}`.

use std::sync::Arc;

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::error::{ClientError, ErrorCode};
use crate::plugins::Transport;
use crate::policy::Actor;
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
    let token = super::origin::token_from(&query, &headers);
    if let Err(reason) =
        super::origin::check(&app.config.auth, &headers, token.as_ref().map(|t| t.1))
    {
        return error(&app, &ClientError::forbidden(reason));
    }
    let identity = match app
        .auth
        .authenticate(token.as_ref().map(|t| t.0.as_str()))
        .await
    {
        Ok(identity) => identity,
        Err(e) => {
            return error(
                &app,
                &ClientError::new(ErrorCode::Unauthorized, e.to_string()),
            )
        }
    };
    let actor = Actor::new(Arc::new(identity), None).with_peer(Some(peer.ip()));
    // The same per-identity budget as every socket (429 and Retry-After).
    if let Err(exceeded) = app.quotas.requests(&actor.key(), 1) {
        let e = crate::session::rate_limited(&app.config.limits, exceeded);
        let mut response = error(&app, &e);
        let secs = exceeded.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        if let Ok(value) = secs.to_string().parse() {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    if body.len() > app.config.limits.max_payload_bytes {
        return error(
            &app,
            &ClientError::new(
                ErrorCode::PayloadTooLarge,
                format!("body exceeds {} bytes", app.config.limits.max_payload_bytes),
            ),
        );
    }
    let context = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return error(
                    &app,
                    &ClientError::new(ErrorCode::InvalidJson, "body must be a JSON object"),
                )
            }
            Err(e) => {
                return error(
                    &app,
                    &ClientError::new(ErrorCode::InvalidJson, format!("invalid JSON: {e}")),
                )
            }
        }
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
        Err(e) => error(&app, &e.to_client(&name)),
    }
}

fn error(app: &App, e: &ClientError) -> Response {
    app.metrics.error(e.code);
    let status =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(json!({"type": "error", "code": e.code.as_str(), "message": e.message})),
    )
        .into_response()
}
