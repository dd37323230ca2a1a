//! Maintenance: health views read live from the database, and actions
//! (VACUUM, ANALYZE, REINDEX, VACUUM FULL, OPTIMIZE, …) started as jobs on
//! tables found in the catalog by their identity.

use std::sync::Arc;

use crate::domain::Role;
use crate::engine::{Action, Control, Relation, Target};
use crate::error::{AppError, AppResult};
use crate::service::Actor;
use crate::service::fleet::{Health, Member};
use crate::service::jobs::{JobFailure, JobSpec, Jobs, WHOLE_DATABASE};
use crate::service::users::require;

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
    let status = member.status();
    if status.health == Health::Down {
        return Err(AppError::invalid(format!(
            "{} is unreachable: {}",
            member.entry.name,
            status.error.unwrap_or_default()
        )));
    }
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
        kind: action.as_str().to_string(),
        database: Some(member.entry.name.to_string()),
        target: described,
        tables: locks,
    };
    let member = member.clone();
    let work = Box::new(
        move |ctx: crate::service::jobs::JobCtx| -> crate::service::jobs::JobFuture {
            Box::pin(async move {
                let reporter = ctx.clone();
                let control = Control {
                    progress: Arc::new(move |fraction, phase: &str| reporter.progress(fraction, phase)),
                    cancel: ctx.cancel_signal(),
                };
                let db = member.db().map_err(JobFailure::Failed)?;
                ctx.log(&format!("{} on {}", action.label(), member.entry.name))
                    .await;
                match db.maintain(action, &target, &control).await {
                    Ok(summary) => Ok(summary),
                    Err(_) if control.is_cancelled() => Err(JobFailure::Cancelled),
                    Err(e) => Err(JobFailure::Failed(e.to_string())),
                }
            })
        },
    );
    jobs.submit(actor, spec, work).await
}
