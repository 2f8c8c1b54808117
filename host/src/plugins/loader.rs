//! Turning a `.wasm` file into a [`LoadedPlugin`]: compile (cached by
//! content hash), link, read the manifest, validate it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

use super::bindings::PluginPre;
use super::loaded::LoadedPlugin;
use super::state::{PluginState, Rights};
use super::warm::{Budget, WarmPool};
use super::HostEnv;
use crate::config::PluginsConfig;

/// Why a plugin file could not be loaded. The old version, if any, keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Read(#[from] std::io::Error),
    /// Not a regular file (a FIFO, a device, a link to one...).
    #[error("not a regular file")]
    NotRegular,
    /// Larger than `plugins.max_file_bytes`.
    #[error("{size} bytes; at most {max} (plugins.max_file_bytes)")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Not a valid component.
    #[error("not a valid component: {0:#}")]
    Compile(wasmtime::Error),
    /// It imports something the host does not provide (or exports the wrong shape).
    #[error("does not fit the switchboard:plugin world: {0:#}")]
    Link(wasmtime::Error),
    /// Its `manifest` call failed.
    #[error("manifest call failed: {0}")]
    Manifest(String),
    /// The manifest is not acceptable.
    #[error("invalid manifest: {0}")]
    Invalid(String),
    /// It clashes with another loaded plugin.
    #[error("conflict: {0}")]
    Conflict(String),
}

/// Paths plugins may not script, because the host serves them.
const RESERVED: [&str; 7] = [
    "/", "/healthz", "/readyz", "/metrics", "/walker", "/api", "/console",
];

/// One version of a plugin file, as read from disk.
pub(crate) struct FileVersion<'a> {
    /// Where it was read.
    pub(crate) path: &'a Path,
    /// Its bytes.
    pub(crate) bytes: &'a [u8],
    /// Their SHA-256, hex: the compile cache's key and the loaded plugin's
    /// identity (an unchanged file is not reloaded).
    pub(crate) hash: String,
}

/// Compiles and validates a file version. `cache` keeps compiled
/// components by hash so swapping back to a version costs nothing.
pub(crate) fn load(
    engine: &Engine,
    linker: &Linker<PluginState>,
    env: &Arc<HostEnv>,
    config: &PluginsConfig,
    budget: &Arc<Budget>,
    cache: &mut HashMap<String, Component>,
    file: FileVersion<'_>,
) -> Result<LoadedPlugin, LoadError> {
    let FileVersion { path, bytes, hash } = file;
    let component = match cache.get(&hash) {
        Some(c) => c.clone(),
        None => {
            let c = Component::new(engine, bytes).map_err(LoadError::Compile)?;
            cache.insert(hash.clone(), c.clone());
            c
        }
    };
    let pre = linker
        .instantiate_pre(&component)
        .map_err(LoadError::Link)?;
    let pre = PluginPre::new(pre).map_err(LoadError::Link)?;
    let mut plugin = LoadedPlugin {
        // Until the manifest names it, the file stands for the plugin in errors.
        name: Arc::from(
            path.file_stem()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default()
                .as_ref(),
        ),
        file: path.to_owned(),
        hash,
        manifest: super::bindings::types::Manifest {
            name: String::new(),
            version: String::new(),
            walkers: Vec::new(),
            guards: Vec::new(),
            sockets: Vec::new(),
        },
        timeout: Duration::from_millis(config.timeout_ms),
        max_memory: config.max_memory_bytes,
        rights: Rights::default(),
        engine: engine.clone(),
        pre,
        warm: WarmPool::new(budget.clone(), config.reuse_calls),
        calls_ok: std::sync::OnceLock::new(),
    };
    let mut store = plugin.new_store(env.clone());
    // Loads run on a blocking thread (compiling is slow): drive the async
    // call from here.
    let described = tokio::runtime::Handle::current().block_on(async {
        let instance = plugin.pre.instantiate_async(&mut store).await?;
        instance
            .switchboard_plugin_meta()
            .call_describe(&mut store)
            .await
    });
    let manifest =
        described.map_err(|e| LoadError::Manifest(plugin.classify(e, &store).to_string()))?;
    validate(&manifest)?;
    plugin.name = Arc::from(manifest.name.as_str());
    if let Some(o) = config.overrides.get(&manifest.name) {
        if let Some(ms) = o.timeout_ms {
            plugin.timeout = Duration::from_millis(ms);
        }
        if let Some(bytes) = o.max_memory_bytes {
            plugin.max_memory = bytes;
        }
        plugin.rights = Rights {
            store: o.trusted_store,
            bus: o.trusted_bus,
        };
    }
    plugin.manifest = manifest;
    Ok(plugin)
}

fn validate(m: &super::bindings::types::Manifest) -> Result<(), LoadError> {
    let bad = |msg: String| Err(LoadError::Invalid(msg));
    let is_name = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    };
    if !is_name(&m.name) {
        return bad(format!(
            "plugin name `{}` must be 1-128 of [A-Za-z0-9-_.:]",
            m.name
        ));
    }
    for w in &m.walkers {
        if !is_name(&w.name) {
            return bad(format!(
                "walker name `{}` must be 1-128 of [A-Za-z0-9-_.:]",
                w.name
            ));
        }
    }
    for g in &m.guards {
        if g.target.is_empty() || g.operations.is_empty() {
            return bad("a guard needs a target and at least one operation".into());
        }
    }
    for s in &m.sockets {
        if !s.starts_with('/') || s.contains(char::is_whitespace) {
            return bad(format!("socket path `{s}` must start with `/`"));
        }
        let under = |prefix: &str| s.starts_with(&format!("{prefix}/"));
        if RESERVED.iter().any(|r| s == r) || under("/walker") || under("/api") || under("/console")
        {
            return bad(format!("socket path `{s}` is reserved by the host"));
        }
    }
    Ok(())
}
