//! Store queries for `leases`: which panel instance does a shared duty.

use super::{Pool, on_pool};

/// Take or renew the lease `name` for `holder` until `until`; true if
/// `holder` has it now (it held it already, or the last holder's ran out).
pub async fn acquire(pool: &Pool, name: &str, holder: &str, until: i64, now: i64) -> sqlx::Result<bool> {
    on_pool!(pool, |p| sqlx::query(
        "INSERT INTO leases (name, holder, until_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_at = excluded.until_at \
         WHERE leases.holder = excluded.holder OR leases.until_at < $4"
    )
    .bind(name)
    .bind(holder)
    .bind(until)
    .bind(now)
    .execute(p)
    .await
    .map(|r| r.rows_affected() == 1))
}
