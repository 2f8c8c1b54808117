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

/// Readiness: accepting connections (not shutting down) and, in a
/// cluster, linked to the other nodes (503 while Redis is unreachable, so
/// a load balancer sends new clients to nodes that can reach everyone).
pub(super) async fn readyz(State(app): State<Arc<App>>) -> impl IntoResponse {
    let cluster = app.cluster.as_ref().map(|c| c.status());
    let linked = app.bus.cluster_down().is_none();
    if app.shutdown.is_cancelled() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting down", "cluster": cluster})),
        )
    } else if !linked {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "cluster link down", "cluster": cluster})),
        )
    } else {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "cluster": cluster})),
        )
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
