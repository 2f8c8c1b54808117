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

/// Readiness: accepting connections (not shutting down), the store
/// answering and, in a
/// cluster, linked to the other nodes (503 while Redis is unreachable, so
/// a load balancer sends new clients to nodes that can reach everyone).
pub(super) async fn readyz(State(app): State<Arc<App>>) -> impl IntoResponse {
    let cluster = app.cluster.as_ref().map(|c| c.status());
    let linked = app.bus.cluster_down().is_none();
    let store = app.resources.store();
    let stored = tokio::time::timeout(std::time::Duration::from_secs(2), store.ping())
        .await
        .map_err(|_| "no answer in 2 s".to_owned())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let store_status = json!({
        "kind": store.kind(),
        "status": if stored.is_ok() { "up" } else { "down" },
    });
    let status = if app.shutdown.is_cancelled() {
        "shutting down"
    } else if !linked {
        "cluster link down"
    } else if stored.is_err() {
        "store down"
    } else {
        "ready"
    };
    let code = if status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({"status": status, "cluster": cluster, "store": store_status})),
    )
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
