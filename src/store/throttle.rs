//! Store queries for `login_throttle`: sign-in failures per (hashed
//! attempted name, client address). The rules live in `service::throttle`;
//! here are the reads and the compare-and-set writes that let several
//! requests (or panel instances) race for one attempt without both winning.

use sqlx::FromRow;

use super::{Pool, on_pool};

/// Where a (name, address) pair stands.
#[derive(Clone, Copy, Debug, FromRow, PartialEq, Eq)]
pub struct Run {
    pub failures: i64,
    pub last_at: i64,
    pub next_at: i64,
}

pub async fn get(pool: &Pool, name_key: &str, client: &str) -> sqlx::Result<Option<Run>> {
    on_pool!(pool, |p| sqlx::query_as::<_, Run>(
        "SELECT failures, last_at, next_at FROM login_throttle WHERE name_key = $1 AND client_addr = $2"
    )
    .bind(name_key)
    .bind(client)
    .fetch_optional(p)
    .await)
}

/// Attempts from `client` in runs active since `since`, and the latest
/// attempt's time (0 if none).
pub async fn from_client(pool: &Pool, client: &str, since: i64) -> sqlx::Result<(i64, i64)> {
    on_pool!(pool, |p| sqlx::query_as::<_, (i64, i64)>(
        "SELECT CAST(COALESCE(SUM(failures), 0) AS BIGINT), CAST(COALESCE(MAX(last_at), 0) AS BIGINT) \
         FROM login_throttle WHERE client_addr = $1 AND last_at >= $2"
    )
    .bind(client)
    .bind(since)
    .fetch_one(p)
    .await)
}

/// Start a run for a pair that has none; false if another request just did.
pub async fn start(pool: &Pool, name_key: &str, client: &str, run: Run) -> sqlx::Result<bool> {
    on_pool!(pool, |p| sqlx::query(
        "INSERT INTO login_throttle (name_key, client_addr, failures, last_at, next_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name_key, client_addr) DO NOTHING"
    )
    .bind(name_key)
    .bind(client)
    .bind(run.failures)
    .bind(run.last_at)
    .bind(run.next_at)
    .execute(p)
    .await
    .map(|r| r.rows_affected() == 1))
}

/// Move a pair from `seen` to `next`; false if it is no longer at `seen`
/// (another request took this attempt first).
pub async fn advance(pool: &Pool, name_key: &str, client: &str, seen: Run, next: Run) -> sqlx::Result<bool> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE login_throttle SET failures = $3, last_at = $4, next_at = $5 \
         WHERE name_key = $1 AND client_addr = $2 AND failures = $6 AND last_at = $7 AND next_at = $8"
    )
    .bind(name_key)
    .bind(client)
    .bind(next.failures)
    .bind(next.last_at)
    .bind(next.next_at)
    .bind(seen.failures)
    .bind(seen.last_at)
    .bind(seen.next_at)
    .execute(p)
    .await
    .map(|r| r.rows_affected() == 1))
}

/// Forget a pair's run (its user signed in).
pub async fn clear(pool: &Pool, name_key: &str, client: &str) -> sqlx::Result<()> {
    on_pool!(pool, |p| sqlx::query(
        "DELETE FROM login_throttle WHERE name_key = $1 AND client_addr = $2"
    )
    .bind(name_key)
    .bind(client)
    .execute(p)
    .await
    .map(|_| ()))
}

/// Drop runs with no attempt since `before`.
pub async fn prune(pool: &Pool, before: i64) -> sqlx::Result<u64> {
    on_pool!(pool, |p| sqlx::query(
        "DELETE FROM login_throttle WHERE last_at < $1"
    )
    .bind(before)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))
}
