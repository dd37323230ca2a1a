//! Backups that prove themselves: taken as jobs (pg_dump with an exported
//! snapshot, mariadb-dump --single-transaction, SQLite's VACUUM INTO),
//! streamed through zstd and SHA-256 into storage, catalogued with row
//! counts, verified by restoring into a scratch database, restored on
//! request, scheduled, pruned, and judged against RPO/RTO.

mod pipe;
mod restore;
pub mod schedule;
pub mod status;
pub mod storage;
mod take;
mod verify;

use std::path::PathBuf;
use std::sync::Arc;

use crate::domain::{AuditAction, BackupState, JobKind, Role};
use crate::error::{AppError, AppResult};
use crate::service::Actor;
use crate::service::fleet::Member;
use crate::service::jobs::{JobCtx, JobFuture, JobSpec, Jobs};
use crate::service::users::require;
use crate::store::backups::{self as rows, BackupRow};
use crate::store::{Store, now};

pub use restore::RestoreInto;
use storage::{BackupStorage, LocalDir};

/// The backup area's shared parts.
#[derive(Clone)]
pub struct Backups {
    store: Store,
    jobs: Jobs,
    storage: Arc<dyn BackupStorage>,
    /// Scratch space for SQLite copies, dump directories and client option files.
    work_dir: PathBuf,
    /// pg_dump/pg_restore parallel jobs (directory format) when above 1.
    parallel: usize,
}

impl Backups {
    pub fn new(store: Store, jobs: Jobs, dir: PathBuf, work_dir: PathBuf, parallel: usize) -> Backups {
        Backups {
            store,
            jobs,
            storage: Arc::new(LocalDir::new(dir)),
            work_dir,
            parallel: parallel.max(1),
        }
    }

    pub fn location(&self) -> String {
        self.storage.describe()
    }

    /// Submit a backup, verify or restore job.
    async fn submit(
        &self,
        actor: &Actor,
        spec: JobSpec,
        work: impl FnOnce(JobCtx) -> JobFuture + Send + 'static,
    ) -> AppResult<i64> {
        self.jobs.submit(actor, spec, Box::new(work)).await
    }

    /// A backup's location (its storage key) as a full URL: the API, the
    /// CLI and the pages show this, so a DBA finds the file without
    /// knowing the panel's layout. Empty when the row names no file.
    pub fn url_of(&self, location: &str) -> String {
        self.storage.url(location).unwrap_or_default()
    }

    pub async fn list(&self, database: &str, limit: i64) -> AppResult<Vec<BackupRow>> {
        Ok(rows::list(self.store.pool(), database, limit).await?)
    }

    pub async fn get(&self, id: i64) -> AppResult<BackupRow> {
        rows::get(self.store.pool(), id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("There is no backup {id}.")))
    }

    /// Start a backup (operator). Returns (job id, backup id).
    pub async fn start(&self, member: &Arc<Member>, actor: &Actor) -> AppResult<(i64, i64)> {
        require(actor, Role::Operator)?;
        member.reachable()?;
        let url = member.url().map_err(AppError::invalid)?;
        let db = member.db().map_err(AppError::invalid)?;
        let format = db.dumps().format(self.parallel);
        let name = member.entry.name.to_string();
        let engine = member.entry.engine.as_str();
        let backup_id = rows::insert(self.store.pool(), &name, engine, format.name, "zstd", "").await?;
        let key = format!("{name}/{backup_id}-{}.{}.zst", now(), format.ext);
        rows::set_location(self.store.pool(), backup_id, &key).await?;
        let spec = JobSpec {
            kind: JobKind::Backup,
            database: Some(name.clone()),
            target: format!("backup #{backup_id}"),
            tables: vec![format!("backup:{name}")],
        };
        let task = take::Take {
            store: self.store.clone(),
            storage: self.storage.clone(),
            url,
            backup_id,
            key,
            format,
            work_dir: self.work_dir.clone(),
            parallel: self.parallel,
            db,
        };
        let job_id = self
            .submit(actor, spec, move |ctx| Box::pin(task.run(ctx)))
            .await?;
        rows::set_job(self.store.pool(), backup_id, job_id).await?;
        Ok((job_id, backup_id))
    }

    /// Verify a backup by restoring it into a scratch database (operator).
    pub async fn verify(&self, member: &Arc<Member>, actor: &Actor, backup_id: i64) -> AppResult<i64> {
        require(actor, Role::Operator)?;
        let backup = self.get(backup_id).await?;
        if backup.database_name != member.entry.name.as_str() {
            return Err(AppError::not_found(format!(
                "There is no backup {backup_id} of {}.",
                member.entry.name
            )));
        }
        if backup.state != BackupState::Good {
            return Err(AppError::conflict(format!(
                "Backup {backup_id} is {}: only a good backup can be verified.",
                backup.state
            )));
        }
        member.reachable()?;
        let url = member.url().map_err(AppError::invalid)?;
        let spec = JobSpec {
            kind: JobKind::Verify,
            database: Some(backup.database_name.clone()),
            target: format!("backup #{backup_id}"),
            tables: vec![format!("verify:{backup_id}")],
        };
        let task = verify::Verify {
            store: self.store.clone(),
            storage: self.storage.clone(),
            url,
            backup,
            work_dir: self.work_dir.clone(),
            parallel: self.parallel,
            db: member.db().map_err(AppError::invalid)?,
        };
        self.submit(actor, spec, move |ctx| Box::pin(task.run(ctx))).await
    }

    /// Restore a backup (admin): into a new database, or over the original
    /// after its name was typed.
    pub async fn restore(
        &self,
        member: &Arc<Member>,
        actor: &Actor,
        backup_id: i64,
        into: RestoreInto,
    ) -> AppResult<i64> {
        require(actor, Role::Admin)?;
        let backup = self.get(backup_id).await?;
        if backup.database_name != member.entry.name.as_str() || backup.state != BackupState::Good {
            return Err(AppError::conflict(format!(
                "Backup {backup_id} is not a good backup of {}.",
                member.entry.name
            )));
        }
        member.reachable()?;
        let url = member.url().map_err(AppError::invalid)?;
        let target = restore::check_restore_target(member, &url, &into).await?;
        let spec = JobSpec {
            kind: JobKind::Restore,
            database: Some(backup.database_name.clone()),
            target: format!("backup #{backup_id} → {}", target.describe()),
            tables: vec!["*".into()],
        };
        let task = restore::Restore {
            storage: self.storage.clone(),
            url,
            backup,
            target,
            work_dir: self.work_dir.clone(),
            parallel: self.parallel,
            db: member.db().map_err(AppError::invalid)?,
        };
        self.submit(actor, spec, move |ctx| Box::pin(task.run(ctx))).await
    }

    /// Prune by the retention policy, as a job (operator).
    pub async fn prune(
        &self,
        member: &Arc<Member>,
        actor: &Actor,
        policy: schedule::Retention,
    ) -> AppResult<i64> {
        require(actor, Role::Operator)?;
        let name = member.entry.name.to_string();
        let spec = JobSpec {
            kind: JobKind::Prune,
            database: Some(name.clone()),
            target: format!("backups of {name} ({policy})"),
            tables: vec![format!("backup:{name}")],
        };
        let store = self.store.clone();
        let storage = self.storage.clone();
        self.jobs
            .submit(
                actor,
                spec,
                Box::new(move |ctx| Box::pin(schedule::prune(store, storage, name, policy, ctx))),
            )
            .await
    }

    /// Run due schedules every `every`: backups, verification of the latest
    /// good backup, and (hourly) pruning by the retention policy. Actions
    /// are the panel's own (`custodian`, via system) and audited as jobs.
    pub fn spawn_scheduler(&self, fleet: crate::service::fleet::Fleet, every: std::time::Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                for m in fleet.members() {
                    if let Err(e) = this.run_schedules(&m).await {
                        tracing::warn!(database = %m.entry.name, error = %e, "scheduled backup work failed to start");
                    }
                }
                tokio::time::sleep(every).await;
            }
        });
    }

    async fn run_schedules(&self, m: &Arc<Member>) -> AppResult<()> {
        let name = m.entry.name.to_string();
        let plan = &m.entry.plan;
        let system = Actor::system();
        if let Some(s) = &plan.backup
            && schedule::take_due(&self.store, JobKind::Backup, &name, &s.cron).await?
        {
            self.start(m, &system).await?;
        }
        if let Some(s) = &plan.verify
            && schedule::take_due(&self.store, JobKind::Verify, &name, &s.cron).await?
            && let Some(latest) = rows::good(self.store.pool(), &name).await?.first()
        {
            self.verify(m, &system, latest.id).await?;
        }
        if let Some(policy) = plan.retention {
            let good = rows::good(self.store.pool(), &name).await?;
            if !policy.is_empty()
                && policy.keep(&good).len() < good.len()
                && schedule::prune_due(&self.store, &name).await?
            {
                self.prune(m, &system, policy).await?;
            }
        }
        Ok(())
    }

    /// Backups left 'running' by a panel that died: interrupted, partial
    /// files removed. Run at start and every few seconds.
    pub fn spawn_sweeper(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                match rows::orphaned(this.store.pool()).await {
                    Ok(orphans) => {
                        for b in orphans {
                            // A row whose job is not recorded yet is being started now.
                            if b.job_id.is_none() && now() - b.started_at < 60 {
                                continue;
                            }
                            let _ = this.storage.remove(&b.location).await;
                            let _ = rows::mark_ended(
                                this.store.pool(),
                                b.id,
                                BackupState::Interrupted,
                                "the panel stopped while this backup was running",
                            )
                            .await;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot sweep interrupted backups"),
                }
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            }
        });
    }
}

/// What point-in-time recovery needs of the server (WAL archiving, the
/// binary log), read live for the backups page: time-boxed, and not at all
/// while the database is known down or slow.
pub async fn pitr_readiness(member: &Member) -> Result<Vec<(String, String, bool)>, String> {
    member.read(|db| async move { db.pitr_readiness().await }).await
}

/// A database removed from the registry, with the backups the panel still
/// keeps of it (newest first).
#[derive(Clone, Debug)]
pub struct Removed {
    /// Its history's key (`name~id`): no registration can take it.
    pub key: String,
    pub name: String,
    pub engine: String,
    pub removed_at: i64,
    pub backups: Vec<BackupRow>,
}

impl Removed {
    /// Backups that still have a file.
    pub fn kept(&self) -> impl Iterator<Item = &BackupRow> {
        self.backups.iter().filter(|b| b.state == BackupState::Good)
    }
}

impl Backups {
    /// Removed databases whose backups are kept, most recently removed first.
    pub async fn removed(&self) -> AppResult<Vec<Removed>> {
        let mut out = Vec::new();
        for r in crate::store::registry::removed(self.store.pool()).await? {
            let backups = rows::list(self.store.pool(), &r.key, 500).await?;
            // Nothing kept (a discarded restored server, say): nothing to list.
            if backups.is_empty() {
                continue;
            }
            out.push(Removed {
                backups,
                key: r.key,
                name: r.name,
                engine: r.engine,
                removed_at: r.removed_at,
            });
        }
        Ok(out)
    }

    /// Delete every backup of a removed database and forget it (admin; the
    /// user types the database's name to confirm). Audited. Returns how
    /// many backups were deleted.
    pub async fn prune_removed(&self, actor: &Actor, key: &str, confirm: &str) -> AppResult<usize> {
        let event = crate::service::audit::Event {
            action: AuditAction::BackupPruneRemoved,
            target: key,
            database: None,
            detail: "",
        };
        crate::service::audit::audited(&self.store, actor, event, async {
            require(actor, Role::Admin)?;
            let removed = self
                .removed()
                .await?
                .into_iter()
                .find(|r| r.key == key)
                .ok_or_else(|| AppError::not_found(format!("no removed database {key:?}")))?;
            if confirm.trim() != removed.name {
                return Err(AppError::invalid(format!(
                    "type the database's name, {}, to delete its backups",
                    removed.name
                )));
            }
            let mut pruned = 0;
            for b in removed.kept() {
                self.storage
                    .remove(&b.location)
                    .await
                    .map_err(|e| AppError::invalid(format!("cannot remove backup #{}: {e}", b.id)))?;
                rows::mark_pruned(self.store.pool(), b.id).await?;
                pruned += 1;
            }
            crate::store::registry::forget_removed(self.store.pool(), key).await?;
            Ok(pruned)
        })
        .await
    }
}
