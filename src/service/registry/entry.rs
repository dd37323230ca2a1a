//! A registered database as pages, the API and the scheduler see it: its
//! entry (never the password), where it comes from, and its schedules,
//! checked when written and parsed once when read.

use std::time::Duration;

use crate::domain::DatabaseName;
use crate::engine::EngineKind;
use crate::error::AppResult;
use crate::service::backup::schedule::{Retention, parse_cron};

/// Where a database's entry comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Added in the browser, the API or the CLI; editable there.
    Panel,
    /// Declared in custodian.toml; read-only in the panel.
    Config,
}

/// A registered database, as pages and the API see it: never the password.
#[derive(Clone, Debug, PartialEq)]
pub struct DbEntry {
    pub name: DatabaseName,
    pub engine: EngineKind,
    /// The URL with its password replaced by `***`.
    pub url_redacted: String,
    pub migrations_dir: Option<String>,
    pub rpo: Option<Duration>,
    pub rto: Option<Duration>,
    pub schedules: Schedules,
    /// The schedules parsed, once, when the entry is read.
    pub plan: Plan,
    pub source: Source,
}

/// When to back up and verify, and what to keep.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedules {
    /// 5-field cron line.
    pub backup: Option<String>,
    /// 5-field cron line.
    pub verify: Option<String>,
    /// `last=7 daily=7 weekly=4 monthly=6`.
    pub retention: Option<String>,
}

impl Schedules {
    /// Empty fields become `None`; cron lines and retention must parse.
    pub fn checked(self) -> AppResult<Schedules> {
        let clean = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let s = Schedules {
            backup: clean(self.backup),
            verify: clean(self.verify),
            retention: clean(self.retention),
        };
        for line in [&s.backup, &s.verify].into_iter().flatten() {
            parse_cron(line)?;
        }
        if let Some(r) = &s.retention {
            r.parse::<Retention>()?;
        }
        Ok(s)
    }
}

impl DbEntry {
    /// Its recovery targets, for judging its backups.
    pub fn targets(&self) -> crate::service::backup::status::Targets {
        crate::service::backup::status::Targets {
            rpo: self.rpo,
            rto: self.rto,
        }
    }

    /// With its schedules parsed.
    pub(super) fn planned(mut self) -> DbEntry {
        self.plan = self.schedules.plan(self.name.as_str());
        self
    }
}

/// A cron line and its parse.
#[derive(Clone, Debug)]
pub struct Scheduled {
    pub line: String,
    pub cron: croner::Cron,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.line == other.line
    }
}

/// [`Schedules`] parsed, so the scheduler's every tick reads types rather
/// than strings. A line that no longer parses (written by another version)
/// is left out with a warning.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub backup: Option<Scheduled>,
    pub verify: Option<Scheduled>,
    pub retention: Option<Retention>,
}

impl Schedules {
    /// Parse what is there; `database` names the entry in a warning.
    pub fn plan(&self, database: &str) -> Plan {
        let cron = |line: &Option<String>| {
            let line = line.as_deref()?.trim();
            match parse_cron(line) {
                Ok(cron) => Some(Scheduled {
                    line: line.to_string(),
                    cron,
                }),
                Err(e) => {
                    tracing::warn!(database, error = %e, "schedule ignored");
                    None
                }
            }
        };
        Plan {
            backup: cron(&self.backup),
            verify: cron(&self.verify),
            retention: self
                .retention
                .as_deref()
                .and_then(|r| match r.parse::<Retention>() {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::warn!(database, error = %e, "retention ignored");
                        None
                    }
                }),
        }
    }
}
