//! HTTP entry points: websocket upgrades for each dialect, health, metrics.

mod accept;
mod api;
mod console;
mod http;
mod origin;
mod request;

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

/// An extra listener's routes: `dialect` at every path.
pub fn dialect_router(app: Arc<App>, dialect: crate::config::DialectName) -> Router {
    use crate::config::DialectName;
    let dialect: &'static dyn crate::protocol::Dialect = match dialect {
        DialectName::Native => &NATIVE,
        DialectName::Daptin => &DAPTIN,
        DialectName::Jac => &JAC,
        DialectName::Rtbdp => &RTBDP,
    };
    Router::new()
        .route("/", ws::route(dialect, "/"))
        .route("/{*path}", ws::route(dialect, "/*"))
        .with_state(app)
}

/// The server's routes.
pub fn router(app: Arc<App>) -> Router {
    let paths = &app.config.paths;
    let console = if app.config.api.console {
        console::routes()
    } else {
        Router::new()
    };
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
        .merge(api::routes())
        .merge(console)
        .fallback(ws::scripted)
        .with_state(app)
}
