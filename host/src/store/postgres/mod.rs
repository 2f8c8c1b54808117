//! The shared store: PostgreSQL, through a `deadpool-postgres` pool of
//! `tokio-postgres` connections. Every statement binds its values as
//! parameters; no SQL is built from names or data.
//!
//! A write happens in one transaction, shared with the writes queued beside
//! it (group commit: [`commit`]): take the resource's advisory lock, read
//! the record, compute the new one (the same rules as redb, [`record`]),
//! take the next `seq`, write the record and its change-log entry, `NOTIFY
//! sb_changes` with the resource's name, commit. The lock makes one
//! resource's changes commit in `seq` order on every node, so a node that
//! reads a resource's log after its last seen `seq` never skips one; the
//! notification wakes the other nodes to read it ([`listen`]).

mod commit;
mod listen;
mod schema;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_postgres::NoTls;

use self::commit::Committer;
use super::group::Write;
use super::{record, Committed, Predicate, Store, StoreError, StoreFuture, Stored};
use crate::config::StoreConfig;

/// Records read per round trip while scanning or replaying.
const BATCH: i64 = 256;

/// The change log is trimmed when a write's `seq` is a multiple of this.
pub(super) const TRIM_EVERY: i64 = 64;

/// A resource's advisory lock, for reading its last `seq` in step with
/// its writes (which take the same key, batch by batch: [`commit`]).
const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext($1))";

/// One record.
pub(super) const READ: &str = "SELECT record FROM sb_records WHERE resource = $1 AND id = $2";

/// Stores a record and its change: $1 resource, $2 id, $3 record, $4 op,
/// $5 the notification (`<store instance>\n<resource>`). Returns the new
/// `seq` and the resource's previous one, read after the lock was taken.
pub(super) const WRITE: &str = "WITH s AS (SELECT nextval('sb_seq') AS seq),
    p AS (SELECT coalesce(max(seq), 0) AS prev FROM sb_changes WHERE resource = $1),
    w AS (INSERT INTO sb_records (resource, id, seq, record) SELECT $1, $2, seq, $3 FROM s
          ON CONFLICT (resource, id) DO UPDATE SET seq = EXCLUDED.seq, record = EXCLUDED.record),
    c AS (INSERT INTO sb_changes (seq, resource, op, id, record) SELECT seq, $1, $4, $2, $3 FROM s)
    SELECT seq, prev, pg_notify('sb_changes', $5)::text FROM s, p";

/// Removes a record and logs its change ($3: the record as it was).
pub(super) const REMOVE: &str = "WITH s AS (SELECT nextval('sb_seq') AS seq),
    p AS (SELECT coalesce(max(seq), 0) AS prev FROM sb_changes WHERE resource = $1),
    d AS (DELETE FROM sb_records WHERE resource = $1 AND id = $2),
    c AS (INSERT INTO sb_changes (seq, resource, op, id, record) SELECT seq, $1, $4, $2, $3 FROM s)
    SELECT seq, prev, pg_notify('sb_changes', $5)::text FROM s, p";

/// A PostgreSQL store.
pub struct PgStore {
    pool: Pool,
    wakeups: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    /// Queues writes for group commits.
    committer: Arc<Committer>,
}

/// A PostgreSQL error as the store's: connection trouble (the server is
/// down, restarting, or refusing connections) is UNAVAILABLE; anything
/// else a storage error.
pub(super) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    let unavailable = match e.code() {
        Some(code) => {
            let code = code.code();
            // 08: connection exceptions; 57P01-03: admin shutdown, crash
            // shutdown, cannot connect now.
            code.starts_with("08") || code.starts_with("57P")
        }
        None => true,
    };
    if unavailable {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Storage(e.to_string())
    }
}

/// A pool error as the store's (any failure to get a connection means
/// the server cannot be reached now).
pub(super) fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg_error(e),
        other => StoreError::Unavailable(other.to_string()),
    }
}

impl PgStore {
    /// Connects, creates or migrates the schema, and starts listening for
    /// other nodes' changes.
    ///
    /// # Errors
    /// A bad URL, PostgreSQL unreachable, or a schema newer than this build.
    pub async fn connect(url: &str, config: &StoreConfig) -> Result<Self, StoreError> {
        let pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::Storage(format!("store.url: {e}")))?;
        let mut pg_for_listen = pg.clone();
        pg_for_listen.connect_timeout(Duration::from_secs(3));
        let mut pg = pg;
        pg.connect_timeout(Duration::from_secs(3));
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let timeout = Some(Duration::from_secs(3));
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .recycle_timeout(timeout)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Storage(e.to_string()))?;
        let version = schema::migrate(&pool).await?;
        if version > schema::latest() {
            return Err(StoreError::Storage(format!(
                "the database's schema (version {version}) is newer than this build's ({})",
                schema::latest()
            )));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let instance = uuid::Uuid::new_v4().simple().to_string();
        tokio::spawn(listen::run(pg_for_listen, instance.clone(), tx));
        tracing::info!(schema = version, "store: PostgreSQL");
        let committer = Arc::new(Committer {
            pool: pool.clone(),
            max_record_bytes: config.max_record_bytes,
            retention: i64::try_from(config.change_log_retention.max(1)).unwrap_or(i64::MAX),
            instance,
            queue: Default::default(),
        });
        Ok(Self {
            pool,
            wakeups: Mutex::new(Some(rx)),
            committer,
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Queues `write` (unless it was refused already) for the next group
    /// commit.
    fn write<'a>(&self, write: Result<Write, StoreError>) -> StoreFuture<'a, Committed> {
        let committer = self.committer.clone();
        Box::pin(async move { commit::submit(&committer, write?).await })
    }
}

/// A `seq` from a client (`since`) as PostgreSQL's bigint: larger values
/// ask for nothing.
fn as_bigint(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

impl Store for PgStore {
    fn get<'a>(&'a self, resource: &'a str, id: &'a str) -> StoreFuture<'a, Option<Value>> {
        Box::pin(async move {
            // No stored id holds a NUL (writes refuse one), and PostgreSQL's
            // text could not take it as a parameter.
            if id.contains('\0') {
                return Ok(None);
            }
            let client = self.client().await?;
            let read = client.prepare_cached(READ).await.map_err(pg_error)?;
            let row = client
                .query_opt(&read, &[&resource, &id])
                .await
                .map_err(pg_error)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn scan<'a>(
        &'a self,
        resource: &'a str,
        cursor: Option<&'a str>,
        limit: usize,
        max_bytes: usize,
        keep: Predicate,
    ) -> StoreFuture<'a, (Vec<Stored>, bool)> {
        Box::pin(async move {
            let client = self.client().await?;
            let page = client
                .prepare_cached(
                    "SELECT id, seq, record FROM sb_records WHERE resource = $1 AND id > $2
                     ORDER BY id LIMIT $3",
                )
                .await
                .map_err(pg_error)?;
            let mut after = cursor.unwrap_or_default().to_owned();
            let mut out = Vec::new();
            let mut bytes = 0;
            loop {
                let rows = client
                    .query(&page, &[&resource, &after, &BATCH])
                    .await
                    .map_err(pg_error)?;
                let last_batch = (rows.len() as i64) < BATCH;
                for row in rows {
                    after = row.get(0);
                    let seq: i64 = row.get(1);
                    let record: Value = row.get(2);
                    if !keep(&record) {
                        continue;
                    }
                    let size = serde_json::to_vec(&record).map_or(0, |j| j.len()) + 8;
                    if out.len() == limit || (!out.is_empty() && bytes + size > max_bytes) {
                        return Ok((out, true));
                    }
                    bytes += size;
                    out.push(Stored {
                        record,
                        seq: seq as u64,
                    });
                }
                if last_batch {
                    return Ok((out, false));
                }
            }
        })
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
        Box::pin(async move {
            let client = self.client().await?;
            let horizon = client
                .prepare_cached("SELECT value FROM sb_meta WHERE key = 'trimmed_upto'")
                .await
                .map_err(pg_error)?;
            let page = client
                .prepare_cached(
                    "SELECT seq, op, record FROM sb_changes WHERE resource = $1 AND seq > $2
                     ORDER BY seq LIMIT $3",
                )
                .await
                .map_err(pg_error)?;
            let trimmed: i64 = client
                .query_one(&horizon, &[])
                .await
                .map_err(pg_error)?
                .get(0);
            let mut after = as_bigint(since);
            let mut complete = after >= trimmed;
            let mut out = Vec::new();
            let mut bytes = 0;
            loop {
                let rows = client
                    .query(&page, &[&resource, &after, &BATCH])
                    .await
                    .map_err(pg_error)?;
                let last_batch = (rows.len() as i64) < BATCH;
                for row in rows {
                    let seq: i64 = row.get(0);
                    let op: String = row.get(1);
                    let record: Value = row.get(2);
                    let size = serde_json::to_vec(&record).map_or(0, |j| j.len()) + 64;
                    if !out.is_empty() && bytes + size > max_bytes {
                        complete = false;
                        return Ok((out, complete));
                    }
                    bytes += size;
                    after = seq;
                    out.push(Committed {
                        seq: seq as u64,
                        op: record::op(&op),
                        resource: resource.to_owned(),
                        record,
                        previous: None,
                    });
                }
                if last_batch {
                    return Ok((out, complete));
                }
            }
        })
    }

    /// Read under the resource's lock, so no write of it is in flight:
    /// every later change of it takes a greater `seq`.
    fn last_seq<'a>(&'a self, resource: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            let lock = tx.prepare_cached(LOCK).await.map_err(pg_error)?;
            tx.execute(&lock, &[&resource]).await.map_err(pg_error)?;
            let row = tx
                .query_one("SELECT last_value, is_called FROM sb_seq", &[])
                .await
                .map_err(pg_error)?;
            let (last, called): (i64, bool) = (row.get(0), row.get(1));
            tx.commit().await.map_err(pg_error)?;
            Ok(if called { last as u64 } else { 0 })
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn wakeups(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.wakeups.lock().take()
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let client = self.client().await?;
            client.execute("SELECT 1", &[]).await.map_err(pg_error)?;
            Ok(())
        })
    }

    fn kind(&self) -> &'static str {
        "postgresql"
    }
}
