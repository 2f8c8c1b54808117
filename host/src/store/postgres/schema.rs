//! The PostgreSQL schema, versioned: each node applies the migrations it
//! knows that the database lacks, in one transaction under an advisory
//! lock, so two nodes starting at once apply each migration exactly once.
//!
//! Tables (version 1):
//! - `sb_records (resource, id, seq, record)`: the current records; `id`
//!   is collated `"C"` so pages come in byte order, as on redb.
//! - `sb_changes (seq, resource, op, id, record)`: the change log; `seq`
//!   comes from the sequence `sb_seq`, taken while the writer holds the
//!   resource's advisory lock, so one resource's changes commit in `seq`
//!   order across every node.
//! - `sb_meta`: `trimmed_upto`, the newest `seq` the change log's
//!   retention removed (a resume from before it is not complete).
//! - `sb_schema_versions`: the migrations applied.

use deadpool_postgres::Pool;

use super::pg_error;
use crate::store::StoreError;

/// Advisory lock key held while migrating ("sbschema").
const MIGRATION_LOCK: i64 = 0x7362_7363_6865_6d61;

/// The migrations, in order; never edit one that shipped, add another.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    r#"
    CREATE TABLE sb_records (
        resource text NOT NULL,
        id text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        record json NOT NULL,
        PRIMARY KEY (resource, id)
    );
    CREATE SEQUENCE sb_seq;
    CREATE TABLE sb_changes (
        seq bigint PRIMARY KEY,
        resource text NOT NULL,
        op text NOT NULL,
        id text NOT NULL,
        record json NOT NULL
    );
    CREATE INDEX sb_changes_by_resource ON sb_changes (resource, seq);
    CREATE TABLE sb_meta (key text PRIMARY KEY, value bigint NOT NULL);
    INSERT INTO sb_meta VALUES ('trimmed_upto', 0);
    "#,
)];

/// Creates or migrates the schema; returns the version now in force.
///
/// # Errors
/// PostgreSQL is unreachable or refused a migration.
pub(super) async fn migrate(pool: &Pool) -> Result<i32, StoreError> {
    let mut client = pool.get().await.map_err(super::pool_error)?;
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS sb_schema_versions (
            version int PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(pg_error)?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM sb_schema_versions",
            &[],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    let mut version = current;
    for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await.map_err(pg_error)?;
        tx.execute("INSERT INTO sb_schema_versions (version) VALUES ($1)", &[v])
            .await
            .map_err(pg_error)?;
        version = *v;
    }
    tx.commit().await.map_err(pg_error)?;
    if version != current {
        tracing::info!(from = current, to = version, "store schema migrated");
    }
    Ok(version)
}

/// The newest schema version this build knows.
pub(super) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}
