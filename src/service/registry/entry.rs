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
    /// Point-in-time recovery on pgBackRest (PostgreSQL only).
    pub pitr: PitrSettings,
    /// The schedules parsed, once, when the entry is read.
    pub plan: Plan,
    pub source: Source,
}

/// A PostgreSQL database's pgBackRest settings: its stanza (and config
/// file), when to take physical backups and verify the repository, when
/// to run a recovery drill, and what a drill's restored server must answer
/// true to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PitrSettings {
    pub stanza: Option<String>,
    pub config: Option<String>,
    /// `full 0 1 * * 0; incr 0 * * * *; verify 0 4 * * *`.
    pub schedule: Option<String>,
    /// 5-field cron line.
    pub drill_schedule: Option<String>,
    /// A query a drill's restored server must answer `true` to.
    pub proof_sql: Option<String>,
}

/// What a physical schedule entry runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhysicalRun {
    Full,
    Diff,
    Incr,
    Verify,
}

impl PhysicalRun {
    pub fn as_str(self) -> &'static str {
        match self {
            PhysicalRun::Full => "full",
            PhysicalRun::Diff => "diff",
            PhysicalRun::Incr => "incr",
            PhysicalRun::Verify => "verify",
        }
    }

    pub fn parse(s: &str) -> Option<PhysicalRun> {
        Some(match s {
            "full" => PhysicalRun::Full,
            "diff" => PhysicalRun::Diff,
            "incr" => PhysicalRun::Incr,
            "verify" => PhysicalRun::Verify,
            _ => return None,
        })
    }
}

/// Parse `full 0 1 * * 0; incr 0 * * * *`: entries split by `;`, each a
/// kind and a 5-field cron line.
pub fn parse_physical_schedule(text: &str) -> AppResult<Vec<(PhysicalRun, Scheduled)>> {
    let mut out = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, line) = part.split_once(char::is_whitespace).unwrap_or((part, ""));
        let kind = PhysicalRun::parse(kind).ok_or_else(|| {
            crate::error::AppError::invalid(format!(
                "physical backup schedule entry {part:?}: start it with full, diff, incr or verify, then a cron line"
            ))
        })?;
        let line = line.trim();
        let cron = parse_cron(line)?;
        out.push((
            kind,
            Scheduled {
                line: line.to_string(),
                cron,
            },
        ));
    }
    Ok(out)
}

/// A pgBackRest stanza name: letters, digits, `.`, `_` and `-` only.
fn check_stanza(stanza: &str) -> AppResult<()> {
    let ok = !stanza.is_empty()
        && stanza.len() <= 64
        && !stanza.starts_with('-')
        && stanza
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(crate::error::AppError::invalid(format!(
            "pgBackRest stanza {stanza:?}: use letters, digits, '.', '_' and '-' only (at most 64)"
        )))
    }
}

impl PitrSettings {
    /// Empty fields become `None`; the stanza must be a plain name, the
    /// config file an absolute path to a file, the schedules must parse,
    /// and only PostgreSQL has them.
    pub fn checked(self, engine: EngineKind) -> AppResult<PitrSettings> {
        let clean = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let s = PitrSettings {
            stanza: clean(self.stanza),
            config: clean(self.config),
            schedule: clean(self.schedule),
            drill_schedule: clean(self.drill_schedule),
            proof_sql: clean(self.proof_sql),
        };
        let any =
            s.config.is_some() || s.schedule.is_some() || s.drill_schedule.is_some() || s.proof_sql.is_some();
        if s.stanza.is_none() && any {
            return Err(crate::error::AppError::invalid(
                "name the pgBackRest stanza first: the other point-in-time recovery settings need it",
            ));
        }
        if let Some(stanza) = &s.stanza {
            if engine != EngineKind::Postgres {
                return Err(crate::error::AppError::invalid(format!(
                    "pgBackRest stanzas are for PostgreSQL databases, not {}",
                    engine.label()
                )));
            }
            check_stanza(stanza)?;
        }
        if let Some(config) = &s.config {
            let path = std::path::Path::new(config);
            if !path.is_absolute() || !path.is_file() {
                return Err(crate::error::AppError::invalid(format!(
                    "pgBackRest config file {config} must be an absolute path to a file the panel can read"
                )));
            }
        }
        if let Some(line) = &s.schedule {
            parse_physical_schedule(line)?;
        }
        if let Some(line) = &s.drill_schedule {
            parse_cron(line)?;
        }
        if s.proof_sql.as_ref().is_some_and(|q| q.len() > 10_000) {
            return Err(crate::error::AppError::invalid(
                "the proof query is longer than 10,000 characters",
            ));
        }
        Ok(s)
    }
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
        let name = self.name.as_str();
        let mut plan = self.schedules.plan(name);
        if let Some(line) = &self.pitr.schedule {
            match parse_physical_schedule(line) {
                Ok(p) => plan.physical = p,
                Err(e) => tracing::warn!(database = name, error = %e, "physical schedule ignored"),
            }
        }
        if let Some(line) = &self.pitr.drill_schedule {
            match parse_cron(line) {
                Ok(cron) => {
                    plan.drill = Some(Scheduled {
                        line: line.clone(),
                        cron,
                    })
                }
                Err(e) => tracing::warn!(database = name, error = %e, "drill schedule ignored"),
            }
        }
        self.plan = plan;
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
    /// Physical backups and repository verification (pgBackRest).
    pub physical: Vec<(PhysicalRun, Scheduled)>,
    /// Recovery drills.
    pub drill: Option<Scheduled>,
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
            physical: Vec::new(),
            drill: None,
        }
    }
}
