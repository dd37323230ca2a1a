//! The engines the panel knows and what each can do: one variant and one
//! capability row per engine.

use std::fmt;

use serde::Serialize;

use crate::error::AppError;
use crate::sqltext::Dialect;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Postgres,
    Mysql,
    Sqlite,
}

impl EngineKind {
    pub const ALL: [EngineKind; 3] = [EngineKind::Postgres, EngineKind::Mysql, EngineKind::Sqlite];

    /// The engine by its stored name ([`EngineKind::as_str`]) or as people
    /// write it ("postgresql", "mariadb").
    pub fn parse(name: &str) -> Option<EngineKind> {
        EngineKind::named(&name.trim().to_ascii_lowercase())
    }

    /// The names (and URL schemes) each engine answers to, exactly.
    fn named(name: &str) -> Option<EngineKind> {
        match name {
            "postgres" | "postgresql" => Some(EngineKind::Postgres),
            "mysql" | "mariadb" => Some(EngineKind::Mysql),
            "sqlite" => Some(EngineKind::Sqlite),
            _ => None,
        }
    }

    /// The engine named by a connection URL's scheme.
    pub(crate) fn of_url(url: &str) -> Result<Self, AppError> {
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
        if let Some(kind) = EngineKind::named(scheme) {
            return Ok(kind);
        }
        match scheme {
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

    /// The engine's capability row.
    pub fn capabilities(self) -> Capabilities {
        match self {
            EngineKind::Postgres => Capabilities {
                top_statements: true,
                index_health: true,
                vacuum_stats: true,
                ..Capabilities::SERVER
            },
            EngineKind::Mysql => Capabilities {
                transactional_migrations: false,
                storage_stats: true,
                dialect: Dialect::Mysql,
                ..Capabilities::SERVER
            },
            EngineKind::Sqlite => Capabilities {
                activity: false,
                cancel: false,
                connections: false,
                uptime: false,
                file: true,
                dialect: Dialect::Sqlite,
                ..Capabilities::SERVER
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
    /// The SQL the lint and the statement splitter read.
    pub dialect: Dialect,
}

impl Capabilities {
    /// What a database server offers with no engine's extras: sessions,
    /// connections, uptime, maintenance, backups, transactional DDL. Each
    /// engine's row says how it differs.
    pub const SERVER: Capabilities = Capabilities {
        activity: true,
        cancel: true,
        connections: true,
        uptime: true,
        maintenance: true,
        backups: true,
        transactional_migrations: true,
        top_statements: false,
        index_health: false,
        vacuum_stats: false,
        storage_stats: false,
        file: false,
        dialect: Dialect::Postgres,
    };
}

impl From<EngineKind> for Dialect {
    fn from(kind: EngineKind) -> Dialect {
        kind.capabilities().dialect
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        EngineKind::parse(s).ok_or_else(|| format!("unknown engine {s:?}: use postgres, mysql or sqlite"))
    }
}
