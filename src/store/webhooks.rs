//! Store queries for webhooks and the queue of deliveries to them. A
//! delivery's event and state are enums (see `alerts`); a row naming a value
//! this build does not know is skipped with a log line.

use sqlx::FromRow;

use super::alerts::readable;
use super::{Pool, now, on_pool};
pub use crate::store::alerts::{AlertEvent, DeliveryState};

#[derive(Clone, Debug, FromRow, PartialEq)]
pub struct WebhookRow {
    pub id: i64,
    pub name: String,
    pub url_sealed: String,
    pub format: String,
    pub created_by: String,
    pub created_at: i64,
}

pub async fn webhooks(pool: &Pool) -> sqlx::Result<Vec<WebhookRow>> {
    on_pool!(pool, |p| sqlx::query_as::<_, WebhookRow>(
        "SELECT id, name, url_sealed, format, created_by, created_at FROM webhooks ORDER BY name"
    )
    .fetch_all(p)
    .await)
}

pub async fn add_webhook(
    pool: &Pool,
    name: &str,
    url_sealed: &str,
    format: &str,
    by: &str,
) -> sqlx::Result<i64> {
    on_pool!(pool, |p| sqlx::query_scalar(
        "INSERT INTO webhooks (name, url_sealed, format, created_by, created_at) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id"
    )
    .bind(name)
    .bind(url_sealed)
    .bind(format)
    .bind(by)
    .bind(now())
    .fetch_one(p)
    .await)
}

pub async fn delete_webhook(pool: &Pool, id: i64) -> sqlx::Result<Option<String>> {
    on_pool!(pool, |p| {
        let mut tx = p.begin().await?;
        sqlx::query("DELETE FROM alert_deliveries WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let name = sqlx::query_scalar("DELETE FROM webhooks WHERE id = $1 RETURNING name")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(name)
    })
}

#[derive(Clone, Debug, FromRow, PartialEq)]
pub struct DeliveryRow {
    pub id: i64,
    pub alert_id: i64,
    pub webhook_id: i64,
    pub event: AlertEvent,
    pub payload: String,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_at: i64,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
}

const DELIVERY_COLUMNS: &str = "id, alert_id, webhook_id, event, payload, state, attempts, next_at, last_error, delivered_at, created_at";

/// Queue one notification per webhook.
pub async fn enqueue(pool: &Pool, alert_id: i64, event: AlertEvent, payload: &str) -> sqlx::Result<u64> {
    on_pool!(pool, |p| sqlx::query(
        "INSERT INTO alert_deliveries (alert_id, webhook_id, event, payload, state, next_at, created_at) \
         SELECT $1, id, $2, $3, 'pending', $4, $4 FROM webhooks"
    )
    .bind(alert_id)
    .bind(event)
    .bind(payload)
    .bind(now())
    .execute(p)
    .await
    .map(|r| r.rows_affected()))
}

/// Deliveries due now, oldest first.
pub async fn due(pool: &Pool, at: i64, limit: i64) -> sqlx::Result<Vec<DeliveryRow>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE state = 'pending' AND next_at <= $1 \
         ORDER BY next_at, id LIMIT $2"
    );
    on_pool!(pool, |p| {
        let rows = sqlx::query(&sql).bind(at).bind(limit).fetch_all(p).await?;
        Ok(readable(rows, "alert_deliveries"))
    })
}

/// Claim a due delivery for one attempt, pushing its next try past the
/// longest a send may take, so two panel instances never send it at once.
/// False if someone else did.
pub async fn claim(pool: &Pool, id: i64, next_at: i64, at: i64) -> sqlx::Result<bool> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE alert_deliveries SET next_at = $2, attempts = attempts + 1 \
         WHERE id = $1 AND state = 'pending' AND next_at <= $3"
    )
    .bind(id)
    .bind(next_at)
    .bind(at)
    .execute(p)
    .await
    .map(|r| r.rows_affected() == 1))
}

/// Record attempt number `attempt`'s outcome: delivered, failed for good,
/// or pending again from `next_at`. Only if no later attempt has been
/// claimed meanwhile (a slow send must not undo a newer one's outcome).
pub async fn attempted(
    pool: &Pool,
    id: i64,
    attempt: i64,
    state: DeliveryState,
    error: Option<&str>,
    next_at: i64,
) -> sqlx::Result<()> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE alert_deliveries SET state = $3, last_error = $4, next_at = $6, \
           delivered_at = CASE WHEN $3 = 'delivered' THEN $5 ELSE delivered_at END \
         WHERE id = $1 AND attempts = $2 AND state = 'pending'"
    )
    .bind(id)
    .bind(attempt)
    .bind(state)
    .bind(error)
    .bind(now())
    .bind(next_at)
    .execute(p)
    .await
    .map(|_| ()))
}

/// Recent deliveries with their webhook's name, newest first.
pub async fn deliveries(pool: &Pool, limit: i64) -> sqlx::Result<Vec<(DeliveryRow, String)>> {
    #[derive(FromRow)]
    struct Joined {
        #[sqlx(flatten)]
        d: DeliveryRow,
        webhook: String,
    }
    let sql = format!(
        "SELECT {}, w.name AS webhook FROM alert_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         ORDER BY d.id DESC LIMIT $1",
        DELIVERY_COLUMNS
            .split(", ")
            .map(|c| format!("d.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let rows: Vec<Joined> = on_pool!(pool, |p| {
        let rows = sqlx::query(&sql).bind(limit).fetch_all(p).await?;
        readable(rows, "alert_deliveries")
    });
    Ok(rows.into_iter().map(|j| (j.d, j.webhook)).collect())
}
