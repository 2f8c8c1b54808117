//! Rust bindings for the `switchboard:plugin` world, generated from `wit/`.
#![allow(missing_docs, unreachable_pub)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
});

pub use self::switchboard::plugin::host;
pub use self::switchboard::plugin::types;
