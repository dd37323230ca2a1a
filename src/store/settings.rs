//! Store queries for `settings`, a small key/value table for panel-wide state
//! such as the one-time setup token's hash.

use super::{Pool, on_pool};

pub async fn put(pool: &Pool, key: &str, value: &str) -> sqlx::Result<()> {
    on_pool!(pool, |p| sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    )
    .bind(key)
    .bind(value)
    .execute(p)
    .await
    .map(|_| ()))
}

pub async fn get(pool: &Pool, key: &str) -> sqlx::Result<Option<String>> {
    on_pool!(pool, |p| sqlx::query_scalar(
        "SELECT value FROM settings WHERE key = $1"
    )
    .bind(key)
    .fetch_optional(p)
    .await)
}

pub async fn delete(pool: &Pool, key: &str) -> sqlx::Result<()> {
    on_pool!(pool, |p| sqlx::query("DELETE FROM settings WHERE key = $1")
        .bind(key)
        .execute(p)
        .await
        .map(|_| ()))
}
