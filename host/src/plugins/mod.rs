//! WebAssembly plugins: loading, hot reload, and calls.
//!
//! A plugin is a component of the `switchboard:plugin` world (see `wit/`).
//! Each file version is compiled once, validated, and swapped in atomically
//! ([`registry`]); a file that fails leaves the old version serving. Every
//! call runs as a fiber on the async threads, yielding at every epoch tick,
//! with a deadline and a memory cap, so a looping, trapping or
//! memory-hungry plugin fails that call only; an
//! instance that ran a call cleanly is kept warm for the next ([`warm`]).

mod bindings;
pub mod boundary;
mod engine;
mod files;
mod host;
mod loaded;
mod loader;
pub mod outbox;
pub mod registry;
pub mod socket;
mod state;
mod warm;
mod watcher;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use serde_json::Value;
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

pub use bindings::types::{PluginError, Transport};
pub use loaded::{CallError, LoadedPlugin};
pub use loader::LoadError;
pub use registry::Snapshot;

use crate::auth::Identity;
use crate::bus::Bus;
use crate::config::PluginsConfig;
use crate::error::{ClientError, ErrorCode};
use crate::metrics::Metrics;
use crate::policy::{Actor, GuardError, GuardOutcome, GuardQuery, Guards};
use crate::resources::Resources;
use state::PluginState;

/// What the host interface reaches. Every call a plugin makes through it
/// is checked by the policy as the plugin's caller (see `host.rs`).
pub struct HostEnv {
    /// Delivery.
    pub bus: Arc<Bus>,
    /// The plugins' small key-value store: (plugin, key) → value. It lives
    /// in the host, so it outlives calls and reloads.
    pub kv: Mutex<HashMap<(String, String), String>>,
    /// Resources, and through them the policy.
    pub resources: Arc<Resources>,
}

/// The plugin host.
pub struct Plugins {
    engine: Engine,
    linker: Arc<Linker<PluginState>>,
    env: Arc<HostEnv>,
    config: PluginsConfig,
    metrics: Arc<Metrics>,
    snapshot: ArcSwap<Snapshot>,
    /// Serialises loads so two reloads of one file cannot interleave.
    loading: Mutex<HashMap<String, Component>>,
    /// The last load error per file, for status reporting.
    errors: Mutex<BTreeMap<PathBuf, String>>,
    /// The version of each file last tried: an unchanged file is not read
    /// again (a bad one would otherwise be retried at every event).
    tried: Mutex<HashMap<PathBuf, files::Stamp>>,
    watcher: Mutex<Option<watcher::Watcher>>,
    /// Idle warm instances all plugin versions may hold together.
    warm_budget: Arc<warm::Budget>,
    /// Scripted sockets' own instance budget.
    sockets: socket::SocketBudget,
    /// Walkers written in Rust by an embedding application (with whether
    /// anonymous callers may call them); they answer before plugins of the
    /// same name.
    native: parking_lot::RwLock<HashMap<String, (NativeWalker, bool)>>,
}

/// A walker implemented in Rust inside the host (for applications that
/// embed Switchboard as a library, and as the benchmarks' baseline).
pub type NativeWalker =
    Arc<dyn Fn(&Value, &Identity) -> Result<WalkerOutcome, WalkerError> + Send + Sync>;

impl Plugins {
    /// Creates the engine; loads nothing yet.
    ///
    /// # Errors
    /// The engine or linker could not be built.
    pub fn new(
        config: PluginsConfig,
        env: Arc<HostEnv>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, EngineError> {
        let engine = engine::engine(&config).map_err(|e| EngineError(format!("{e:#}")))?;
        let linker = engine::linker(&engine).map_err(|e| EngineError(format!("{e:#}")))?;
        // The pool is shared three ways: scripted sockets get their own
        // budget (a quarter by default), idle warm instances at most a
        // quarter, and calls in flight the rest — so neither sockets nor
        // warm instances can starve a walker or guard call of a slot.
        let warm_budget = warm::Budget::new(match config.pool_instances {
            0 => 256,
            n => (n as usize / 4).max(1),
        });
        let sockets =
            socket::SocketBudget::new(config.socket_instances(), config.max_sockets_per_client);
        Ok(Arc::new(Self {
            engine,
            linker,
            env,
            config,
            metrics,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            loading: Mutex::new(HashMap::new()),
            errors: Mutex::new(BTreeMap::new()),
            tried: Mutex::new(HashMap::new()),
            watcher: Mutex::new(None),
            native: Default::default(),
            warm_budget,
            sockets,
        }))
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Services the host interface uses.
    pub fn env(&self) -> &Arc<HostEnv> {
        &self.env
    }

    /// Last load errors by file.
    pub fn errors(&self) -> BTreeMap<PathBuf, String> {
        self.errors.lock().clone()
    }

    /// Loads every `*.wasm` in the plugins folder, then starts watching it
    /// when configured to.
    pub async fn start(self: &Arc<Self>) {
        let dir = self.config.dir.clone();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| is_wasm(p))
                .collect();
            files.sort();
            for file in files {
                self.sync_file(&file).await;
            }
        } else {
            tracing::info!(dir = %dir.display(), "plugins folder not found; starting without plugins");
        }
        if self.config.watch {
            match watcher::Watcher::start(self.clone(), &dir) {
                Ok(w) => *self.watcher.lock() = Some(w),
                Err(err) => {
                    tracing::warn!(cause = %err, dir = %dir.display(), "cannot watch plugins folder; hot reload off")
                }
            }
        }
    }

    /// Brings one file's plugin in line with the disk: loads (or reloads)
    /// it when present, unloads it when gone. Failures keep the old version.
    pub async fn sync_file(self: &Arc<Self>, path: &Path) {
        let this = self.clone();
        let path = path.to_owned();
        let _ = tokio::task::spawn_blocking(move || this.sync_file_blocking(&path)).await;
    }

    fn sync_file_blocking(&self, path: &Path) {
        let mut cache = self.loading.lock();
        let file_label = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stamp = match files::stamp(path) {
            Ok(Some(stamp)) => stamp,
            Ok(None) => return self.unload(path, &file_label),
            Err(e) => return self.report(path, &file_label, &e),
        };
        if self.tried.lock().get(path) == Some(&stamp) {
            return;
        }
        self.tried.lock().insert(path.to_owned(), stamp);
        let bytes = match files::read(path, self.config.max_file_bytes) {
            Ok(bytes) => bytes,
            Err(LoadError::Read(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return self.unload(path, &file_label)
            }
            Err(e) => return self.report(path, &file_label, &e),
        };
        let hash = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let current = self.snapshot();
        if current.files().get(path).is_some_and(|p| p.hash == hash) {
            return;
        }
        let started = std::time::Instant::now();
        let loaded = loader::load(
            &self.engine,
            &self.linker,
            &self.env,
            &self.config,
            &self.warm_budget,
            &mut cache,
            loader::FileVersion {
                path,
                bytes: &bytes,
                hash,
            },
        )
        .and_then(|p| match current.conflict(path, &p) {
            Some(why) => Err(LoadError::Conflict(why)),
            None => Ok(p),
        });
        match loaded {
            Ok(plugin) => {
                let mut files = current.files().clone();
                tracing::info!(
                    file = %path.display(),
                    plugin = %plugin.name,
                    version = %plugin.manifest.version,
                    walkers = plugin.manifest.walkers.len(),
                    guards = plugin.manifest.guards.len(),
                    sockets = plugin.manifest.sockets.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "plugin loaded"
                );
                files.insert(path.to_owned(), Arc::new(plugin));
                self.snapshot.store(Arc::new(Snapshot::build(files)));
                self.errors.lock().remove(path);
                self.metrics.plugin_load(&file_label, "loaded");
            }
            Err(err) => self.report(path, &file_label, &err),
        }
    }

    /// The file is gone: so is its plugin.
    fn unload(&self, path: &Path, label: &str) {
        self.tried.lock().remove(path);
        let current = self.snapshot();
        if current.files().contains_key(path) {
            let mut files = current.files().clone();
            let old = files.remove(path);
            self.snapshot.store(Arc::new(Snapshot::build(files)));
            self.metrics.plugin_load(label, "removed");
            tracing::info!(file = %path.display(), plugin = old.map(|p| p.name.to_string()), "plugin unloaded");
        }
        self.errors.lock().remove(path);
    }

    fn report(&self, path: &Path, label: &str, err: &LoadError) {
        let serving = self.snapshot().files().contains_key(path);
        tracing::error!(file = %path.display(), cause = %err, old_version_serving = serving, "plugin load failed");
        self.errors.lock().insert(path.to_owned(), err.to_string());
        self.metrics.plugin_load(label, "failed");
    }

    /// Registers a walker implemented in Rust; `anonymous` lets callers
    /// without a token call it.
    pub fn register_native(&self, name: &str, anonymous: bool, walker: NativeWalker) {
        self.native
            .write()
            .insert(name.to_owned(), (walker, anonymous));
    }

    /// Calls a walker for `caller` over `transport`. Anonymous callers are
    /// refused unless the walker's manifest entry lets them in (jac-cloud's
    /// default: walkers need an authenticated caller).
    ///
    /// # Errors
    /// No such walker (or not on this transport), refused, or the call failed.
    pub async fn call_walker(
        &self,
        name: &str,
        context: &Value,
        caller: &Actor,
        transport: Transport,
    ) -> Result<WalkerOutcome, WalkerError> {
        let native = self.native.read().get(name).cloned();
        if let Some((walker, anonymous)) = native {
            if !anonymous && caller.identity.is_anonymous() {
                return Err(WalkerError::Anonymous);
            }
            return walker(context, &caller.identity);
        }
        let snapshot = self.snapshot();
        let Some(entry) = snapshot.walker(name).cloned() else {
            return Err(WalkerError::NotFound);
        };
        let allowed = match transport {
            Transport::Ws => entry.transports.contains(bindings::types::Transports::WS),
            Transport::Http => entry.transports.contains(bindings::types::Transports::HTTP),
        };
        if !allowed {
            return Err(WalkerError::WrongTransport);
        }
        if !entry.anonymous && caller.identity.is_anonymous() {
            return Err(WalkerError::Anonymous);
        }
        let plugin = entry.plugin;
        let request = bindings::types::WalkerRequest {
            walker: name.to_owned(),
            context: serde_json::to_string(context).unwrap_or_default(),
            identity: wit_identity(caller),
            transport,
        };
        let result = plugin.call_walker(self.env.clone(), caller, &request).await;
        self.count(&plugin, &result);
        let reply = result.map_err(WalkerError::Call)?;
        let returns = reply
            .returns
            .as_deref()
            .map(boundary::reply_value)
            .unwrap_or(Value::Null);
        // Walkers commonly report what they return (the SDK's `reply`
        // does): parse that text once.
        let reports = reply
            .reports
            .iter()
            .map(|r| match reply.returns.as_deref() {
                Some(text) if text == r => returns.clone(),
                _ => boundary::reply_value(r),
            })
            .collect();
        Ok(WalkerOutcome {
            status: reply.status,
            reports,
            returns,
        })
    }

    fn count<T>(&self, plugin: &LoadedPlugin, result: &Result<T, CallError>) {
        match result {
            // The common case without a label lookup (which allocated the
            // labels and hashed them on every call).
            Ok(_) => {
                plugin
                    .calls_ok
                    .get_or_init(|| self.metrics.plugin_call_counter(&plugin.name, "ok"))
                    .inc();
            }
            Err(err) => self.metrics.plugin_call(&plugin.name, err.outcome()),
        }
    }

    /// Asks every guard covering the query's operation and target. The
    /// first deny wins; filters combine (AND, every test kept); patches
    /// merge in order.
    ///
    /// # Errors
    /// A guard denied, or failed (a failing guard denies: fail closed).
    pub async fn guard(&self, query: GuardQuery<'_>) -> Result<GuardOutcome, GuardError> {
        let snapshot = self.snapshot();
        let mut outcome = GuardOutcome::default();
        if !snapshot.has_guards() {
            return Ok(outcome);
        }
        let op = query.op.into();
        let guards = snapshot.guards(op, query.target);
        if guards.is_empty() {
            return Ok(outcome);
        }
        // Built once: every guard on this operation sees the same request.
        let request = bindings::types::GuardRequest {
            operation: op,
            target: query.target.to_owned(),
            identity: wit_identity(query.actor),
            payload: query.payload.to_string(),
        };
        for plugin in guards {
            let result = plugin
                .check_guard(self.env.clone(), query.actor, &request)
                .await;
            self.count(&plugin, &result);
            match result.map_err(|e| GuardError::Failed(plugin.name.to_string(), e.to_string()))? {
                bindings::types::Verdict::Allow => {}
                bindings::types::Verdict::Deny(reason) => return Err(GuardError::Denied(reason)),
                bindings::types::Verdict::Filter(f) => {
                    let filter = boundary::guard_filter(&f).map_err(|e| {
                        GuardError::Failed(plugin.name.to_string(), format!("bad filter: {e}"))
                    })?;
                    outcome.filter = crate::bus::Filter::both(outcome.filter.take(), filter);
                }
                bindings::types::Verdict::Patch(p) => {
                    let patch = boundary::guard_patch(&p).map_err(|e| {
                        GuardError::Failed(plugin.name.to_string(), format!("bad patch: {e}"))
                    })?;
                    outcome.patch.extend(patch);
                }
            }
        }
        Ok(outcome)
    }
}

impl Guards for Plugins {
    fn check<'a>(
        &'a self,
        query: GuardQuery<'a>,
    ) -> futures_util::future::BoxFuture<'a, Result<GuardOutcome, GuardError>> {
        Box::pin(self.guard(query))
    }
}

/// The wasmtime engine or linker could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the plugin engine: {0}")]
pub struct EngineError(String);

/// A walker's result.
#[derive(Debug, Clone)]
pub struct WalkerOutcome {
    /// HTTP-like status.
    pub status: u16,
    /// Reported values.
    pub reports: Vec<Value>,
    /// The return value.
    pub returns: Value,
}

/// Why a walker call did not produce a reply.
#[derive(Debug, thiserror::Error)]
pub enum WalkerError {
    /// No loaded plugin serves it.
    #[error("no walker with that name is loaded")]
    NotFound,
    /// It is not served on this transport.
    #[error("walker is not served on this transport")]
    WrongTransport,
    /// It needs an authenticated caller.
    #[error("walker needs an authenticated caller")]
    Anonymous,
    /// The call failed.
    #[error(transparent)]
    Call(CallError),
}

impl WalkerError {
    /// The error a client sees for a failed call to walker `name`.
    pub fn to_client(&self, name: &str) -> ClientError {
        match self {
            WalkerError::NotFound => ClientError::new(
                ErrorCode::NotFound,
                format!("no walker named `{name}` is loaded"),
            ),
            WalkerError::WrongTransport => ClientError::new(
                ErrorCode::NotFound,
                format!("walker `{name}` is not served on this transport"),
            ),
            WalkerError::Anonymous => {
                ClientError::forbidden(format!("walker `{name}` needs an authenticated caller"))
            }
            WalkerError::Call(CallError::Plugin(e)) => {
                let code = ErrorCode::from(e.code);
                ClientError::new(
                    code,
                    format!("walker `{name}` failed: {code}: {}", e.message),
                )
            }
            WalkerError::Call(e @ CallError::Timeout { .. }) => {
                ClientError::new(ErrorCode::Timeout, e.to_string())
            }
            WalkerError::Call(e) => ClientError::new(ErrorCode::PluginError, e.to_string()),
        }
    }
}

fn wit_identity(actor: &Actor) -> bindings::types::Identity {
    let identity = &actor.identity;
    bindings::types::Identity {
        client_id: actor.conn.as_deref().unwrap_or_default().to_owned(),
        user_id: identity.user_id.clone(),
        role: identity.role.clone(),
        claims: identity.claims_json().to_owned(),
    }
}

fn is_wasm(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wasm")
}
