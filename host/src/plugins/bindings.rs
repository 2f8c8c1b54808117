//! Rust bindings for the `switchboard:plugin` world, generated from `wit/`.
//!
//! Exports are async: calls run on the async threads as fibers that yield
//! at every epoch tick (see [`super::loaded`]), rather than being handed to
//! a blocking thread and back. The store imports are async too, because
//! they commit to disk: they move that work to a blocking thread.
#![allow(missing_docs, unreachable_pub)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: {
        "switchboard:plugin/host.store-get": async,
        "switchboard:plugin/host.store-list": async,
        "switchboard:plugin/host.store-insert": async,
        "switchboard:plugin/host.store-update": async,
        "switchboard:plugin/host.store-delete": async,
    },
    exports: { default: async },
});

pub use self::switchboard::plugin::host;
pub use self::switchboard::plugin::types;
