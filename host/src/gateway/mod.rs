//! HTTP entry points: websocket upgrades for each dialect, health, metrics.

mod http;
mod ws;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use crate::protocol::native::Native;
use crate::App;

static NATIVE: Native = Native;

/// The server's routes.
pub fn router(app: Arc<App>) -> Router {
    let paths = &app.config.paths;
    Router::new()
        .route("/", ws::route(&NATIVE))
        .route(&paths.native, ws::route(&NATIVE))
        .route("/healthz", get(http::healthz))
        .route("/readyz", get(http::readyz))
        .route("/metrics", get(http::metrics))
        .with_state(app)
}
