//! One loaded plugin version: its manifest, its pre-instantiated component,
//! its limits, and the calls into it. A call runs on a warm instance when
//! one is kept (see [`super::warm`]), else on a fresh store; either way with
//! an epoch deadline and a memory cap, and an instance that failed is never
//! used again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Engine, Store, UpdateDeadline};

use super::bindings::types::{
    GuardRequest, Manifest, PluginError, Verdict, WalkerReply, WalkerRequest,
};
use super::bindings::PluginPre;
use super::state::{PluginState, Rights};
use super::warm::{Warm, WarmPool};
use super::HostEnv;
use crate::policy::Actor;

/// Why a call into a plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin returned an error as data.
    #[error("{}: {}", crate::error::ErrorCode::from(.0.code), .0.message)]
    Plugin(PluginError),
    /// It ran past its deadline and was interrupted.
    #[error("plugin `{plugin}` exceeded its {ms} ms deadline")]
    Timeout {
        /// The plugin.
        plugin: String,
        /// Its deadline.
        ms: u128,
    },
    /// It tried to grow memory past its cap.
    #[error("plugin `{plugin}` exceeded its memory limit of {limit} bytes")]
    OutOfMemory {
        /// The plugin.
        plugin: String,
        /// Its cap.
        limit: usize,
    },
    /// It trapped (panicked, hit `unreachable`, ...).
    #[error("plugin `{plugin}` trapped: {message}")]
    Trap {
        /// The plugin.
        plugin: String,
        /// The trap, first line.
        message: String,
    },
    /// No instance could be had within its budget (scripted sockets' own
    /// budget, or one client's share of it).
    #[error("{0}")]
    Busy(String),
}

impl CallError {
    /// The metrics label for this failure (`switchboard_plugin_calls_total`).
    pub fn outcome(&self) -> &'static str {
        match self {
            CallError::Plugin(_) => "error",
            CallError::Timeout { .. } => "timeout",
            CallError::OutOfMemory { .. } => "out_of_memory",
            CallError::Trap { .. } => "trap",
            CallError::Busy(_) => "busy",
        }
    }
}

/// A compiled, validated plugin version.
pub struct LoadedPlugin {
    /// The manifest's name.
    pub name: Arc<str>,
    /// The file it came from.
    pub file: PathBuf,
    /// SHA-256 of the file's bytes.
    pub hash: String,
    /// What it serves.
    pub manifest: Manifest,
    /// Deadline per call.
    pub timeout: Duration,
    /// Linear-memory cap per instance.
    pub max_memory: usize,
    /// What its host calls may do beyond its caller's rights.
    pub(crate) rights: Rights,
    pub(crate) engine: Engine,
    pub(crate) pre: PluginPre<PluginState>,
    /// Instances kept between calls.
    pub(crate) warm: WarmPool,
    /// Its successful calls' counter, once looked up.
    pub(crate) calls_ok: std::sync::OnceLock<prometheus_client::metrics::counter::Counter>,
}

impl LoadedPlugin {
    /// A fresh store with this plugin's limits, acting for nobody yet. At
    /// every epoch tick a running call yields to the other tasks, and is
    /// interrupted once past its deadline: a looping plugin costs the
    /// async threads a tick at a time and fails its own call only.
    pub(crate) fn new_store(&self, env: Arc<HostEnv>) -> Store<PluginState> {
        let state = PluginState::new(env, self.name.clone(), self.rights, self.max_memory);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_callback(|ctx| {
            Ok(if Instant::now() >= ctx.data().deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
            })
        });
        self.arm_deadline(&mut store);
        store
    }

    /// Starts the deadline of the next call on `store`.
    pub(crate) fn arm_deadline(&self, store: &mut Store<PluginState>) {
        let state = store.data_mut();
        state.deadline = Instant::now() + self.timeout;
        state.limits.reset_refused();
        store.set_epoch_deadline(1);
    }

    /// A warm instance, or a fresh one, acting for `caller` (as a guard's
    /// call when `in_guard`).
    async fn checkout(
        &self,
        env: Arc<HostEnv>,
        caller: &Actor,
        in_guard: bool,
    ) -> Result<Warm, CallError> {
        let mut warm = match self.warm.take() {
            Some(warm) => warm,
            None => {
                let mut store = self.new_store(env);
                let instance = self.pre.instantiate_async(&mut store).await;
                let instance = instance.map_err(|e| self.classify(e, &store))?;
                Warm::new(store, instance)
            }
        };
        let state = warm.store.data_mut();
        state.caller = caller.clone();
        state.in_guard = in_guard;
        self.arm_deadline(&mut warm.store);
        Ok(warm)
    }

    /// Ends a call: the instance goes back to the pool only if it did not
    /// trap (a trapped instance is dropped with its store).
    fn checkin<R>(&self, warm: Warm, result: wasmtime::Result<R>) -> Result<R, CallError> {
        let result = result.map_err(|e| self.classify(e, &warm.store))?;
        self.warm.give(warm);
        Ok(result)
    }

    /// Calls a walker for `caller`.
    ///
    /// # Errors
    /// The plugin failed, trapped, timed out or ran out of memory.
    pub async fn call_walker(
        &self,
        env: Arc<HostEnv>,
        caller: &Actor,
        request: &WalkerRequest,
    ) -> Result<WalkerReply, CallError> {
        let mut warm = self.checkout(env, caller, false).await?;
        let result = warm
            .instance
            .switchboard_plugin_walker()
            .call_call(&mut warm.store, request)
            .await;
        self.checkin(warm, result)?.map_err(CallError::Plugin)
    }

    /// Asks the guard about `caller`.
    ///
    /// # Errors
    /// The plugin trapped, timed out or ran out of memory.
    pub async fn check_guard(
        &self,
        env: Arc<HostEnv>,
        caller: &Actor,
        request: &GuardRequest,
    ) -> Result<Verdict, CallError> {
        let mut warm = self.checkout(env, caller, true).await?;
        let result = warm
            .instance
            .switchboard_plugin_guard()
            .call_check(&mut warm.store, request)
            .await;
        self.checkin(warm, result)
    }

    /// Names what went wrong in a failed call on `store`: an interrupt is
    /// the deadline; a growth the store's limiter refused is memory.
    pub(crate) fn classify(&self, err: wasmtime::Error, store: &Store<PluginState>) -> CallError {
        let plugin = self.name.to_string();
        if matches!(
            err.downcast_ref::<wasmtime::Trap>(),
            Some(wasmtime::Trap::Interrupt)
        ) {
            return CallError::Timeout {
                plugin,
                ms: self.timeout.as_millis(),
            };
        }
        if store.data().limits.refused() {
            return CallError::OutOfMemory {
                plugin,
                limit: self.max_memory,
            };
        }
        let text = format!("{err:#}");
        CallError::Trap {
            plugin,
            message: text.lines().next().unwrap_or("trap").to_owned(),
        }
    }
}
