//! What maintenance means across engines: the actions, the health figures
//! pages show, how a job reports progress and hears "cancel", and the one
//! identifier-quoting function per dialect.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

use super::{EngineError, EngineKind};

/// A maintenance action. Each engine supports its own set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Vacuum,
    VacuumAnalyze,
    Analyze,
    VacuumFull,
    Reindex,
    Optimize,
    Check,
    IntegrityCheck,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::VacuumAnalyze,
        Action::Vacuum,
        Action::Analyze,
        Action::Reindex,
        Action::VacuumFull,
        Action::Optimize,
        Action::Check,
        Action::IntegrityCheck,
    ];

    pub fn parse(raw: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == raw.trim())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Vacuum => "vacuum",
            Action::VacuumAnalyze => "vacuum_analyze",
            Action::Analyze => "analyze",
            Action::VacuumFull => "vacuum_full",
            Action::Reindex => "reindex",
            Action::Optimize => "optimize",
            Action::Check => "check",
            Action::IntegrityCheck => "integrity_check",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Action::Vacuum => "VACUUM",
            Action::VacuumAnalyze => "VACUUM ANALYZE",
            Action::Analyze => "ANALYZE",
            Action::VacuumFull => "VACUUM FULL",
            Action::Reindex => "REINDEX",
            Action::Optimize => "OPTIMIZE TABLE",
            Action::Check => "CHECK TABLE",
            Action::IntegrityCheck => "integrity_check",
        }
    }

    /// Takes an ACCESS EXCLUSIVE lock (blocks reads and writes): the user
    /// must type the table's name.
    pub fn locks_table(self) -> bool {
        matches!(self, Action::VacuumFull)
    }

    pub fn supported_by(self, engine: EngineKind) -> bool {
        match engine {
            EngineKind::Postgres => matches!(
                self,
                Action::Vacuum
                    | Action::VacuumAnalyze
                    | Action::Analyze
                    | Action::VacuumFull
                    | Action::Reindex
            ),
            EngineKind::Mysql => matches!(self, Action::Analyze | Action::Optimize | Action::Check),
            EngineKind::Sqlite => matches!(
                self,
                Action::Vacuum | Action::Analyze | Action::Reindex | Action::IntegrityCheck
            ),
        }
    }

    /// Works on the whole database file only (SQLite's VACUUM and
    /// integrity_check).
    pub fn whole_database_only(self, engine: EngineKind) -> bool {
        engine == EngineKind::Sqlite && matches!(self, Action::Vacuum | Action::IntegrityCheck)
    }
}

/// A table (or index) as the catalog names it, found there just now.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Relation {
    pub schema: String,
    pub name: String,
}

impl Relation {
    /// `schema.name` as people read it (not quoted: never SQL).
    pub fn display(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// What a maintenance job works on.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Tables(Vec<Relation>),
    Index(Relation),
    Database,
}

/// Table figures for the maintenance page. Fields an engine does not have
/// stay `None`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TableHealth {
    /// PostgreSQL's OID: the form names tables by it.
    pub oid: Option<i64>,
    pub schema: String,
    pub name: String,
    pub total_bytes: Option<i64>,
    pub table_bytes: Option<i64>,
    pub index_bytes: Option<i64>,
    pub toast_bytes: Option<i64>,
    pub live_tuples: Option<i64>,
    pub dead_tuples: Option<i64>,
    pub last_vacuum: Option<i64>,
    pub last_autovacuum: Option<i64>,
    pub last_analyze: Option<i64>,
    pub last_autoanalyze: Option<i64>,
    pub vacuum_count: Option<i64>,
    pub autovacuum_count: Option<i64>,
    pub analyze_count: Option<i64>,
    pub autoanalyze_count: Option<i64>,
    /// Dead tuples past this table's own autovacuum threshold.
    pub needs_vacuum: bool,
    pub never_analyzed: bool,
    /// MySQL/MariaDB: storage engine and reclaimable space.
    pub storage_engine: Option<String>,
    pub data_free: Option<i64>,
    /// PostgreSQL: `autovacuum_enabled = false` on the table.
    pub autovacuum_disabled: bool,
    /// PostgreSQL: the table's estimated bloat, the space VACUUM FULL or
    /// pg_repack would give back (from pg_stats widths and reltuples, no
    /// scan); `None` before the table is analyzed.
    pub bloat_bytes: Option<i64>,
}

impl TableHealth {
    pub fn dead_pct(&self) -> Option<f64> {
        match (self.live_tuples, self.dead_tuples) {
            (Some(live), Some(dead)) if live + dead > 0 => Some(dead as f64 * 100.0 / (live + dead) as f64),
            _ => None,
        }
    }
}

/// How the tables list is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableSort {
    TotalSize,
    DeadTuples,
    DeadPct,
    Name,
    LastVacuum,
    LastAnalyze,
}

impl TableSort {
    pub fn parse(raw: &str) -> TableSort {
        match raw {
            "dead" => TableSort::DeadTuples,
            "dead_pct" => TableSort::DeadPct,
            "name" => TableSort::Name,
            "vacuum" => TableSort::LastVacuum,
            "analyze" => TableSort::LastAnalyze,
            _ => TableSort::TotalSize,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TableSort::TotalSize => "size",
            TableSort::DeadTuples => "dead",
            TableSort::DeadPct => "dead_pct",
            TableSort::Name => "name",
            TableSort::LastVacuum => "vacuum",
            TableSort::LastAnalyze => "analyze",
        }
    }
}

/// One page of the tables list, sorted and sliced on the server.
#[derive(Clone, Debug)]
pub struct TableQuery {
    pub sort: TableSort,
    pub descending: bool,
    /// Substring of schema.table.
    pub search: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableList {
    pub rows: Vec<TableHealth>,
    /// Tables matching the search, across all pages.
    pub total: i64,
    /// PostgreSQL: why autovacuum cannot run on this server at all
    /// (`autovacuum = off`, or `track_counts = off`, which it needs).
    pub autovacuum_off: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IndexHealth {
    pub oid: Option<i64>,
    pub schema: String,
    pub table: String,
    pub name: String,
    pub bytes: Option<i64>,
    pub scans: Option<i64>,
    pub unique: bool,
    pub primary: bool,
    pub valid: bool,
    /// Never scanned, and not enforcing a key or constraint.
    pub unused: bool,
    /// Its columns lead another index of the table (same predicate): that
    /// index can serve its queries.
    pub duplicate_of: Option<String>,
    pub definition: String,
}

/// Database-wide figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DatabaseHealth {
    /// Transaction-id age per database on the server (wraparound at ~2.1e9).
    pub xid_ages: Vec<(String, i64)>,
    /// Tables with the oldest relfrozenxid here.
    pub oldest_tables: Vec<(String, i64)>,
    /// Autovacuum settings (name, value with unit).
    pub settings: Vec<(String, String)>,
    /// Per-table autovacuum overrides (table, options).
    pub overrides: Vec<(String, String)>,
    /// SQLite: page count, freelist pages, page size.
    pub pages: Option<(i64, i64, i64)>,
}

/// Receives (fraction done 0..1 if known, phase) as work goes on.
pub type ProgressFn = Arc<dyn Fn(Option<f64>, &str) + Send + Sync>;

/// Receives a line for the job's log: what the engine reported.
pub type LogFn = Arc<dyn Fn(String) + Send + Sync>;

/// How a running maintenance job talks to its job: progress and the
/// engine's own words out, cancel in.
#[derive(Clone)]
pub struct Control {
    pub progress: ProgressFn,
    pub log: LogFn,
    pub cancel: watch::Receiver<bool>,
}

impl Control {
    pub fn report(&self, fraction: Option<f64>, phase: &str) {
        (self.progress)(fraction, phase)
    }

    /// A line for the job's log.
    pub fn note(&self, line: impl Into<String>) {
        (self.log)(line.into())
    }

    pub fn is_cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Resolves when the job is asked to stop.
    pub async fn cancelled(&self) {
        let mut rx = self.cancel.clone();
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// The error a maintenance run ends with when it was cancelled.
pub fn cancelled() -> EngineError {
    EngineError::Cancelled
}

/// Quote an identifier for PostgreSQL and SQLite: double quotes, inner
/// quotes doubled. The only way a name from the catalog enters SQL text.
pub fn quote_pg(ident: &str) -> Result<String, EngineError> {
    if ident.contains('\0') {
        return Err(EngineError::Invalid(
            "an identifier cannot contain a NUL character".into(),
        ));
    }
    Ok(format!("\"{}\"", ident.replace('"', "\"\"")))
}

/// Quote an identifier for MySQL/MariaDB: backticks, inner backticks doubled.
pub fn quote_mysql(ident: &str) -> Result<String, EngineError> {
    if ident.contains('\0') {
        return Err(EngineError::Invalid(
            "an identifier cannot contain a NUL character".into(),
        ));
    }
    Ok(format!("`{}`", ident.replace('`', "``")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_quoted_into_one_identifier() {
        assert_eq!(quote_pg("orders").unwrap(), "\"orders\"");
        assert_eq!(quote_pg("Mixed Case").unwrap(), "\"Mixed Case\"");
        assert_eq!(
            quote_pg("x\"; DROP TABLE y; --").unwrap(),
            "\"x\"\"; DROP TABLE y; --\""
        );
        assert_eq!(quote_pg("ünï\"cødé").unwrap(), "\"ünï\"\"cødé\"");
        assert_eq!(
            quote_mysql("x`; DROP TABLE y; --").unwrap(),
            "`x``; DROP TABLE y; --`"
        );
        assert!(quote_pg("nul\0byte").is_err());
        assert!(quote_mysql("nul\0byte").is_err());
    }

    #[test]
    fn actions_parse_and_belong_to_engines() {
        assert_eq!(Action::parse("vacuum_analyze"), Some(Action::VacuumAnalyze));
        assert_eq!(Action::parse("drop"), None);
        assert!(Action::VacuumFull.supported_by(EngineKind::Postgres));
        assert!(!Action::VacuumFull.supported_by(EngineKind::Mysql));
        assert!(Action::Optimize.supported_by(EngineKind::Mysql));
        assert!(Action::IntegrityCheck.whole_database_only(EngineKind::Sqlite));
    }
}
