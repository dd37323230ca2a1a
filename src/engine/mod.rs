//! Managed database engines behind one trait, [`ManagedDb`], with
//! [`Capabilities`] so pages show only what an engine supports. Each engine
//! is one folder holding everything it does — catalog reads, activity,
//! maintenance, migrations, dumps and restores, monitoring readings:
//! `postgres/`, `mysql/` (MySQL and MariaDB), `sqlite/`. Beside them sit the
//! parts every engine shares: the connection budget per server (`pool`,
//! `server`), the shared types of each area (`maintenance`, `history`,
//! `metrics`, `dump`), external tools (`tools`) and errors (`error`).
//! Nothing outside this module branches on the engine: it asks the trait
//! or the capabilities. Adding an engine is one folder, one [`EngineKind`]
//! variant and one capability row.

mod activity;
pub mod dump;
mod error;
pub mod gate;
pub mod history;
mod kind;
pub mod maintenance;
pub mod metrics;
mod mysql;
pub mod pool;
mod postgres;
pub mod server;
mod sqlite;
pub mod tools;

pub use activity::{ActivitySample, Session, SessionLookup, Signal, Statement, StatementOrder};
pub use error::{EngineError, EngineResult};
pub use kind::{Capabilities, EngineKind};
pub use postgres::ACTIVITY_SQL as POSTGRES_ACTIVITY_SQL;
pub use postgres::pitr;
pub use server::{ServerConnections, Servers};

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

    /// What the live gate needs before a migration: each wanted relation's
    /// size and the sessions in its way, the transactions open longer than
    /// `max_xact_age_s`, the worst replica lag. Read-only, time-boxed by
    /// the caller.
    async fn gate(&self, _wanted: &[gate::Wanted], _max_xact_age_s: f64) -> EngineResult<gate::GateFacts> {
        Err(self.unsupported("the live gate"))
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

    /// What point-in-time recovery on pgBackRest needs of the server: its
    /// data directory, version, WAL archiving (PostgreSQL only).
    async fn recovery_facts(&self) -> EngineResult<pitr::Facts> {
        Err(self.unsupported("pgBackRest point-in-time recovery"))
    }

    /// The managed database's relations and their files now.
    async fn relation_files(&self) -> EngineResult<Vec<pitr::RelationFile>> {
        Err(self.unsupported("relation files"))
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

    /// Dumps and restores with the engine's own tools.
    fn dumps(&self) -> &dyn dump::Dumps;

    /// The catalog query listing which of `{names}` (quoted constants)
    /// exist as tables or views, one text column: for the history readers.
    fn tables_named_sql(&self) -> &'static str;

    /// The type `CAST(x AS …)` turns anything into text with.
    fn text_type(&self) -> &'static str {
        "TEXT"
    }

    fn unsupported(&self, what: &str) -> EngineError {
        EngineError::Invalid(format!("{} has no {what}", self.kind().label()))
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

/// The engine a connection URL names by its scheme, or why none does.
pub fn engine_of(url: &SecretUrl) -> Result<EngineKind, AppError> {
    EngineKind::of_url(url.expose())
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
