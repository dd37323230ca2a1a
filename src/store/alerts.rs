//! Store queries for alerting: per-database rule settings, alerts and their
//! states, and silences. Webhooks and their deliveries are in `webhooks`.
//!
//! Alert states and rule keys are enums stored as TEXT with the values the
//! tables always held. A row whose value this build does not know (written
//! by a newer panel on the same store, say) is skipped with a log line, so
//! one stray row never takes the alerts page or the sampler down.

mod values;

use sqlx::FromRow;

pub(super) use self::values::readable;
pub use self::values::{AlertEvent, AlertState, DeliveryState, RuleKey, UnknownValue};
use super::{Pool, now, on_pool};

/// A rule's stored settings for one database.
#[derive(Clone, Debug, FromRow, PartialEq)]
pub struct RuleRow {
    pub database_name: String,
    pub rule: RuleKey,
    pub enabled: bool,
    pub threshold: Option<f64>,
    pub for_seconds: i64,
}

/// A database's stored rule settings (rules without a row use defaults).
pub async fn rules(pool: &Pool, database: &str) -> sqlx::Result<Vec<RuleRow>> {
    on_pool!(pool, |p| {
        let rows = sqlx::query(
            "SELECT database_name, rule, enabled, threshold, for_seconds FROM alert_rules WHERE database_name = $1",
        )
        .bind(database)
        .fetch_all(p)
        .await?;
        Ok(readable(rows, "alert_rules"))
    })
}

pub async fn put_rule(pool: &Pool, r: &RuleRow) -> sqlx::Result<()> {
    on_pool!(pool, |p| {
        sqlx::query(
        "INSERT INTO alert_rules (database_name, rule, enabled, threshold, for_seconds) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (database_name, rule) DO UPDATE SET enabled = excluded.enabled, \
           threshold = excluded.threshold, for_seconds = excluded.for_seconds"
    )
    .bind(&r.database_name)
    .bind(r.rule)
    .bind(r.enabled)
    .bind(r.threshold)
    .bind(r.for_seconds)
    .execute(p)
    .await
    .map(|_| ())
    })
}

#[derive(Clone, Debug, FromRow, PartialEq)]
pub struct AlertRow {
    pub id: i64,
    pub database_name: String,
    pub rule: RuleKey,
    pub state: AlertState,
    pub message: String,
    pub value: Option<f64>,
    pub started_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub acked_by: Option<String>,
    pub acked_at: Option<i64>,
    pub updated_at: i64,
    /// Its "firing" notification was queued.
    pub notified: bool,
    /// The statement behind it (pages only).
    pub query: Option<String>,
}

const ALERT_COLUMNS: &str = "id, database_name, rule, state, message, value, started_at, fired_at, resolved_at, \
                             acked_by, acked_at, updated_at, notified, query";

/// The open (pending or firing) alerts of one database.
pub async fn open_for(pool: &Pool, database: &str) -> sqlx::Result<Vec<AlertRow>> {
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE database_name = $1 AND state IN ('pending', 'firing')"
    );
    on_pool!(pool, |p| {
        let rows = sqlx::query(&sql).bind(database).fetch_all(p).await?;
        Ok(readable(rows, "alerts"))
    })
}

/// Every open alert, firing first.
pub async fn open(pool: &Pool) -> sqlx::Result<Vec<AlertRow>> {
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE state IN ('pending', 'firing') \
         ORDER BY CASE state WHEN 'firing' THEN 0 ELSE 1 END, started_at"
    );
    on_pool!(pool, |p| {
        let rows = sqlx::query(&sql).fetch_all(p).await?;
        Ok(readable(rows, "alerts"))
    })
}

/// Alerts that fired, newest first, optionally of one database (history).
pub async fn recent(pool: &Pool, database: Option<&str>, limit: i64) -> sqlx::Result<Vec<AlertRow>> {
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE fired_at IS NOT NULL \
           AND ($1 IS NULL OR database_name = $1) ORDER BY id DESC LIMIT $2"
    );
    on_pool!(pool, |p| {
        let rows = sqlx::query(&sql).bind(database).bind(limit).fetch_all(p).await?;
        Ok(readable(rows, "alerts"))
    })
}

/// One alert; `None` if there is none (or it cannot be read: logged).
pub async fn get(pool: &Pool, id: i64) -> sqlx::Result<Option<AlertRow>> {
    let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
    on_pool!(pool, |p| {
        let rows = sqlx::query(&sql).bind(id).fetch_all(p).await?;
        Ok(readable(rows, "alerts").into_iter().next())
    })
}

/// Open a pending alert; `None` if one is already open (the unique index).
pub async fn open_pending(
    pool: &Pool,
    database: &str,
    rule: RuleKey,
    message: &str,
    query: Option<&str>,
    value: Option<f64>,
    at: i64,
) -> sqlx::Result<Option<i64>> {
    on_pool!(pool, |p| sqlx::query_scalar(
        "INSERT INTO alerts (database_name, rule, state, message, query, value, started_at, updated_at) \
         VALUES ($1, $2, 'pending', $3, $4, $5, $6, $6) \
         ON CONFLICT (database_name, rule) WHERE state IN ('pending', 'firing') DO NOTHING RETURNING id"
    )
    .bind(database)
    .bind(rule)
    .bind(message)
    .bind(query)
    .bind(value)
    .bind(at)
    .fetch_optional(p)
    .await)
}

/// Refresh an open alert's message, statement and value.
pub async fn touch(
    pool: &Pool,
    id: i64,
    message: &str,
    query: Option<&str>,
    value: Option<f64>,
    at: i64,
) -> sqlx::Result<()> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE alerts SET message = $2, query = $3, value = $4, updated_at = $5 WHERE id = $1"
    )
    .bind(id)
    .bind(message)
    .bind(query)
    .bind(value)
    .bind(at)
    .execute(p)
    .await
    .map(|_| ()))
}

/// pending → firing; false if it was not pending any more (another
/// instance got there first).
pub async fn fire(pool: &Pool, id: i64, at: i64) -> sqlx::Result<bool> {
    on_pool!(pool, |p| {
        sqlx::query(
        "UPDATE alerts SET state = 'firing', fired_at = $2, updated_at = $2 WHERE id = $1 AND state = 'pending'"
    )
    .bind(id)
    .bind(at)
    .execute(p)
    .await
    .map(|r| r.rows_affected() == 1)
    })
}

/// firing → resolved; false if it was not firing.
pub async fn resolve(pool: &Pool, id: i64, at: i64) -> sqlx::Result<bool> {
    on_pool!(pool, |p| {
        sqlx::query(
        "UPDATE alerts SET state = 'resolved', resolved_at = $2, updated_at = $2 WHERE id = $1 AND state = 'firing'"
    )
    .bind(id)
    .bind(at)
    .execute(p)
    .await
    .map(|r| r.rows_affected() == 1)
    })
}

/// Mark a firing alert's notification as queued; false if it already was.
pub async fn mark_notified(pool: &Pool, id: i64) -> sqlx::Result<bool> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE alerts SET notified = TRUE WHERE id = $1 AND state = 'firing' AND NOT notified"
    )
    .bind(id)
    .execute(p)
    .await
    .map(|r| r.rows_affected() == 1))
}

/// A pending alert whose condition cleared before it fired is forgotten.
pub async fn drop_pending(pool: &Pool, id: i64) -> sqlx::Result<()> {
    on_pool!(pool, |p| sqlx::query(
        "DELETE FROM alerts WHERE id = $1 AND state = 'pending'"
    )
    .bind(id)
    .execute(p)
    .await
    .map(|_| ()))
}

/// Acknowledge an open alert; false if it is not open.
pub async fn ack(pool: &Pool, id: i64, by: &str) -> sqlx::Result<bool> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE alerts SET acked_by = $2, acked_at = $3 WHERE id = $1 AND state IN ('pending', 'firing')"
    )
    .bind(id)
    .bind(by)
    .bind(now())
    .execute(p)
    .await
    .map(|r| r.rows_affected() == 1))
}

#[derive(Clone, Debug, FromRow, PartialEq)]
pub struct SilenceRow {
    pub id: i64,
    pub database_name: String,
    /// `None`: every rule of the database.
    pub rule: Option<RuleKey>,
    pub until_at: i64,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
}

pub async fn add_silence(
    pool: &Pool,
    database: &str,
    rule: Option<RuleKey>,
    until: i64,
    reason: &str,
    by: &str,
) -> sqlx::Result<i64> {
    on_pool!(pool, |p| sqlx::query_scalar(
        "INSERT INTO alert_silences (database_name, rule, until_at, reason, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
    )
    .bind(database)
    .bind(rule)
    .bind(until)
    .bind(reason)
    .bind(by)
    .bind(now())
    .fetch_one(p)
    .await)
}

/// Silences still in force.
pub async fn silences(pool: &Pool, at: i64) -> sqlx::Result<Vec<SilenceRow>> {
    on_pool!(pool, |p| {
        let rows = sqlx::query(
            "SELECT id, database_name, rule, until_at, reason, created_by, created_at FROM alert_silences \
             WHERE until_at > $1 ORDER BY until_at",
        )
        .bind(at)
        .fetch_all(p)
        .await?;
        Ok(readable(rows, "alert_silences"))
    })
}

/// End a silence now; false if there is no such silence in force.
pub async fn end_silence(pool: &Pool, id: i64) -> sqlx::Result<bool> {
    let at = now();
    on_pool!(pool, |p| sqlx::query(
        "UPDATE alert_silences SET until_at = $2 WHERE id = $1 AND until_at > $2"
    )
    .bind(id)
    .bind(at)
    .execute(p)
    .await
    .map(|r| r.rows_affected() == 1))
}

/// Forget what is long over: resolved alerts, finished deliveries and
/// expired silences older than `before`. Open alerts are never touched.
pub async fn prune(pool: &Pool, before: i64) -> sqlx::Result<u64> {
    on_pool!(pool, |p| {
        let mut tx = p.begin().await?;
        let mut n = sqlx::query("DELETE FROM alert_deliveries WHERE state <> 'pending' AND created_at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        n += sqlx::query("DELETE FROM alerts WHERE state = 'resolved' AND resolved_at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        n += sqlx::query("DELETE FROM alert_silences WHERE until_at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    })
}
