//! Catalog SQL for backups: row counts at a dump's snapshot (PostgreSQL
//! exports its snapshot to pg_dump, so the counts match the dump exactly),
//! row counts of a restored copy, and scratch databases for verification.
//! Each function opens its own connection from a URL: a dump's transaction
//! must stay open as long as the dump runs, off the shared pool.

use std::collections::BTreeMap;
use std::str::FromStr;

use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, MySqlConnection, PgConnection, SqliteConnection};

use super::maintenance::{quote_mysql, quote_pg};
use super::{EngineError, EngineKind, EngineResult};
use crate::config::SecretUrl;

/// Rows per table, keyed `schema.table`.
pub type Counts = BTreeMap<String, i64>;

fn err(e: sqlx::Error) -> EngineError {
    EngineError::from_sqlx(e)
}

fn pg_options(url: &SecretUrl) -> EngineResult<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(url.expose())
        .map_err(err)?
        .application_name("custodian")
        .options([("statement_timeout", "0")]))
}

fn mysql_options(url: &SecretUrl) -> EngineResult<MySqlConnectOptions> {
    MySqlConnectOptions::from_str(&url.expose().replacen("mariadb://", "mysql://", 1)).map_err(err)
}

/// A PostgreSQL snapshot held open for pg_dump --snapshot.
pub struct PgSnapshot {
    conn: PgConnection,
    pub id: String,
    pub counts: Counts,
    pub server_version: String,
}

impl PgSnapshot {
    /// REPEATABLE READ and export the snapshot (pg_export_snapshot, 9.2+).
    /// Counting happens in [`PgSnapshot::count`], while pg_dump runs.
    pub async fn take(url: &SecretUrl) -> EngineResult<PgSnapshot> {
        let mut conn = PgConnection::connect_with(&pg_options(url)?).await.map_err(err)?;
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut conn)
            .await
            .map_err(err)?;
        let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut conn)
            .await
            .map_err(err)?;
        let server_version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut conn)
            .await
            .map_err(err)?;
        Ok(PgSnapshot {
            conn,
            id,
            counts: Counts::new(),
            server_version,
        })
    }

    /// Count every user table in the snapshot (the rows pg_dump sees).
    pub async fn count(&mut self) -> EngineResult<()> {
        self.counts = pg_count(&mut self.conn).await?;
        Ok(())
    }

    /// End the transaction (after the dump has finished with the snapshot).
    pub async fn release(mut self) {
        let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
        let _ = self.conn.close().await;
    }
}

/// Count every ordinary table of the user schemas on this connection.
async fn pg_count(conn: &mut PgConnection) -> EngineResult<Counts> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' \
         ORDER BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    let mut counts = Counts::new();
    for (schema, name) in tables {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {}.{}",
            quote_pg(&schema)?,
            quote_pg(&name)?
        ))
        .fetch_one(&mut *conn)
        .await
        .map_err(err)?;
        counts.insert(format!("{schema}.{name}"), n);
    }
    Ok(counts)
}

/// MySQL/MariaDB: counts in a consistent snapshot taken just before the
/// dump's own (--single-transaction); exact unless rows change in between.
/// Returns (counts, server version).
pub async fn mysql_counts(url: &SecretUrl) -> EngineResult<(Counts, String)> {
    let mut conn = MySqlConnection::connect_with(&mysql_options(url)?)
        .await
        .map_err(err)?;
    sqlx::query("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .execute(&mut conn)
        .await
        .map_err(err)?;
    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(&mut conn)
        .await
        .map_err(err)?;
    let counts = mysql_count(&mut conn).await?;
    let _ = sqlx::query("COMMIT").execute(&mut conn).await;
    let _ = conn.close().await;
    Ok((counts, version))
}

async fn mysql_count(conn: &mut MySqlConnection) -> EngineResult<Counts> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT TABLE_NAME FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    let mut counts = Counts::new();
    for name in tables {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT CAST(COUNT(*) AS SIGNED) FROM {}",
            quote_mysql(&name)?
        ))
        .fetch_one(&mut *conn)
        .await
        .map_err(err)?;
        // Keyed by table alone: a restored copy lives in another schema.
        counts.insert(name, n);
    }
    Ok(counts)
}

/// SQLite: counts of a database file (a backup copy or a restored one).
pub async fn sqlite_counts(path: &std::path::Path) -> EngineResult<Counts> {
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    let mut conn = SqliteConnection::connect_with(&options).await.map_err(err)?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .map_err(err)?;
    let mut counts = Counts::new();
    for name in tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", quote_pg(&name)?))
            .fetch_one(&mut conn)
            .await
            .map_err(err)?;
        counts.insert(format!("main.{name}"), n);
    }
    let _ = conn.close().await;
    Ok(counts)
}

/// SQLite's online copy: VACUUM INTO a new file (SQLite 3.27+), consistent
/// while the database stays in use.
pub async fn sqlite_copy(source: &SecretUrl, to: &std::path::Path) -> EngineResult<()> {
    let options = SqliteConnectOptions::from_str(source.expose())
        .map_err(err)?
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_secs(30));
    let mut conn = SqliteConnection::connect_with(&options).await.map_err(err)?;
    let literal = format!("'{}'", to.display().to_string().replace('\'', "''"));
    sqlx::query(&format!("VACUUM INTO {literal}"))
        .execute(&mut conn)
        .await
        .map_err(err)?;
    let _ = conn.close().await;
    Ok(())
}

/// The file behind a sqlite:// URL.
pub fn sqlite_path(url: &SecretUrl) -> EngineResult<std::path::PathBuf> {
    let options = SqliteConnectOptions::from_str(url.expose()).map_err(err)?;
    Ok(options.get_filename().to_path_buf())
}

/// Row counts of a (restored) database at `url`.
pub async fn counts(url: &SecretUrl) -> EngineResult<Counts> {
    match EngineKind::of_url(url.expose()).map_err(|e| EngineError(e.to_string()))? {
        EngineKind::Postgres => {
            let mut conn = PgConnection::connect_with(&pg_options(url)?).await.map_err(err)?;
            let c = pg_count(&mut conn).await;
            let _ = conn.close().await;
            c
        }
        EngineKind::Mysql => {
            let mut conn = MySqlConnection::connect_with(&mysql_options(url)?)
                .await
                .map_err(err)?;
            let c = mysql_count(&mut conn).await;
            let _ = conn.close().await;
            c
        }
        EngineKind::Sqlite => sqlite_counts(&sqlite_path(url)?).await,
    }
}

/// A URL like `url` but for database `name` on the same server.
pub fn with_database(url: &SecretUrl, name: &str) -> EngineResult<SecretUrl> {
    let mut u = url::Url::parse(url.expose()).map_err(|_| EngineError("not a valid URL".into()))?;
    u.set_path(&format!("/{name}"));
    Ok(SecretUrl::new(u.to_string()))
}

/// Does database `name` exist on the server of `url`?
pub async fn database_exists(url: &SecretUrl, name: &str) -> EngineResult<bool> {
    match EngineKind::of_url(url.expose()).map_err(|e| EngineError(e.to_string()))? {
        EngineKind::Postgres => {
            let mut conn = PgConnection::connect_with(&pg_options(url)?).await.map_err(err)?;
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(name)
                .fetch_one(&mut conn)
                .await
                .map_err(err)
        }
        EngineKind::Mysql => {
            let mut conn = MySqlConnection::connect_with(&mysql_options(url)?)
                .await
                .map_err(err)?;
            let n: i64 = sqlx::query_scalar(
                "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            )
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .map_err(err)?;
            Ok(n > 0)
        }
        EngineKind::Sqlite => Ok(false),
    }
}

/// Create an empty database `name` on the server of `url` (connected as
/// that URL's user, who needs CREATEDB / CREATE).
pub async fn create_database(url: &SecretUrl, name: &str) -> EngineResult<()> {
    match EngineKind::of_url(url.expose()).map_err(|e| EngineError(e.to_string()))? {
        EngineKind::Postgres => {
            let mut conn = PgConnection::connect_with(&pg_options(url)?).await.map_err(err)?;
            sqlx::query(&format!("CREATE DATABASE {}", quote_pg(name)?))
                .execute(&mut conn)
                .await
                .map_err(err)?;
        }
        EngineKind::Mysql => {
            let mut conn = MySqlConnection::connect_with(&mysql_options(url)?)
                .await
                .map_err(err)?;
            sqlx::query(&format!("CREATE DATABASE {}", quote_mysql(name)?))
                .execute(&mut conn)
                .await
                .map_err(err)?;
        }
        EngineKind::Sqlite => {}
    }
    Ok(())
}

/// Drop database `name` (PostgreSQL 13+: WITH (FORCE) ends its sessions).
pub async fn drop_database(url: &SecretUrl, name: &str) -> EngineResult<()> {
    match EngineKind::of_url(url.expose()).map_err(|e| EngineError(e.to_string()))? {
        EngineKind::Postgres => {
            let mut conn = PgConnection::connect_with(&pg_options(url)?).await.map_err(err)?;
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_pg(name)?
            ))
            .execute(&mut conn)
            .await
            .map_err(err)?;
        }
        EngineKind::Mysql => {
            let mut conn = MySqlConnection::connect_with(&mysql_options(url)?)
                .await
                .map_err(err)?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {}", quote_mysql(name)?))
                .execute(&mut conn)
                .await
                .map_err(err)?;
        }
        EngineKind::Sqlite => {}
    }
    Ok(())
}

/// Point-in-time readiness of a PostgreSQL server: (setting, value,
/// problem?) lines from pg_settings and pg_stat_archiver (9.4+).
pub async fn pg_pitr_readiness(conn: &mut PgConnection) -> EngineResult<Vec<(String, String, bool)>> {
    let (wal_level, archive_mode, archive_command): (String, String, String) = sqlx::query_as(
        "SELECT current_setting('wal_level'), current_setting('archive_mode'), current_setting('archive_command')",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(err)?;
    let (archived, last_wal, last_time, failed, last_failed): (i64, Option<String>, Option<String>, i64, Option<String>) =
        sqlx::query_as(
            "SELECT archived_count, last_archived_wal, last_archived_time::text, failed_count, \
                    CASE WHEN last_failed_time > COALESCE(last_archived_time, 'epoch') THEN last_failed_time::text END \
             FROM pg_stat_archiver",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(err)?;
    let archiving = archive_mode != "off";
    Ok(vec![
        ("wal_level".into(), wal_level.clone(), wal_level == "minimal"),
        ("archive_mode".into(), archive_mode.clone(), false),
        (
            "archive_command".into(),
            if archive_command.is_empty() {
                "(not set)".into()
            } else {
                archive_command
            },
            false,
        ),
        ("archived WAL files".into(), archived.to_string(), false),
        (
            "last archived".into(),
            match (last_wal, last_time) {
                (Some(w), Some(t)) => format!("{w} at {t}"),
                _ => "never".into(),
            },
            false,
        ),
        (
            "archiving failures".into(),
            match &last_failed {
                Some(t) => format!("{failed}, last at {t}: archiving is failing"),
                None => failed.to_string(),
            },
            archiving && last_failed.is_some(),
        ),
    ])
}

/// Point-in-time readiness of a MySQL/MariaDB server: the binary log.
pub async fn mysql_pitr_readiness(conn: &mut MySqlConnection) -> EngineResult<Vec<(String, String, bool)>> {
    let log_bin: Option<(String, String)> = sqlx::query_as("SHOW VARIABLES LIKE 'log_bin'")
        .fetch_optional(&mut *conn)
        .await
        .map_err(err)?;
    let format: Option<(String, String)> = sqlx::query_as("SHOW VARIABLES LIKE 'binlog_format'")
        .fetch_optional(&mut *conn)
        .await
        .map_err(err)?;
    let on = log_bin.as_ref().is_some_and(|(_, v)| v == "ON");
    Ok(vec![
        ("log_bin".into(), log_bin.map(|(_, v)| v).unwrap_or_default(), !on),
        (
            "binlog_format".into(),
            format.map(|(_, v)| v).unwrap_or_default(),
            false,
        ),
    ])
}
