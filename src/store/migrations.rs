//! Store queries for migration requests and their approvals, and the
//! request's state and action as stored (TEXT on both stores).

use sqlx::FromRow;

use crate::domain::text_enum;

use super::{Pool, now, on_pool};

text_enum! {
    /// Where a migration request stands. Stored as its
    /// [`as_str`](Self::as_str) text; the JSON API shows the same words.
    pub enum RequestState ("migration request state") {
        /// Waiting for approvals, or approved and not yet applied.
        Open = "open",
        /// An approver said no.
        Rejected = "rejected",
        /// A file changed after the request was made: its approvals no longer hold.
        Void = "void",
        /// Its job is applying it.
        Running = "running",
        Done = "done",
        Failed = "failed",
    }
}

impl RequestState {
    pub fn is_open(self) -> bool {
        self == RequestState::Open
    }
}

text_enum! {
    /// What a migration request asks for. Stored as its
    /// [`as_str`](Self::as_str) text.
    pub enum RequestAction ("migration request action") {
        /// Run pending migrations' up scripts.
        Apply = "apply",
        /// Run the newest applied version's undo script.
        Rollback = "rollback",
    }
}

#[derive(Clone, Debug, FromRow, PartialEq)]
pub struct RequestRow {
    pub id: i64,
    pub database_name: String,
    pub action: RequestAction,
    pub files: String,
    pub requested_by: String,
    pub requested_at: i64,
    pub state: RequestState,
    pub job_id: Option<i64>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, FromRow, PartialEq)]
pub struct DecisionRow {
    pub request_id: i64,
    pub approver: String,
    pub approve: bool,
    pub comment: String,
    pub decided_at: i64,
}

const COLUMNS: &str = "id, database_name, action, files, requested_by, requested_at, state, job_id, error";

pub async fn insert(
    pool: &Pool,
    database: &str,
    action: RequestAction,
    files: &str,
    by: &str,
) -> sqlx::Result<i64> {
    on_pool!(pool, |p| sqlx::query_scalar(
        "INSERT INTO migration_requests (database_name, action, files, requested_by, requested_at, state) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
    )
    .bind(database)
    .bind(action.as_str())
    .bind(files)
    .bind(by)
    .bind(now())
    .bind(RequestState::Open.as_str())
    .fetch_one(p)
    .await)
}

pub async fn get(pool: &Pool, id: i64) -> sqlx::Result<Option<RequestRow>> {
    let sql = format!("SELECT {COLUMNS} FROM migration_requests WHERE id = $1");
    on_pool!(pool, |p| sqlx::query_as(&sql).bind(id).fetch_optional(p).await)
}

pub async fn list(pool: &Pool, database: &str, limit: i64) -> sqlx::Result<Vec<RequestRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM migration_requests WHERE database_name = $1 ORDER BY id DESC LIMIT $2"
    );
    on_pool!(pool, |p| sqlx::query_as(&sql)
        .bind(database)
        .bind(limit)
        .fetch_all(p)
        .await)
}

/// Move a request from `from` to `to`; false if it was no longer in `from`
/// (someone else got there first).
pub async fn transition(
    pool: &Pool,
    id: i64,
    from: RequestState,
    to: RequestState,
    error: Option<&str>,
) -> sqlx::Result<bool> {
    let done = on_pool!(pool, |p| {
        sqlx::query(
        "UPDATE migration_requests SET state = $1, error = COALESCE($2, error) WHERE id = $3 AND state = $4"
    )
    .bind(to.as_str())
    .bind(error)
    .bind(id)
    .bind(from.as_str())
    .execute(p)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Record a decision; false if this approver already decided.
pub async fn decide(
    pool: &Pool,
    id: i64,
    approver: &str,
    approve: bool,
    comment: &str,
) -> sqlx::Result<bool> {
    let done = on_pool!(pool, |p| sqlx::query(
        "INSERT INTO migration_decisions (request_id, approver, approve, comment, decided_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id, approver) DO NOTHING"
    )
    .bind(id)
    .bind(approver)
    .bind(approve)
    .bind(comment)
    .bind(now())
    .execute(p)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

pub async fn decisions(pool: &Pool, id: i64) -> sqlx::Result<Vec<DecisionRow>> {
    on_pool!(pool, |p| sqlx::query_as(
        "SELECT request_id, approver, approve, comment, decided_at FROM migration_decisions \
         WHERE request_id = $1 ORDER BY decided_at, approver"
    )
    .bind(id)
    .fetch_all(p)
    .await)
}

pub async fn set_job(pool: &Pool, id: i64, job: i64) -> sqlx::Result<()> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE migration_requests SET job_id = $1 WHERE id = $2"
    )
    .bind(job)
    .bind(id)
    .execute(p)
    .await
    .map(|_| ()))
}

/// Per-database migration settings: (approvals required, lock timeout ms,
/// statement timeout ms); `None` for a database declared in the config file.
pub async fn settings(pool: &Pool, database: &str) -> sqlx::Result<Option<(i64, i64, i64)>> {
    on_pool!(pool, |p| sqlx::query_as(
        "SELECT CAST(approvals_required AS BIGINT), lock_timeout_ms, statement_timeout_ms \
         FROM managed_databases WHERE name = $1"
    )
    .bind(database)
    .fetch_optional(p)
    .await)
}

pub async fn set_settings(
    pool: &Pool,
    database: &str,
    approvals: i64,
    lock_ms: i64,
    statement_ms: i64,
) -> sqlx::Result<u64> {
    on_pool!(pool, |p| {
        sqlx::query(
        "UPDATE managed_databases SET approvals_required = $1, lock_timeout_ms = $2, statement_timeout_ms = $3 \
         WHERE name = $4"
    )
    .bind(approvals)
    .bind(lock_ms)
    .bind(statement_ms)
    .bind(database)
    .execute(p)
    .await
    .map(|r| r.rows_affected())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_actions_read_back_what_they_write() {
        for s in RequestState::ALL {
            assert_eq!(s.as_str().parse::<RequestState>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for a in RequestAction::ALL {
            assert_eq!(a.as_str().parse::<RequestAction>().unwrap(), a);
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
    }

    #[test]
    fn an_unknown_stored_state_is_an_error_that_names_it() {
        let err = "paused".parse::<RequestState>().unwrap_err();
        assert_eq!(err.to_string(), "unknown migration request state \"paused\"");
        assert!("Apply".parse::<RequestAction>().is_err());
    }
}
