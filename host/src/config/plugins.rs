//! Where plugins come from, how tightly they are held, and what rights
//! their host calls have.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where plugins come from and how tightly they are held.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// The folder watched for `*.wasm` components.
    pub dir: PathBuf,
    /// Watch the folder and hot-reload changes.
    pub watch: bool,
    /// Wall-clock budget of one plugin call.
    pub timeout_ms: u64,
    /// Linear-memory cap of one plugin instance.
    pub max_memory_bytes: usize,
    /// Per-plugin overrides, by manifest name.
    pub overrides: BTreeMap<String, PluginLimits>,
    /// Where compiled components are cached (by content hash) across
    /// restarts; none disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Plugin instances alive at once, from a pre-reserved pool (walker and
    /// guard calls each hold one briefly; a scripted-socket connection
    /// holds one while open). Pooling makes instantiation cheap; 0 turns
    /// it off and allocates on demand, without a cap.
    pub pool_instances: u32,
    /// Calls one walker / guard instance serves before it is retired. An
    /// instance is reused only after calls that did not trap; 1 gives
    /// every call a fresh instance (no guest state survives between calls)
    /// at several times the cost per call.
    pub reuse_calls: u32,
    /// Scripted-socket connections open at once, all plugins together: a
    /// budget apart from walker and guard calls, so sockets can never take
    /// the instances calls need. 0: a quarter of `pool_instances` (256
    /// without a pool).
    pub max_socket_instances: u32,
    /// Scripted-socket connections one identity (user id, or client IP for
    /// anonymous clients) may hold at once.
    pub max_sockets_per_client: u32,
    /// Largest plugin file loaded, checked before it is read; only regular
    /// files are loaded (no FIFOs, devices or links to them).
    pub max_file_bytes: u64,
}

impl PluginsConfig {
    /// The scripted-socket budget, with its default resolved.
    pub fn socket_instances(&self) -> u32 {
        match (self.max_socket_instances, self.pool_instances) {
            (0, 0) => 256,
            (0, pool) => (pool / 4).max(1),
            (n, _) => n,
        }
    }
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("plugins"),
            watch: true,
            timeout_ms: 1_000,
            max_memory_bytes: 64 * 1024 * 1024,
            overrides: BTreeMap::new(),
            cache_dir: Some(PathBuf::from("data/wasm-cache")),
            pool_instances: 1000,
            reuse_calls: 1000,
            max_socket_instances: 0,
            max_sockets_per_client: 16,
            max_file_bytes: 64 << 20,
        }
    }
}

/// Limits and rights for one plugin, overriding the defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimits {
    /// Wall-clock budget of one call.
    pub timeout_ms: Option<u64>,
    /// Linear-memory cap.
    pub max_memory_bytes: Option<usize>,
    /// Store calls act with full rights (no role lists, no guards, protected
    /// fields readable) instead of as the calling client.
    pub trusted_store: bool,
    /// Bus calls (publish, notify, channel and presence calls) act with
    /// full rights instead of as the calling client.
    pub trusted_bus: bool,
}
