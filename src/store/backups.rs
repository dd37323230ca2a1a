//! Store queries for the backup catalog (`backups`).

use sqlx::FromRow;

use super::{Pool, now, on_pool};
use crate::domain::BackupState;

#[derive(Clone, Debug, FromRow, PartialEq)]
pub struct BackupRow {
    pub id: i64,
    pub database_name: String,
    pub job_id: Option<i64>,
    pub state: BackupState,
    pub engine: String,
    pub format: String,
    pub compression: String,
    pub location: String,
    pub bytes: Option<i64>,
    pub sha256: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub tool_version: String,
    pub server_version: String,
    pub table_counts: String,
    pub error: Option<String>,
    pub verified_at: Option<i64>,
    pub verify_ok: Option<bool>,
    pub verify_error: Option<String>,
    pub restore_ms: Option<i64>,
    /// The last restore test's whole time, checksum to scratch dropped.
    pub verify_ms: Option<i64>,
}

impl BackupRow {
    /// A good backup that finished at `at`, never verified: the row tests
    /// and the fuzz targets start from.
    pub fn good_at(at: i64) -> BackupRow {
        BackupRow {
            id: 1,
            database_name: "db".into(),
            job_id: None,
            state: crate::domain::BackupState::Good,
            engine: "postgres".into(),
            format: String::new(),
            compression: String::new(),
            location: String::new(),
            bytes: None,
            sha256: None,
            started_at: at,
            finished_at: Some(at),
            duration_ms: None,
            tool_version: String::new(),
            server_version: String::new(),
            table_counts: "{}".into(),
            error: None,
            verified_at: None,
            verify_ok: None,
            verify_error: None,
            restore_ms: None,
            verify_ms: None,
        }
    }
}

const COLUMNS: &str = "id, database_name, job_id, state, engine, format, compression, location, bytes, sha256, \
    started_at, finished_at, duration_ms, tool_version, server_version, table_counts, error, verified_at, \
    verify_ok, verify_error, restore_ms, verify_ms";

pub async fn insert(
    pool: &Pool,
    database: &str,
    engine: &str,
    format: &str,
    compression: &str,
    location: &str,
) -> sqlx::Result<i64> {
    on_pool!(pool, |p| sqlx::query_scalar(
        "INSERT INTO backups (database_name, state, engine, format, compression, location, started_at) \
         VALUES ($1, 'running', $2, $3, $4, $5, $6) RETURNING id"
    )
    .bind(database)
    .bind(engine)
    .bind(format)
    .bind(compression)
    .bind(location)
    .bind(now())
    .fetch_one(p)
    .await)
}

pub async fn set_location(pool: &Pool, id: i64, location: &str) -> sqlx::Result<()> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE backups SET location = $1 WHERE id = $2"
    )
    .bind(location)
    .bind(id)
    .execute(p)
    .await
    .map(|_| ()))
}

pub async fn set_job(pool: &Pool, id: i64, job_id: i64) -> sqlx::Result<()> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE backups SET job_id = $1 WHERE id = $2"
    )
    .bind(job_id)
    .bind(id)
    .execute(p)
    .await
    .map(|_| ()))
}

pub async fn get(pool: &Pool, id: i64) -> sqlx::Result<Option<BackupRow>> {
    let sql = format!("SELECT {COLUMNS} FROM backups WHERE id = $1");
    on_pool!(pool, |p| sqlx::query_as::<_, BackupRow>(&sql)
        .bind(id)
        .fetch_optional(p)
        .await)
}

/// Newest first.
pub async fn list(pool: &Pool, database: &str, limit: i64) -> sqlx::Result<Vec<BackupRow>> {
    let sql = format!("SELECT {COLUMNS} FROM backups WHERE database_name = $1 ORDER BY id DESC LIMIT $2");
    on_pool!(pool, |p| sqlx::query_as::<_, BackupRow>(&sql)
        .bind(database)
        .bind(limit)
        .fetch_all(p)
        .await)
}

/// Good backups of a database, newest first.
pub async fn good(pool: &Pool, database: &str) -> sqlx::Result<Vec<BackupRow>> {
    let sql =
        format!("SELECT {COLUMNS} FROM backups WHERE database_name = $1 AND state = 'good' ORDER BY id DESC");
    on_pool!(pool, |p| sqlx::query_as::<_, BackupRow>(&sql)
        .bind(database)
        .fetch_all(p)
        .await)
}

/// What a finished backup records.
#[derive(Debug)]
pub struct Finished<'a> {
    pub bytes: i64,
    pub sha256: &'a str,
    pub duration_ms: i64,
    pub tool_version: &'a str,
    pub server_version: &'a str,
    pub table_counts: &'a str,
}

pub async fn mark_good(pool: &Pool, id: i64, f: &Finished<'_>) -> sqlx::Result<()> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE backups SET state = 'good', bytes = $1, sha256 = $2, duration_ms = $3, tool_version = $4, \
         server_version = $5, table_counts = $6, finished_at = $7 WHERE id = $8 AND state = 'running'"
    )
    .bind(f.bytes)
    .bind(f.sha256)
    .bind(f.duration_ms)
    .bind(f.tool_version)
    .bind(f.server_version)
    .bind(f.table_counts)
    .bind(now())
    .bind(id)
    .execute(p)
    .await
    .map(|_| ()))
}

/// A backup that did not finish: failed, cancelled or interrupted.
pub async fn mark_ended(pool: &Pool, id: i64, state: BackupState, error: &str) -> sqlx::Result<()> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE backups SET state = $1, error = $2, finished_at = $3 WHERE id = $4 AND state = 'running'"
    )
    .bind(state.as_str())
    .bind(error)
    .bind(now())
    .bind(id)
    .execute(p)
    .await
    .map(|_| ()))
}

pub async fn record_verify(
    pool: &Pool,
    id: i64,
    ok: bool,
    error: Option<&str>,
    restore_ms: Option<i64>,
    verify_ms: i64,
) -> sqlx::Result<()> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE backups SET verified_at = $1, verify_ok = $2, verify_error = $3, \
         restore_ms = COALESCE($4, restore_ms), verify_ms = $6 WHERE id = $5"
    )
    .bind(now())
    .bind(ok)
    .bind(error)
    .bind(restore_ms)
    .bind(id)
    .bind(verify_ms)
    .execute(p)
    .await
    .map(|_| ()))
}

pub async fn mark_pruned(pool: &Pool, id: i64) -> sqlx::Result<()> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE backups SET state = 'pruned' WHERE id = $1 AND state = 'good'"
    )
    .bind(id)
    .execute(p)
    .await
    .map(|_| ()))
}

/// Backups still 'running' whose job is not queued or running any more
/// (the panel died under them).
pub async fn orphaned(pool: &Pool) -> sqlx::Result<Vec<BackupRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM backups b WHERE state = 'running' AND NOT EXISTS \
         (SELECT 1 FROM jobs j WHERE j.id = b.job_id AND j.state IN ('queued', 'running'))"
    );
    on_pool!(pool, |p| sqlx::query_as::<_, BackupRow>(&sql).fetch_all(p).await)
}
