//! The wasmtime engine: component model, async calls (fibers on the async
//! threads), epoch interruption for deadlines and yields,
//! an on-disk compilation cache, and the linker with WASI (no files, no
//! network) plus the `host` interface.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig,
};

use crate::config::PluginsConfig;

use super::bindings::Plugin;
use super::state::PluginState;

/// How often the epoch advances; deadlines are counted in these ticks.
const TICK: Duration = Duration::from_millis(10);

/// Builds the engine. The compilation cache lives under `cache_dir`, keyed
/// by content hash, so a restart does not recompile unchanged plugins.
pub(crate) fn engine(plugins: &PluginsConfig) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    if plugins.pool_instances > 0 {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool(plugins)));
    }
    let cache_dir = plugins.cache_dir.as_deref();
    if let Some(dir) = cache_dir {
        // wasmtime wants an absolute cache path.
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        let mut cache = CacheConfig::new();
        cache.with_directory(dir);
        match Cache::new(cache) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(err) => tracing::warn!(cause = %err, "compilation cache disabled"),
        }
    }
    let engine = Engine::new(&config)?;
    spawn_ticker(&engine);
    Ok(engine)
}

/// The instance pool: slots are reserved once and reused, so a call's
/// instantiation costs no mmap/munmap (whose TLB shootdowns and lock
/// contention dominated per-call cost without it). Sized so that the
/// largest memory any plugin may have fits a slot, and generously per
/// component, since componentize-py output holds many core instances.
fn pool(plugins: &PluginsConfig) -> PoolingAllocationConfig {
    let largest = plugins
        .overrides
        .values()
        .filter_map(|o| o.max_memory_bytes)
        .fold(plugins.max_memory_bytes, usize::max);
    let n = plugins.pool_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(4))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(4))
        // One fiber stack per call in flight.
        .total_stacks(n)
        .max_memory_size(largest)
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_tables_per_component(64)
        .max_core_instance_size(16 << 20)
        .max_component_instance_size(16 << 20)
        .table_elements(100_000)
        // Reset small guests by memset instead of madvise: a call's
        // instance is short-lived and touches little, and madvise /
        // copy-on-write faults cost TLB shootdowns on every core.
        .linear_memory_keep_resident(4 << 20)
        .table_keep_resident(1 << 20);
    pool
}

/// Advances the epoch every [`TICK`] on a plain thread, holding the engine
/// weakly so the thread ends with it.
fn spawn_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        });
    if let Err(err) = spawned {
        tracing::error!(cause = %err, "cannot start the epoch ticker; plugin deadlines will not fire");
    }
}

/// The linker every plugin instantiates against.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Arc<Linker<PluginState>>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
    Ok(Arc::new(linker))
}
