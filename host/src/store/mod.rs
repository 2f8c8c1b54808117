//! The embedded store: records and a change log in one redb file.
//!
//! Every write is one redb transaction that changes the record and appends
//! to the change log with the next sequence number, committed durably
//! before it is acknowledged; the caller then emits the change event. The
//! API is blocking (redb is): async callers go through `spawn_blocking`.

use std::ops::Bound;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::{Map, Value};

/// resource, id → the sequence number of the record's last change (8 bytes,
/// big-endian) followed by the record's JSON.
const RECORDS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("records");
/// seq → change JSON (`{"resource","op","id","record"}`).
const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("changes");

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed (I/O, corruption...).
    #[error("storage error: {0}")]
    Db(#[from] redb::Error),
    /// The record is not a JSON object, or its id is not a string.
    #[error("{0}")]
    BadRecord(String),
    /// The record is larger than allowed.
    #[error("record is {size} bytes; the limit is {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// No record with that id.
    #[error("record `{0}` not found")]
    NotFound(String),
    /// Insert of an id that exists.
    #[error("record `{0}` already exists")]
    Exists(String),
    /// The written record would fall outside what the writer may reach.
    #[error("the record would leave what you may write")]
    OutOfScope,
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )*};
}
db_err!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A committed change.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// Its sequence number.
    pub seq: u64,
    /// `insert`, `update` or `delete`.
    pub op: &'static str,
    /// The resource.
    pub resource: String,
    /// The record after (before, for deletes).
    pub record: Value,
}

/// The store.
pub struct Store {
    db: Database,
    max_record_bytes: usize,
    retention: u64,
}

impl Store {
    /// Opens (or creates) the file at `path`.
    ///
    /// # Errors
    /// The file cannot be created or is not a redb database.
    pub fn open(path: &Path, max_record_bytes: usize, retention: u64) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Db(redb::StorageError::Io(e).into()))?;
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
        })
    }

    /// One record.
    ///
    /// # Errors
    /// Storage failure.
    pub fn get(&self, resource: &str, id: &str) -> Result<Option<Value>, StoreError> {
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
    pub fn scan(
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

    /// Inserts a record; makes an id when it has none.
    ///
    /// # Errors
    /// Not an object, bad id, too large, id taken, storage failure.
    pub fn insert(&self, resource: &str, record: Value) -> Result<Committed, StoreError> {
        let Value::Object(mut record) = record else {
            return Err(StoreError::BadRecord("record must be a JSON object".into()));
        };
        let id = match record.get("id") {
            None | Some(Value::Null) => uuid::Uuid::new_v4().simple().to_string(),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => s.clone(),
            Some(_) => {
                return Err(StoreError::BadRecord(
                    "`id` must be a non-empty string of at most 256 bytes".into(),
                ))
            }
        };
        record.insert("id".into(), Value::String(id.clone()));
        self.write(resource, &id, "insert", |old| match old {
            Some(_) => Err(StoreError::Exists(id.clone())),
            None => Ok(Some(Value::Object(record))),
        })
    }

    /// Merges `patch` into a record (top-level fields; `id` cannot change).
    /// `allowed` is checked inside the transaction: a current record it
    /// refuses counts as missing, a result it refuses is not written.
    ///
    /// # Errors
    /// Missing (or not allowed) record, bad patch, a result outside
    /// `allowed`, too large, storage failure.
    pub fn update(
        &self,
        resource: &str,
        id: &str,
        patch: Value,
        allowed: impl Fn(&Value) -> bool,
    ) -> Result<Committed, StoreError> {
        let Value::Object(patch) = patch else {
            return Err(StoreError::BadRecord(
                "update data must be a JSON object".into(),
            ));
        };
        if patch.get("id").is_some_and(|v| v.as_str() != Some(id)) {
            return Err(StoreError::BadRecord("`id` cannot be changed".into()));
        }
        self.write(resource, id, "update", |old| {
            let Some(Value::Object(mut record)) = old.filter(&allowed) else {
                return Err(StoreError::NotFound(id.to_owned()));
            };
            record.extend(patch);
            let record = Value::Object(record);
            if !allowed(&record) {
                return Err(StoreError::OutOfScope);
            }
            Ok(Some(record))
        })
    }

    /// Deletes a record; one `allowed` refuses counts as missing.
    ///
    /// # Errors
    /// Missing (or not allowed) record, storage failure.
    pub fn delete(
        &self,
        resource: &str,
        id: &str,
        allowed: impl Fn(&Value) -> bool,
    ) -> Result<Committed, StoreError> {
        self.write(resource, id, "delete", |old| match old.filter(&allowed) {
            Some(_) => Ok(None),
            None => Err(StoreError::NotFound(id.to_owned())),
        })
    }

    /// One transaction: read the old record, compute the new one (None
    /// deletes), store it, append the change, commit.
    fn write(
        &self,
        resource: &str,
        id: &str,
        op: &'static str,
        change: impl FnOnce(Option<Value>) -> Result<Option<Value>, StoreError>,
    ) -> Result<Committed, StoreError> {
        let txn = self.db.begin_write()?;
        let committed = {
            let mut records = txn.open_table(RECORDS)?;
            let old = records
                .get((resource, id))?
                .map(|v| decode_record(v.value()).record);
            let new = change(old.clone())?;
            let mut changes = txn.open_table(CHANGES)?;
            let seq = changes.last()?.map(|(k, _)| k.value()).unwrap_or(0) + 1;
            let record = match &new {
                Some(record) => {
                    let json = serde_json::to_vec(record).unwrap_or_default();
                    if json.len() > self.max_record_bytes {
                        return Err(StoreError::TooLarge {
                            size: json.len(),
                            limit: self.max_record_bytes,
                        });
                    }
                    let mut bytes = Vec::with_capacity(8 + json.len());
                    bytes.extend_from_slice(&seq.to_be_bytes());
                    bytes.extend_from_slice(&json);
                    records.insert((resource, id), bytes.as_slice())?;
                    record.clone()
                }
                None => {
                    records.remove((resource, id))?;
                    old.unwrap_or(Value::Null)
                }
            };
            let entry =
                serde_json::json!({"resource": resource, "op": op, "id": id, "record": record});
            changes.insert(
                seq,
                serde_json::to_vec(&entry).unwrap_or_default().as_slice(),
            )?;
            if seq > self.retention {
                let cutoff = seq - self.retention;
                changes.retain_in(..=cutoff, |_, _| false)?;
            }
            Committed {
                seq,
                op,
                resource: resource.to_owned(),
                record,
            }
        };
        txn.commit()?;
        Ok(committed)
    }

    /// Changes to `resource` after `since`, oldest first, at most
    /// `max_bytes` of them, and whether that is everything after `since`
    /// (the log keeps the newest `retention` entries; a client further
    /// behind than `max_bytes` must re-read instead).
    ///
    /// # Errors
    /// Storage failure.
    pub fn changes_since(
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
                op: match change["op"].as_str() {
                    Some("insert") => "insert",
                    Some("update") => "update",
                    _ => "delete",
                },
                resource: resource.to_owned(),
                record: change["record"].clone(),
            });
        }
        Ok((out, complete))
    }

    /// The newest sequence number (0 when nothing was written).
    ///
    /// # Errors
    /// Storage failure.
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CHANGES)?;
        let last = table.last()?.map(|(k, _)| k.value()).unwrap_or(0);
        Ok(last)
    }
}

/// A record and the sequence number of its last change.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The record.
    pub record: Value,
    /// Its last change's sequence number.
    pub seq: u64,
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

    fn store(dir: &tempfile::TempDir) -> Store {
        Store::open(&dir.path().join("t.redb"), 1024, 3).expect("open")
    }

    #[test]
    fn crud_and_change_log() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        let a = s.insert("m", json!({"id": "a", "x": 1})).expect("insert");
        assert_eq!(a.seq, 1);
        assert!(matches!(
            s.insert("m", json!({"id": "a"})),
            Err(StoreError::Exists(_))
        ));
        assert!(matches!(
            s.insert("m", json!([1])),
            Err(StoreError::BadRecord(_))
        ));
        assert!(matches!(
            s.insert("m", json!({"id": 5})),
            Err(StoreError::BadRecord(_))
        ));
        let big = "z".repeat(2000);
        assert!(matches!(
            s.insert("m", json!({"big": big})),
            Err(StoreError::TooLarge { .. })
        ));
        assert!(matches!(
            s.update("m", "a", json!({"x": 2}), |r| r["x"] == 5),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.update("m", "a", json!({"x": 2}), |r| r["x"] == 1),
            Err(StoreError::OutOfScope)
        ));
        let u = s
            .update("m", "a", json!({"x": 2}), |_| true)
            .expect("update");
        assert_eq!(u.record, json!({"id": "a", "x": 2}));
        s.insert("n", json!({"id": "b"})).expect("other resource");
        let (changes, complete) = s.changes_since("m", 0, usize::MAX).expect("changes");
        assert!(complete);
        assert!(s
            .changes_since("m", u64::MAX, usize::MAX)
            .expect("end")
            .0
            .is_empty());
        let (one, complete) = s.changes_since("m", 0, 1).expect("capped");
        assert_eq!(
            (one.len(), complete),
            (1, false),
            "a page that does not hold all"
        );
        assert_eq!(changes.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2]);
        assert!(matches!(
            s.delete("m", "a", |_| false),
            Err(StoreError::NotFound(_))
        ));
        s.delete("m", "a", |_| true).expect("delete");
        assert!(s.get("m", "a").expect("get").is_none());
        // Retention 3: seq 1 is gone now (4 entries written).
        let (_, complete) = s.changes_since("m", 0, usize::MAX).expect("changes");
        assert!(!complete);
        assert_eq!(s.last_seq().expect("seq"), 4);
    }

    #[test]
    fn scan_pages_in_id_order() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        for id in ["c", "a", "b", "d"] {
            s.insert("r", json!({"id": id, "even": id == "b" || id == "d"}))
                .expect("insert");
        }
        s.insert("q", json!({"id": "a"})).expect("insert");
        let (page, more) = s.scan("r", None, 2, usize::MAX, |_| true).expect("scan");
        assert_eq!(
            page.iter()
                .map(|r| r.record["id"].clone())
                .collect::<Vec<_>>(),
            [json!("a"), json!("b")]
        );
        assert_eq!(page[0].seq, 2, "a was the second write");
        assert!(more);
        let (page, more) = s
            .scan("r", Some("b"), 2, usize::MAX, |_| true)
            .expect("scan");
        assert_eq!(page.len(), 2);
        assert!(!more);
        let (page, _) = s
            .scan("r", None, 10, usize::MAX, |r| r["even"] == true)
            .expect("scan");
        assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(page.len(), 2);
        let (page, more) = s.scan("r", None, 10, 1, |_| true).expect("scan");
        assert_eq!(
            (page.len(), more),
            (1, true),
            "a byte budget still returns one"
        );
    }
}
