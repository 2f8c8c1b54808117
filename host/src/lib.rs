//! Switchboard: a real-time WebSocket server whose application logic —
//! walkers and guards — is WebAssembly components.
//!
//! # Layout
//! The flow of a frame, top to bottom:
//! - [`gateway`]: axum routes; upgrades each dialect's path, extracts and
//!   verifies the token, serves `/healthz`, `/readyz`, `/metrics`.
//! - [`wire`]: the WebSocket layer (yawc): upgrades, permessage-deflate
//!   and its memory budget, frames as axum `Message`s.
//! - [`session`]: one task per connection: read, apply, write, heartbeat,
//!   rate limit, slow-consumer and oversize handling.
//! - [`protocol`]: the [`protocol::Dialect`] trait and the dialects, which
//!   decode frames into one [`protocol::Command`] set and encode replies.
//! - [`bus`]: connections, channels, users, presence and non-blocking
//!   delivery with per-dialect encoding caches; channel history; the
//!   [`bus::link::Link`] to other nodes.
//! - [`cluster`]: several nodes on Redis — sharded pub/sub per channel,
//!   per-node inboxes, presence and topics in hashes, history in streams,
//!   heartbeats and reaping of dead nodes.
//! - [`plugins`]: wasmtime components: load, validate, hot reload,
//!   sandboxed walker / guard / socket calls, and the `host` interface
//!   (whose every call acts as the plugin's caller).
//! - [`resources`]: the configured collections over the [`store`]: reads,
//!   writes, change events, replay.
//! - [`policy`]: authorization — role lists, guards (through a trait the
//!   plugins implement), protected fields — for every operation of every
//!   dialect, scripted socket, HTTP call and plugin host call.
//! - [`auth`]: JWT (HS256 / RS256) and API-key verification; the generated
//!   HS256 secret when none is configured.
//! - [`config`]: defaults, TOML file, `SWITCHBOARD_*` environment.
//! - [`metrics`]: Prometheus counters.
//! - [`quota`]: rate limits and write quotas keyed by identity (user id,
//!   or IP for anonymous clients).
//! - [`app`]: shared state and the server's lifecycle; [`shutdown`]: signals.
//! - [`error`]: the error codes clients see (shared with the WIT).
//!
//! Dependencies run one way: gateway → session → wire, and session →
//! protocol / plugins → resources → policy → bus / store / auth; cluster
//! → bus (the app attaches it).
//! - [`cli`]: the `switchboard` command line; [`scaffold`]: its `plugin
//!   new` / `plugin build` (templates per language, toolchain calls).

pub mod app;
pub mod auth;
pub mod bus;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod error;
pub mod gateway;
pub mod metrics;
pub mod plugins;
pub mod policy;
pub mod protocol;
pub mod quota;
pub mod resources;
pub mod scaffold;
pub mod session;
pub mod shutdown;
pub mod store;
pub mod wire;

pub use app::{App, Server, StartError};
pub use config::Config;

/// Unix time in milliseconds; 0 if the clock is before 1970.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
