//! The embedded store: records and a change log in one redb file.
//!
//! A write changes the record and appends to the change log with the next
//! sequence number in one durable redb transaction, shared with the writes
//! that queued beside it (group commit: [`commit`]), and is acknowledged after that
//! commit; the caller then emits the change event. redb is blocking: the
//! [`Store`] methods run its calls on the blocking pool.

mod commit;

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::{Map, Value};

use super::group::{Queue, Write};
use super::{record, Committed, Predicate, Store, StoreError, StoreFuture, Stored};

/// resource, id → the sequence number of the record's last change (8 bytes,
/// big-endian) followed by the record's JSON.
const RECORDS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("records");
/// seq → change JSON (`{"resource","op","id","record"}`).
const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("changes");

/// redb's errors, as the store's.
macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Storage(e.to_string())
            }
        }
    )*};
}
db_err!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The embedded store (cheap to clone: one database).
#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<Redb>,
}

struct Redb {
    db: Database,
    max_record_bytes: usize,
    retention: u64,
    /// Writes waiting for the next group commit.
    queue: Queue,
    /// Transactions committed, to see how writes were grouped.
    commits: std::sync::atomic::AtomicU64,
}

impl RedbStore {
    /// Opens (or creates) the file at `path`.
    ///
    /// # Errors
    /// The file cannot be created or is not a redb database.
    pub fn open(path: &Path, max_record_bytes: usize, retention: u64) -> Result<Self, StoreError> {
        Ok(Self {
            inner: Arc::new(Redb::open(path, max_record_bytes, retention)?),
        })
    }

    /// Runs `f` on the blocking pool.
    fn blocking<'a, T: Send + 'static>(
        &self,
        f: impl FnOnce(&Redb) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'a, T> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || f(&inner))
                .await
                .map_err(|e| StoreError::Storage(e.to_string()))?
        })
    }

    /// Queues `write` (unless it was refused already) for the next group
    /// commit.
    fn write<'a>(&self, write: Result<Write, StoreError>) -> StoreFuture<'a, Committed> {
        let inner = self.inner.clone();
        Box::pin(async move { commit::submit(&inner, write?).await })
    }
}

impl Store for RedbStore {
    fn get<'a>(&'a self, resource: &'a str, id: &'a str) -> StoreFuture<'a, Option<Value>> {
        let (r, i) = (resource.to_owned(), id.to_owned());
        self.blocking(move |s| s.get(&r, &i))
    }

    fn scan<'a>(
        &'a self,
        resource: &'a str,
        cursor: Option<&'a str>,
        limit: usize,
        max_bytes: usize,
        keep: Predicate,
    ) -> StoreFuture<'a, (Vec<Stored>, bool)> {
        let (r, c) = (resource.to_owned(), cursor.map(str::to_owned));
        self.blocking(move |s| s.scan(&r, c.as_deref(), limit, max_bytes, |v| keep(v)))
    }

    fn insert<'a>(&'a self, resource: &'a str, record: Value) -> StoreFuture<'a, Committed> {
        self.write(Write::insert(resource, record))
    }

    fn update<'a>(
        &'a self,
        resource: &'a str,
        id: &'a str,
        patch: Value,
        allowed: Predicate,
    ) -> StoreFuture<'a, Committed> {
        self.write(Write::update(resource, id, patch, allowed))
    }

    fn delete<'a>(
        &'a self,
        resource: &'a str,
        id: &'a str,
        allowed: Predicate,
    ) -> StoreFuture<'a, Committed> {
        self.write(Write::delete(resource, id, allowed))
    }

    fn changes_since<'a>(
        &'a self,
        resource: &'a str,
        since: u64,
        max_bytes: usize,
    ) -> StoreFuture<'a, (Vec<Committed>, bool)> {
        let r = resource.to_owned();
        self.blocking(move |s| s.changes_since(&r, since, max_bytes))
    }

    /// One writer at a time: the newest sequence number of the whole log.
    fn last_seq<'a>(&'a self, _resource: &'a str) -> StoreFuture<'a, u64> {
        self.blocking(|s| s.last_seq())
    }

    fn kind(&self) -> &'static str {
        "redb"
    }
}

impl Redb {
    /// Opens (or creates) the file at `path`.
    ///
    /// # Errors
    /// The file cannot be created or is not a redb database.
    fn open(path: &Path, max_record_bytes: usize, retention: u64) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Storage(e.to_string()))?;
        }
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(RECORDS)?;
        txn.open_table(CHANGES)?;
        txn.commit()?;
        Ok(Self {
            db,
            max_record_bytes,
            retention: retention.max(1),
            queue: Queue::default(),
            commits: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// One record.
    ///
    /// # Errors
    /// Storage failure.
    fn get(&self, resource: &str, id: &str) -> Result<Option<Value>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RECORDS)?;
        Ok(table
            .get((resource, id))?
            .map(|v| decode_record(v.value()).record))
    }

    /// Records in id order after `cursor`, keeping those `keep` accepts,
    /// at most `limit` of them and `max_bytes` of their JSON (but at least
    /// one); also says whether more matching records follow.
    ///
    /// # Errors
    /// Storage failure.
    fn scan(
        &self,
        resource: &str,
        cursor: Option<&str>,
        limit: usize,
        max_bytes: usize,
        keep: impl Fn(&Value) -> bool,
    ) -> Result<(Vec<Stored>, bool), StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RECORDS)?;
        let start = match cursor {
            Some(c) => Bound::Excluded((resource, c)),
            None => Bound::Included((resource, "")),
        };
        let mut out = Vec::new();
        let mut bytes = 0;
        for entry in table.range::<(&str, &str)>((start, Bound::Unbounded))? {
            let (key, value) = entry?;
            if key.value().0 != resource {
                break;
            }
            let raw = value.value();
            let stored = decode_record(raw);
            if keep(&stored.record) {
                let full = out.len() == limit || (!out.is_empty() && bytes + raw.len() > max_bytes);
                if full {
                    return Ok((out, true));
                }
                bytes += raw.len();
                out.push(stored);
            }
        }
        Ok((out, false))
    }

    /// Changes to `resource` after `since`, oldest first, at most
    /// `max_bytes` of them, and whether that is everything after `since`
    /// (the log keeps the newest `retention` entries; a client further
    /// behind than `max_bytes` must re-read instead).
    ///
    /// # Errors
    /// Storage failure.
    fn changes_since(
        &self,
        resource: &str,
        since: u64,
        max_bytes: usize,
    ) -> Result<(Vec<Committed>, bool), StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CHANGES)?;
        // A `since` at the end of the range (u64::MAX) asks for nothing;
        // it must not wrap around to the start of the log.
        let Some(after) = since.checked_add(1) else {
            return Ok((Vec::new(), true));
        };
        let oldest = table.first()?.map(|(k, _)| k.value());
        let mut complete = oldest.is_none_or(|oldest| oldest <= after);
        let mut out = Vec::new();
        let mut bytes = 0;
        for entry in table.range(after..)? {
            let (seq, value) = entry?;
            let raw = value.value();
            let change = decode(raw);
            if change["resource"] != resource {
                continue;
            }
            if !out.is_empty() && bytes + raw.len() > max_bytes {
                complete = false;
                break;
            }
            bytes += raw.len();
            out.push(Committed {
                seq: seq.value(),
                op: record::op(change["op"].as_str().unwrap_or_default()),
                resource: resource.to_owned(),
                record: change["record"].clone(),
                previous: None,
            });
        }
        Ok((out, complete))
    }

    /// The newest sequence number (0 when nothing was written).
    ///
    /// # Errors
    /// Storage failure.
    fn last_seq(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CHANGES)?;
        let last = table.last()?.map(|(k, _)| k.value()).unwrap_or(0);
        Ok(last)
    }
}

fn decode_record(bytes: &[u8]) -> Stored {
    let (seq, json) = bytes.split_at(8.min(bytes.len()));
    Stored {
        seq: seq.try_into().map(u64::from_be_bytes).unwrap_or(0),
        record: decode(json),
    }
}

fn decode(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Object(Map::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store(dir: &tempfile::TempDir) -> RedbStore {
        RedbStore::open(&dir.path().join("t.redb"), 1024, 3).expect("open")
    }

    fn only(f: impl Fn(&Value) -> bool + Send + Sync + 'static) -> Predicate {
        Arc::new(f)
    }

    #[tokio::test]
    async fn crud_and_change_log() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        let a = s
            .insert("m", json!({"id": "a", "x": 1}))
            .await
            .expect("insert");
        assert_eq!(a.seq, 1);
        assert!(matches!(
            s.insert("m", json!({"id": "a"})).await,
            Err(StoreError::Exists(_))
        ));
        assert!(matches!(
            s.insert("m", json!([1])).await,
            Err(StoreError::BadRecord(_))
        ));
        assert!(matches!(
            s.insert("m", json!({"id": 5})).await,
            Err(StoreError::BadRecord(_))
        ));
        let big = "z".repeat(2000);
        assert!(matches!(
            s.insert("m", json!({"big": big})).await,
            Err(StoreError::TooLarge { .. })
        ));
        assert!(matches!(
            s.update("m", "a", json!({"x": 2}), only(|r| r["x"] == 5))
                .await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.update("m", "a", json!({"x": 2}), only(|r| r["x"] == 1))
                .await,
            Err(StoreError::OutOfScope)
        ));
        let u = s
            .update("m", "a", json!({"x": 2}), only(|_| true))
            .await
            .expect("update");
        assert_eq!(u.record, json!({"id": "a", "x": 2}));
        s.insert("n", json!({"id": "b"}))
            .await
            .expect("other resource");
        let (changes, complete) = s.changes_since("m", 0, usize::MAX).await.expect("changes");
        assert!(complete);
        assert!(s
            .changes_since("m", u64::MAX, usize::MAX)
            .await
            .expect("end")
            .0
            .is_empty());
        let (one, complete) = s.changes_since("m", 0, 1).await.expect("capped");
        assert_eq!(
            (one.len(), complete),
            (1, false),
            "a page that does not hold all"
        );
        assert_eq!(changes.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2]);
        assert!(matches!(
            s.delete("m", "a", only(|_| false)).await,
            Err(StoreError::NotFound(_))
        ));
        s.delete("m", "a", only(|_| true)).await.expect("delete");
        assert!(s.get("m", "a").await.expect("get").is_none());
        // Retention 3: seq 1 is gone now (4 entries written).
        let (_, complete) = s.changes_since("m", 0, usize::MAX).await.expect("changes");
        assert!(!complete);
        assert_eq!(s.last_seq("m").await.expect("seq"), 4);
    }

    /// Concurrent writes share commits, each with its own sequence number
    /// and outcome: a refused one fails alone; all the others are there
    /// after the store is reopened.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_commits_and_fail_alone() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        s.insert("m", json!({"id": "taken"})).await.expect("insert");
        let writes = (0..200).map(|n| {
            let s = s.clone();
            let id = if n == 100 {
                "taken".to_owned()
            } else {
                format!("r{n}")
            };
            tokio::spawn(async move { s.insert("m", json!({"id": id, "n": n})).await })
        });
        let outcomes = futures_util::future::join_all(writes).await;
        let mut seqs = Vec::new();
        for (n, outcome) in outcomes.into_iter().enumerate() {
            match outcome.expect("task") {
                Ok(committed) => seqs.push(committed.seq),
                Err(StoreError::Exists(id)) => assert_eq!((n, id.as_str()), (100, "taken")),
                Err(other) => panic!("write {n}: {other}"),
            }
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (2..=200).collect::<Vec<_>>(), "one seq each, no gaps");
        let commits = s.inner.commits.load(std::sync::atomic::Ordering::Relaxed);
        assert!(commits < 200, "{commits} commits for 200 writes");
        drop(s);
        let s = store(&dir);
        let (page, _) = s
            .scan("m", None, 1000, usize::MAX, only(|_| true))
            .await
            .expect("scan");
        assert_eq!(page.len(), 200, "199 writes and the first");
        assert_eq!(s.last_seq("m").await.expect("seq"), 200);
    }

    #[tokio::test]
    async fn scan_pages_in_id_order() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        for id in ["c", "a", "b", "d"] {
            s.insert("r", json!({"id": id, "even": id == "b" || id == "d"}))
                .await
                .expect("insert");
        }
        s.insert("q", json!({"id": "a"})).await.expect("insert");
        let (page, more) = s
            .scan("r", None, 2, usize::MAX, only(|_| true))
            .await
            .expect("scan");
        assert_eq!(
            page.iter()
                .map(|r| r.record["id"].clone())
                .collect::<Vec<_>>(),
            [json!("a"), json!("b")]
        );
        assert_eq!(page[0].seq, 2, "a was the second write");
        assert!(more);
        let (page, more) = s
            .scan("r", Some("b"), 2, usize::MAX, only(|_| true))
            .await
            .expect("scan");
        assert_eq!(page.len(), 2);
        assert!(!more);
        let (page, _) = s
            .scan("r", None, 10, usize::MAX, only(|r| r["even"] == true))
            .await
            .expect("scan");
        assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(page.len(), 2);
        let (page, more) = s
            .scan("r", None, 10, 1, only(|_| true))
            .await
            .expect("scan");
        assert_eq!(
            (page.len(), more),
            (1, true),
            "a byte budget still returns one"
        );
    }
}
