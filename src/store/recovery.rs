//! Store queries for point-in-time restores (`recovery_restores`) and the
//! panel's record of relation files (`recovery_relations`).

use sqlx::FromRow;

use super::{Pool, now, on_pool};
use crate::domain::RestoreState;

#[derive(Clone, Debug, FromRow, PartialEq)]
pub struct RestoreRow {
    pub id: i64,
    pub database_name: String,
    pub drill: bool,
    pub state: RestoreState,
    pub job_id: Option<i64>,
    pub requested_by: String,
    pub target_us: Option<i64>,
    pub target_xid: Option<i64>,
    pub backup_label: String,
    pub reached: String,
    pub new_database: String,
    pub port: Option<i64>,
    pub dir: String,
    pub os_user: String,
    pub pg_bin: String,
    pub rto_ms: Option<i64>,
    pub proof: String,
    pub error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub discarded_at: Option<i64>,
}

const COLUMNS: &str = "id, database_name, drill, state, job_id, requested_by, target_us, target_xid, \
    backup_label, reached, new_database, port, dir, os_user, pg_bin, rto_ms, proof, error, created_at, \
    finished_at, discarded_at";

/// A new restore, before its job is submitted.
pub struct NewRestore<'a> {
    pub database: &'a str,
    pub drill: bool,
    pub requested_by: &'a str,
    pub target_us: Option<i64>,
    pub target_xid: Option<i64>,
    pub backup_label: &'a str,
    pub new_database: &'a str,
    pub dir: &'a str,
    pub os_user: &'a str,
    pub pg_bin: &'a str,
}

pub async fn insert(pool: &Pool, r: &NewRestore<'_>) -> sqlx::Result<i64> {
    on_pool!(pool, |p| sqlx::query_scalar(
        "INSERT INTO recovery_restores (database_name, drill, state, requested_by, target_us, target_xid, \
         backup_label, new_database, dir, os_user, pg_bin, created_at) \
         VALUES ($1, $2, 'restoring', $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id"
    )
    .bind(r.database)
    .bind(r.drill)
    .bind(r.requested_by)
    .bind(r.target_us)
    .bind(r.target_xid)
    .bind(r.backup_label)
    .bind(r.new_database)
    .bind(r.dir)
    .bind(r.os_user)
    .bind(r.pg_bin)
    .bind(now())
    .fetch_one(p)
    .await)
}

pub async fn get(pool: &Pool, id: i64) -> sqlx::Result<Option<RestoreRow>> {
    let sql = format!("SELECT {COLUMNS} FROM recovery_restores WHERE id = $1");
    on_pool!(pool, |p| sqlx::query_as::<_, RestoreRow>(&sql)
        .bind(id)
        .fetch_optional(p)
        .await)
}

/// Newest first.
pub async fn list(pool: &Pool, database: &str, limit: i64) -> sqlx::Result<Vec<RestoreRow>> {
    let sql =
        format!("SELECT {COLUMNS} FROM recovery_restores WHERE database_name = $1 ORDER BY id DESC LIMIT $2");
    on_pool!(pool, |p| sqlx::query_as::<_, RestoreRow>(&sql)
        .bind(database)
        .bind(limit)
        .fetch_all(p)
        .await)
}

/// Rows in a state, every database.
pub async fn in_state(pool: &Pool, state: RestoreState) -> sqlx::Result<Vec<RestoreRow>> {
    let sql = format!("SELECT {COLUMNS} FROM recovery_restores WHERE state = $1 ORDER BY id");
    on_pool!(pool, |p| sqlx::query_as::<_, RestoreRow>(&sql)
        .bind(state)
        .fetch_all(p)
        .await)
}

/// The restore whose server is registered as `new_database`, if still up.
pub async fn by_new_database(pool: &Pool, name: &str) -> sqlx::Result<Option<RestoreRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM recovery_restores WHERE new_database = $1 AND state = 'ready' ORDER BY id DESC LIMIT 1"
    );
    on_pool!(pool, |p| sqlx::query_as::<_, RestoreRow>(&sql)
        .bind(name)
        .fetch_optional(p)
        .await)
}

pub async fn set_job(pool: &Pool, id: i64, job: i64) -> sqlx::Result<()> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE recovery_restores SET job_id = $2 WHERE id = $1"
    )
    .bind(id)
    .bind(job)
    .execute(p)
    .await
    .map(|_| ()))
}

pub async fn set_port(pool: &Pool, id: i64, port: i64) -> sqlx::Result<()> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE recovery_restores SET port = $2 WHERE id = $1"
    )
    .bind(id)
    .bind(port)
    .execute(p)
    .await
    .map(|_| ()))
}

/// The outcome of a restore's job.
pub struct Ended<'a> {
    pub state: RestoreState,
    pub reached: &'a str,
    pub rto_ms: Option<i64>,
    pub proof: &'a str,
    pub error: Option<&'a str>,
}

/// Record how a restore ended; only a row still restoring changes.
pub async fn end(pool: &Pool, id: i64, e: &Ended<'_>) -> sqlx::Result<u64> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE recovery_restores SET state = $2, reached = $3, rto_ms = $4, proof = $5, error = $6, \
         finished_at = $7 WHERE id = $1 AND state = 'restoring'"
    )
    .bind(id)
    .bind(e.state)
    .bind(e.reached)
    .bind(e.rto_ms)
    .bind(e.proof)
    .bind(e.error)
    .bind(now())
    .execute(p)
    .await
    .map(|r| r.rows_affected()))
}

/// Record that a restore's server is gone (stopped, its directory
/// deleted): a ready one becomes discarded; a drill keeps its outcome.
pub async fn discarded(pool: &Pool, id: i64) -> sqlx::Result<()> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE recovery_restores SET state = CASE WHEN state = 'ready' THEN 'discarded' ELSE state END, \
         discarded_at = $2 WHERE id = $1"
    )
    .bind(id)
    .bind(now())
    .execute(p)
    .await
    .map(|_| ()))
}

/// Record relation files (newer recordings of a file win).
pub async fn record_files(
    pool: &Pool,
    database: &str,
    files: &[crate::engine::pitr::RelationFile],
) -> sqlx::Result<()> {
    let at = now();
    on_pool!(pool, |p| {
        let mut tx = p.begin().await?;
        for f in files {
            sqlx::query(
                "INSERT INTO recovery_relations (database_name, relfilenode, rel_oid, name, relkind, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (database_name, relfilenode) DO UPDATE SET \
                 rel_oid = excluded.rel_oid, name = excluded.name, relkind = excluded.relkind, recorded_at = excluded.recorded_at",
            )
            .bind(database)
            .bind(f.relfilenode)
            .bind(f.oid)
            .bind(&f.name)
            .bind(&f.relkind)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    })
}

/// The panel's record for a database: (file, oid, name, relkind).
pub async fn recorded_files(pool: &Pool, database: &str) -> sqlx::Result<Vec<(i64, i64, String, String)>> {
    on_pool!(pool, |p| sqlx::query_as(
        "SELECT relfilenode, rel_oid, name, relkind FROM recovery_relations WHERE database_name = $1 \
         ORDER BY recorded_at"
    )
    .bind(database)
    .fetch_all(p)
    .await)
}
