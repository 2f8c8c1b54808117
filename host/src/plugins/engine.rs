//! The wasmtime engine: component model, epoch interruption for deadlines,
//! an on-disk compilation cache, and the linker with WASI (no files, no
//! network) plus the `host` interface.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Cache, CacheConfig, Config, Engine};

use super::bindings::Plugin;
use super::state::PluginState;

/// How often the epoch advances; deadlines are counted in these ticks.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Builds the engine. The compilation cache lives under `cache_dir`, keyed
/// by content hash, so a restart does not recompile unchanged plugins.
pub(crate) fn engine(cache_dir: Option<&Path>) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
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
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
    Ok(Arc::new(linker))
}
