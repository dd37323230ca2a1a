//! PostgreSQL catalog queries. Each needs only the privileges of an ordinary
//! login role (pg_stat_activity shows other roles' rows without detail,
//! which is enough to count them); all work on PostgreSQL 10 and later.

mod dump;
mod gate;
mod maintenance;
mod metrics;
mod migrate;
mod notices;
pub mod pitr;

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Row};

use super::Check;
use super::pool::{AcquireError, Lease, owner_of};
use super::server::{
    ACTIVITY_SHARE, METRICS_SHARE, STATUS_SHARE, Server, ServerConnections, ServerKey, ServerWide, Servers,
    Views,
};
use super::{
    Action, ActivitySample, Control, DatabaseEntry, DatabaseHealth, EngineError, EngineKind, EngineResult,
    IndexHealth, ManagedDb, Relation, STATEMENT_TIMEOUT, SchemaEntry, ServerStatus, Session, SessionLookup,
    Signal, Statement, StatementOrder, TableList, TableQuery, Target, bad_url,
};
use crate::config::SecretUrl;
use crate::error::AppError;

/// The activity sample of a whole server: pg_stat_activity (PG 10+ for
/// backend_type) for every client backend; pg_blocking_pids (9.6+) and
/// pg_locks only for sessions waiting on a lock, since pg_blocking_pids is
/// not free. Read once per server and shared by its databases' pages, each
/// keeping its own rows. Public so the benchmark times the very query the
/// panel runs.
pub const ACTIVITY_SQL: &str = "SELECT a.pid::int8 AS pid, a.usename::text AS usr, a.application_name AS app, \
                    host(a.client_addr) AS client, a.datname::text AS db, a.state, \
                    CASE WHEN a.wait_event IS NOT NULL THEN a.wait_event_type || ': ' || a.wait_event END AS wait, \
                    a.query, \
                    CASE WHEN a.state <> 'idle' THEN extract(epoch FROM now() - a.query_start)::float8 END AS query_age, \
                    extract(epoch FROM now() - a.xact_start)::float8 AS xact_age, \
                    CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) ELSE '{}'::int[] END AS blocked_by, \
                    CASE WHEN a.wait_event_type = 'Lock' THEN \
                         (SELECT l.mode FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1) END AS lock_mode, \
                    current_setting('max_connections')::int8 AS max_conns, \
                    extract(epoch FROM now() - a.state_change)::float8 AS state_age \
             FROM pg_stat_activity a \
             WHERE a.backend_type = 'client backend' \
             ORDER BY a.query_start NULLS LAST, a.pid";

/// One managed PostgreSQL database: its connection settings and a share of
/// its server's connections.
pub struct Postgres {
    server: Arc<Server<PgConnection>>,
    views: Arc<Views>,
    /// Catalog connections: named "custodian", statement_timeout set.
    options: PgConnectOptions,
    /// Which idle connections are this database's.
    owner: u64,
    /// Its login role's: any of those reads server-wide views.
    group: u64,
    database: String,
}

impl Postgres {
    pub fn connect(url: &SecretUrl, servers: &Servers) -> Result<Self, AppError> {
        let timeout_ms = STATEMENT_TIMEOUT.as_millis().to_string();
        let options = PgConnectOptions::from_str(url.expose())
            .map_err(|e| bad_url(EngineKind::Postgres, e))?
            .application_name("custodian")
            // Catalog queries must never hang on a busy server.
            .options([("statement_timeout", timeout_ms.as_str())]);
        let host = match options.get_socket() {
            Some(dir) => dir.display().to_string(),
            None => options.get_host().to_ascii_lowercase(),
        };
        let key = ServerKey {
            engine: EngineKind::Postgres,
            host,
            port: options.get_port(),
        };
        let server = servers.postgres(&key);
        let views = server.views_for(options.get_username());
        let database = options
            .get_database()
            .unwrap_or(options.get_username())
            .to_string();
        Ok(Postgres {
            server,
            views,
            group: owner_of(options.get_username()),
            options,
            owner: owner_of(url.expose()),
            database,
        })
    }

    /// A catalog connection to this database from the server's budget.
    async fn conn(&self) -> Result<Lease<PgConnection>, AcquireError> {
        let options = &self.options;
        self.server
            .pool
            .acquire(self.owner, self.group, false, || open(options))
            .await
    }

    /// A catalog connection to any database of the server under this login
    /// role, for server-wide views: no connection is opened just for them.
    async fn server_conn(&self) -> Result<Lease<PgConnection>, AcquireError> {
        let options = &self.options;
        self.server
            .pool
            .acquire(self.owner, self.group, true, || open(options))
            .await
    }

    /// [`Postgres::conn`], for callers that want the plain error.
    pub(super) async fn lease(&self) -> EngineResult<Lease<PgConnection>> {
        self.conn().await.map_err(EngineError::from)
    }

    /// A connection of its own for long work (maintenance, a migration),
    /// from the server's budget, closed afterwards. `unbounded` lifts the
    /// statement and lock timeouts (VACUUM FULL may run for hours).
    pub(super) async fn long_lease(&self, unbounded: bool) -> EngineResult<Lease<PgConnection>> {
        let options = if unbounded {
            self.options
                .clone()
                .options([("statement_timeout", "0"), ("lock_timeout", "0")])
        } else {
            self.options.clone()
        };
        self.server
            .pool
            .acquire_long(self.owner, || open(&options))
            .await
            .map_err(EngineError::from)
    }

    /// The server's figures and databases, read at most once per
    /// [`STATUS_SHARE`] for all its databases; a server that does not answer
    /// is reported down to every one of them at once.
    async fn server_wide(&self) -> EngineResult<Arc<ServerWide>> {
        self.views
            .status
            .get(STATUS_SHARE, || async {
                let mut conn = self.server_conn().await?;
                Ok(read_server(&mut conn).await?)
            })
            .await
    }
}

/// Open one catalog connection and learn its backend pid.
async fn open(options: &PgConnectOptions) -> Result<(PgConnection, i64), sqlx::Error> {
    let mut conn = PgConnection::connect_with(options).await?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await?;
    Ok((conn, i64::from(pid)))
}

/// server_version, pg_postmaster_start_time(), pg_stat_activity (client
/// backends, PG 10+), max_connections; pg_database: databases that accept
/// connections, with sizes only where we may connect (pg_database_size
/// needs CONNECT).
async fn read_server(conn: &mut PgConnection) -> EngineResult<ServerWide> {
    let row: (String, Option<f64>, i64, String) = sqlx::query_as(
        "SELECT current_setting('server_version'), \
                extract(epoch FROM now() - pg_postmaster_start_time())::float8, \
                (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), \
                current_setting('max_connections')",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(EngineError::from_sqlx)?;
    let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT datname, \
                CASE WHEN has_database_privilege(datname, 'CONNECT') \
                     THEN pg_database_size(datname) END \
         FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::from_sqlx)?;
    Ok(ServerWide {
        status: ServerStatus {
            version: row.0,
            uptime_s: row.1.map(|s| s as i64),
            size_bytes: None,
            connections: Some(row.2),
            max_connections: row.3.parse().ok(),
        },
        databases: rows
            .into_iter()
            .map(|(name, size_bytes)| DatabaseEntry { name, size_bytes })
            .collect(),
    })
}

/// pg_namespace and pg_class: user schemas with their ordinary and
/// partitioned tables.
async fn read_schemas(conn: &mut PgConnection) -> EngineResult<Vec<SchemaEntry>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT n.nspname, count(c.oid) \
         FROM pg_namespace n \
         LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p') \
         WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
         GROUP BY n.nspname ORDER BY n.nspname",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::from_sqlx)?;
    Ok(rows
        .into_iter()
        .map(|(name, tables)| SchemaEntry { name, tables })
        .collect())
}

/// See [`ACTIVITY_SQL`]: every client backend of the server.
async fn read_activity(conn: &mut PgConnection) -> EngineResult<ActivitySample> {
    let rows = sqlx::query(ACTIVITY_SQL)
        .fetch_all(&mut *conn)
        .await
        .map_err(EngineError::from_sqlx)?;
    let mut sample = ActivitySample {
        server_connections: Some(rows.len() as i64),
        ..ActivitySample::default()
    };
    // Columns by position (the order of ACTIVITY_SQL): a name lookup per
    // cell adds up over thousands of sessions.
    for row in rows {
        let get = |e| EngineError::from_sqlx(e);
        let blocked_by: Vec<i32> = row.try_get(10).map_err(get)?;
        sample.max_connections = row.try_get(12).map_err(get)?;
        sample.sessions.push(Session {
            pid: row.try_get(0).map_err(get)?,
            own: false,
            user: row.try_get(1).map_err(get)?,
            application: row.try_get(2).map_err(get)?,
            client: row.try_get(3).map_err(get)?,
            database: row.try_get(4).map_err(get)?,
            state: row.try_get(5).map_err(get)?,
            wait_event: row.try_get(6).map_err(get)?,
            query: row.try_get(7).map_err(get)?,
            query_age_s: row.try_get(8).map_err(get)?,
            xact_age_s: row.try_get(9).map_err(get)?,
            state_age_s: row.try_get(13).map_err(get)?,
            blocked_by: blocked_by.into_iter().map(i64::from).collect(),
            lock_mode: row.try_get(11).map_err(get)?,
        });
    }
    Ok(sample)
}

#[async_trait]
impl ManagedDb for Postgres {
    fn kind(&self) -> EngineKind {
        EngineKind::Postgres
    }

    fn server(&self) -> Option<ServerConnections> {
        Some(self.server.connections(EngineKind::Postgres))
    }

    fn server_label(&self) -> Option<String> {
        Some(self.server.pool.server().to_string())
    }

    /// The server's shared figures, this database's size among them, and
    /// this database's schemas over its own connection.
    async fn check(&self) -> EngineResult<Check> {
        let wide = self.server_wide().await?;
        let mut conn = self.lease().await?;
        let schemas = read_schemas(&mut conn).await?;
        let size_bytes = wide
            .databases
            .iter()
            .find(|d| d.name == self.database)
            .and_then(|d| d.size_bytes);
        Ok(Check {
            status: ServerStatus {
                size_bytes,
                ..wide.status.clone()
            },
            databases: wide.databases.clone(),
            schemas,
        })
    }

    async fn status(&self) -> EngineResult<ServerStatus> {
        Ok(self.check().await?.status)
    }

    async fn databases(&self) -> EngineResult<Vec<DatabaseEntry>> {
        Ok(self.server_wide().await?.databases.clone())
    }

    async fn schemas(&self) -> EngineResult<Vec<SchemaEntry>> {
        read_schemas(&mut *self.lease().await?).await
    }

    async fn apply_migration(
        &self,
        run: &super::history::MigrationRun,
    ) -> EngineResult<super::history::RunOutcome> {
        let conn = self.long_lease(false).await?;
        super::history::detached(migrate::apply(conn, run.clone())).await
    }

    /// The server-wide figures (shared by the server's databases) and this
    /// database's own (dead tuples) over its connection.
    async fn reading(&self) -> EngineResult<crate::engine::metrics::Reading> {
        let own = self.server.pool.own_ids();
        let server = self
            .views
            .metrics
            .get(METRICS_SHARE, || async {
                let mut conn = self.server_conn().await?;
                Ok(metrics::server(&mut conn, &own).await?)
            })
            .await?;
        let mut conn = self.lease().await?;
        let dead_tuples = metrics::dead_tuples(&mut conn).await?;
        Ok(server.reading_for(&self.database, dead_tuples))
    }

    async fn reserve(&self, connections: usize) -> EngineResult<Option<super::pool::Reservation>> {
        self.server.reserve(connections).await
    }

    async fn recovery_facts(&self) -> EngineResult<pitr::Facts> {
        pitr::facts(&mut *self.lease().await?).await
    }

    async fn relation_files(&self) -> EngineResult<Vec<pitr::RelationFile>> {
        pitr::relation_files(&mut *self.lease().await?).await
    }

    async fn pitr_readiness(&self) -> EngineResult<Vec<(String, String, bool)>> {
        dump::pitr_readiness(&mut *self.lease().await?).await
    }

    fn dumps(&self) -> &dyn crate::engine::dump::Dumps {
        &dump::PgDumps
    }

    fn tables_named_sql(&self) -> &'static str {
        "SELECT c.relname::text FROM pg_class c \
         WHERE c.relkind IN ('r', 'p', 'v') AND c.relname IN ({names}) \
           AND c.relnamespace = ANY (current_schemas(false)::regnamespace[])"
    }

    async fn text_rows(&self, sql: &str) -> EngineResult<Vec<Vec<Option<String>>>> {
        let rows = sqlx::query(sql)
            .fetch_all(&mut *self.lease().await?)
            .await
            .map_err(EngineError::from_sqlx)?;
        rows.iter().map(super::text_cells).collect()
    }

    async fn close(&self) {
        self.server.pool.close_owner(self.owner);
    }

    /// The server's sample (see [`ACTIVITY_SQL`]), this database's rows.
    async fn activity(&self) -> EngineResult<ActivitySample> {
        let all = self
            .views
            .activity
            .get(ACTIVITY_SHARE, || async {
                let mut conn = self.server_conn().await?;
                Ok(read_activity(&mut conn).await?)
            })
            .await?;
        Ok(self.server.activity_of(
            &all,
            |s| s.database.as_deref() == Some(self.database.as_str()),
            |s| s.application.as_deref() == Some("custodian"),
        ))
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
        .fetch_optional(&mut *self.lease().await?)
        .await
        .map_err(EngineError::from_sqlx)?;
        let own = self.server.pool.own_ids().contains(&i64::from(pid));
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
            .fetch_one(&mut *self.lease().await?)
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
        let mut conn = self.lease().await?;
        let (installed, version): (bool, i32) = sqlx::query_as(
            "SELECT to_regclass('pg_stat_statements') IS NOT NULL, current_setting('server_version_num')::int",
        )
        .fetch_one(&mut *conn)
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
            .fetch_all(&mut *conn)
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
            .execute(&mut *self.lease().await?)
            .await
            .map(|_| ())
            .map_err(EngineError::from_sqlx)
    }

    async fn tables(&self, query: &TableQuery) -> EngineResult<TableList> {
        maintenance::tables(&mut *self.lease().await?, query).await
    }

    async fn indexes(&self, limit: i64) -> EngineResult<Vec<IndexHealth>> {
        maintenance::indexes(&mut *self.lease().await?, limit).await
    }

    async fn database_health(&self) -> EngineResult<DatabaseHealth> {
        maintenance::database_health(&mut *self.lease().await?).await
    }

    async fn resolve_tables(&self, names: &[String]) -> EngineResult<Vec<Relation>> {
        maintenance::resolve_tables(&mut *self.lease().await?, names).await
    }

    async fn resolve_index(&self, name: &str) -> EngineResult<Relation> {
        maintenance::resolve_index(&mut *self.lease().await?, name).await
    }

    async fn maintain(&self, action: Action, target: &Target, control: &Control) -> EngineResult<String> {
        maintenance::maintain(self, action, target, control).await
    }

    async fn gate(
        &self,
        wanted: &[super::gate::Wanted],
        max_xact_age_s: f64,
    ) -> EngineResult<super::gate::GateFacts> {
        gate::read(&mut *self.lease().await?, wanted, max_xact_age_s).await
    }
}
