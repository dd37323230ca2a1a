//! The job system: long work (maintenance, backups, verifications,
//! restores, pruning, migration runs) persisted in the store and run in the
//! background with bounded concurrency per database and at most one heavy
//! job per table. Kinds and states are [`JobKind`] and [`JobState`].
//!
//! A job beats a heartbeat while queued or running; the sweeper marks jobs
//! whose heartbeat stopped (the panel died under them) interrupted, never
//! succeeded. Cancel sets a flag in the store (so any instance sharing the
//! store can ask) and wakes the local runner at once.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, watch};

use crate::domain::{AuditAction, JobKind, JobState, Role};
use crate::error::{AppError, AppResult};
use crate::service::Actor;
use crate::service::audit::{Event, Outcome, record};
use crate::service::users::require;
use crate::store::jobs::{self as rows, JobRow};
use crate::store::{Store, now};

/// How often a job's runner writes its heartbeat and progress.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A queued or running job without a heartbeat for this long is interrupted.
pub const STALE_AFTER_SECS: i64 = 10;

/// In `JobSpec::tables`: every table of the database.
pub const WHOLE_DATABASE: &str = "*";

/// What a job is, before it runs.
#[derive(Clone, Debug)]
pub struct JobSpec {
    pub kind: JobKind,
    pub database: Option<String>,
    /// What it works on, for people: "public.orders, public.items".
    pub target: String,
    /// Tables it works on heavily: no two jobs hold the same one at once.
    /// A name starting with [`GLOBAL_CLAIM`] is held across databases
    /// (a pgBackRest stanza that several registered databases share).
    pub tables: Vec<String>,
}

/// The prefix of a claim that is not scoped to the job's database.
pub const GLOBAL_CLAIM: &str = "global:";

/// What a claim is keyed by: (database, name), or ("", name) for a global one.
fn claim_key(database: &str, table: &str) -> (String, String) {
    if table.starts_with(GLOBAL_CLAIM) {
        (String::new(), table.to_string())
    } else {
        (database.to_string(), table.to_string())
    }
}

/// How a job's work can end badly.
#[derive(Debug)]
pub enum JobFailure {
    Cancelled,
    Failed(String),
}

pub type JobFuture = Pin<Box<dyn Future<Output = Result<String, JobFailure>> + Send>>;
pub type Work = Box<dyn FnOnce(JobCtx) -> JobFuture + Send>;

/// What the work sees of its job: report progress, write the log, watch for
/// cancellation.
#[derive(Clone)]
pub struct JobCtx {
    pub id: i64,
    store: Store,
    progress: Arc<StdMutex<(Option<f64>, String)>>,
    cancel: watch::Receiver<bool>,
}

impl JobCtx {
    /// Progress 0..1 (or unknown) and the current phase, written with the
    /// next heartbeat.
    pub fn progress(&self, progress: Option<f64>, phase: &str) {
        if let Ok(mut p) = self.progress.lock() {
            *p = (progress.map(|v| v.clamp(0.0, 1.0)), phase.to_string());
        }
    }

    /// Append a line to the job's log (timestamped).
    pub async fn log(&self, line: &str) {
        self.log_lines(&[line]).await
    }

    /// Append lines to the job's log in one write, each timestamped. A
    /// line break inside a line (a table's name may hold one) is indented
    /// under it, so nothing can pass for a line of its own.
    pub async fn log_lines<S: AsRef<str>>(&self, lines: &[S]) {
        let stamp = crate::format::fmt_time(now());
        let text: String = lines
            .iter()
            .map(|l| format!("{stamp}  {}\n", l.as_ref().replace(['\r', '\n'], "\n      ")))
            .collect();
        if let Err(e) = rows::append_log(self.store.pool(), self.id, &text).await {
            tracing::warn!(job = self.id, error = %e, "cannot write the job log");
        }
    }

    pub fn is_cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// The cancel signal, for work that hands it on (to an engine).
    pub fn cancel_signal(&self) -> watch::Receiver<bool> {
        self.cancel.clone()
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

#[derive(Clone)]
pub struct Jobs(Arc<Inner>);

struct Inner {
    store: Store,
    per_database: usize,
    slots: StdMutex<HashMap<String, Arc<Semaphore>>>,
    busy_tables: StdMutex<HashSet<(String, String)>>,
    table_free: Notify,
    local: StdMutex<HashMap<i64, watch::Sender<bool>>>,
}

impl Jobs {
    pub fn new(store: Store, per_database: usize) -> Jobs {
        Jobs(Arc::new(Inner {
            store,
            per_database: per_database.max(1),
            slots: StdMutex::default(),
            busy_tables: StdMutex::default(),
            table_free: Notify::new(),
            local: StdMutex::default(),
        }))
    }

    /// Mark jobs whose runner died interrupted now and every few seconds.
    pub fn spawn_sweeper(&self) {
        let store = self.0.store.clone();
        tokio::spawn(async move {
            loop {
                match rows::interrupt_stale(store.pool(), now() - STALE_AFTER_SECS).await {
                    Ok(ids) if !ids.is_empty() => {
                        tracing::warn!(jobs = ?ids, "marked jobs interrupted: their runner stopped")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot sweep stale jobs"),
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
    }

    pub async fn get(&self, id: i64) -> AppResult<JobRow> {
        rows::get(self.0.store.pool(), id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("There is no job {id}.")))
    }

    pub async fn list(
        &self,
        database: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> AppResult<Vec<JobRow>> {
        Ok(rows::list(self.0.store.pool(), database, before, limit).await?)
    }

    fn slot(&self, database: &str) -> Arc<Semaphore> {
        let mut slots = self.0.slots.lock().expect("job slots lock");
        slots
            .entry(database.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.0.per_database)))
            .clone()
    }

    /// Claim every table of `spec` at once, or none.
    fn try_claim(&self, spec: &JobSpec) -> bool {
        let db = spec.database.as_deref().unwrap_or_default();
        let mut busy = self.0.busy_tables.lock().expect("busy tables lock");
        if spec.tables.iter().any(|t| busy.contains(&claim_key(db, t))) {
            return false;
        }
        for t in &spec.tables {
            busy.insert(claim_key(db, t));
        }
        true
    }

    fn release(&self, spec: &JobSpec) {
        let db = spec.database.as_deref().unwrap_or_default();
        if let Ok(mut busy) = self.0.busy_tables.lock() {
            for t in &spec.tables {
                busy.remove(&claim_key(db, t));
            }
        }
        self.0.table_free.notify_waiters();
    }

    /// Queue a job and start it as soon as its database has a free slot and
    /// its tables are free. Audited as `job.start`; the outcome as `job.end`.
    pub async fn submit(&self, actor: &Actor, spec: JobSpec, work: Work) -> AppResult<i64> {
        let store = &self.0.store;
        let id = rows::insert(
            store.pool(),
            spec.kind,
            spec.database.as_deref(),
            &spec.target,
            &actor.name,
        )
        .await?;
        let target = format!("job:{id}");
        let detail = format!("{} {}", spec.kind, spec.target);
        let event = Event {
            action: AuditAction::JobStart,
            target: &target,
            database: spec.database.as_deref(),
            detail: &detail,
        };
        record(store, actor, event, Outcome::Success).await?;

        let (tx, rx) = watch::channel(false);
        self.0.local.lock().expect("local jobs lock").insert(id, tx);
        let ctx = JobCtx {
            id,
            store: store.clone(),
            progress: Arc::new(StdMutex::new((None, JobState::Queued.as_str().into()))),
            cancel: rx,
        };
        let jobs = self.clone();
        let actor = actor.clone();
        tokio::spawn(async move {
            let span = tracing::info_span!("job", id, kind = %spec.kind);
            let _ = tracing::Instrument::instrument(jobs.run(actor, spec, ctx, work), span).await;
        });
        Ok(id)
    }

    async fn run(self, actor: Actor, spec: JobSpec, ctx: JobCtx, work: Work) {
        let id = ctx.id;
        let store = self.0.store.clone();
        // The heartbeat: progress out, cancel requests (from any instance) in.
        let beat = {
            let ctx = ctx.clone();
            let jobs = self.clone();
            tokio::spawn(async move {
                loop {
                    let (progress, phase) = ctx.progress.lock().map(|p| p.clone()).unwrap_or_default();
                    match rows::beat(ctx.store.pool(), id, progress, &phase).await {
                        Ok(true) => jobs.signal_local(id),
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot write the job heartbeat"),
                    }
                    tokio::time::sleep(HEARTBEAT).await;
                }
            })
        };

        let outcome = self.run_inner(&spec, &ctx, work).await;
        beat.abort();
        let (progress, _) = ctx.progress.lock().map(|p| p.clone()).unwrap_or_default();
        let (state, error, audit_outcome) = match &outcome {
            Ok(_) => (JobState::Succeeded, None, Outcome::Success),
            Err(JobFailure::Cancelled) => (
                JobState::Cancelled,
                Some("cancelled".to_string()),
                Outcome::Failure,
            ),
            Err(JobFailure::Failed(e)) => (JobState::Failed, Some(e.clone()), Outcome::Failure),
        };
        match &outcome {
            Ok(summary) => ctx.log(&format!("done: {summary}")).await,
            Err(JobFailure::Cancelled) => ctx.log("cancelled").await,
            Err(JobFailure::Failed(e)) => ctx.log(&format!("failed: {e}")).await,
        }
        let final_progress = if state == JobState::Succeeded {
            Some(1.0)
        } else {
            progress
        };
        let phase = match &outcome {
            Ok(summary) => summary.clone(),
            Err(_) => String::new(),
        };
        if let Err(e) = rows::finish(store.pool(), id, state, error.as_deref(), final_progress, &phase).await
        {
            tracing::error!(error = %e, "cannot record the job's outcome");
        }
        self.0.local.lock().expect("local jobs lock").remove(&id);
        let target = format!("job:{id}");
        let detail = match &error {
            Some(e) => format!("{state}: {e}"),
            None => state.to_string(),
        };
        let event = Event {
            action: AuditAction::JobEnd,
            target: &target,
            database: spec.database.as_deref(),
            detail: &detail,
        };
        if let Err(e) = record(&store, &actor, event, audit_outcome).await {
            tracing::error!(error = ?e, "cannot audit the job's outcome");
        }
    }

    async fn run_inner(&self, spec: &JobSpec, ctx: &JobCtx, work: Work) -> Result<String, JobFailure> {
        let store = &self.0.store;
        let slot = self.slot(spec.database.as_deref().unwrap_or(""));
        if slot.available_permits() == 0 {
            ctx.progress(
                None,
                &format!(
                    "queued: waiting for a free slot ({} job{} at a time on this database)",
                    self.0.per_database,
                    if self.0.per_database == 1 { "" } else { "s" }
                ),
            );
        }
        let _permit = tokio::select! {
            permit = slot.acquire_owned() => permit.map_err(|_| JobFailure::Failed("the job runner stopped".into()))?,
            _ = ctx.cancelled() => return Err(JobFailure::Cancelled),
        };
        loop {
            let notified = self.0.table_free.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.try_claim(spec) {
                break;
            }
            ctx.progress(None, "queued: waiting for another job on the same table to end");
            tokio::select! {
                _ = notified => {}
                _ = ctx.cancelled() => return Err(JobFailure::Cancelled),
            }
        }
        let result = async {
            // In memory first: a heartbeat landing after the start then
            // writes "starting", never the stale "queued".
            ctx.progress(Some(0.0), "starting");
            match rows::start(store.pool(), ctx.id).await {
                Ok(1) => {}
                Ok(_) => return Err(JobFailure::Cancelled),
                Err(e) => return Err(JobFailure::Failed(format!("store: {e}"))),
            }
            ctx.progress(Some(0.0), "starting");
            work(ctx.clone()).await
        }
        .await;
        self.release(spec);
        result
    }

    fn signal_local(&self, id: i64) {
        if let Some(tx) = self.0.local.lock().expect("local jobs lock").get(&id) {
            let _ = tx.send(true);
        }
    }

    /// Ask a job to stop (operator). Audited as `job.cancel`.
    pub async fn cancel(&self, actor: &Actor, id: i64) -> AppResult<()> {
        let store = &self.0.store;
        let target = format!("job:{id}");
        let job = rows::get(store.pool(), id).await?;
        let event = Event {
            action: AuditAction::JobCancel,
            target: &target,
            database: job.as_ref().and_then(|j| j.database_name.as_deref()),
            detail: "",
        };
        crate::service::audit::audited(store, actor, event, async {
            require(actor, Role::Operator)?;
            let job = job
                .clone()
                .ok_or_else(|| AppError::not_found(format!("There is no job {id}.")))?;
            if rows::request_cancel(store.pool(), id).await? == 0 {
                return Err(AppError::conflict(format!(
                    "Job {id} has already ended ({}).",
                    job.state
                )));
            }
            self.signal_local(id);
            Ok(())
        })
        .await
    }
}
