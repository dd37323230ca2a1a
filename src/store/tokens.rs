//! Store queries for `api_tokens`. Only a SHA-256 of each token is stored.

use sqlx::FromRow;

use super::{Pool, now, on_pool};

#[derive(Clone, Debug, FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, name, created_at, last_used_at, revoked_at";

pub async fn insert(pool: &Pool, user_id: i64, name: &str, token_hash: &str) -> sqlx::Result<i64> {
    on_pool!(pool, |p| sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id"
    )
    .bind(user_id)
    .bind(name)
    .bind(token_hash)
    .bind(now())
    .fetch_one(p)
    .await)
}

pub async fn list_for_user(pool: &Pool, user_id: i64) -> sqlx::Result<Vec<TokenRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1 \
         ORDER BY revoked_at IS NOT NULL, created_at DESC, id DESC"
    );
    on_pool!(pool, |p| sqlx::query_as::<_, TokenRow>(&sql)
        .bind(user_id)
        .fetch_all(p)
        .await)
}

/// A live (not revoked) token by its hash.
pub async fn live_by_hash(pool: &Pool, token_hash: &str) -> sqlx::Result<Option<TokenRow>> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL");
    on_pool!(pool, |p| sqlx::query_as::<_, TokenRow>(&sql)
        .bind(token_hash)
        .fetch_optional(p)
        .await)
}

/// Record use, at most once a minute per token so busy automation does not
/// turn every API read into a store write.
pub async fn touch(pool: &Pool, id: i64) -> sqlx::Result<()> {
    let at = now();
    on_pool!(pool, |p| sqlx::query(
        "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 \
         AND (last_used_at IS NULL OR last_used_at < $1 - 60)"
    )
    .bind(at)
    .bind(id)
    .execute(p)
    .await
    .map(|_| ()))
}

/// Revoke one of a user's live tokens; 0 rows if there is no such token.
pub async fn revoke(pool: &Pool, id: i64, user_id: i64) -> sqlx::Result<u64> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL"
    )
    .bind(now())
    .bind(id)
    .bind(user_id)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))
}
