//! What a plugin's store holds: WASI context (no preopens, no sockets),
//! memory limits, and the call's context for the `host` interface.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::HostEnv;

/// Per-store data.
pub(crate) struct PluginState {
    /// Built on first use: most guests never import WASI, and building a
    /// context (random seeds, clocks) on every call would cost them for
    /// nothing.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    /// Services the host interface reaches.
    pub(crate) env: Arc<HostEnv>,
    /// The plugin's manifest name (for logs and its kv namespace).
    pub(crate) plugin: Arc<str>,
    /// The connection the call acts for, when there is one.
    pub(crate) conn: Option<Arc<str>>,
}

impl PluginState {
    /// Fresh state for one call (or one scripted-socket connection).
    pub(crate) fn new(
        env: Arc<HostEnv>,
        plugin: Arc<str>,
        conn: Option<Arc<str>>,
        max_memory: usize,
    ) -> Self {
        Self {
            wasi: None,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(max_memory)
                // Components built by componentize-py hold dozens of core
                // instances and tables; the caps stop runaway growth, not
                // ordinary toolchains.
                .instances(1_000)
                .tables(1_000)
                .memories(64)
                .trap_on_grow_failure(true)
                .build(),
            env,
            plugin,
            conn,
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        // No preopened directories, no network, no inherited stdio: a plugin
        // reaches the world only through the host interface.
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(|| WasiCtx::builder().build()),
            table: &mut self.table,
        }
    }
}
