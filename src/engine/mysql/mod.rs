//! MySQL and MariaDB catalog queries (information_schema and server status
//! variables; MySQL 5.7+, MariaDB 10.3+). The protocol has no application
//! name, so the panel's sessions are recognised by their connection ids.
//! Server-wide views (the process list, global status, schema sizes) are
//! read once per server and shared by every schema registered on it.

mod dump;
mod maintenance;
mod metrics;
mod migrate;

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::{Connection, Executor, MySqlConnection, Row};

use super::Check;
use super::pool::{AcquireError, Lease, owner_of};
use super::server::{
    ACTIVITY_SHARE, METRICS_SHARE, STATUS_SHARE, Server, ServerConnections, ServerKey, ServerWide, Servers,
    Views,
};
use super::{
    Action, ActivitySample, Control, DatabaseEntry, EngineError, EngineKind, EngineResult, ManagedDb,
    Relation, STATEMENT_TIMEOUT, SchemaEntry, ServerStatus, Session, SessionLookup, Signal, TableList,
    TableQuery, Target, bad_url,
};
use crate::config::SecretUrl;
use crate::error::AppError;

/// One managed MySQL/MariaDB schema and a share of its server's connections.
pub struct Mysql {
    server: Arc<Server<MySqlConnection>>,
    views: Arc<Views>,
    options: MySqlConnectOptions,
    owner: u64,
    group: u64,
    /// The schema the URL names (`None`: the server as a whole).
    database: Option<String>,
}

impl Mysql {
    pub fn connect(url: &SecretUrl, servers: &Servers) -> Result<Self, AppError> {
        // sqlx speaks mysql://; mariadb:// is the same protocol.
        let raw = url.expose();
        let normalised = match raw.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => raw.to_string(),
        };
        let options =
            MySqlConnectOptions::from_str(&normalised).map_err(|e| bad_url(EngineKind::Mysql, e))?;
        let host = match options.get_socket() {
            Some(path) => path.display().to_string(),
            None => options.get_host().to_ascii_lowercase(),
        };
        let key = ServerKey {
            engine: EngineKind::Mysql,
            host,
            port: options.get_port(),
        };
        let server = servers.mysql(&key);
        let views = server.views_for(options.get_username());
        Ok(Mysql {
            server,
            views,
            database: options.get_database().map(str::to_string),
            owner: owner_of(raw),
            group: owner_of(options.get_username()),
            options,
        })
    }

    /// A catalog connection to this schema from the server's budget.
    async fn conn(&self) -> Result<Lease<MySqlConnection>, AcquireError> {
        let options = &self.options;
        self.server
            .pool
            .acquire(self.owner, self.group, false, || open(options, true))
            .await
    }

    /// Any catalog connection of this login role: server-wide views (the
    /// process list, global status) read the same from every schema.
    async fn server_conn(&self) -> Result<Lease<MySqlConnection>, AcquireError> {
        let options = &self.options;
        self.server
            .pool
            .acquire(self.owner, self.group, true, || open(options, true))
            .await
    }

    pub(super) async fn lease(&self) -> EngineResult<Lease<MySqlConnection>> {
        self.conn().await.map_err(EngineError::from)
    }

    /// A connection of its own for long work, without the catalog
    /// queries' statement limit, from the server's budget.
    pub(super) async fn long_lease(&self) -> EngineResult<Lease<MySqlConnection>> {
        let options = &self.options;
        self.server
            .pool
            .acquire_long(self.owner, || open(options, false))
            .await
            .map_err(EngineError::from)
    }

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

/// Open a connection, learn its id, and bound its statements (catalog
/// connections): MariaDB's max_statement_time (seconds) or MySQL's
/// max_execution_time (ms, SELECTs only).
async fn open(options: &MySqlConnectOptions, bounded: bool) -> Result<(MySqlConnection, i64), sqlx::Error> {
    let mut conn = MySqlConnection::connect_with(options).await?;
    let id: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
        .fetch_one(&mut conn)
        .await?;
    let secs = if bounded { STATEMENT_TIMEOUT.as_secs() } else { 0 };
    let mariadb = conn
        .execute(format!("SET SESSION max_statement_time = {secs}").as_str())
        .await;
    if mariadb.is_err() {
        let _ = conn
            .execute(format!("SET SESSION max_execution_time = {}", secs * 1000).as_str())
            .await;
    }
    Ok((conn, id))
}

/// VERSION(), @@max_connections, global status Uptime and
/// Threads_connected; information_schema.SCHEMATA with per-schema sizes
/// from information_schema.TABLES.
async fn read_server(conn: &mut MySqlConnection) -> EngineResult<ServerWide> {
    let (version, max_connections): (String, Option<i64>) =
        sqlx::query_as("SELECT VERSION(), CAST(@@max_connections AS SIGNED)")
            .fetch_one(&mut *conn)
            .await
            .map_err(EngineError::from_sqlx)?;
    let vars: Vec<(String, String)> =
        sqlx::query_as("SHOW GLOBAL STATUS WHERE Variable_name IN ('Uptime', 'Threads_connected')")
            .fetch_all(&mut *conn)
            .await
            .map_err(EngineError::from_sqlx)?;
    let var = |name: &str| {
        vars.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.parse::<i64>().ok())
    };
    let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT s.schema_name, \
                CAST(SUM(t.data_length + t.index_length) AS SIGNED) \
         FROM information_schema.schemata s \
         LEFT JOIN information_schema.tables t ON t.table_schema = s.schema_name \
         GROUP BY s.schema_name ORDER BY s.schema_name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::from_sqlx)?;
    Ok(ServerWide {
        status: ServerStatus {
            version,
            uptime_s: var("Uptime"),
            size_bytes: None,
            connections: var("Threads_connected"),
            max_connections,
        },
        databases: rows
            .into_iter()
            .map(|(name, size_bytes)| DatabaseEntry { name, size_bytes })
            .collect(),
    })
}

/// In MySQL a schema is a database: the current one, with its base tables.
async fn read_schemas(conn: &mut MySqlConnection) -> EngineResult<Vec<SchemaEntry>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT DATABASE(), CAST(COUNT(*) AS SIGNED) FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' HAVING DATABASE() IS NOT NULL",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::from_sqlx)?;
    Ok(rows
        .into_iter()
        .map(|(name, tables)| SchemaEntry { name, tables })
        .collect())
}

/// information_schema.PROCESSLIST for every connection of the server, with
/// InnoDB's transactions (INNODB_TRX) and lock waits (INNODB_LOCK_WAITS,
/// INNODB_LOCKS: MariaDB and MySQL 5.7). MySQL 8 moved lock waits to
/// performance_schema: there the sample comes without blocking detail.
async fn read_activity(conn: &mut MySqlConnection) -> EngineResult<ActivitySample> {
    let rows = match sqlx::query(&activity_sql(true)).fetch_all(&mut *conn).await {
        Err(sqlx::Error::Database(e)) if e.message().contains("Unknown table") => {
            sqlx::query(&activity_sql(false)).fetch_all(&mut *conn).await
        }
        other => other,
    }
    .map_err(EngineError::from_sqlx)?;
    let mut sample = ActivitySample::default();
    for row in rows {
        let get = |e| EngineError::from_sqlx(e);
        let command: String = row.try_get("command").map_err(get)?;
        let in_trx: bool = row.try_get::<i64, _>("in_trx").map_err(get)? != 0;
        let seconds: Option<i64> = row.try_get("seconds").map_err(get)?;
        let blocked_by: Option<String> = row.try_get("blocked_by").map_err(get)?;
        let state = state_of(&command, in_trx);
        sample.server_connections = row.try_get("server_conns").map_err(get)?;
        sample.max_connections = row.try_get("max_conns").map_err(get)?;
        sample.sessions.push(Session {
            pid: row.try_get("pid").map_err(get)?,
            own: false,
            user: row.try_get("usr").map_err(get)?,
            application: None,
            client: row.try_get("host").map_err(get)?,
            database: row.try_get("db").map_err(get)?,
            query_age_s: if state == "active" {
                seconds.map(|s| s as f64)
            } else {
                None
            },
            state: Some(state),
            wait_event: row
                .try_get::<Option<String>, _>("wait")
                .map_err(get)?
                .filter(|w| !w.is_empty()),
            query: row.try_get("info").map_err(get)?,
            xact_age_s: row.try_get("xact_age").map_err(get)?,
            // The process list's TIME: seconds in the current command.
            state_age_s: seconds.map(|s| s as f64),
            blocked_by: blocked_by
                .unwrap_or_default()
                .split(',')
                .filter_map(|p| p.trim().parse().ok())
                .collect(),
            lock_mode: row.try_get("lock_mode").map_err(get)?,
        });
    }
    Ok(sample)
}

#[async_trait]
impl ManagedDb for Mysql {
    fn kind(&self) -> EngineKind {
        EngineKind::Mysql
    }

    fn server(&self) -> Option<ServerConnections> {
        Some(self.server.connections(EngineKind::Mysql))
    }

    fn server_label(&self) -> Option<String> {
        Some(self.server.pool.server().to_string())
    }

    async fn check(&self) -> EngineResult<Check> {
        let wide = self.server_wide().await?;
        let mut conn = self.lease().await?;
        let schemas = read_schemas(&mut conn).await?;
        let size_bytes = self.database.as_ref().map(|db| {
            wide.databases
                .iter()
                .find(|d| &d.name == db)
                .and_then(|d| d.size_bytes)
                .unwrap_or(0)
        });
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
        let conn = self.long_lease().await?;
        super::history::detached(migrate::apply(conn, run.clone())).await
    }

    /// The server's sample (shared by its schemas), this schema's figures.
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
        let database = self.database.as_deref().unwrap_or("");
        let mut reading = server.reading_for(database, None);
        if self.database.is_none() {
            // No schema named: the figures of no schema in particular.
            reading.size_bytes = None;
        }
        Ok(reading)
    }

    async fn reserve(&self, connections: usize) -> EngineResult<Option<super::pool::Reservation>> {
        self.server.reserve(connections).await
    }

    async fn pitr_readiness(&self) -> EngineResult<Vec<(String, String, bool)>> {
        dump::pitr_readiness(&mut *self.lease().await?).await
    }

    fn dumps(&self) -> &dyn crate::engine::dump::Dumps {
        &dump::MysqlDumps
    }

    fn tables_named_sql(&self) -> &'static str {
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name IN ({names})"
    }

    fn text_type(&self) -> &'static str {
        "CHAR"
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

    /// The server's process list (read once for its schemas), this schema's rows.
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
            |s| self.database.is_some() && s.database == self.database,
            |_| true,
        ))
    }

    /// PROCESSLIST for one connection id, in any database.
    async fn session(&self, pid: i64) -> EngineResult<Option<SessionLookup>> {
        let row: Option<(i64, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT CAST(COALESCE(p.DB = DATABASE(), 0) AS SIGNED), p.COMMAND, p.INFO, \
                    CAST(t.trx_id IS NOT NULL AS SIGNED) \
             FROM information_schema.PROCESSLIST p \
             LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID \
             WHERE p.ID = ?",
        )
        .bind(pid)
        .fetch_optional(&mut *self.lease().await?)
        .await
        .map_err(EngineError::from_sqlx)?;
        let own = self.server.pool.own_ids().contains(&pid);
        Ok(row.map(|(in_database, command, query, in_trx)| SessionLookup {
            in_database: in_database != 0,
            own,
            state: Some(state_of(&command, in_trx != 0)),
            query,
        }))
    }

    async fn tables(&self, query: &TableQuery) -> EngineResult<TableList> {
        maintenance::tables(&mut *self.lease().await?, query).await
    }

    async fn resolve_tables(&self, names: &[String]) -> EngineResult<Vec<Relation>> {
        maintenance::resolve_tables(&mut *self.lease().await?, names).await
    }

    async fn maintain(&self, action: Action, target: &Target, control: &Control) -> EngineResult<String> {
        maintenance::maintain(self, action, target, control).await
    }

    /// KILL QUERY / KILL. The id is a number checked against PROCESSLIST
    /// by the caller, so formatting it into the statement is safe.
    async fn signal(&self, pid: i64, signal: Signal) -> EngineResult<bool> {
        let mut conn = self.lease().await?;
        kill(&mut conn, pid, signal).await
    }
}

/// KILL QUERY / KILL `pid`; false when it had already ended. Boxed: the
/// raw-SQL future is not provably `Send` inside the trait's futures.
pub(super) fn kill(
    conn: &mut MySqlConnection,
    pid: i64,
    signal: Signal,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = EngineResult<bool>> + Send + '_>> {
    let sql = match signal {
        Signal::Cancel => format!("KILL QUERY {pid}"),
        Signal::Terminate => format!("KILL {pid}"),
    };
    Box::pin(async move {
        match conn.execute(sqlx::raw_sql(&sql)).await {
            Ok(_) => Ok(true),
            // ER_NO_SUCH_THREAD: it ended in the meantime.
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("HY000") && e.message().contains("Unknown thread") =>
            {
                Ok(false)
            }
            Err(e) => Err(EngineError::from_sqlx(e)),
        }
    })
}

/// PostgreSQL's words for a MySQL/MariaDB connection's COMMAND.
fn state_of(command: &str, in_transaction: bool) -> String {
    match (command, in_transaction) {
        ("Sleep", true) => "idle in transaction".into(),
        ("Sleep", false) => "idle".into(),
        ("Query" | "Execute", _) => "active".into(),
        (other, _) => other.to_lowercase(),
    }
}

/// The activity query, with or without InnoDB lock-wait detail.
fn activity_sql(with_locks: bool) -> String {
    let (blocked_by, lock_mode) = if with_locks {
        (
            "(SELECT GROUP_CONCAT(b.trx_mysql_thread_id) FROM information_schema.INNODB_LOCK_WAITS w \
               JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id \
               WHERE w.requesting_trx_id = t.trx_id)",
            "(SELECT l.lock_mode FROM information_schema.INNODB_LOCKS l \
               WHERE l.lock_id = t.trx_requested_lock_id LIMIT 1)",
        )
    } else {
        ("NULL", "NULL")
    };
    format!(
        "SELECT CAST(p.ID AS SIGNED) AS pid, p.USER AS usr, p.HOST AS host, p.DB AS db, \
                p.COMMAND AS command, CAST(p.TIME AS SIGNED) AS seconds, p.STATE AS wait, p.INFO AS info, \
                CAST(t.trx_id IS NOT NULL AS SIGNED) AS in_trx, \
                CAST(TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)) / 1000000 AS DOUBLE) AS xact_age, \
                CAST({blocked_by} AS CHAR) AS blocked_by, CAST({lock_mode} AS CHAR) AS lock_mode, \
                (SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.PROCESSLIST WHERE COMMAND <> 'Daemon') AS server_conns, \
                CAST(@@max_connections AS SIGNED) AS max_conns \
         FROM information_schema.PROCESSLIST p \
         LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID \
         WHERE p.COMMAND NOT IN ('Daemon', 'Binlog Dump') \
         ORDER BY p.TIME DESC, p.ID"
    )
}
