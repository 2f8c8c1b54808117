//! Group commit on redb ([`crate::store::group`] says why): a committer on
//! the blocking pool turns each batch into one durable redb transaction.
//! It gathers for up to [`GATHER`] before a batch, about one fsync here,
//! so grouping costs a lone write among several at most what it saves
//! the others.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redb::{ReadableTable, Table};
use serde_json::Value;

use super::{decode_record, Redb, CHANGES, RECORDS};
use crate::store::group::{self, Write};
use crate::store::{record, Committed, StoreError};

/// Longest a committer waits for the writers of the last batch to queue
/// again.
const GATHER: Duration = Duration::from_micros(100);

/// Queues `write` on `db`, starting a committer if none is at work, and
/// waits for its commit.
///
/// # Errors
/// The write's own refusal, or the storage failure of its batch.
pub(super) async fn submit(db: &Arc<Redb>, write: Write) -> Result<Committed, StoreError> {
    let (start, outcome) = db.queue.push(write);
    if start {
        let db = db.clone();
        tokio::task::spawn_blocking(move || commit_all(db));
    }
    group::outcome(outcome).await
}

/// Commits batches until the queue is empty. The database is let go
/// before the last batch is acknowledged, so a caller that drops the store
/// after its write can open the file again at once.
fn commit_all(db: Arc<Redb>) {
    let mut db = Some(db);
    while let Some(this) = db.as_ref() {
        let (writes, dones) = this.queue.take(Some(GATHER));
        let outcomes = this.commit_batch(writes);
        if this.queue.finished() {
            db = None;
        }
        group::deliver(dones, outcomes);
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
        self.commits.fetch_add(1, Ordering::Relaxed);
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
