//! Managed database engines (PostgreSQL, MySQL/MariaDB, SQLite) behind one
//! trait, [`ManagedDb`], with [`Capabilities`] so pages show only what an
//! engine supports. All catalog SQL for managed databases lives under this
//! module, one file per engine. Connections are small lazy pools with a
//! connect timeout and a statement timeout, named "custodian" on the server
//! where the engine allows it.

pub mod dump;
pub mod history;
pub mod maintenance;
pub mod metrics;
mod mysql;
mod mysql_maintenance;
mod other_migrate;
pub mod pool;
mod postgres;
mod postgres_maintenance;
mod postgres_migrate;

pub use postgres::ACTIVITY_SQL as POSTGRES_ACTIVITY_SQL;
pub mod server;
mod sqlite;
mod sqlite_maintenance;

pub use server::{ServerConnections, Servers};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

pub use maintenance::{
    Action, Control, DatabaseHealth, IndexHealth, Relation, TableHealth, TableList, TableQuery, TableSort,
    Target,
};

use crate::config::SecretUrl;
use crate::error::AppError;

/// How long connecting may take before the database counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a catalog query may run on the managed server.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections to one SQLite file (PostgreSQL and MySQL/MariaDB share
/// their server's budget instead: see [`pool`]).
pub const POOL_SIZE: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Postgres,
    Mysql,
    Sqlite,
}

impl EngineKind {
    /// The engine named by a connection URL's scheme.
    pub fn of_url(url: &str) -> Result<Self, AppError> {
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
        match scheme {
            "postgres" | "postgresql" => Ok(EngineKind::Postgres),
            "mysql" | "mariadb" => Ok(EngineKind::Mysql),
            "sqlite" => Ok(EngineKind::Sqlite),
            "" => Err(AppError::invalid(
                "the URL needs a scheme: postgres://, mysql://, mariadb:// or sqlite://",
            )),
            other => Err(AppError::invalid(format!(
                "unknown engine {other:?}: use postgres://, mysql://, mariadb:// or sqlite://"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Postgres => "postgres",
            EngineKind::Mysql => "mysql",
            EngineKind::Sqlite => "sqlite",
        }
    }

    /// As people say it.
    pub fn label(self) -> &'static str {
        match self {
            EngineKind::Postgres => "PostgreSQL",
            EngineKind::Mysql => "MySQL/MariaDB",
            EngineKind::Sqlite => "SQLite",
        }
    }

    pub fn capabilities(self) -> Capabilities {
        match self {
            EngineKind::Postgres => Capabilities {
                activity: true,
                cancel: true,
                connections: true,
                uptime: true,
                maintenance: true,
                backups: true,
                transactional_migrations: true,
                top_statements: true,
                index_health: true,
                vacuum_stats: true,
                storage_stats: false,
                file: false,
            },
            EngineKind::Mysql => Capabilities {
                activity: true,
                cancel: true,
                connections: true,
                uptime: true,
                maintenance: true,
                backups: true,
                transactional_migrations: false,
                top_statements: false,
                index_health: false,
                vacuum_stats: false,
                storage_stats: true,
                file: false,
            },
            EngineKind::Sqlite => Capabilities {
                activity: false,
                cancel: false,
                connections: false,
                uptime: false,
                maintenance: true,
                backups: true,
                transactional_migrations: true,
                top_statements: false,
                index_health: false,
                vacuum_stats: false,
                storage_stats: false,
                file: true,
            },
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What an engine can do, so pages offer only what works.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Live sessions and blocking chains.
    pub activity: bool,
    /// Cancel and terminate sessions.
    pub cancel: bool,
    /// Connections used against a maximum.
    pub connections: bool,
    /// Server start time.
    pub uptime: bool,
    pub maintenance: bool,
    pub backups: bool,
    /// DDL runs in a transaction (so a failed migration leaves nothing behind).
    pub transactional_migrations: bool,
    /// Normalised statement statistics (pg_stat_statements).
    pub top_statements: bool,
    /// Index figures: unused, duplicate and invalid indexes.
    pub index_health: bool,
    /// Tables report live and dead rows and their last vacuum and analyze.
    pub vacuum_stats: bool,
    /// Tables report their storage engine, data and free space.
    pub storage_stats: bool,
    /// The database is a file the panel opens itself, not a server: its
    /// work runs in the panel's process, it restores into a new file only,
    /// and it lists attached files rather than a server's databases.
    pub file: bool,
}

/// A point-in-time reading of a server, as the poller records it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServerStatus {
    pub version: String,
    pub uptime_s: Option<i64>,
    /// Size of the managed database (not the whole server).
    pub size_bytes: Option<i64>,
    pub connections: Option<i64>,
    pub max_connections: Option<i64>,
}

/// One database (PostgreSQL, MySQL) or attached file (SQLite) on the server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DatabaseEntry {
    pub name: String,
    pub size_bytes: Option<i64>,
}

/// One schema of the managed database, with how many tables it holds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SchemaEntry {
    pub name: String,
    pub tables: i64,
}

/// One session (backend, connection) on the managed database.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Session {
    pub pid: i64,
    pub user: Option<String>,
    pub application: Option<String>,
    pub client: Option<String>,
    pub database: Option<String>,
    /// active, idle, idle in transaction, … (PostgreSQL's words; MariaDB's
    /// commands are mapped onto them).
    pub state: Option<String>,
    pub wait_event: Option<String>,
    pub query: Option<String>,
    /// How long the current query has run (not for idle sessions).
    pub query_age_s: Option<f64>,
    /// How long the open transaction has run.
    pub xact_age_s: Option<f64>,
    /// Sessions holding the lock this one waits for.
    pub blocked_by: Vec<i64>,
    /// The lock mode this session waits for, when blocked.
    pub lock_mode: Option<String>,
    /// One of the panel's own connections: shown, never killed.
    pub own: bool,
}

/// Every session of the managed database at one instant, with the
/// server-wide figures the summary compares against.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ActivitySample {
    pub sessions: Vec<Session>,
    pub server_connections: Option<i64>,
    pub max_connections: Option<i64>,
}

/// What to do to a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Stop the running query; the session stays.
    Cancel,
    /// Close the session.
    Terminate,
}

impl Signal {
    pub fn verb(self) -> &'static str {
        match self {
            Signal::Cancel => "cancel",
            Signal::Terminate => "terminate",
        }
    }
}

/// One session looked up by pid before it is signalled.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionLookup {
    /// In the managed database (not another one on the same server).
    pub in_database: bool,
    pub own: bool,
    pub state: Option<String>,
    pub query: Option<String>,
}

/// One normalised statement from pg_stat_statements.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Statement {
    pub query: String,
    pub calls: i64,
    pub total_ms: f64,
    pub mean_ms: f64,
    pub rows: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatementOrder {
    TotalTime,
    MeanTime,
    Calls,
}

/// A failure talking to a managed database, in plain words. The text is
/// the driver's message (it never contains the URL or its password).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EngineError(pub String);

impl EngineError {
    pub(crate) fn from_sqlx(err: sqlx::Error) -> Self {
        let text = match &err {
            sqlx::Error::PoolTimedOut => {
                format!(
                    "could not connect within {} seconds (the server is down, unreachable or refusing connections)",
                    CONNECT_TIMEOUT.as_secs()
                )
            }
            sqlx::Error::Io(io) => format!("could not connect to the server: {io}"),
            sqlx::Error::Database(db) => db.message().to_string(),
            sqlx::Error::Configuration(e) => format!("bad connection settings: {e}"),
            sqlx::Error::Tls(e) => format!("TLS failed: {e}"),
            other => other.to_string(),
        };
        EngineError(text)
    }
}

pub type EngineResult<T> = Result<T, EngineError>;

/// What the poller learns in one check of a database.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Check {
    pub status: ServerStatus,
    pub databases: Vec<DatabaseEntry>,
    pub schemas: Vec<SchemaEntry>,
}

/// A managed database the panel talks to. Later areas add their methods
/// (activity, maintenance, backups, migrations) here.
#[async_trait]
pub trait ManagedDb: Send + Sync {
    fn kind(&self) -> EngineKind;

    /// The panel's connections to this database's server (`None` for a
    /// file, which has no server).
    fn server(&self) -> Option<ServerConnections> {
        None
    }

    /// The server (host:port) this database lives on: databases with the
    /// same label share a connection budget and server-wide readings.
    fn server_label(&self) -> Option<String> {
        None
    }

    /// Hold room in the server's connection budget for `connections` that a
    /// tool opens itself (pg_dump and its snapshot, pg_restore): `None` for
    /// a file, which has no server. Waits until the room is there.
    async fn reserve(&self, _connections: usize) -> EngineResult<Option<pool::Reservation>> {
        Ok(None)
    }

    /// Status, databases and schemas, for the poller. Engines with servers
    /// read the server-wide part once for all their databases.
    async fn check(&self) -> EngineResult<Check> {
        Ok(Check {
            status: self.status().await?,
            databases: self.databases().await?,
            schemas: self.schemas().await?,
        })
    }

    /// Version, uptime, size and connections, in as few queries as the engine allows.
    async fn status(&self) -> EngineResult<ServerStatus>;

    /// The databases on the server (SQLite: the attached files).
    async fn databases(&self) -> EngineResult<Vec<DatabaseEntry>>;

    /// The schemas of the managed database with their table counts.
    async fn schemas(&self) -> EngineResult<Vec<SchemaEntry>>;

    /// Close the pool (the database was removed or its URL changed).
    async fn close(&self);

    /// Every session of the managed database, in one catalog query.
    async fn activity(&self) -> EngineResult<ActivitySample> {
        Err(self.unsupported("sessions"))
    }

    /// One session by pid, to check it before signalling it.
    async fn session(&self, _pid: i64) -> EngineResult<Option<SessionLookup>> {
        Err(self.unsupported("sessions"))
    }

    /// Cancel or terminate a session; `false` if the server says it could not.
    async fn signal(&self, _pid: i64, _signal: Signal) -> EngineResult<bool> {
        Err(self.unsupported("cancelling sessions"))
    }

    /// The top statements, or `None` when statement statistics are not
    /// available (pg_stat_statements not installed).
    async fn top_statements(
        &self,
        _order: StatementOrder,
        _limit: i64,
    ) -> EngineResult<Option<Vec<Statement>>> {
        Ok(None)
    }

    /// Reset statement statistics.
    async fn reset_statements(&self) -> EngineResult<()> {
        Err(self.unsupported("statement statistics"))
    }

    /// One page of table figures, sorted and sliced on the server.
    async fn tables(&self, _query: &TableQuery) -> EngineResult<TableList> {
        Err(self.unsupported("table statistics"))
    }

    /// Index figures, problems first, at most `limit`.
    async fn indexes(&self, _limit: i64) -> EngineResult<Vec<IndexHealth>> {
        Ok(Vec::new())
    }

    async fn database_health(&self) -> EngineResult<DatabaseHealth> {
        Ok(DatabaseHealth::default())
    }

    /// Find tables in the catalog now, by `schema.table` (or, on
    /// PostgreSQL, `oid:N`). Fails naming the first one that is not there.
    async fn resolve_tables(&self, _names: &[String]) -> EngineResult<Vec<Relation>> {
        Err(self.unsupported("tables to maintain"))
    }

    /// Find an index in the catalog now, by `schema.index` or `oid:N`.
    async fn resolve_index(&self, _name: &str) -> EngineResult<Relation> {
        Err(self.unsupported("indexes to rebuild"))
    }

    /// Run a maintenance action, reporting progress, stopping when asked.
    /// Each relation is checked against the catalog again just before it
    /// is worked on. Returns a one-line summary.
    async fn maintain(&self, _action: Action, _target: &Target, _control: &Control) -> EngineResult<String> {
        Err(self.unsupported("maintenance"))
    }

    /// Apply one migration and record it in Custodian's history, under an
    /// advisory lock so two panels never apply at once; a failure rolls it
    /// back (where the engine can) and is recorded before it is returned.
    async fn apply_migration(&self, _run: &history::MigrationRun) -> EngineResult<history::RunOutcome> {
        Err(self.unsupported("applying migrations"))
    }

    /// The figures the monitoring sampler records. Engines without
    /// statistics views report what their status has: size, connections.
    async fn reading(&self) -> EngineResult<metrics::Reading> {
        let status = self.status().await?;
        Ok(metrics::Reading {
            size_bytes: status.size_bytes.map(|b| b as f64),
            connections: status.connections.map(|c| c as f64),
            max_connections: status.max_connections.map(|c| c as f64),
            ..metrics::Reading::default()
        })
    }

    /// Point-in-time recovery readiness: (setting, value, problem?) lines.
    async fn pitr_readiness(&self) -> EngineResult<Vec<(String, String, bool)>> {
        Ok(vec![(
            "point-in-time recovery".into(),
            "not available for SQLite: backups are whole-file copies".into(),
            false,
        )])
    }

    /// Run a read-only SELECT whose columns are all text (or NULL), for
    /// reading tables of known shape such as migration histories.
    async fn text_rows(&self, sql: &str) -> EngineResult<Vec<Vec<Option<String>>>>;

    fn unsupported(&self, what: &str) -> EngineError {
        EngineError(format!("{} has no {what}", self.kind().label()))
    }
}

/// Every cell of a row as optional text.
fn text_cells<R: sqlx::Row>(row: &R) -> EngineResult<Vec<Option<String>>>
where
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    (0..row.len())
        .map(|i| {
            row.try_get::<Option<String>, _>(i)
                .map_err(EngineError::from_sqlx)
        })
        .collect()
}

/// The pool of a SQLite file: a few connections, closed when idle for a
/// few seconds, and a bounded wait to connect.
fn pool_options<DB: sqlx::Database>() -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::new()
        .max_connections(POOL_SIZE)
        .min_connections(0)
        .acquire_timeout(CONNECT_TIMEOUT)
        .idle_timeout(pool::IDLE_CLOSE)
}

/// A lazy connection to the database at `url`: nothing is dialled until the
/// first query, so a down server never blocks the caller. Connections to a
/// server come out of its budget in `servers`.
pub fn connect(url: &SecretUrl, servers: &Servers) -> Result<Arc<dyn ManagedDb>, AppError> {
    match EngineKind::of_url(url.expose())? {
        EngineKind::Postgres => Ok(Arc::new(postgres::Postgres::connect(url, servers)?)),
        EngineKind::Mysql => Ok(Arc::new(mysql::Mysql::connect(url, servers)?)),
        EngineKind::Sqlite => Ok(Arc::new(sqlite::Sqlite::connect(url)?)),
    }
}

/// Check that `url` is a well-formed URL for its engine, without connecting.
pub fn validate_url(url: &str) -> Result<EngineKind, AppError> {
    let kind = EngineKind::of_url(url)?;
    connect(&SecretUrl::new(url), &Servers::new(1))?;
    Ok(kind)
}

/// A URL the driver rejected, without echoing the URL (it may hold a password).
fn bad_url(kind: EngineKind, err: sqlx::Error) -> AppError {
    let why = match err {
        sqlx::Error::Configuration(e) => e.to_string(),
        other => other.to_string(),
    };
    // Driver messages about URL parsing do not include the URL itself,
    // but be sure: cut anything after "://".
    let why = match why.find("://") {
        Some(i) => format!("{}…", &why[..i]),
        None => why,
    };
    AppError::invalid(format!("not a valid {} URL: {why}", kind.label()))
}
