//! Discarding restored servers: by an admin, by the panel once
//! `restore_keep` has passed, and restores the panel died under
//! (interrupted, their half-written directories removed).

use std::path::PathBuf;

use super::Recovery;
use crate::domain::{AuditAction, DatabaseName, JobKind, RestoreState, Role};
use crate::engine::pitr::cluster::{self, Restored};
use crate::error::{AppError, AppResult};
use crate::service::Actor;
use crate::service::audit::{Event, audited};
use crate::service::jobs::{JobFailure, JobSpec};
use crate::service::users::require;
use crate::store::now;
use crate::store::recovery::{self as rows, Ended, RestoreRow};

impl Recovery {
    /// Is `dir` one of restore_dir's own (a restore's home)?
    fn owns(&self, dir: &str) -> bool {
        let dir = std::path::Path::new(dir);
        !dir.as_os_str().is_empty()
            && dir.parent() == Some(self.restore_dir())
            && dir
                .components()
                .all(|c| matches!(c, std::path::Component::RootDir | std::path::Component::Normal(_)))
    }

    /// Scratch directories of timeline requests a dead panel left behind
    /// (an hour old: a running request's are younger).
    pub(super) fn sweep_scratch(&self) {
        let Ok(entries) = std::fs::read_dir(self.restore_dir()) else {
            return;
        };
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 3600));
            if old
                && e.file_name()
                    .to_string_lossy()
                    .starts_with(super::timeline::SCRATCH_PREFIX)
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// Stop a restored server, delete its directory and unregister it
    /// (admin), as a job.
    pub async fn discard(&self, actor: &Actor, id: i64) -> AppResult<i64> {
        let key = format!("restore:{id}");
        let row = self.get_restore(id).await;
        let database = row.as_ref().ok().map(|r| r.database_name.clone());
        let event = Event {
            action: AuditAction::RecoveryDiscard,
            target: &key,
            database: database.as_deref(),
            detail: "",
        };
        audited(&self.0.store, actor, event, async {
            require(actor, Role::Admin)?;
            let row = row?;
            if row.state != RestoreState::Ready {
                return Err(AppError::conflict(format!(
                    "restore {id} is {}: only a ready restored server can be discarded",
                    row.state
                )));
            }
            self.discard_job(actor, row).await
        })
        .await
    }

    /// Discard as a job, once: a restore whose discard is under way (or
    /// failed, until the panel restarts) is not discarded again.
    async fn discard_job(&self, actor: &Actor, row: RestoreRow) -> AppResult<i64> {
        let first = self
            .0
            .discarding
            .lock()
            .map(|mut d| d.insert(row.id))
            .unwrap_or(false);
        if !first {
            return Err(AppError::conflict(format!(
                "restore {} is being discarded already (or its discard failed: see its job)",
                row.id
            )));
        }
        let spec = JobSpec {
            kind: JobKind::Discard,
            database: Some(row.database_name.clone()),
            target: format!("restore #{}: {}", row.id, row.new_database),
            tables: vec![format!("restore:{}", row.id)],
        };
        let this = self.clone();
        self.submit(actor, spec, move |ctx| {
            Box::pin(async move {
                ctx.progress(Some(0.1), "stopping the restored server");
                this.remove_restored(&row)
                    .await
                    .map_err(|e| JobFailure::Failed(e.to_string()))?;
                if let Ok(mut d) = this.0.discarding.lock() {
                    d.remove(&row.id);
                }
                Ok(format!("discarded {} (restore #{})", row.new_database, row.id))
            })
        })
        .await
    }

    fn server_of(row: &RestoreRow) -> Restored {
        Restored {
            home: PathBuf::from(&row.dir),
            port: row.port.unwrap_or(0) as u16,
            pg_ctl: PathBuf::from(&row.pg_bin),
            run_as: (!row.os_user.is_empty()).then(|| row.os_user.clone()),
        }
    }

    /// Unregister, stop, delete, and mark discarded.
    async fn remove_restored(&self, row: &RestoreRow) -> AppResult<()> {
        if let Ok(name) = DatabaseName::parse(&row.new_database) {
            let system = Actor::system();
            match self.0.registry.remove(&system, &name).await {
                Ok(()) | Err(AppError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            self.0.fleet.refresh(&self.0.registry).await;
        }
        if self.owns(&row.dir) {
            Self::server_of(row).remove().await.map_err(AppError::from)?;
        }
        rows::discarded(self.0.store.pool(), row.id).await?;
        Ok(())
    }

    /// Restores left 'restoring' by a panel that died: interrupted, their
    /// half-written directories removed.
    pub(super) async fn sweep_interrupted(&self) {
        let Ok(restoring) = rows::in_state(self.0.store.pool(), RestoreState::Restoring).await else {
            return;
        };
        for row in restoring {
            let active = match row.job_id {
                Some(job) => self
                    .0
                    .jobs
                    .get(job)
                    .await
                    .map(|j| j.state.is_active())
                    .unwrap_or(false),
                None => now() - row.created_at < 60,
            };
            if active {
                continue;
            }
            if self.owns(&row.dir) {
                let server = Self::server_of(&row);
                server.stop().await;
                if let Err(e) = cluster::remove_dir(&server.home).await {
                    tracing::warn!(restore = row.id, error = %e, "cannot remove an interrupted restore's directory");
                    continue;
                }
            }
            let _ = rows::end(
                self.0.store.pool(),
                row.id,
                &Ended {
                    state: RestoreState::Interrupted,
                    reached: "",
                    rto_ms: None,
                    proof: "",
                    error: Some("the panel stopped during this restore; its directory was removed"),
                },
            )
            .await;
        }
    }

    /// Restored servers older than `restore_keep` are discarded by the panel.
    pub(super) async fn discard_expired(&self) {
        let Ok(ready) = rows::in_state(self.0.store.pool(), RestoreState::Ready).await else {
            return;
        };
        let keep = self.0.config.restore_keep.as_secs() as i64;
        for row in ready {
            if now() - row.finished_at.unwrap_or(row.created_at) > keep
                && let Err(e) = self.discard_job(&Actor::system(), row).await
            {
                tracing::warn!(error = %e, "cannot discard an expired restored server");
            }
        }
    }
}
