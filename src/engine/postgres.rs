//! PostgreSQL catalog queries. Each needs only the privileges of an ordinary
//! login role (pg_stat_activity shows other roles' rows without detail,
//! which is enough to count them); all work on PostgreSQL 10 and later.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool};

use super::{
    DatabaseEntry, EngineError, EngineKind, EngineResult, ManagedDb, STATEMENT_TIMEOUT, SchemaEntry,
    ServerStatus, bad_url, pool_options,
};
use crate::config::SecretUrl;
use crate::error::AppError;

pub struct Postgres {
    pool: PgPool,
}

impl Postgres {
    pub fn connect(url: &SecretUrl) -> Result<Self, AppError> {
        let timeout_ms = STATEMENT_TIMEOUT.as_millis().to_string();
        let options = PgConnectOptions::from_str(url.expose())
            .map_err(|e| bad_url(EngineKind::Postgres, e))?
            .application_name("custodian")
            // Catalog queries must never hang on a busy server.
            .options([("statement_timeout", timeout_ms.as_str())]);
        let pool = pool_options().connect_lazy_with(options);
        Ok(Postgres { pool })
    }
}

#[async_trait]
impl ManagedDb for Postgres {
    fn kind(&self) -> EngineKind {
        EngineKind::Postgres
    }

    /// server_version, pg_postmaster_start_time(), pg_database_size(),
    /// pg_stat_activity (client backends, PG 10+) and max_connections.
    async fn status(&self) -> EngineResult<ServerStatus> {
        let row: (String, Option<f64>, Option<i64>, i64, String) = sqlx::query_as(
            "SELECT current_setting('server_version'), \
                    extract(epoch FROM now() - pg_postmaster_start_time())::float8, \
                    pg_database_size(current_database()), \
                    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), \
                    current_setting('max_connections')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(EngineError::from_sqlx)?;
        Ok(ServerStatus {
            version: row.0,
            uptime_s: row.1.map(|s| s as i64),
            size_bytes: row.2,
            connections: Some(row.3),
            max_connections: row.4.parse().ok(),
        })
    }

    /// pg_database: databases that accept connections; sizes only where we
    /// may connect (pg_database_size needs CONNECT).
    async fn databases(&self) -> EngineResult<Vec<DatabaseEntry>> {
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT datname, \
                    CASE WHEN has_database_privilege(datname, 'CONNECT') \
                         THEN pg_database_size(datname) END \
             FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(EngineError::from_sqlx)?;
        Ok(rows
            .into_iter()
            .map(|(name, size_bytes)| DatabaseEntry { name, size_bytes })
            .collect())
    }

    /// pg_namespace and pg_class: user schemas with their ordinary and
    /// partitioned tables.
    async fn schemas(&self) -> EngineResult<Vec<SchemaEntry>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT n.nspname, count(c.oid) \
             FROM pg_namespace n \
             LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p') \
             WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
             GROUP BY n.nspname ORDER BY n.nspname",
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
