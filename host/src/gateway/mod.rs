//! HTTP entry points: websocket upgrades for each dialect, health, metrics.

mod http;
mod walker;
mod ws;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::protocol::native::Native;
use crate::App;

static NATIVE: Native = Native;

/// The server's routes.
pub fn router(app: Arc<App>) -> Router {
    let paths = &app.config.paths;
    Router::new()
        .route("/", ws::route(&NATIVE, "/"))
        .route(&paths.native, ws::route(&NATIVE, &paths.native))
        .route("/walker/{name}", post(walker::call))
        .route("/healthz", get(http::healthz))
        .route("/readyz", get(http::readyz))
        .route("/metrics", get(http::metrics))
        .fallback(ws::scripted)
        .with_state(app)
}
