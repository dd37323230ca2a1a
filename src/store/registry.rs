//! Store queries for `managed_databases`.

use sqlx::FromRow;

use super::{Pool, now, on_pool};

#[derive(Clone, Debug, FromRow)]
pub struct DatabaseRow {
    pub id: i64,
    pub name: String,
    pub engine: String,
    pub url_sealed: String,
    pub url_redacted: String,
    pub migrations_dir: Option<String>,
    pub rpo_seconds: Option<i64>,
    pub rto_seconds: Option<i64>,
    pub backup_schedule: Option<String>,
    pub verify_schedule: Option<String>,
    pub retention: Option<String>,
    pub pgbackrest_stanza: Option<String>,
    pub pgbackrest_config: Option<String>,
    pub pgbackrest_schedule: Option<String>,
    pub recovery_drill_schedule: Option<String>,
    pub recovery_proof_sql: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, name, engine, url_sealed, url_redacted, migrations_dir, rpo_seconds, \
                       rto_seconds, backup_schedule, verify_schedule, retention, pgbackrest_stanza, \
                       pgbackrest_config, pgbackrest_schedule, recovery_drill_schedule, recovery_proof_sql, \
                       created_at, updated_at";

/// What is written on insert or update.
#[derive(Debug)]
pub struct DatabaseFields<'a> {
    pub name: &'a str,
    pub engine: &'a str,
    pub url_sealed: &'a str,
    pub url_redacted: &'a str,
    pub migrations_dir: Option<&'a str>,
    pub rpo_seconds: Option<i64>,
    pub rto_seconds: Option<i64>,
    pub backup_schedule: Option<&'a str>,
    pub verify_schedule: Option<&'a str>,
    pub retention: Option<&'a str>,
    pub pgbackrest_stanza: Option<&'a str>,
    pub pgbackrest_config: Option<&'a str>,
    pub pgbackrest_schedule: Option<&'a str>,
    pub recovery_drill_schedule: Option<&'a str>,
    pub recovery_proof_sql: Option<&'a str>,
}

pub async fn list(pool: &Pool) -> sqlx::Result<Vec<DatabaseRow>> {
    let sql = format!("SELECT {COLUMNS} FROM managed_databases ORDER BY name");
    on_pool!(pool, |p| sqlx::query_as::<_, DatabaseRow>(&sql)
        .fetch_all(p)
        .await)
}

pub async fn by_name(pool: &Pool, name: &str) -> sqlx::Result<Option<DatabaseRow>> {
    let sql = format!("SELECT {COLUMNS} FROM managed_databases WHERE name = $1");
    on_pool!(pool, |p| sqlx::query_as::<_, DatabaseRow>(&sql)
        .bind(name)
        .fetch_optional(p)
        .await)
}

pub async fn count(pool: &Pool) -> sqlx::Result<i64> {
    on_pool!(pool, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM managed_databases"
    )
    .fetch_one(p)
    .await)
}

pub async fn insert(pool: &Pool, f: &DatabaseFields<'_>) -> sqlx::Result<i64> {
    let at = now();
    on_pool!(pool, |p| {
        sqlx::query_scalar(
        "INSERT INTO managed_databases (name, engine, url_sealed, url_redacted, migrations_dir, \
         rpo_seconds, rto_seconds, backup_schedule, verify_schedule, retention, pgbackrest_stanza, \
         pgbackrest_config, pgbackrest_schedule, recovery_drill_schedule, recovery_proof_sql, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $9, $10, $11, $12, $13, $14, $15, $16, $8, $8) RETURNING id"
    )
    .bind(f.name)
    .bind(f.engine)
    .bind(f.url_sealed)
    .bind(f.url_redacted)
    .bind(f.migrations_dir)
    .bind(f.rpo_seconds)
    .bind(f.rto_seconds)
    .bind(at)
    .bind(f.backup_schedule)
    .bind(f.verify_schedule)
    .bind(f.retention)
    .bind(f.pgbackrest_stanza)
    .bind(f.pgbackrest_config)
    .bind(f.pgbackrest_schedule)
    .bind(f.recovery_drill_schedule)
    .bind(f.recovery_proof_sql)
    .fetch_one(p)
    .await
    })
}

/// Replace every field of the row named `f.name`; 0 rows if there is none.
pub async fn update(pool: &Pool, f: &DatabaseFields<'_>) -> sqlx::Result<u64> {
    on_pool!(pool, |p| sqlx::query(
        "UPDATE managed_databases SET engine = $2, url_sealed = $3, url_redacted = $4, \
         migrations_dir = $5, rpo_seconds = $6, rto_seconds = $7, updated_at = $8, \
         backup_schedule = $9, verify_schedule = $10, retention = $11, pgbackrest_stanza = $12, \
         pgbackrest_config = $13, pgbackrest_schedule = $14, recovery_drill_schedule = $15, \
         recovery_proof_sql = $16 WHERE name = $1"
    )
    .bind(f.name)
    .bind(f.engine)
    .bind(f.url_sealed)
    .bind(f.url_redacted)
    .bind(f.migrations_dir)
    .bind(f.rpo_seconds)
    .bind(f.rto_seconds)
    .bind(now())
    .bind(f.backup_schedule)
    .bind(f.verify_schedule)
    .bind(f.retention)
    .bind(f.pgbackrest_stanza)
    .bind(f.pgbackrest_config)
    .bind(f.pgbackrest_schedule)
    .bind(f.recovery_drill_schedule)
    .bind(f.recovery_proof_sql)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))
}

/// Forget a registration in one transaction: its row goes, its history
/// (backups, jobs, migration requests, alerts) moves to `key`, its settings
/// (alert rules, silences, schedule clocks) are deleted, and the removal is
/// recorded. Returns false (and changes nothing) if there was no such row.
pub async fn remove_and_retire(pool: &Pool, name: &str, key: &str, at: i64) -> sqlx::Result<bool> {
    on_pool!(pool, |p| {
        let mut tx = p.begin().await?;
        let engine: Option<String> =
            sqlx::query_scalar("DELETE FROM managed_databases WHERE name = $1 RETURNING engine")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(engine) = engine else {
            tx.rollback().await?;
            return Ok(false);
        };
        sqlx::query("INSERT INTO removed_databases (key, name, engine, removed_at) VALUES ($1, $2, $3, $4)")
            .bind(key)
            .bind(name)
            .bind(&engine)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        for table in [
            "backups",
            "jobs",
            "migration_requests",
            "alerts",
            "recovery_restores",
        ] {
            // Table names from this fixed list only.
            sqlx::query(&format!(
                "UPDATE {table} SET database_name = $1 WHERE database_name = $2"
            ))
            .bind(key)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        for table in [
            "alert_rules",
            "alert_silences",
            "metric_samples",
            "recovery_relations",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE database_name = $1"))
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        for kind in [
            "backup",
            "verify",
            "prune",
            "drill",
            "physical_backup:full",
            "physical_backup:diff",
            "physical_backup:incr",
            "repo_verify",
        ] {
            sqlx::query("DELETE FROM settings WHERE key = $1")
                .bind(format!("schedule:{kind}:{name}"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    })
}

/// One removed database.
#[derive(Clone, Debug, FromRow)]
pub struct RemovedRow {
    pub key: String,
    pub name: String,
    pub engine: String,
    pub removed_at: i64,
}

/// Removed databases, most recently removed first.
pub async fn removed(pool: &Pool) -> sqlx::Result<Vec<RemovedRow>> {
    on_pool!(pool, |p| sqlx::query_as::<_, RemovedRow>(
        "SELECT key, name, engine, removed_at FROM removed_databases ORDER BY removed_at DESC, key"
    )
    .fetch_all(p)
    .await)
}

/// Forget a removed database once its backups are pruned.
pub async fn forget_removed(pool: &Pool, key: &str) -> sqlx::Result<u64> {
    on_pool!(pool, |p| sqlx::query(
        "DELETE FROM removed_databases WHERE key = $1"
    )
    .bind(key)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))
}
