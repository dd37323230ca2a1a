//! Store queries for `users`.

use sqlx::FromRow;

use super::{Pool, now, on_pool};
use crate::domain::Role;

#[derive(Clone, Debug, FromRow)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub password_hash: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub can_approve: bool,
    pub disabled: bool,
    pub created_at: i64,
    pub password_changed_at: i64,
    /// Bumped by every password change; sessions of an older one are over.
    pub session_epoch: i64,
}

const COLUMNS: &str =
    "id, name, password_hash, role, can_approve, disabled, created_at, password_changed_at, session_epoch";

pub async fn count(pool: &Pool) -> sqlx::Result<i64> {
    on_pool!(pool, |p| sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(p)
        .await)
}

pub async fn insert(
    pool: &Pool,
    name: &str,
    password_hash: &str,
    role: Role,
    can_approve: bool,
) -> sqlx::Result<i64> {
    let at = now();
    on_pool!(pool, |p| {
        sqlx::query_scalar(
        "INSERT INTO users (name, password_hash, role, can_approve, disabled, created_at, password_changed_at) \
         VALUES ($1, $2, $3, $4, FALSE, $5, $5) RETURNING id"
    )
    .bind(name)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(can_approve)
    .bind(at)
    .fetch_one(p)
    .await
    })
}

pub async fn by_name(pool: &Pool, name: &str) -> sqlx::Result<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE name = $1");
    on_pool!(pool, |p| sqlx::query_as::<_, UserRow>(&sql)
        .bind(name)
        .fetch_optional(p)
        .await)
}

pub async fn by_id(pool: &Pool, id: i64) -> sqlx::Result<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    on_pool!(pool, |p| sqlx::query_as::<_, UserRow>(&sql)
        .bind(id)
        .fetch_optional(p)
        .await)
}

pub async fn list(pool: &Pool) -> sqlx::Result<Vec<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY name");
    on_pool!(pool, |p| sqlx::query_as::<_, UserRow>(&sql).fetch_all(p).await)
}

/// Set a new password hash and start a new session epoch (ending the
/// user's sessions of the old one); with `revoke_tokens`, revoke their live
/// API tokens in the same transaction. The new epoch and how many tokens
/// were revoked, or `None` if there is no such user.
pub async fn set_password(
    pool: &Pool,
    id: i64,
    password_hash: &str,
    revoke_tokens: bool,
) -> sqlx::Result<Option<(i64, u64)>> {
    let at = now();
    on_pool!(pool, |p| {
        let mut tx = p.begin().await?;
        let epoch: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET password_hash = $1, password_changed_at = $2, \
             session_epoch = session_epoch + 1 WHERE id = $3 RETURNING session_epoch",
        )
        .bind(password_hash)
        .bind(at)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(epoch) = epoch else {
            tx.rollback().await?;
            return Ok(None);
        };
        let revoked = if revoke_tokens {
            sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        } else {
            0
        };
        tx.commit().await?;
        Ok(Some((epoch, revoked)))
    })
}

/// The guard keeps at least one enabled admin: an update that would remove
/// the last one changes nothing and reports 0 rows.
const KEEPS_AN_ADMIN: &str =
    "(SELECT COUNT(*) FROM users WHERE role = 'admin' AND NOT disabled AND id <> $ID) > 0";

/// Change role and approver flag; 0 rows if it would demote the last admin.
pub async fn set_role(pool: &Pool, id: i64, role: Role, can_approve: bool) -> sqlx::Result<u64> {
    let sql = format!(
        "UPDATE users SET role = $1, can_approve = $2 WHERE id = $3 \
         AND ($1 = 'admin' OR role <> 'admin' OR disabled OR {})",
        KEEPS_AN_ADMIN.replace("$ID", "$3")
    );
    on_pool!(pool, |p| sqlx::query(&sql)
        .bind(role.as_str())
        .bind(can_approve)
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
}

/// Disable or enable; 0 rows if disabling would remove the last admin.
pub async fn set_disabled(pool: &Pool, id: i64, disabled: bool) -> sqlx::Result<u64> {
    let sql = format!(
        "UPDATE users SET disabled = $1 WHERE id = $2 \
         AND (NOT $1 OR role <> 'admin' OR disabled OR {})",
        KEEPS_AN_ADMIN.replace("$ID", "$2")
    );
    on_pool!(pool, |p| sqlx::query(&sql)
        .bind(disabled)
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
}

/// Create the first admin if `token_hash` is the stored setup token and no
/// user exists yet. Consuming the token and creating the user happen in one
/// transaction, so a token works exactly once even under concurrent posts.
/// Returns the new user's id, or `None` if the token was wrong or used.
pub async fn insert_first_admin(
    pool: &Pool,
    setup_key: &str,
    token_hash: &str,
    name: &str,
    password_hash: &str,
) -> sqlx::Result<Option<i64>> {
    let at = now();
    on_pool!(pool, |p| {
        let mut tx = p.begin().await?;
        let consumed = sqlx::query("DELETE FROM settings WHERE key = $1 AND value = $2")
            .bind(setup_key)
            .bind(token_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *tx)
            .await?;
        if consumed != 1 || users != 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (name, password_hash, role, can_approve, disabled, created_at, password_changed_at) \
             VALUES ($1, $2, 'admin', TRUE, FALSE, $3, $3) RETURNING id",
        )
        .bind(name)
        .bind(password_hash)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    })
}
