//! Group commit: writes that arrive while a commit is on its way to disk
//! share the next durable redb transaction.
//!
//! Why: a durable commit costs fsyncs, far more than the work of the write
//! itself, so one transaction per write caps the store at a few thousand
//! writes a second however many clients write. Here the first write of a
//! quiet moment starts a committer on the blocking pool; whatever queues
//! while it commits goes together in its next transaction, and so on until
//! the queue is empty. Each write still sees the ones before it (same
//! transaction, in order), gets the next sequence number, and is
//! acknowledged only after the commit that holds it.
//!
//! A committer that starts when the last batch held several writes waits
//! a moment (at most [`GATHER`]) for as many to queue again: writers that
//! each wait for their acknowledgement all come back together after a
//! commit, and without the wait the first of them would commit alone and
//! the rest would wait for the next one. A lone writer never waits.
//!
//! A write refused by its own rules (not found, exists, too large, out of
//! scope) decides before it touches a table, so it fails alone and the
//! others go on; a storage failure fails the whole batch, which redb then
//! rolls back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use redb::{ReadableTable, Table};
use serde_json::Value;
use tokio::sync::oneshot;

use super::{decode_record, Redb, CHANGES, RECORDS};
use crate::store::{record, Committed, StoreError};

/// What a write does to the record it finds (`None` when there is none):
/// the new record, or `None` to delete it.
pub(super) type Change = Box<dyn FnOnce(Option<Value>) -> Result<Option<Value>, StoreError> + Send>;

/// Most writes in one transaction, so one commit's latency stays bounded
/// when thousands queue at once.
const MAX_BATCH: usize = 1024;

/// Longest a committer waits for the writers of the last batch to queue
/// again: about one fsync here, so grouping costs a lone write of several
/// at most what it saves the others.
const GATHER: Duration = Duration::from_micros(100);

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

/// Writes waiting for a transaction, and whether a committer is at work.
#[derive(Default)]
pub(super) struct Queue {
    inner: Mutex<Pending>,
    /// Signalled when a write queues, for a committer that gathers.
    queued: Condvar,
}

#[derive(Default)]
struct Pending {
    writes: Vec<(Write, oneshot::Sender<Result<Committed, StoreError>>)>,
    committing: bool,
    /// How many writes the last batch held.
    last_batch: usize,
}

/// Queues `write` on `db`, starting a committer if none is at work, and
/// waits for its commit.
///
/// # Errors
/// The write's own refusal, or the storage failure of its batch.
pub(super) async fn submit(db: &Arc<Redb>, write: Write) -> Result<Committed, StoreError> {
    let (done, outcome) = oneshot::channel();
    let start = {
        let mut pending = db.queue.inner.lock();
        pending.writes.push((write, done));
        !std::mem::replace(&mut pending.committing, true)
    };
    db.queue.queued.notify_one();
    if start {
        let db = db.clone();
        tokio::task::spawn_blocking(move || commit_all(db));
    }
    outcome
        .await
        .map_err(|_| StoreError::Storage("the commit was abandoned".into()))?
}

/// Commits batches until the queue is empty. The database is let go
/// before the last batch is acknowledged, so a caller that drops the store
/// after its write can open the file again at once.
fn commit_all(db: Arc<Redb>) {
    let mut db = Some(db);
    while let Some(this) = db.as_ref() {
        let batch = {
            let mut pending = this.queue.inner.lock();
            let deadline = Instant::now() + GATHER;
            while pending.writes.len() < pending.last_batch.min(MAX_BATCH)
                && !this
                    .queue
                    .queued
                    .wait_until(&mut pending, deadline)
                    .timed_out()
            {}
            let n = pending.writes.len().min(MAX_BATCH);
            pending.last_batch = n;
            pending.writes.drain(..n).collect::<Vec<_>>()
        };
        let (writes, dones): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let outcomes = this.commit_batch(writes);
        let last = {
            let mut pending = this.queue.inner.lock();
            let empty = pending.writes.is_empty();
            if empty {
                pending.committing = false;
            }
            empty
        };
        if last {
            db = None;
        }
        match outcomes {
            Ok(outcomes) => {
                for (done, outcome) in dones.into_iter().zip(outcomes) {
                    let _ = done.send(outcome);
                }
            }
            Err(err) => {
                tracing::error!(%err, writes = dones.len(), "a group commit failed");
                let message = err.to_string();
                for done in dones {
                    let _ = done.send(Err(StoreError::Storage(message.clone())));
                }
            }
        }
    }
}

impl Redb {
    /// One transaction for `writes`, in order: each one's outcome, or the
    /// storage failure that undid them all.
    fn commit_batch(
        &self,
        writes: Vec<Write>,
    ) -> Result<Vec<Result<Committed, StoreError>>, StoreError> {
        let txn = self.db.begin_write()?;
        let mut outcomes = Vec::with_capacity(writes.len());
        {
            let mut records = txn.open_table(RECORDS)?;
            let mut changes = txn.open_table(CHANGES)?;
            let mut seq = changes.last()?.map(|(k, _)| k.value()).unwrap_or(0);
            for write in writes {
                let outcome = self.apply(&mut records, &mut changes, seq + 1, write)?;
                if outcome.is_ok() {
                    seq += 1;
                }
                outcomes.push(outcome);
            }
            if seq > self.retention {
                let cutoff = seq - self.retention;
                changes.retain_in(..=cutoff, |_, _| false)?;
            }
        }
        txn.commit()?;
        self.commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::trace!(writes = outcomes.len(), "group commit");
        Ok(outcomes)
    }

    /// One write as change `seq`: read the old record, compute the new one
    /// (`None` deletes), store it, append the change. The outer error is
    /// the storage's (the batch fails), the inner one the write's own
    /// refusal, decided before anything is written.
    fn apply(
        &self,
        records: &mut Table<(&str, &str), &[u8]>,
        changes: &mut Table<u64, &[u8]>,
        seq: u64,
        write: Write,
    ) -> Result<Result<Committed, StoreError>, StoreError> {
        let Write {
            resource,
            id,
            op,
            change,
        } = write;
        let old = records
            .get((resource.as_str(), id.as_str()))?
            .map(|v| decode_record(v.value()).record);
        let new = match change(old.clone()) {
            Ok(new) => new,
            Err(refused) => return Ok(Err(refused)),
        };
        let record = match new {
            Some(record) => {
                let json = match record::encode(&record, self.max_record_bytes) {
                    Ok(json) => json,
                    Err(refused) => return Ok(Err(refused)),
                };
                let mut bytes = Vec::with_capacity(8 + json.len());
                bytes.extend_from_slice(&seq.to_be_bytes());
                bytes.extend_from_slice(&json);
                records.insert((resource.as_str(), id.as_str()), bytes.as_slice())?;
                record
            }
            None => {
                records.remove((resource.as_str(), id.as_str()))?;
                old.unwrap_or(Value::Null)
            }
        };
        let entry = serde_json::json!({"resource": resource, "op": op, "id": id, "record": record});
        changes.insert(
            seq,
            serde_json::to_vec(&entry).unwrap_or_default().as_slice(),
        )?;
        Ok(Ok(Committed {
            seq,
            op,
            resource,
            record,
            previous: None,
        }))
    }
}
