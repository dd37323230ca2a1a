//! PostgreSQL catalog queries. Each needs only the privileges of an ordinary
//! login role (pg_stat_activity shows other roles' rows without detail,
//! which is enough to count them); all work on PostgreSQL 10 and later.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool};

use super::postgres_maintenance as maintenance;
use super::{
    Action, ActivitySample, Control, DatabaseEntry, DatabaseHealth, EngineError, EngineKind, EngineResult,
    IndexHealth, ManagedDb, Relation, STATEMENT_TIMEOUT, SchemaEntry, ServerStatus, Session, SessionLookup,
    Signal, Statement, StatementOrder, TableList, TableQuery, Target, bad_url, pool_options,
};
use crate::config::SecretUrl;
use crate::error::AppError;

/// The activity sample: pg_stat_activity (PG 10+ for backend_type) for
/// this database's client backends; pg_blocking_pids (9.6+) and pg_locks
/// only for sessions waiting on a lock, since pg_blocking_pids is not free.
/// Public so the benchmark times the very query the panel runs.
pub const ACTIVITY_SQL: &str = "SELECT a.pid::int8 AS pid, a.usename::text AS usr, a.application_name AS app, \
                    host(a.client_addr) AS client, a.datname::text AS db, a.state, \
                    CASE WHEN a.wait_event IS NOT NULL THEN a.wait_event_type || ': ' || a.wait_event END AS wait, \
                    a.query, \
                    CASE WHEN a.state <> 'idle' THEN extract(epoch FROM now() - a.query_start)::float8 END AS query_age, \
                    extract(epoch FROM now() - a.xact_start)::float8 AS xact_age, \
                    CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) ELSE '{}'::int[] END AS blocked_by, \
                    CASE WHEN a.wait_event_type = 'Lock' THEN \
                         (SELECT l.mode FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1) END AS lock_mode, \
                    (SELECT count(*) FROM pg_stat_activity s WHERE s.backend_type = 'client backend') AS server_conns, \
                    current_setting('max_connections')::int8 AS max_conns \
             FROM pg_stat_activity a \
             WHERE a.backend_type = 'client backend' AND a.datname = current_database() \
             ORDER BY a.query_start NULLS LAST, a.pid";

pub struct Postgres {
    pool: PgPool,
    /// For maintenance jobs' own connections.
    options: PgConnectOptions,
    /// Backend pids of the panel's own pool connections.
    own: Arc<Mutex<HashSet<i64>>>,
}

impl Postgres {
    pub fn connect(url: &SecretUrl) -> Result<Self, AppError> {
        let timeout_ms = STATEMENT_TIMEOUT.as_millis().to_string();
        let options = PgConnectOptions::from_str(url.expose())
            .map_err(|e| bad_url(EngineKind::Postgres, e))?
            .application_name("custodian")
            // Catalog queries must never hang on a busy server.
            .options([("statement_timeout", timeout_ms.as_str())]);
        let own: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let record = own.clone();
        let maintenance_options = options.clone();
        let pool = pool_options::<sqlx::Postgres>()
            .after_connect(move |conn, _meta| {
                let record = record.clone();
                Box::pin(async move {
                    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                        .fetch_one(&mut *conn)
                        .await?;
                    if let Ok(mut own) = record.lock() {
                        own.insert(i64::from(pid));
                    }
                    Ok(())
                })
            })
            .connect_lazy_with(options);
        Ok(Postgres {
            pool,
            options: maintenance_options,
            own,
        })
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

    async fn apply_migration(
        &self,
        run: &super::history::MigrationRun,
    ) -> EngineResult<super::history::RunOutcome> {
        // On a task of its own: a caller that goes away (a dropped request)
        // never abandons a migration halfway.
        tokio::spawn(super::postgres_migrate::apply(self.pool.clone(), run.clone()))
            .await
            .map_err(|e| EngineError(format!("the migration task failed: {e}")))?
    }

    async fn reading(&self) -> EngineResult<super::metrics::Reading> {
        super::metrics::postgres(&self.pool).await
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

    /// See [`ACTIVITY_SQL`].
    async fn activity(&self) -> EngineResult<ActivitySample> {
        let rows = sqlx::query(ACTIVITY_SQL)
            .fetch_all(&self.pool)
            .await
            .map_err(EngineError::from_sqlx)?;
        let own = self.own.lock().map(|o| o.clone()).unwrap_or_default();
        let mut sample = ActivitySample::default();
        // Columns by position (the order of ACTIVITY_SQL): a name lookup per
        // cell adds up over hundreds of sessions.
        for row in rows {
            let get = |e| EngineError::from_sqlx(e);
            let pid: i64 = row.try_get(0).map_err(get)?;
            let application: Option<String> = row.try_get(2).map_err(get)?;
            let blocked_by: Vec<i32> = row.try_get(10).map_err(get)?;
            sample.server_connections = row.try_get(12).map_err(get)?;
            sample.max_connections = row.try_get(13).map_err(get)?;
            sample.sessions.push(Session {
                pid,
                own: own.contains(&pid) && application.as_deref() == Some("custodian"),
                user: row.try_get(1).map_err(get)?,
                application,
                client: row.try_get(3).map_err(get)?,
                database: row.try_get(4).map_err(get)?,
                state: row.try_get(5).map_err(get)?,
                wait_event: row.try_get(6).map_err(get)?,
                query: row.try_get(7).map_err(get)?,
                query_age_s: row.try_get(8).map_err(get)?,
                xact_age_s: row.try_get(9).map_err(get)?,
                blocked_by: blocked_by.into_iter().map(i64::from).collect(),
                lock_mode: row.try_get(11).map_err(get)?,
            });
        }
        Ok(sample)
    }

    /// pg_stat_activity for one pid, in any database, so the caller can
    /// tell "not here" from "no such session".
    async fn session(&self, pid: i64) -> EngineResult<Option<SessionLookup>> {
        let Ok(pid) = i32::try_from(pid) else {
            return Ok(None);
        };
        let row: Option<(bool, Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT datname = current_database(), state, query, application_name \
             FROM pg_stat_activity WHERE pid = $1 AND backend_type = 'client backend'",
        )
        .bind(pid)
        .fetch_optional(&self.pool)
        .await
        .map_err(EngineError::from_sqlx)?;
        let own = self
            .own
            .lock()
            .map(|o| o.contains(&i64::from(pid)))
            .unwrap_or(false);
        Ok(row.map(|(in_database, state, query, app)| SessionLookup {
            in_database,
            own: own && app.as_deref() == Some("custodian"),
            state,
            query,
        }))
    }

    /// pg_cancel_backend / pg_terminate_backend: false when the backend is
    /// gone or the panel's role may not signal it.
    async fn signal(&self, pid: i64, signal: Signal) -> EngineResult<bool> {
        let Ok(pid) = i32::try_from(pid) else {
            return Ok(false);
        };
        let sql = match signal {
            Signal::Cancel => "SELECT pg_cancel_backend($1)",
            Signal::Terminate => "SELECT pg_terminate_backend($1)",
        };
        sqlx::query_scalar(sql)
            .bind(pid)
            .fetch_one(&self.pool)
            .await
            .map_err(EngineError::from_sqlx)
    }

    /// pg_stat_statements, when the extension is installed in this database
    /// (total_exec_time and mean_exec_time from PostgreSQL 13; total_time
    /// and mean_time before).
    async fn top_statements(
        &self,
        order: StatementOrder,
        limit: i64,
    ) -> EngineResult<Option<Vec<Statement>>> {
        let (installed, version): (bool, i32) = sqlx::query_as(
            "SELECT to_regclass('pg_stat_statements') IS NOT NULL, current_setting('server_version_num')::int",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(EngineError::from_sqlx)?;
        if !installed {
            return Ok(None);
        }
        let (total, mean) = if version >= 130_000 {
            ("total_exec_time", "mean_exec_time")
        } else {
            ("total_time", "mean_time")
        };
        let order_by = match order {
            StatementOrder::TotalTime => total,
            StatementOrder::MeanTime => mean,
            StatementOrder::Calls => "calls",
        };
        // Column names come from the two fixed sets above, never from input.
        let sql = format!(
            "SELECT query, calls, {total}::float8, {mean}::float8, rows \
             FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             ORDER BY {order_by} DESC LIMIT $1"
        );
        let rows: Vec<(String, i64, f64, f64, i64)> = sqlx::query_as(&sql)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(EngineError::from_sqlx)?;
        Ok(Some(
            rows.into_iter()
                .map(|(query, calls, total_ms, mean_ms, rows)| Statement {
                    query,
                    calls,
                    total_ms,
                    mean_ms,
                    rows,
                })
                .collect(),
        ))
    }

    async fn reset_statements(&self) -> EngineResult<()> {
        sqlx::query("SELECT pg_stat_statements_reset()")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(EngineError::from_sqlx)
    }

    async fn tables(&self, query: &TableQuery) -> EngineResult<TableList> {
        maintenance::tables(&self.pool, query).await
    }

    async fn indexes(&self, limit: i64) -> EngineResult<Vec<IndexHealth>> {
        maintenance::indexes(&self.pool, limit).await
    }

    async fn database_health(&self) -> EngineResult<DatabaseHealth> {
        maintenance::database_health(&self.pool).await
    }

    async fn resolve_tables(&self, names: &[String]) -> EngineResult<Vec<Relation>> {
        maintenance::resolve_tables(&self.pool, names).await
    }

    async fn resolve_index(&self, name: &str) -> EngineResult<Relation> {
        maintenance::resolve_index(&self.pool, name).await
    }

    async fn maintain(&self, action: Action, target: &Target, control: &Control) -> EngineResult<String> {
        maintenance::maintain(&self.pool, &self.options, action, target, control).await
    }
}
