//! Group commit on PostgreSQL ([`crate::store::group`] says why): a
//! committer task turns each batch into one transaction. It takes the
//! advisory locks of every resource in the batch in one statement, in
//! the order of their keys, so two nodes' batches over the same resources
//! queue behind each other instead of deadlocking; then, per write, reads
//! the record, decides, and stores it with its change and notification
//! (see the module above); then commits once.

use std::collections::HashMap;
use std::sync::Arc;

use deadpool_postgres::{Pool, Transaction};
use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::{pg_error, pool_error, READ, REMOVE, TRIM_EVERY, WRITE};
use crate::store::group::{self, Queue, Write};
use crate::store::{record, Committed, StoreError};

/// Every resource's advisory lock ($1: their names), taken in key order.
const LOCK_ALL: &str = "SELECT pg_advisory_xact_lock(key)
    FROM (SELECT DISTINCT hashtext(name) AS key FROM unnest($1::text[]) AS name ORDER BY key) AS k";

/// What the committer needs of the store (its own handle, since it runs
/// as a task of its own).
pub(super) struct Committer {
    pub(super) pool: Pool,
    pub(super) max_record_bytes: usize,
    pub(super) retention: i64,
    /// This process's tag in notifications.
    pub(super) instance: String,
    pub(super) queue: Queue,
}

/// Queues `write`, starting a committer if none is at work, and waits for
/// its commit.
///
/// # Errors
/// The write's own refusal, or the failure of its batch (UNAVAILABLE when
/// PostgreSQL cannot be reached).
pub(super) async fn submit(
    committer: &Arc<Committer>,
    write: Write,
) -> Result<Committed, StoreError> {
    let (start, outcome) = committer.queue.push(write);
    if start {
        tokio::spawn(commit_all(committer.clone()));
    }
    group::outcome(outcome).await
}

/// Commits batches until the queue is empty.
async fn commit_all(committer: Arc<Committer>) {
    loop {
        let (writes, dones) = committer.queue.take(None);
        let outcomes = committer.commit_batch(writes).await;
        let last = committer.queue.finished();
        group::deliver(dones, outcomes);
        if last {
            return;
        }
    }
}

impl Committer {
    /// One transaction for `writes`, in order: each one's outcome, or the
    /// failure that undid them all.
    async fn commit_batch(
        &self,
        writes: Vec<Write>,
    ) -> Result<Vec<Result<Committed, StoreError>>, StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let mut resources: Vec<&str> = writes.iter().map(|w| w.resource.as_str()).collect();
        resources.sort_unstable();
        resources.dedup();
        let lock = tx.prepare_cached(LOCK_ALL).await.map_err(pg_error)?;
        tx.execute(&lock, &[&resources]).await.map_err(pg_error)?;
        drop(resources);
        let planned = self.plan(&tx, writes).await?;
        // Every statement at once: one connection runs them in the order
        // sent, so each sees the ones before it, in one round trip.
        let write = tx.prepare_cached(WRITE).await.map_err(pg_error)?;
        let remove = tx.prepare_cached(REMOVE).await.map_err(pg_error)?;
        let notices: Vec<String> = planned
            .iter()
            .flatten()
            .map(|store| format!("{}\n{}", self.instance, store.resource))
            .collect();
        let params: Vec<[&(dyn ToSql + Sync); 5]> = planned
            .iter()
            .flatten()
            .zip(&notices)
            .map(|(store, notice)| {
                [
                    &store.resource as &(dyn ToSql + Sync),
                    &store.id,
                    &store.record,
                    &store.op,
                    notice,
                ]
            })
            .collect();
        let stored = futures_util::future::try_join_all(planned.iter().flatten().zip(&params).map(
            |(store, params)| {
                let statement = if store.deletes { &remove } else { &write };
                tx.query_one(statement, params)
            },
        ))
        .await
        .map_err(pg_error)?;
        let mut rows = stored.into_iter();
        let mut outcomes = Vec::with_capacity(planned.len());
        let mut trim = None;
        for plan in planned {
            outcomes.push(plan.map(|store| {
                let row = rows.next().expect("a row per statement");
                let (seq, previous): (i64, i64) = (row.get(0), row.get(1));
                if seq % TRIM_EVERY == 0 && seq > self.retention {
                    trim = Some(seq - self.retention);
                }
                Committed {
                    seq: seq as u64,
                    op: store.op,
                    resource: store.resource,
                    record: store.record,
                    previous: Some(previous as u64),
                }
            }));
        }
        if let Some(cutoff) = trim {
            tx.execute("DELETE FROM sb_changes WHERE seq <= $1", &[&cutoff])
                .await
                .map_err(pg_error)?;
            tx.execute(
                "UPDATE sb_meta SET value = greatest(value, $1) WHERE key = 'trimmed_upto'",
                &[&cutoff],
            )
            .await
            .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)?;
        tracing::trace!(writes = outcomes.len(), "group commit");
        Ok(outcomes)
    }

    /// Decides every write of a batch, in order: reads the records they
    /// touch (all at once), then runs each write's rules on the record as
    /// the writes before it in the batch left it. A refused write is its
    /// own `Err`; the outer error is PostgreSQL's.
    async fn plan(
        &self,
        tx: &Transaction<'_>,
        writes: Vec<Write>,
    ) -> Result<Vec<Result<Planned, StoreError>>, StoreError> {
        let mut keys: Vec<(&str, &str)> = writes
            .iter()
            .map(|w| (w.resource.as_str(), w.id.as_str()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let read = tx.prepare_cached(READ).await.map_err(pg_error)?;
        let params: Vec<[&(dyn ToSql + Sync); 2]> = keys
            .iter()
            .map(|(resource, id)| [resource as &(dyn ToSql + Sync), id])
            .collect();
        let rows = futures_util::future::try_join_all(
            params.iter().map(|params| tx.query_opt(&read, params)),
        )
        .await
        .map_err(pg_error)?;
        let mut current: HashMap<(String, String), Option<Value>> = keys
            .iter()
            .zip(rows)
            .map(|(&(r, i), row)| ((r.to_owned(), i.to_owned()), row.map(|row| row.get(0))))
            .collect();
        let mut planned = Vec::with_capacity(writes.len());
        for Write {
            resource,
            id,
            op,
            change,
        } in writes
        {
            let key = (resource, id);
            let old = current.get(&key).cloned().flatten();
            let decided = change(old.clone()).and_then(|new| {
                if let Some(record) = &new {
                    record::encode(record, self.max_record_bytes)?;
                }
                Ok(new)
            });
            planned.push(decided.map(|new| {
                current.insert(key.clone(), new.clone());
                let (resource, id) = key;
                let deletes = new.is_none();
                Planned {
                    resource,
                    id,
                    op,
                    record: new.or(old).unwrap_or(Value::Null),
                    deletes,
                }
            }));
        }
        Ok(planned)
    }
}

/// A write its rules accepted, ready to store.
struct Planned {
    resource: String,
    id: String,
    op: &'static str,
    /// The record to store and log: the new one, or, for a delete, the
    /// one it removes.
    record: Value,
    /// Whether the write removes the record.
    deletes: bool,
}
