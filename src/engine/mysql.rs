//! MySQL and MariaDB catalog queries (information_schema and server status
//! variables; MySQL 5.7+, MariaDB 10.3+). The protocol has no application
//! name, so the panel's sessions are recognised by their connection ids.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool};
use sqlx::{Executor, Row};

use super::{
    DatabaseEntry, EngineError, EngineKind, EngineResult, ManagedDb, STATEMENT_TIMEOUT, SchemaEntry,
    ServerStatus, bad_url, pool_options,
};
use crate::config::SecretUrl;
use crate::error::AppError;

pub struct Mysql {
    pool: MySqlPool,
}

impl Mysql {
    pub fn connect(url: &SecretUrl) -> Result<Self, AppError> {
        // sqlx speaks mysql://; mariadb:// is the same protocol.
        let raw = url.expose();
        let normalised = match raw.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => raw.to_string(),
        };
        let options =
            MySqlConnectOptions::from_str(&normalised).map_err(|e| bad_url(EngineKind::Mysql, e))?;
        let secs = STATEMENT_TIMEOUT.as_secs();
        let pool = pool_options::<sqlx::MySql>()
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    // Bound catalog queries: MariaDB's max_statement_time
                    // (seconds) or MySQL's max_execution_time (ms, SELECTs).
                    let mariadb = conn
                        .execute(format!("SET SESSION max_statement_time = {secs}").as_str())
                        .await;
                    if mariadb.is_err() {
                        let _ = conn
                            .execute(format!("SET SESSION max_execution_time = {}", secs * 1000).as_str())
                            .await;
                    }
                    Ok(())
                })
            })
            .connect_lazy_with(options);
        Ok(Mysql { pool })
    }
}

#[async_trait]
impl ManagedDb for Mysql {
    fn kind(&self) -> EngineKind {
        EngineKind::Mysql
    }

    /// VERSION(), global status Uptime and Threads_connected, @@max_connections,
    /// and information_schema.tables for the current database's size.
    async fn status(&self) -> EngineResult<ServerStatus> {
        let row = sqlx::query(
            "SELECT VERSION() AS version, \
                    @@max_connections AS max_connections, \
                    (SELECT CAST(COALESCE(SUM(data_length + index_length), 0) AS SIGNED) \
                       FROM information_schema.tables WHERE table_schema = DATABASE()) AS size_bytes, \
                    DATABASE() AS db",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(EngineError::from_sqlx)?;
        let version: String = row.try_get("version").map_err(EngineError::from_sqlx)?;
        let max_connections: Option<i64> = row
            .try_get::<Option<u64>, _>("max_connections")
            .ok()
            .flatten()
            .map(|v| v as i64);
        let db: Option<String> = row.try_get("db").map_err(EngineError::from_sqlx)?;
        let size_bytes: Option<i64> = if db.is_some() {
            row.try_get("size_bytes").map_err(EngineError::from_sqlx)?
        } else {
            None
        };
        let vars: Vec<(String, String)> =
            sqlx::query_as("SHOW GLOBAL STATUS WHERE Variable_name IN ('Uptime', 'Threads_connected')")
                .fetch_all(&self.pool)
                .await
                .map_err(EngineError::from_sqlx)?;
        let var = |name: &str| {
            vars.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.parse::<i64>().ok())
        };
        Ok(ServerStatus {
            version,
            uptime_s: var("Uptime"),
            size_bytes,
            connections: var("Threads_connected"),
            max_connections,
        })
    }

    /// information_schema.schemata with per-schema sizes from information_schema.tables.
    async fn databases(&self) -> EngineResult<Vec<DatabaseEntry>> {
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT s.schema_name, \
                    CAST(SUM(t.data_length + t.index_length) AS SIGNED) \
             FROM information_schema.schemata s \
             LEFT JOIN information_schema.tables t ON t.table_schema = s.schema_name \
             GROUP BY s.schema_name ORDER BY s.schema_name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(EngineError::from_sqlx)?;
        Ok(rows
            .into_iter()
            .map(|(name, size_bytes)| DatabaseEntry { name, size_bytes })
            .collect())
    }

    /// In MySQL a schema is a database: the current one, with its base tables.
    async fn schemas(&self) -> EngineResult<Vec<SchemaEntry>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT DATABASE(), CAST(COUNT(*) AS SIGNED) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' HAVING DATABASE() IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(EngineError::from_sqlx)?;
        Ok(rows
            .into_iter()
            .map(|(name, tables)| SchemaEntry { name, tables })
            .collect())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
