//! Store queries for `audit_log`: insert and read, nothing else. The log is
//! append-only; the schema's triggers refuse UPDATE and DELETE as well.

use sqlx::{FromRow, QueryBuilder};

use super::{Pool, on_pool};

/// One row to append.
#[derive(Debug)]
pub struct NewEntry<'a> {
    pub at: i64,
    pub actor_id: Option<i64>,
    pub actor: &'a str,
    pub via: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub database_name: Option<&'a str>,
    pub outcome: &'a str,
    pub detail: &'a str,
    pub client_addr: &'a str,
}

#[derive(Clone, Debug, FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor_id: Option<i64>,
    pub actor: String,
    pub via: String,
    pub action: String,
    pub target: String,
    pub database_name: Option<String>,
    pub outcome: String,
    pub detail: String,
    pub client_addr: String,
}

pub async fn insert(pool: &Pool, e: &NewEntry<'_>) -> sqlx::Result<i64> {
    on_pool!(pool, |p| {
        sqlx::query_scalar(
        "INSERT INTO audit_log (at, actor_id, actor, via, action, target, database_name, outcome, detail, client_addr) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id"
    )
    .bind(e.at)
    .bind(e.actor_id)
    .bind(e.actor)
    .bind(e.via)
    .bind(e.action)
    .bind(e.target)
    .bind(e.database_name)
    .bind(e.outcome)
    .bind(e.detail)
    .bind(e.client_addr)
    .fetch_one(p)
    .await
    })
}

/// Which rows to read. Pages are keyset-paginated on `id` (newest first), so
/// reading page 1,000 of a large log costs what page 1 does.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub database: Option<String>,
    /// Inclusive lower bound on `at`.
    pub from: Option<i64>,
    /// Exclusive upper bound on `at`.
    pub until: Option<i64>,
    /// Rows older than this id (the "older" link).
    pub before_id: Option<i64>,
    /// Rows newer than this id (the "newer" link).
    pub after_id: Option<i64>,
    pub limit: i64,
}

/// Rows matching `f`, newest first.
pub async fn search(pool: &Pool, f: &Filter) -> sqlx::Result<Vec<AuditRow>> {
    on_pool!(pool, |p| {
        let mut q = QueryBuilder::new(
            "SELECT id, at, actor_id, actor, via, action, target, database_name, outcome, detail, client_addr \
             FROM audit_log WHERE 1 = 1",
        );
        if let Some(actor) = &f.actor {
            q.push(" AND actor = ").push_bind(actor.clone());
        }
        if let Some(action) = &f.action {
            q.push(" AND action = ").push_bind(action.clone());
        }
        if let Some(db) = &f.database {
            q.push(" AND database_name = ").push_bind(db.clone());
        }
        if let Some(from) = f.from {
            q.push(" AND at >= ").push_bind(from);
        }
        if let Some(until) = f.until {
            q.push(" AND at < ").push_bind(until);
        }
        if let Some(before) = f.before_id {
            q.push(" AND id < ").push_bind(before);
        }
        // Walking towards newer rows reads ascending, then flips, so the
        // page holds the rows just after `after_id`, not the newest ones.
        let ascending = f.before_id.is_none() && f.after_id.is_some();
        if let Some(after) = f.after_id {
            q.push(" AND id > ").push_bind(after);
        }
        q.push(if ascending {
            " ORDER BY id ASC"
        } else {
            " ORDER BY id DESC"
        });
        q.push(" LIMIT ").push_bind(f.limit);
        let mut rows = q.build_query_as::<AuditRow>().fetch_all(p).await?;
        if ascending {
            rows.reverse();
        }
        Ok(rows)
    })
}
