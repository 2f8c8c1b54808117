//! Health and metrics endpoints.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::App;

/// Liveness: the process answers.
pub(super) async fn healthz(State(app): State<Arc<App>>) -> impl IntoResponse {
    Json(json!({
        "status": "ok",
        "connections": app.bus.client_count(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// Readiness: accepting connections (not shutting down).
pub(super) async fn readyz(State(app): State<Arc<App>>) -> impl IntoResponse {
    if app.shutdown.is_cancelled() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting down"})),
        )
    } else {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    }
}

/// Prometheus text exposition.
pub(super) async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
}
