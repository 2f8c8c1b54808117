//! Warm instances: a plugin instance that finished a call cleanly is kept
//! and serves the next call, instead of a fresh store and instantiation per
//! call. Instantiating (store, WASI state, core instances, data segments,
//! the guest's start-up code) cost several times the call itself, and was
//! the largest gap between a WASM walker and a native one.
//!
//! What keeps this safe: an instance that trapped, timed out or ran out of
//! memory is never reused (it is dropped with its store); an instance is
//! retired after `reuse_calls` calls or once its memory has grown past a
//! quarter of its cap, so a guest that leaks between calls is recycled
//! before the leak can fail a call; and the idle instances of all plugins
//! together hold at most half the instance pool, so keeping them warm can
//! never starve a fresh instantiation or a scripted socket of a slot.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use wasmtime::Store;

use super::bindings::Plugin;
use super::state::PluginState;

/// One instance with its store, between calls.
pub(crate) struct Warm {
    pub(crate) store: Store<PluginState>,
    pub(crate) instance: Plugin,
    calls: u32,
}

impl Warm {
    /// A freshly instantiated instance.
    pub(crate) fn new(store: Store<PluginState>, instance: Plugin) -> Self {
        Self {
            store,
            instance,
            calls: 0,
        }
    }
}

/// How many idle instances all plugins may hold together; shared by every
/// loaded plugin of one host.
#[derive(Debug)]
pub(crate) struct Budget {
    idle: AtomicUsize,
    max: usize,
}

impl Budget {
    /// A budget of `max` idle instances in all.
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            idle: AtomicUsize::new(0),
            max,
        })
    }

    fn reserve(&self) -> bool {
        self.idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    fn release(&self, n: usize) {
        self.idle.fetch_sub(n, Ordering::AcqRel);
    }
}

/// The idle instances of one plugin version.
pub(crate) struct WarmPool {
    idle: Mutex<Vec<Warm>>,
    budget: Arc<Budget>,
    /// Calls one instance serves before it is retired (1: never reused).
    reuse_calls: u32,
}

impl WarmPool {
    /// An empty pool whose instances serve `reuse_calls` calls each.
    pub(crate) fn new(budget: Arc<Budget>, reuse_calls: u32) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            budget,
            reuse_calls,
        }
    }

    /// An idle instance, if one is kept.
    pub(crate) fn take(&self) -> Option<Warm> {
        let warm = self.idle.lock().pop();
        if warm.is_some() {
            self.budget.release(1);
        }
        warm
    }

    /// Returns an instance after a clean call; keeps it unless it is worn
    /// out, has grown, or the budget is spent.
    pub(crate) fn give(&self, mut warm: Warm) {
        warm.calls += 1;
        // Between calls the instance acts for nobody.
        warm.store.data_mut().caller = crate::policy::Actor::anonymous();
        let worn = warm.calls >= self.reuse_calls || warm.store.data().limits.grown();
        if !worn && self.budget.reserve() {
            self.idle.lock().push(warm);
        }
    }
}

impl Drop for WarmPool {
    fn drop(&mut self) {
        self.budget.release(self.idle.get_mut().len());
    }
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn budget_refuses_past_its_max_and_recovers_on_release() {
        let budget = Budget::new(2);
        assert!(budget.reserve());
        assert!(budget.reserve());
        assert!(!budget.reserve(), "third idle instance is over budget");
        budget.release(1);
        assert!(budget.reserve());
    }
}
