//! Schema migrations of managed databases: the files in a database's
//! migrations directory ([`source`]) and how they compare with what the
//! database says it has applied ([`plan`]); requests to apply them and their
//! approvals ([`requests`]), and the job that applies one (`apply.rs`).

mod apply;
pub mod gate;
pub mod plan;
pub mod requests;
pub mod source;

use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::engine::history::{self, Applied};
use crate::error::{AppError, AppResult};
use crate::lint::{self, Finding};

/// Rules the panel's own apply satisfies: it sets the database's
/// lock_timeout and statement_timeout around every migration it runs.
const COVERED_BY_APPLY: [&str; 2] = ["require-lock-timeout", "require-statement-timeout"];

/// The lint of a migration the panel will apply: without the findings its
/// own settings already answer (the CLI's `migrate lint` keeps them: a file
/// run by another tool needs its own timeouts).
pub(super) fn lint_applied(
    engine: crate::engine::EngineKind,
    sql: &str,
    version: Option<&str>,
) -> Vec<Finding> {
    lint::lint(engine, sql, version)
        .into_iter()
        .filter(|f| !COVERED_BY_APPLY.contains(&f.rule.as_str()))
        .collect()
}
use crate::service::fleet::Member;
use plan::Drift;

/// The checksum Custodian records and compares: SHA-256 of the file's bytes,
/// lower-case hex.
pub fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A database's migrations as a page, the API and the CLI show them.
#[derive(Debug, Serialize)]
pub struct Status {
    pub migrations_dir: Option<String>,
    /// Every history found, Custodian's first.
    pub applied: Vec<Applied>,
    pub pending: Vec<Pending>,
    pub drift: Vec<DriftView>,
    /// Files that could not be used, or why the directory could not be read.
    pub problems: Vec<String>,
    /// Why the history shown is not live (the database is down or slow),
    /// and when it was read (RFC 3339; `null` when live or never read).
    pub stale: Option<String>,
    pub history_read_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Pending {
    pub version: String,
    pub description: String,
    pub checksum: String,
    pub file: String,
    pub sql: String,
    pub has_down: bool,
    pub findings: Vec<Finding>,
    /// PostgreSQL refuses one of its statements inside a transaction
    /// (CONCURRENTLY): apply runs the file statement by statement.
    pub outside_transaction: bool,
}

#[derive(Debug, Serialize)]
pub struct DriftView {
    #[serde(flatten)]
    pub drift: Drift,
    pub message: String,
}

/// Histories whose versions are the files' versions (Liquibase change-set
/// ids and Alembic revisions are not, and are shown but not compared).
const COMPARABLE: &[&str] = &["custodian", "flyway", "sqlx", "rails"];

/// The status for pages and the API: never waits on a database that is
/// down or slow (the history as last read, saying so), and reads a live one
/// within the pages' time limit.
pub async fn status(member: &Member) -> AppResult<Status> {
    match member.read(|db| async move { history::read(&*db).await }).await {
        Ok(applied) => {
            member.remember_history(&applied);
            compare(member, applied, None).await
        }
        Err(why) => match member.known_history() {
            Some((at, applied)) => compare(member, applied, Some((why, Some(at)))).await,
            None => compare(member, Vec::new(), Some((why, None))).await,
        },
    }
}

/// The status from a fresh read of the history, however long it takes
/// within the catalog limits: for deciding (requests, applies, the CLI).
pub async fn status_now(member: &Member) -> AppResult<Status> {
    let db = member.db().map_err(AppError::invalid)?;
    let applied = history::read(&*db)
        .await
        .map_err(|e| AppError::invalid(format!("cannot read the migration history: {e}")))?;
    member.remember_history(&applied);
    compare(member, applied, None).await
}

/// Read the files and compare them with `applied`; lint what is pending
/// against the server's real version. `stale`: why `applied` is not live,
/// and when it was read.
async fn compare(
    member: &Member,
    applied: Vec<Applied>,
    stale: Option<(String, Option<i64>)>,
) -> AppResult<Status> {
    let migrations_dir = member.entry.migrations_dir.clone();
    let (stale, history_read_at) = match stale {
        Some((why, Some(at))) => (
            Some(format!(
                "{why}. The history shown was read {} ago.",
                crate::format::fmt_age(crate::store::now() - at)
            )),
            Some(crate::format::rfc3339(at)),
        ),
        Some((why, None)) => (Some(format!("{why}. Its history has not been read yet.")), None),
        None => (None, None),
    };
    let mut status = Status {
        migrations_dir: migrations_dir.clone(),
        applied,
        pending: vec![],
        drift: vec![],
        problems: vec![],
        stale,
        history_read_at,
    };
    if status.stale.is_some() && status.history_read_at.is_none() {
        // Nothing known to compare the files with: listing every file as
        // pending would be wrong.
        return Ok(status);
    }
    let Some(dir) = migrations_dir else {
        status
            .problems
            .push("no migrations directory is set for this database".into());
        return Ok(status);
    };
    let source = match source::scan(Path::new(&dir)) {
        Ok(s) => s,
        Err(e) => {
            status.problems.push(e.to_string());
            return Ok(status);
        }
    };
    let comparable: Vec<Applied> = status
        .applied
        .iter()
        .filter(|a| COMPARABLE.contains(&a.tool))
        .cloned()
        .collect();
    let plan = plan::compare(&source, &comparable);
    // The version the poller read, or (not checked yet) a live one within
    // the pages' limit; lint assumes the newest without one.
    let version = match member.status().server {
        Some(server) => Some(server.version),
        None => member
            .read(|db| async move { db.status().await })
            .await
            .ok()
            .map(|s| s.version),
    };
    status.pending = plan
        .pending
        .iter()
        .map(|m| Pending {
            version: m.version.to_string(),
            description: m.description.clone(),
            checksum: m.up.checksum.clone(),
            file: m
                .up
                .path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            findings: lint_applied(member.entry.engine, &m.up.sql, version.as_deref()),
            outside_transaction: member.entry.engine == crate::engine::EngineKind::Postgres
                && crate::sqltext::postgres::needs_no_transaction(&m.up.sql),
            sql: m.up.sql.clone(),
            has_down: m.down.is_some(),
        })
        .collect();
    status.drift = plan
        .drift
        .into_iter()
        .map(|d| DriftView {
            message: d.message(),
            drift: d,
        })
        .collect();
    status.problems = source.problems;
    Ok(status)
}

/// Held while a submission checks the directory and creates its file.
static SUBMITTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What a submitted file became.
#[derive(Debug, Serialize)]
pub struct Submitted {
    pub file: String,
    pub checksum: String,
    /// false when the same file was already there (a CI retry).
    pub created: bool,
    pub findings: Vec<Finding>,
}

/// CI submits a migration file (operator): written into the database's
/// migrations directory under a valid migration name, never over a
/// different file; linted at the server's version. Audited.
pub async fn submit(
    store: &crate::store::Store,
    member: &Member,
    actor: &crate::service::Actor,
    name: &str,
    sql: &str,
) -> AppResult<Submitted> {
    let database = member.entry.name.to_string();
    let event = crate::service::audit::Event {
        action: crate::domain::AuditAction::MigrationSubmit,
        target: name,
        database: Some(&database),
        detail: "",
    };
    crate::service::audit::audited(store, actor, event, async {
        crate::service::users::require(actor, crate::domain::Role::Operator)?;
        if !source::is_migration_name(name) {
            return Err(AppError::invalid(format!(
                "{name:?} is not a migration file name (V<version>__<description>.sql, U<version>__<description>.sql, <version>_<description>.up.sql or .down.sql)"
            )));
        }
        if sql.trim().is_empty() {
            return Err(AppError::invalid("the migration is empty"));
        }
        let dir = member
            .entry
            .migrations_dir
            .clone()
            .ok_or_else(|| AppError::invalid(format!("{database} has no migrations directory set")))?;
        let path = Path::new(&dir).join(name);
        let already = || -> AppResult<Submitted> {
            match std::fs::read_to_string(&path) {
                Ok(existing) if existing == sql => {
                    Ok(Submitted { file: name.into(), checksum: checksum(sql), created: false, findings: vec![] })
                }
                Ok(_) => Err(AppError::conflict(format!(
                    "{name} already exists with other contents: submit a new version instead of editing one"
                ))),
                Err(e) => Err(AppError::invalid(format!("cannot read {}: {e}", path.display()))),
            }
        };
        if path.exists() {
            return already();
        }
        {
            // One submission at a time checks versions and creates: two
            // names for one new version would both pass the check otherwise.
            // (Within this process; across processes the link below still
            // keeps one name from being created twice.)
            let _one_at_a_time = SUBMITTING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let current = source::scan(Path::new(&dir))?;
            if let Some((version, _, _)) = source::parse_file_name(name)
                && current.migrations.iter().any(|m| m.version == version && (name.starts_with('V') || name.ends_with(".up.sql")))
            {
                return Err(AppError::conflict(format!("version {version} already has a migration file")));
            }
            match source::create_file(Path::new(&dir), name, sql) {
                Ok(()) => {}
                // Another writer won the race for this name.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return already(),
                Err(e) => return Err(AppError::invalid(format!("cannot write {}: {e}", path.display()))),
            }
        }
        let version = member.status().server.map(|s| s.version);
        Ok(Submitted {
            file: name.into(),
            checksum: checksum(sql),
            created: true,
            findings: lint_applied(member.entry.engine, sql, version.as_deref()),
        })
    })
    .await
}
