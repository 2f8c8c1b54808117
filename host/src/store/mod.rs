//! Where resources live: one interface ([`Store`]) over two backends —
//! redb, embedded in the process (the default), and PostgreSQL, which
//! several nodes share (`store.url`).
//!
//! Both keep records and a change log, and both commit a write and its
//! change-log entry in one durable transaction before it is acknowledged,
//! with a sequence number from the store itself, increasing per resource
//! in commit order. The rules for what a record may be (an object, a
//! string id, a size cap, how an update merges) are one module
//! ([`record`]), so the backends cannot drift apart.

mod group;
mod postgres;
mod record;
mod redb;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::sync::mpsc;

pub use postgres::PgStore;
pub use redb::RedbStore;

/// Why a store operation failed. `Clone`, so a batch's failure reaches
/// every write in it as itself (UNAVAILABLE stays UNAVAILABLE).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, corruption, a rejected statement...).
    #[error("storage error: {0}")]
    Storage(String),
    /// The backend cannot be reached (PostgreSQL down or restarting).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
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
    /// For a write just made on a shared store: the `seq` of the
    /// resource's change before it (so a node that announced up to that
    /// one can announce this one without reading the log).
    pub previous: Option<u64>,
}

/// A record and the sequence number of its last change.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The record.
    pub record: Value,
    /// Its last change's sequence number.
    pub seq: u64,
}

/// Which records an operation may see or touch (the caller's grant).
pub type Predicate = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

/// The result of a store call.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// A resource store.
pub trait Store: Send + Sync {
    /// One record.
    fn get<'a>(&'a self, resource: &'a str, id: &'a str) -> StoreFuture<'a, Option<Value>>;

    /// Records in id order after `cursor`, keeping those `keep` accepts, at
    /// most `limit` of them and `max_bytes` of their JSON (but at least
    /// one); also says whether more matching records follow.
    fn scan<'a>(
        &'a self,
        resource: &'a str,
        cursor: Option<&'a str>,
        limit: usize,
        max_bytes: usize,
        keep: Predicate,
    ) -> StoreFuture<'a, (Vec<Stored>, bool)>;

    /// Inserts a record; makes an id when it has none.
    fn insert<'a>(&'a self, resource: &'a str, record: Value) -> StoreFuture<'a, Committed>;

    /// Merges `patch` into a record (top-level fields; `id` cannot change).
    /// `allowed` is checked inside the transaction: a current record it
    /// refuses counts as missing, a result it refuses is not written.
    fn update<'a>(
        &'a self,
        resource: &'a str,
        id: &'a str,
        patch: Value,
        allowed: Predicate,
    ) -> StoreFuture<'a, Committed>;

    /// Deletes a record; one `allowed` refuses counts as missing.
    fn delete<'a>(
        &'a self,
        resource: &'a str,
        id: &'a str,
        allowed: Predicate,
    ) -> StoreFuture<'a, Committed>;

    /// Changes to `resource` after `since`, oldest first, at most
    /// `max_bytes` of them, and whether that is everything after `since`
    /// (the log keeps the newest `store.change_log_retention` entries).
    fn changes_since<'a>(
        &'a self,
        resource: &'a str,
        since: u64,
        max_bytes: usize,
    ) -> StoreFuture<'a, (Vec<Committed>, bool)>;

    /// The sequence number `resource`'s records are current as of: every
    /// later change of it has a greater one (0 when nothing was written).
    fn last_seq<'a>(&'a self, resource: &'a str) -> StoreFuture<'a, u64>;

    /// Whether other nodes write to this store too: their changes are then
    /// announced from the change log ([`Store::wakeups`]), not by the writer.
    fn shared(&self) -> bool {
        false
    }

    /// Names of resources that other nodes changed, as the store hears of
    /// them, and `""` after a reconnect (anything may have changed);
    /// given once.
    fn wakeups(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        None
    }

    /// Whether the store answers now (for `/readyz`).
    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    /// The backend's name, for logs and `/readyz`.
    fn kind(&self) -> &'static str;
}

/// Opens the configured store: PostgreSQL when `store.url` is set (its
/// schema created or migrated), else the redb file at `store.path`.
///
/// # Errors
/// The store cannot be opened or reached.
pub async fn open(config: &crate::config::StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    match &config.url {
        Some(url) => Ok(Arc::new(PgStore::connect(url, config).await?)),
        None => Ok(Arc::new(RedbStore::open(
            &config.path,
            config.max_record_bytes,
            config.change_log_retention,
        )?)),
    }
}
