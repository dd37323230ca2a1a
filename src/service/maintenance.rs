//! Maintenance: health views read live from the database, and actions
//! (VACUUM, ANALYZE, REINDEX, VACUUM FULL, OPTIMIZE, …) started as jobs on
//! tables found in the catalog by their identity.

use std::sync::Arc;

use crate::domain::{JobKind, JobState, Role};
use crate::engine::{Action, Control, DatabaseHealth, IndexHealth, Relation, TableList, TableQuery, Target};
use crate::error::{AppError, AppResult};
use crate::service::Actor;
use crate::service::fleet::{Fleet, Member};
use crate::service::jobs::{JobFailure, JobSpec, Jobs, WHOLE_DATABASE};
use crate::service::users::require;
use crate::store::jobs::JobRow;

/// What to maintain, as a request names it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// `oid:N` (PostgreSQL, from the page) or `schema.table` (the API).
    pub tables: Vec<String>,
    /// REINDEX of one index: `oid:N` or `schema.index`.
    pub index: Option<String>,
    pub whole_database: bool,
    /// VACUUM FULL: the table's name (or, for several tables or the whole
    /// database, the database's name), typed by the user.
    pub confirm: Option<String>,
}

/// The actions `member`'s engine offers, in the order the form lists them.
pub fn actions(member: &Member) -> Vec<Action> {
    Action::ALL
        .into_iter()
        .filter(|a| a.supported_by(member.entry.engine))
        .collect()
}

/// Which health figures a page asks for.
#[derive(Clone, Debug)]
pub enum FiguresOf {
    /// One page of tables, sorted and filtered on the server.
    Tables(TableQuery),
    /// Up to `limit` indexes.
    Indexes { limit: i64 },
    /// The database-wide figures.
    Database,
}

/// Health figures read live for the maintenance page.
#[derive(Clone, Debug)]
pub enum Figures {
    Tables(TableList),
    Indexes(Vec<IndexHealth>),
    Database(DatabaseHealth),
}

/// Read the figures the page shows: refused at once (saying why) while the
/// database is known down or slow, and time-boxed otherwise (see
/// `Member::read`).
pub async fn figures(member: &Member, of: FiguresOf) -> Result<Figures, String> {
    member
        .read(|db| async move {
            match of {
                FiguresOf::Tables(query) => db.tables(&query).await.map(Figures::Tables),
                FiguresOf::Indexes { limit } => db.indexes(limit).await.map(Figures::Indexes),
                FiguresOf::Database => db.database_health().await.map(Figures::Database),
            }
        })
        .await
}

/// Check the request against the catalog and start the job.
pub async fn start(
    jobs: &Jobs,
    member: &Arc<Member>,
    actor: &Actor,
    action: Action,
    req: Request,
) -> AppResult<i64> {
    require(actor, Role::Operator)?;
    let engine = member.entry.engine;
    if !action.supported_by(engine) {
        return Err(AppError::invalid(format!(
            "{} has no {}",
            engine.label(),
            action.label()
        )));
    }
    member.reachable()?;
    let db = member.db().map_err(AppError::invalid)?;
    let whole = req.whole_database || action.whole_database_only(engine);
    let target = match (&req.index, whole, req.tables.is_empty()) {
        (Some(index), _, _) => {
            if action != Action::Reindex {
                return Err(AppError::invalid("only REINDEX works on a single index"));
            }
            Target::Index(
                db.resolve_index(index)
                    .await
                    .map_err(|e| AppError::invalid(e.to_string()))?,
            )
        }
        (None, true, _) => Target::Database,
        (None, false, true) => {
            return Err(AppError::invalid(
                "choose at least one table, or the whole database",
            ));
        }
        (None, false, false) => {
            if req.tables.len() > 1000 {
                return Err(AppError::invalid(
                    "at most 1000 tables at once; use the whole database",
                ));
            }
            Target::Tables(
                db.resolve_tables(&req.tables)
                    .await
                    .map_err(|e| AppError::invalid(e.to_string()))?,
            )
        }
    };
    if action.locks_table() {
        let expected = match &target {
            Target::Tables(t) if t.len() == 1 => t[0].name.clone(),
            _ => member.entry.name.to_string(),
        };
        let typed = req.confirm.as_deref().unwrap_or("").trim();
        let ok = typed == expected
            || matches!(&target, Target::Tables(t) if t.len() == 1 && typed == t[0].display());
        if !ok {
            return Err(AppError::invalid(format!(
                "{} locks the table against reads and writes until it finishes: type {expected:?} to confirm",
                action.label()
            )));
        }
    }
    let (described, locks) = match &target {
        Target::Tables(t) => (
            t.iter().map(Relation::display).collect::<Vec<_>>().join(", "),
            t.iter().map(Relation::display).collect(),
        ),
        Target::Index(i) => (
            format!("index {}", i.display()),
            vec![format!("index:{}", i.display())],
        ),
        Target::Database => ("the whole database".to_string(), vec![WHOLE_DATABASE.to_string()]),
    };
    let spec = JobSpec {
        kind: job_kind(action),
        database: Some(member.entry.name.to_string()),
        target: described,
        tables: locks,
    };
    let member = member.clone();
    let work = Box::new(
        move |ctx: crate::service::jobs::JobCtx| -> crate::service::jobs::JobFuture {
            Box::pin(async move {
                let reporter = ctx.clone();
                // The engine's words go to the log in the order it said
                // them, written by one task so a slow store never holds up
                // the statement.
                let (lines, mut heard) = tokio::sync::mpsc::unbounded_channel::<String>();
                let writer = {
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        // What has queued up goes in one write.
                        let mut batch = Vec::new();
                        while heard.recv_many(&mut batch, 200).await > 0 {
                            ctx.log_lines(&batch).await;
                            batch.clear();
                        }
                    })
                };
                let control = Control {
                    progress: Arc::new(move |fraction, phase: &str| reporter.progress(fraction, phase)),
                    log: Arc::new(move |line| {
                        let _ = lines.send(line);
                    }),
                    cancel: ctx.cancel_signal(),
                };
                let db = member.db().map_err(JobFailure::Failed)?;
                ctx.log(&format!("{} on {}", action.label(), member.entry.name))
                    .await;
                let outcome = db.maintain(action, &target, &control).await;
                if outcome.is_ok() && !member.capabilities().file {
                    // Sizes changed (VACUUM FULL, REINDEX): the next
                    // reading of the database's figures now, not at the
                    // next poll. One check, single-flight per database.
                    let member = member.clone();
                    tokio::spawn(async move {
                        member.check().await;
                    });
                }
                let cancelled = control.is_cancelled();
                drop(control);
                let _ = writer.await;
                match outcome {
                    Ok(summary) => Ok(summary),
                    Err(_) if cancelled => Err(JobFailure::Cancelled),
                    Err(e) => Err(JobFailure::Failed(e.to_string())),
                }
            })
        },
    );
    jobs.submit(actor, spec, work).await
}

/// The job kind of a maintenance action (the same name).
pub fn job_kind(action: Action) -> JobKind {
    match action {
        Action::Vacuum => JobKind::Vacuum,
        Action::VacuumAnalyze => JobKind::VacuumAnalyze,
        Action::Analyze => JobKind::Analyze,
        Action::VacuumFull => JobKind::VacuumFull,
        Action::Reindex => JobKind::Reindex,
        Action::Optimize => JobKind::Optimize,
        Action::Check => JobKind::Check,
        Action::IntegrityCheck => JobKind::IntegrityCheck,
    }
}

/// The maintenance action a job runs, if it is a maintenance job.
pub fn action_of(kind: JobKind) -> Option<Action> {
    Some(match kind {
        JobKind::Vacuum => Action::Vacuum,
        JobKind::VacuumAnalyze => Action::VacuumAnalyze,
        JobKind::Analyze => Action::Analyze,
        JobKind::VacuumFull => Action::VacuumFull,
        JobKind::Reindex => Action::Reindex,
        JobKind::Optimize => Action::Optimize,
        JobKind::Check => Action::Check,
        JobKind::IntegrityCheck => Action::IntegrityCheck,
        _ => return None,
    })
}

/// A job's action in words: "VACUUM ANALYZE", and PostgreSQL's REINDEX as
/// it runs (CONCURRENTLY, on an index or table by table).
pub fn what(fleet: &Fleet, job: &JobRow) -> String {
    let engine = job
        .database_name
        .as_deref()
        .and_then(|d| crate::domain::DatabaseName::parse(d).ok())
        .and_then(|d| fleet.get(&d))
        .map(|m| m.entry.engine);
    match (job.kind, engine) {
        (JobKind::Reindex, Some(crate::engine::EngineKind::Postgres)) if job.target.starts_with("index ") => {
            "REINDEX INDEX CONCURRENTLY".into()
        }
        (JobKind::Reindex, Some(crate::engine::EngineKind::Postgres)) => "REINDEX TABLE CONCURRENTLY".into(),
        (kind, _) => kind.label().into(),
    }
}

/// What an interrupted job's server may have done without the panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MayHaveFinished {
    /// The statement, as people know it: "VACUUM".
    pub work: &'static str,
    /// What shows whether it ran: "the table's last vacuum time".
    pub check: &'static str,
}

/// A maintenance job the panel died under may have been done anyway: its
/// statement runs on the database server, which carries on (and commits)
/// without the client that sent it — a VACUUM waiting for a lock finishes
/// once the lock is free. For such a job, what to look at before running it
/// again; `None` when the job is not interrupted, not maintenance, a
/// read-only check (just run it again), or on SQLite (in the panel's own
/// process, so rolled back with it).
pub fn server_may_have_finished(fleet: &Fleet, job: &JobRow) -> Option<MayHaveFinished> {
    if job.state != JobState::Interrupted {
        return None;
    }
    let name = crate::domain::DatabaseName::parse(job.database_name.as_deref()?).ok()?;
    if fleet.get(&name)?.capabilities().file {
        return None;
    }
    let action = action_of(job.kind)?;
    let check = match action {
        Action::Vacuum | Action::VacuumFull => "the table's last vacuum time",
        Action::VacuumAnalyze => "the table's last vacuum and last analyze times",
        Action::Analyze => "the table's last analyze time",
        Action::Reindex => "the index's size and whether it is valid",
        Action::Optimize => "the table's size and free space",
        Action::Check | Action::IntegrityCheck => return None,
    };
    Some(MayHaveFinished {
        work: action.label(),
        check,
    })
}

/// The interrupted job's error as the API gives it, saying so when the
/// server may have finished the work.
pub fn interrupted_error(fleet: &Fleet, job: &JobRow) -> Option<String> {
    match server_may_have_finished(fleet, job) {
        Some(may) => Some(format!(
            "{}; the server may have completed it: check {} before running it again",
            job.error
                .as_deref()
                .unwrap_or("the panel stopped while this job was running"),
            may.check
        )),
        None => job.error.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maintenance_job_kind_is_its_action_by_name_and_back() {
        for action in Action::ALL {
            let kind = job_kind(action);
            assert_eq!(kind.as_str(), action.as_str());
            assert_eq!(action_of(kind), Some(action));
        }
        let maintenance = JobKind::ALL
            .into_iter()
            .filter(|k| action_of(*k).is_some())
            .count();
        assert_eq!(maintenance, Action::ALL.len());
    }
}
