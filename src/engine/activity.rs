//! Sessions on a managed database as every engine reports them: the live
//! list with blocking chains, what to do to a session, top statements.

use serde::Serialize;

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
    /// How long it has been in its state (for idle in transaction: how
    /// long it has sat idle holding its transaction open).
    pub state_age_s: Option<f64>,
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
