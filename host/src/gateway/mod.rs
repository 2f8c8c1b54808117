//! HTTP entry points: websocket upgrades for each dialect, health, metrics.

mod accept;
mod http;
mod origin;

pub(crate) use accept::serve;
pub use accept::{fd_capacity, Admission};
mod walker;
mod ws;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::protocol::{daptin::Daptin, jac::Jac, native::Native, rtbdp::Rtbdp};
use crate::App;

static NATIVE: Native = Native;
static DAPTIN: Daptin = Daptin;
static JAC: Jac = Jac;
static RTBDP: Rtbdp = Rtbdp;

/// The server's routes.
pub fn router(app: Arc<App>) -> Router {
    let paths = &app.config.paths;
    Router::new()
        .route("/", ws::route(&NATIVE, "/"))
        .route(&paths.native, ws::route(&NATIVE, &paths.native))
        .route(&paths.daptin, ws::route(&DAPTIN, &paths.daptin))
        .route(&paths.jac, ws::route(&JAC, &paths.jac))
        .route(&paths.rtbdp, ws::route(&RTBDP, &paths.rtbdp))
        .route("/walker/{name}", post(walker::call))
        .route("/healthz", get(http::healthz))
        .route("/readyz", get(http::readyz))
        .route("/metrics", get(http::metrics))
        .fallback(ws::scripted)
        .with_state(app)
}
