//! Change events from a shared store. Several nodes write to it, so a
//! node cannot announce only its own writes: it announces each resource's
//! change log in `seq` order, from where it last got to, whenever it
//! writes (before replying) and whenever the store says another node did.
//! The store commits one resource's changes in `seq` order, so reading
//! "after the last announced" never skips one, and the floor moving under
//! a per-resource lock means nothing is announced twice.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::Resources;
use crate::store::StoreError;

/// Per resource: the newest `seq` announced.
#[derive(Default)]
pub(super) struct Feed {
    floors: Mutex<HashMap<String, Arc<tokio::sync::Mutex<u64>>>>,
}

impl Resources {
    /// With a shared store: sets every configured resource's floor to its
    /// current `seq` (changes before the node started are history, not
    /// news) and starts announcing other nodes' changes. Nothing to do on
    /// a store of the node's own.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn start_feed(self: &Arc<Self>) -> Result<(), StoreError> {
        if !self.store.shared() {
            return Ok(());
        }
        let names: Vec<String> = self.policy.resource_names().cloned().collect();
        for name in &names {
            let seq = self.store.last_seq(name).await?;
            self.feed
                .floors
                .lock()
                .insert(name.clone(), Arc::new(tokio::sync::Mutex::new(seq)));
        }
        if let Some(mut wakeups) = self.store.wakeups() {
            let resources = Arc::downgrade(self);
            tokio::spawn(async move {
                while let Some(resource) = wakeups.recv().await {
                    let Some(resources) = resources.upgrade() else {
                        break;
                    };
                    if resource.is_empty() {
                        for name in &names {
                            resources.catch_up(name).await;
                        }
                    } else {
                        resources.catch_up(&resource).await;
                    }
                }
            });
        }
        Ok(())
    }

    /// Announces a change this node just committed: directly when it
    /// follows the last one announced, else by reading the log up to it.
    pub(super) async fn announce_written(&self, committed: crate::store::Committed) {
        let Some(floor) = self.feed.floors.lock().get(&committed.resource).cloned() else {
            return;
        };
        let mut floor = floor.lock().await;
        if committed.previous == Some(*floor) {
            *floor = committed.seq;
            self.emit(committed);
        } else if committed.seq > *floor {
            let resource = committed.resource.clone();
            self.read_on(&resource, &mut floor).await;
        }
    }

    /// Announces `resource`'s changes after its floor, in order.
    pub(super) async fn catch_up(&self, resource: &str) {
        let Some(floor) = self.feed.floors.lock().get(resource).cloned() else {
            return;
        };
        let mut floor = floor.lock().await;
        self.read_on(resource, &mut floor).await;
    }

    /// Reads the log after `floor` and announces it, moving the floor.
    async fn read_on(&self, resource: &str, floor: &mut u64) {
        loop {
            let (changes, complete) = match self
                .store
                .changes_since(resource, *floor, self.page_bytes)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    // The next write or wake-up reads on from the same floor.
                    tracing::warn!(resource, error = %e, "change events delayed: the store cannot be read");
                    return;
                }
            };
            let empty = changes.is_empty();
            for change in changes {
                *floor = change.seq;
                self.emit(change);
            }
            if complete || empty {
                return;
            }
        }
    }
}
