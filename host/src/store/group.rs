//! Group commit, the part both backends share: the queue of writes waiting
//! for a transaction, and what a write is.
//!
//! Why: a durable commit costs a flush to disk, far more than the work of
//! the write itself, so one transaction per write caps a store at a few
//! thousand writes a second however many clients write. Here the first
//! write of a quiet moment starts a committer; whatever queues while it
//! commits goes together in its next transaction, and so on until the
//! queue is empty. Each write still sees the ones before it (same
//! transaction, in order), gets the next sequence number, and is
//! acknowledged only after the commit that holds it.
//!
//! A write refused by its own rules (not found, exists, too large, out of
//! scope) decides before anything is written, so it fails alone and the
//! others go on; a storage failure fails the whole batch, which the
//! backend rolls back.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde_json::Value;
use tokio::sync::oneshot;

use super::{record, Committed, Predicate, StoreError};

/// What a write does to the record it finds (`None` when there is none):
/// the new record, or `None` to delete it.
pub(super) type Change = Box<dyn FnOnce(Option<Value>) -> Result<Option<Value>, StoreError> + Send>;

/// Most writes in one transaction, so one commit's latency stays bounded
/// when thousands queue at once.
pub(super) const MAX_BATCH: usize = 1024;

/// One queued write.
pub(super) struct Write {
    /// Its resource.
    pub resource: String,
    /// The record's id.
    pub id: String,
    /// `insert`, `update` or `delete`, for the change log.
    pub op: &'static str,
    /// The write itself.
    pub change: Change,
}

impl Write {
    /// An insert of `record` into `resource`.
    ///
    /// # Errors
    /// The record is not an object or its id is not a string.
    pub(super) fn insert(resource: &str, record: Value) -> Result<Self, StoreError> {
        let (id, record) = record::for_insert(record)?;
        let key = id.clone();
        Ok(Self {
            resource: resource.to_owned(),
            id,
            op: "insert",
            change: Box::new(move |old| record::insert_over(old, &key, record)),
        })
    }

    /// An update of record `id` by `patch`, if `allowed` admits it.
    ///
    /// # Errors
    /// A bad id, or the patch is not an object or changes the id.
    pub(super) fn update(
        resource: &str,
        id: &str,
        patch: Value,
        allowed: Predicate,
    ) -> Result<Self, StoreError> {
        record::check_id(id)?;
        let patch = record::patch(id, patch)?;
        let key = id.to_owned();
        Ok(Self {
            resource: resource.to_owned(),
            id: id.to_owned(),
            op: "update",
            change: Box::new(move |old| record::update_over(old, &key, patch, &allowed)),
        })
    }

    /// A delete of record `id`, if `allowed` admits it.
    ///
    /// # Errors
    /// A bad id.
    pub(super) fn delete(resource: &str, id: &str, allowed: Predicate) -> Result<Self, StoreError> {
        record::check_id(id)?;
        let key = id.to_owned();
        Ok(Self {
            resource: resource.to_owned(),
            id: id.to_owned(),
            op: "delete",
            change: Box::new(move |old| record::delete_over(old, &key, &allowed)),
        })
    }
}

/// Where a write's outcome goes.
pub(super) type Done = oneshot::Sender<Result<Committed, StoreError>>;

/// Writes waiting for a transaction, and whether a committer is at work.
#[derive(Default)]
pub(super) struct Queue {
    inner: Mutex<Pending>,
    /// Signalled when a write queues, for a committer that gathers.
    queued: Condvar,
}

#[derive(Default)]
struct Pending {
    writes: Vec<(Write, Done)>,
    committing: bool,
    /// How many writes the last batch held.
    last_batch: usize,
}

impl Queue {
    /// Queues `write`; returns where its outcome will arrive, and whether
    /// the caller must start a committer (none is at work).
    pub(super) fn push(
        &self,
        write: Write,
    ) -> (bool, oneshot::Receiver<Result<Committed, StoreError>>) {
        let (done, outcome) = oneshot::channel();
        let start = {
            let mut pending = self.inner.lock();
            pending.writes.push((write, done));
            !std::mem::replace(&mut pending.committing, true)
        };
        self.queued.notify_one();
        (start, outcome)
    }

    /// The next batch, in arrival order. With `gather`, a committer on a
    /// thread of its own first waits (at most that long) for as many
    /// writes as the last batch held: writers that each wait for their
    /// acknowledgement all come back together after a commit, and without
    /// the wait the first of them would commit alone. A lone writer never
    /// waits.
    pub(super) fn take(&self, gather: Option<Duration>) -> (Vec<Write>, Vec<Done>) {
        let mut pending = self.inner.lock();
        if let Some(gather) = gather {
            let deadline = Instant::now() + gather;
            while pending.writes.len() < pending.last_batch.min(MAX_BATCH)
                && !self.queued.wait_until(&mut pending, deadline).timed_out()
            {}
        }
        let n = pending.writes.len().min(MAX_BATCH);
        pending.last_batch = n;
        pending.writes.drain(..n).unzip()
    }

    /// After a commit: whether the committer is done (nothing queued
    /// meanwhile); if so the next write starts a new one.
    pub(super) fn finished(&self) -> bool {
        let mut pending = self.inner.lock();
        let empty = pending.writes.is_empty();
        if empty {
            pending.committing = false;
        }
        empty
    }
}

/// Sends each write of a batch its outcome: its own, or the failure of the
/// whole batch.
pub(super) fn deliver(
    dones: Vec<Done>,
    outcomes: Result<Vec<Result<Committed, StoreError>>, StoreError>,
) {
    match outcomes {
        Ok(outcomes) => {
            for (done, outcome) in dones.into_iter().zip(outcomes) {
                let _ = done.send(outcome);
            }
        }
        Err(err) => {
            tracing::error!(%err, writes = dones.len(), "a group commit failed");
            for done in dones {
                let _ = done.send(Err(err.clone()));
            }
        }
    }
}

/// Waits for a queued write's outcome.
///
/// # Errors
/// The write's own refusal, or the failure of its batch.
pub(super) async fn outcome(
    outcome: oneshot::Receiver<Result<Committed, StoreError>>,
) -> Result<Committed, StoreError> {
    outcome
        .await
        .map_err(|_| StoreError::Storage("the commit was abandoned".into()))?
}
