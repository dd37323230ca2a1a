//! Store queries for `jobs`.

use sqlx::FromRow;

use super::{Pool, now, on_pool};
use crate::domain::{JobKind, JobState};

#[derive(Clone, Debug, FromRow, PartialEq)]
pub struct JobRow {
    pub id: i64,
    pub kind: JobKind,
    pub database_name: Option<String>,
    pub target: String,
    pub requested_by: String,
    pub state: JobState,
    pub progress: Option<f64>,
    pub phase: String,
    pub error: Option<String>,
    pub log: String,
    pub cancel_requested: bool,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub heartbeat_at: Option<i64>,
}

const COLUMNS: &str = "id, kind, database_name, target, requested_by, state, progress, phase, error, log, \
                       cancel_requested, created_at, started_at, finished_at, heartbeat_at";

/// The log keeps its last this-many bytes.
pub const LOG_LIMIT: usize = 32 * 1024;

pub async fn insert(
    pool: &Pool,
    kind: JobKind,
    database: Option<&str>,
    target: &str,
    requested_by: &str,
) -> sqlx::Result<i64> {
    let at = now();
    on_pool!(pool, |p| sqlx::query_scalar(
        "INSERT INTO jobs (kind, database_name, target, requested_by, state, created_at, heartbeat_at) \
         VALUES ($1, $2, $3, $4, 'queued', $5, $5) RETURNING id"
    )
    .bind(kind.as_str())
    .bind(database)
    .bind(target)
    .bind(requested_by)
    .bind(at)
    .fetch_one(p)
    .await)
}

pub async fn get(pool: &Pool, id: i64) -> sqlx::Result<Option<JobRow>> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
    on_pool!(pool, |p| sqlx::query_as::<_, JobRow>(&sql)
        .bind(id)
        .fetch_optional(p)
        .await)
}

/// Newest first, optionally for one database; `before` pages back by id.
pub async fn list(
    pool: &Pool,
    database: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<JobRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM jobs WHERE ($1 IS NULL OR database_name = $1) AND ($2 IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    );
    on_pool!(pool, |p| sqlx::query_as::<_, JobRow>(&sql)
        .bind(database)
        .bind(before)
        .bind(limit)
        .fetch_all(p)
        .await)
}

/// queued → running; 0 rows if it was cancelled while queued.
pub async fn start(pool: &Pool, id: i64) -> sqlx::Result<u64> {
    let at = now();
    on_pool!(pool, |p| {
        sqlx::query(
        "UPDATE jobs SET state = 'running', started_at = $1, heartbeat_at = $1, phase = 'starting', progress = NULL \
         WHERE id = $2 AND state = 'queued' AND NOT cancel_requested"
    )
    .bind(at)
    .bind(id)
    .execute(p)
    .await
    .map(|r| r.rows_affected())
    })
}

/// A running job's heartbeat and progress; returns whether a cancel was
/// requested (possibly by another panel instance).
pub async fn beat(pool: &Pool, id: i64, progress: Option<f64>, phase: &str) -> sqlx::Result<bool> {
    let at = now();
    on_pool!(pool, |p| {
        sqlx::query_scalar(
        "UPDATE jobs SET heartbeat_at = $1, progress = $2, phase = $3 WHERE id = $4 RETURNING cancel_requested"
    )
    .bind(at)
    .bind(progress)
    .bind(phase)
    .bind(id)
    .fetch_optional(p)
    .await
    .map(|r: Option<bool>| r.unwrap_or(false))
    })
}

/// Append lines to the log, keeping its tail within LOG_LIMIT.
pub async fn append_log(pool: &Pool, id: i64, lines: &str) -> sqlx::Result<()> {
    let Some(job) = get(pool, id).await? else {
        return Ok(());
    };
    let mut log = job.log;
    log.push_str(lines);
    if log.len() > LOG_LIMIT {
        let mut cut = log.len() - LOG_LIMIT;
        while !log.is_char_boundary(cut) {
            cut += 1;
        }
        log = format!("…{}", &log[cut..]);
    }
    on_pool!(pool, |p| sqlx::query("UPDATE jobs SET log = $1 WHERE id = $2")
        .bind(&log)
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()))
}

/// Record the outcome of a job that has not already ended; `phase` says
/// how it ended, in a few words.
pub async fn finish(
    pool: &Pool,
    id: i64,
    state: JobState,
    error: Option<&str>,
    progress: Option<f64>,
    phase: &str,
) -> sqlx::Result<u64> {
    let at = now();
    on_pool!(pool, |p| sqlx::query(
        "UPDATE jobs SET state = $1, error = $2, finished_at = $3, heartbeat_at = $3, \
         progress = COALESCE($4, progress), phase = $6 \
         WHERE id = $5 AND state IN ('queued', 'running')"
    )
    .bind(state.as_str())
    .bind(error)
    .bind(at)
    .bind(progress)
    .bind(id)
    .bind(phase)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))
}

/// Ask a job to stop; a queued one is cancelled at once.
pub async fn request_cancel(pool: &Pool, id: i64) -> sqlx::Result<u64> {
    let at = now();
    on_pool!(pool, |p| {
        let n = sqlx::query(
            "UPDATE jobs SET cancel_requested = TRUE WHERE id = $1 AND state IN ('queued', 'running')",
        )
        .bind(id)
        .execute(p)
        .await?
        .rows_affected();
        sqlx::query(
            "UPDATE jobs SET state = 'cancelled', finished_at = $1, error = 'cancelled before it started' \
             WHERE id = $2 AND state = 'queued'",
        )
        .bind(at)
        .bind(id)
        .execute(p)
        .await?;
        Ok(n)
    })
}

/// Jobs whose runner stopped beating before `stale_before` (the panel died
/// under them) become interrupted. Returns their ids.
pub async fn interrupt_stale(pool: &Pool, stale_before: i64) -> sqlx::Result<Vec<i64>> {
    let at = now();
    on_pool!(pool, |p| sqlx::query_scalar(
        "UPDATE jobs SET state = 'interrupted', finished_at = $1, \
         error = 'the panel stopped while this job was running' \
         WHERE state IN ('queued', 'running') AND COALESCE(heartbeat_at, created_at) < $2 RETURNING id"
    )
    .bind(at)
    .bind(stale_before)
    .fetch_all(p)
    .await)
}

/// How many jobs there are of each kind in each state (for `/metrics`).
pub async fn counts(pool: &Pool) -> sqlx::Result<Vec<(String, String, i64)>> {
    on_pool!(pool, |p| sqlx::query_as(
        "SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state ORDER BY kind, state"
    )
    .fetch_all(p)
    .await)
}
