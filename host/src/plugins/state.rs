//! What a plugin's store holds: WASI context (no preopens, no sockets),
//! memory limits, and the call's context for the `host` interface.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::HostEnv;
use crate::policy::Actor;

/// What a plugin's host calls may do beyond its caller's rights, as the
/// operator configured it (`[plugins.overrides.<name>]`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rights {
    /// `trusted_store`: store calls with full rights.
    pub(crate) store: bool,
    /// `trusted_bus`: bus calls with full rights.
    pub(crate) bus: bool,
}

/// Per-store data.
pub(crate) struct PluginState {
    /// Built on first use: most guests never import WASI, and building a
    /// context (random seeds, clocks) on every call would cost them for
    /// nothing.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    pub(crate) limits: Limits,
    /// Services the host interface reaches.
    pub(crate) env: Arc<HostEnv>,
    /// The plugin's manifest name (for logs and its kv namespace).
    pub(crate) plugin: Arc<str>,
    /// Who the running call acts for: its host calls are checked as this
    /// client. Anonymous between calls.
    pub(crate) caller: Actor,
    /// Whether the running call is a guard's: its host calls then skip the
    /// guards (asking them from inside a guard would recurse).
    pub(crate) in_guard: bool,
    pub(crate) rights: Rights,
    /// When the running call must stop (checked at every epoch tick).
    pub(crate) deadline: Instant,
    /// A scripted socket's frames for its own client (none for walker and
    /// guard instances, whose `notify-self` goes through the bus).
    pub(crate) outbox: Option<super::outbox::Outbox>,
}

impl PluginState {
    /// Fresh state for one instance (warm walker / guard instance, or one
    /// scripted-socket connection).
    pub(crate) fn new(
        env: Arc<HostEnv>,
        plugin: Arc<str>,
        rights: Rights,
        max_memory: usize,
    ) -> Self {
        Self {
            wasi: None,
            table: ResourceTable::new(),
            limits: Limits {
                bytes: 0,
                refused: false,
                max_memory,
                caps: StoreLimitsBuilder::new()
                    .memory_size(max_memory)
                    // Components built by componentize-py hold dozens of core
                    // instances and tables; the caps stop runaway growth, not
                    // ordinary toolchains.
                    .instances(1_000)
                    .tables(1_000)
                    .memories(64)
                    .trap_on_grow_failure(true)
                    .build(),
            },
            env,
            plugin,
            caller: Actor::anonymous(),
            in_guard: false,
            rights,
            deadline: Instant::now(),
            outbox: None,
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

/// The store's caps, plus the linear memory it holds in all: a warm
/// instance that has grown (a guest leaking between calls) is retired
/// rather than reused, so leaks cannot pile up to its cap.
pub(crate) struct Limits {
    caps: StoreLimits,
    bytes: usize,
    /// Whether a memory growth was refused: how a failed call is known to
    /// be out of memory without reading the trap's text.
    refused: bool,
    /// The store's memory cap (`caps` does not expose it).
    max_memory: usize,
}

impl Limits {
    /// Whether the store's linear memory, across its memories, has grown
    /// past a quarter of its cap: too much to keep warm.
    pub(crate) fn grown(&self) -> bool {
        self.bytes > self.max_memory / 4
    }

    /// Whether the cap refused a growth since the last call began (the
    /// call then failed for memory).
    pub(crate) fn refused(&self) -> bool {
        self.refused
    }

    /// Starts a call with a clean record.
    pub(crate) fn reset_refused(&mut self) {
        self.refused = false;
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.caps.memory_growing(current, desired, maximum);
        match allowed {
            Ok(true) => self.bytes += desired.saturating_sub(current),
            _ => self.refused = true,
        }
        allowed
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refused = true;
        self.caps.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.caps.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.caps.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.caps.instances()
    }

    fn tables(&self) -> usize {
        self.caps.tables()
    }

    fn memories(&self) -> usize {
        self.caps.memories()
    }
}
