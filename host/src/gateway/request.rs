//! What every plain HTTP call (walkers, the server API) does first: find
//! the token (Bearer, `x-api-key`, `?token=` / `?apiKey=`, the cookie under
//! the origin rules), authenticate it, charge the caller's request budget,
//! read a bounded JSON body; and how errors are answered (the code's HTTP
//! status and `{"type":"error","code","message"}`).

use std::net::SocketAddr;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::error::{ClientError, ErrorCode};
use crate::policy::Actor;
use crate::App;

/// The authenticated caller, charged one request; or the error response.
pub(super) async fn caller(
    app: &App,
    peer: SocketAddr,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Result<Actor, Response> {
    let token = super::origin::token_from(query, headers);
    if let Err(reason) =
        super::origin::check(&app.config.auth, headers, token.as_ref().map(|t| t.1))
    {
        return Err(error(app, &ClientError::forbidden(reason)));
    }
    let identity = app
        .auth
        .authenticate(token.as_ref().map(|t| t.0.as_str()))
        .await
        .map_err(|e| {
            error(
                app,
                &ClientError::new(ErrorCode::Unauthorized, e.to_string()),
            )
        })?;
    let actor = Actor::new(identity.into_shared(), None).with_peer(Some(peer.ip()));
    // The same per-identity budget as every socket (429 and Retry-After).
    if let Err(exceeded) = app.quotas.requests(&actor.key(), 1) {
        let e = crate::session::rate_limited(&app.config.limits, exceeded);
        let mut response = error(app, &e);
        let secs = exceeded.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        if let Ok(value) = secs.to_string().parse() {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Err(response);
    }
    Ok(actor)
}

/// The body as a JSON object (empty: `{}`), at most the payload limit.
///
/// # Errors
/// Too large, not JSON, or not an object.
pub(super) fn object_body(app: &App, body: &[u8]) -> Result<Value, ClientError> {
    if body.len() > app.config.limits.max_payload_bytes {
        return Err(ClientError::new(
            ErrorCode::PayloadTooLarge,
            format!("body exceeds {} bytes", app.config.limits.max_payload_bytes),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ClientError::new(
            ErrorCode::InvalidJson,
            "body must be a JSON object",
        )),
        Err(e) => Err(ClientError::new(
            ErrorCode::InvalidJson,
            format!("invalid JSON: {e}"),
        )),
    }
}

/// An error answer, counted.
pub(super) fn error(app: &App, e: &ClientError) -> Response {
    app.metrics.error(e.code);
    let status =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(json!({"type": "error", "code": e.code.as_str(), "message": e.message})),
    )
        .into_response()
}
