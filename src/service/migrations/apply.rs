//! Applying migration requests: the job that runs a request's files one at a
//! time against their approved checksums, and the rule of `migrate apply`
//! (which request runs next) so the CLI and the API share it.

use std::sync::Arc;

use crate::engine::EngineError;

use super::requests::{self, Bound, RequestAction, RequestState, Settings, ready, settings};
use super::{source, status_now};
use crate::domain::Role;
use crate::engine::history::{MigrationRun, RunOutcome};
use crate::error::{AppError, AppResult};
use crate::service::Actor;
use crate::service::audit::{Event, audited};
use crate::service::fleet::Member;
use crate::service::jobs::{JobCtx, JobFailure, JobFuture, JobSpec, Jobs, Work};
use crate::service::users::require;
use crate::store::Store;
use crate::store::migrations as rows;

/// A request whose job has started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Started {
    pub request: i64,
    pub job: i64,
}

/// Apply what is ready for `member` (operator): the oldest open request with
/// all its approvals; failing that, on a database that needs no approvals,
/// a new request for every pending migration. `None` when there is no such
/// request and nothing is pending. Nothing unapproved ever runs: a database
/// that needs approvals and has no approved request is a conflict. The role
/// is checked, and audited, by [`requests::request`] and [`apply`].
pub async fn apply_next(
    jobs: &Jobs,
    store: &Store,
    member: &Arc<Member>,
    actor: &Actor,
    check: &GateCheck,
) -> AppResult<Option<Started>> {
    let name = &member.entry.name;
    // Newest first: the oldest ready one is the last.
    let open = requests::list(store, name.as_str()).await?;
    let ready = open
        .iter()
        .rev()
        .find(|r| r.state.is_open() && r.approvals >= r.approvals_required);
    let id = match ready {
        Some(r) => r.id,
        None => {
            let needed = settings(store, name.as_str()).await?.approvals_required;
            if needed > 0 {
                return Err(AppError::conflict(format!(
                    "{name} has no approved request to apply: request one (panel or POST .../migrations/requests) and have an approver approve it"
                )));
            }
            let status = status_now(member).await?;
            if status.pending.is_empty() {
                return Ok(None);
            }
            let versions: Vec<String> = status.pending.iter().map(|p| p.version.clone()).collect();
            requests::request(store, member, actor, &versions).await?
        }
    };
    let job = apply(jobs, store, member, actor, id, check).await?;
    Ok(Some(Started { request: id, job }))
}

/// How long to wait before attempt `n + 1`: 1, 2, 4, 8… seconds (at most
/// 30), plus up to half again at random, so two panels or two jobs do not
/// retry in step.
fn backoff(n: u32) -> std::time::Duration {
    let base = 1000u64 << n.saturating_sub(1).min(5);
    let base = base.min(30_000);
    let jitter = (uuid::Uuid::new_v4().as_u128() % (base as u128 / 2 + 1)) as u64;
    std::time::Duration::from_millis(base + jitter)
}

/// What the live gate needs at apply time: its transaction-age limit, and
/// the operator's reason when they override a blocked verdict.
#[derive(Clone, Debug, Default)]
pub struct GateCheck {
    pub max_xact_age: std::time::Duration,
    pub override_reason: Option<String>,
    /// Times a migration that timed out waiting for a lock is tried again.
    pub lock_retries: u32,
}

/// Apply an approved request as a job (operator): one migration at a time,
/// each checked against its approved checksum just before it runs; the
/// first failure stops the job and is recorded on the request.
pub async fn apply(
    jobs: &Jobs,
    store: &Store,
    member: &Arc<Member>,
    actor: &Actor,
    id: i64,
    check: &GateCheck,
) -> AppResult<i64> {
    let database = member.entry.name.to_string();
    let target = format!("request {id}");
    let override_reason = check
        .override_reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let detail = override_reason
        .map(|r| {
            format!(
                "live gate overridden: {}",
                r.chars().take(500).collect::<String>()
            )
        })
        .unwrap_or_default();
    let event = Event {
        action: crate::domain::AuditAction::MigrationApply,
        target: &target,
        database: Some(&database),
        detail: &detail,
    };
    audited(store, actor, event, async {
        require(actor, Role::Operator)?;
        let request = ready(store, member, id).await?;
        // The live gate: a blocked verdict (a session must be ended first,
        // or the database cannot be read) stops the apply unless the
        // operator overrides it with a reason, kept in the audit log.
        let gate = super::gate::of_bound(member, &request, check.max_xact_age).await?;
        if gate.verdict == super::gate::Verdict::Blocked && override_reason.is_none() {
            return Err(AppError::conflict(format!(
                "the live gate says blocked: {}. Apply with an override reason to go anyway.",
                gate.reasons.join("; ")
            )));
        }
        if !rows::transition(store.pool(), id, RequestState::Open, RequestState::Running, None).await? {
            return Err(AppError::conflict(format!(
                "request {id} is already being applied"
            )));
        }
        let spec = JobSpec {
            kind: crate::domain::JobKind::Migrate,
            database: Some(database.clone()),
            target: format!(
                "apply {}",
                request
                    .files
                    .iter()
                    .map(|f| f.version.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            tables: Vec::new(),
        };
        let limits = settings(store, &database).await?;
        let (store2, member2, by) = (store.clone(), member.clone(), actor.name.clone());
        let check2 = check.clone();
        let work: Work = Box::new(move |ctx: JobCtx| -> JobFuture {
            Box::pin(async move {
                let result = run_files(
                    &ctx,
                    &member2,
                    &request.files,
                    &by,
                    request.action == RequestAction::Rollback,
                    limits,
                    &check2,
                )
                .await;
                let (state, error) = match &result {
                    Ok(_) => (RequestState::Done, None),
                    Err(JobFailure::Failed(e)) => (RequestState::Failed, Some(e.as_str())),
                    Err(JobFailure::Cancelled) => (RequestState::Failed, Some("cancelled")),
                };
                if let Err(e) = rows::transition(store2.pool(), id, RequestState::Running, state, error).await
                {
                    tracing::error!(error = %e, request = id, "cannot record the request's end");
                }
                result
            })
        });
        match jobs.submit(actor, spec, work).await {
            Ok(job) => {
                rows::set_job(store.pool(), id, job).await?;
                Ok(job)
            }
            Err(e) => {
                rows::transition(store.pool(), id, RequestState::Running, RequestState::Open, None).await?;
                Err(e)
            }
        }
    })
    .await
}

async fn run_files(
    ctx: &JobCtx,
    member: &Member,
    files: &[Bound],
    by: &str,
    rollback: bool,
    limits: Settings,
    check: &GateCheck,
) -> Result<String, JobFailure> {
    let db = member.db().map_err(JobFailure::Failed)?;
    let dir = member.entry.migrations_dir.clone().unwrap_or_default();
    let source = source::scan(std::path::Path::new(&dir)).map_err(|e| JobFailure::Failed(e.to_string()))?;
    let mut applied = 0;
    for (i, bound) in files.iter().enumerate() {
        if ctx.is_cancelled() {
            return Err(JobFailure::Cancelled);
        }
        ctx.progress(
            Some(i as f64 / files.len() as f64),
            &format!("version {}", bound.version),
        );
        let script = |m: &'_ source::Migration| {
            if rollback {
                m.down.clone()
            } else {
                Some(m.up.clone())
            }
        };
        let (m, file) = source
            .migrations
            .iter()
            .filter(|m| m.version.as_str() == bound.version)
            .find_map(|m| script(m).filter(|f| f.checksum == bound.checksum).map(|f| (m, f)))
            .ok_or_else(|| {
                JobFailure::Failed(format!(
                    "version {} changed or vanished after approval: stopped",
                    bound.version
                ))
            })?;
        let run = MigrationRun {
            version: bound.version.clone(),
            description: m.description.clone(),
            checksum: file.checksum.clone(),
            sql: file.sql.clone(),
            applied_by: by.to_string(),
            applied_at: crate::format::fmt_time(crate::store::now()),
            lock_timeout_ms: limits.lock_timeout_ms as u64,
            statement_timeout_ms: limits.statement_timeout_ms as u64,
            rollback,
        };
        // A lock timeout rolled the migration back whole: wait, with
        // backoff and jitter, and try again, a few times, saying each
        // time who holds the lock; then stop, naming them.
        let mut attempt: u32 = 0;
        let outcome = loop {
            attempt += 1;
            match db.apply_migration(&run).await {
                Err(EngineError::LockTimeout(why)) => {
                    let who =
                        super::gate::in_the_way(member, &run.version, &run.sql, check.max_xact_age).await;
                    let who = who
                        .map(|w| format!("; it kept losing to {w}"))
                        .unwrap_or_default();
                    if attempt > check.lock_retries {
                        break Err(EngineError::LockTimeout(format!(
                            "gave up after {attempt} attempt(s) waiting for a lock ({why}){who}"
                        )));
                    }
                    let wait = backoff(attempt);
                    ctx.log(&format!(
                        "version {}: attempt {attempt} of {} timed out waiting for a lock ({why}){who}; rolled back, trying again in {:.1} s",
                        bound.version,
                        check.lock_retries + 1,
                        wait.as_secs_f64()
                    ))
                    .await;
                    ctx.progress(
                        None,
                        &format!(
                            "version {}: waiting for a lock, attempt {} of {} in {:.0} s",
                            bound.version,
                            attempt + 1,
                            check.lock_retries + 1,
                            wait.as_secs_f64()
                        ),
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = ctx.cancelled() => return Err(JobFailure::Cancelled),
                    }
                }
                other => break other,
            }
        };
        match outcome {
            Ok(RunOutcome::Done {
                execution_ms,
                transactional,
            }) => {
                applied += 1;
                let verb = if rollback { "rolled back" } else { "applied" };
                let how = if transactional {
                    "in a transaction"
                } else {
                    "statement by statement, outside a transaction"
                };
                ctx.log(&format!(
                    "{verb} {} ({}) in {execution_ms} ms, {how}",
                    bound.version, m.description
                ))
                .await;
            }
            Ok(RunOutcome::AlreadyApplied) => {
                let state = if rollback {
                    "not applied"
                } else {
                    "already applied"
                };
                ctx.log(&format!("{} was {state}: skipped", bound.version)).await;
            }
            Err(e) => {
                let why = format!("version {} failed and was rolled back: {e}", bound.version);
                ctx.log(&why).await;
                return Err(JobFailure::Failed(why));
            }
        }
    }
    let verb = if rollback { "rolled back" } else { "applied" };
    Ok(format!("{verb} {applied} of {} migration(s)", files.len()))
}
