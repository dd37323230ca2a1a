//! Monitoring readings: the figures the sampler records for one database at
//! one instant. Counters (commits, cache reads) are the server's cumulative
//! totals; the sampler turns two readings into rates. Each engine's queries
//! live in its folder (`postgres/metrics.rs`, `mysql/metrics.rs`).

use std::collections::HashMap;

use serde::Serialize;

/// One replica (or, on a standby, the standby itself) and how far behind it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Replica {
    pub name: String,
    pub lag_s: f64,
}

/// A session worth naming in an alert: the longest query, the longest idle
/// transaction.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Culprit {
    pub pid: i64,
    pub seconds: f64,
    pub query: String,
}

/// Everything one sample reads. `None` means the engine has no such figure.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Reading {
    /// Client connections on the whole server (against `max_connections`).
    pub connections: Option<f64>,
    pub max_connections: Option<f64>,
    /// This database's sessions by state.
    pub active: Option<f64>,
    pub idle: Option<f64>,
    pub idle_in_xact: Option<f64>,
    /// Cumulative counters.
    pub commits: Option<f64>,
    pub rollbacks: Option<f64>,
    pub cache_hits: Option<f64>,
    pub cache_reads: Option<f64>,
    pub size_bytes: Option<f64>,
    pub longest_query: Option<Culprit>,
    pub longest_xact_s: Option<f64>,
    pub longest_idle_xact: Option<Culprit>,
    pub replicas: Vec<Replica>,
    pub dead_tuples: Option<f64>,
    pub xid_age: Option<f64>,
    /// WAL archiving: the last attempt failed (PostgreSQL).
    pub archive_failing: Option<bool>,
}

/// How much of a query's text a reading keeps to name it in an alert.
pub(crate) const QUERY_TEXT: usize = 200;

/// One database's figures within a server-wide reading.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PerDatabase {
    pub active: f64,
    pub idle: f64,
    pub idle_in_xact: f64,
    pub longest_xact_s: Option<f64>,
    pub commits: Option<f64>,
    pub rollbacks: Option<f64>,
    pub cache_hits: Option<f64>,
    pub cache_reads: Option<f64>,
    pub size_bytes: Option<f64>,
    pub xid_age: Option<f64>,
    pub longest_query: Option<Culprit>,
    pub longest_idle_xact: Option<Culprit>,
}

/// What one sample of a server reads for all its databases.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerReading {
    pub connections: Option<f64>,
    pub max_connections: Option<f64>,
    pub archive_failing: Option<bool>,
    pub replicas: Vec<Replica>,
    pub databases: HashMap<String, PerDatabase>,
}

impl ServerReading {
    /// The reading of one database: the server's figures, its own row, and
    /// what only its own connection can see (PostgreSQL's dead tuples).
    pub fn reading_for(&self, database: &str, dead_tuples: Option<f64>) -> Reading {
        let d = self.databases.get(database).cloned().unwrap_or_default();
        Reading {
            connections: self.connections,
            max_connections: self.max_connections,
            active: Some(d.active),
            idle: Some(d.idle),
            idle_in_xact: Some(d.idle_in_xact),
            commits: d.commits,
            rollbacks: d.rollbacks,
            cache_hits: d.cache_hits,
            cache_reads: d.cache_reads,
            size_bytes: d.size_bytes,
            longest_query: d.longest_query,
            longest_xact_s: d.longest_xact_s,
            longest_idle_xact: d.longest_idle_xact,
            replicas: self.replicas.clone(),
            dead_tuples,
            xid_age: d.xid_age,
            archive_failing: self.archive_failing,
        }
    }
}
