//! SQLite catalog queries (PRAGMAs; any SQLite 3). A file, not a server:
//! no uptime, no connection limit. The file must exist: the panel never
//! creates a managed database by opening it.

mod dump;
mod maintenance;
mod migrate;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

use super::{
    Action, Control, DatabaseEntry, DatabaseHealth, EngineError, EngineKind, EngineResult, ManagedDb,
    Relation, SchemaEntry, ServerStatus, TableList, TableQuery, Target, bad_url, pool_options,
};
use crate::config::SecretUrl;
use crate::error::AppError;

pub struct Sqlite {
    pool: SqlitePool,
}

impl Sqlite {
    pub fn connect(url: &SecretUrl) -> Result<Self, AppError> {
        let options = SqliteConnectOptions::from_str(url.expose())
            .map_err(|e| bad_url(EngineKind::Sqlite, e))?
            .create_if_missing(false)
            // SQLite has no statement timeout; a writer holding the lock
            // makes readers wait at most this long.
            .busy_timeout(Duration::from_secs(5));
        let pool = pool_options().connect_lazy_with(options);
        Ok(Sqlite { pool })
    }
}

#[async_trait]
impl ManagedDb for Sqlite {
    fn kind(&self) -> EngineKind {
        EngineKind::Sqlite
    }

    /// sqlite_version() and page_count × page_size of the main database.
    async fn status(&self) -> EngineResult<ServerStatus> {
        let (version, size): (String, i64) = sqlx::query_as(
            "SELECT sqlite_version(), \
                    (SELECT page_count FROM pragma_page_count()) * (SELECT page_size FROM pragma_page_size())",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(EngineError::from_sqlx)?;
        Ok(ServerStatus {
            version,
            uptime_s: None,
            size_bytes: Some(size),
            connections: None,
            max_connections: None,
        })
    }

    /// pragma_database_list: main, temp and any attached files.
    async fn databases(&self) -> EngineResult<Vec<DatabaseEntry>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT name FROM pragma_database_list ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .map_err(EngineError::from_sqlx)?;
        Ok(rows
            .into_iter()
            .map(|(name,)| DatabaseEntry {
                name,
                size_bytes: None,
            })
            .collect())
    }

    /// sqlite_schema: the main schema's tables (not SQLite's own).
    async fn schemas(&self) -> EngineResult<Vec<SchemaEntry>> {
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(EngineError::from_sqlx)?;
        Ok(vec![SchemaEntry {
            name: "main".into(),
            tables,
        }])
    }

    async fn apply_migration(
        &self,
        run: &super::history::MigrationRun,
    ) -> EngineResult<super::history::RunOutcome> {
        super::history::detached(migrate::apply(self.pool.clone(), run.clone())).await
    }

    fn dumps(&self) -> &dyn crate::engine::dump::Dumps {
        &dump::SqliteDumps
    }

    fn tables_named_sql(&self) -> &'static str {
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name IN ({names})"
    }

    async fn text_rows(&self, sql: &str) -> EngineResult<Vec<Vec<Option<String>>>> {
        let rows = sqlx::query(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(EngineError::from_sqlx)?;
        rows.iter().map(super::text_cells).collect()
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn tables(&self, query: &TableQuery) -> EngineResult<TableList> {
        maintenance::tables(&self.pool, query).await
    }

    async fn database_health(&self) -> EngineResult<DatabaseHealth> {
        maintenance::database_health(&self.pool).await
    }

    async fn resolve_tables(&self, names: &[String]) -> EngineResult<Vec<Relation>> {
        maintenance::resolve_tables(&self.pool, names).await
    }

    async fn maintain(&self, action: Action, target: &Target, control: &Control) -> EngineResult<String> {
        maintenance::maintain(&self.pool, action, target, control).await
    }
}
