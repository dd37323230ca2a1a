//! Restores: where a backup may go (a new database beside the original, or
//! over the original once its name is typed; engines that cannot say what
//! to do instead), and the restore job itself.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::pipe::{JobPipe, check_sum, failure};
use super::storage::BackupStorage;
use super::take::room;
use crate::config::SecretUrl;
use crate::engine::ManagedDb;
use crate::engine::dump::RestoreTo;
use crate::error::{AppError, AppResult};
use crate::service::fleet::Member;
use crate::service::jobs::{JobCtx, JobFailure};
use crate::store::backups::BackupRow;

/// Where a restore goes.
#[derive(Clone, Debug)]
pub enum RestoreInto {
    /// A new database on the same server (a new file for SQLite).
    New(String),
    /// Over the original; `confirm` must be the database's registry name.
    Original { confirm: String },
}

/// A checked restore target.
#[derive(Clone, Debug)]
pub struct RestoreTarget {
    url: SecretUrl,
    /// Create this database first.
    create: Option<String>,
    clean: bool,
    label: String,
}

impl RestoreTarget {
    pub fn describe(&self) -> String {
        self.label.clone()
    }
}

/// A new database's name: lower-case letters, digits and '_', starting
/// with a letter, at most 63 characters (PostgreSQL's limit).
fn valid_new_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
}

pub async fn check_restore_target(
    member: &Member,
    url: &SecretUrl,
    into: &RestoreInto,
) -> AppResult<RestoreTarget> {
    let db = member.db().map_err(AppError::invalid)?;
    match into {
        RestoreInto::New(name) => {
            let name = name.trim();
            if !valid_new_name(name) {
                return Err(AppError::invalid(
                    "the new database's name may use lower-case letters, digits and '_', starting with a letter",
                ));
            }
            let target = db.dumps().new_target(url, name).await?;
            if let Some(taken) = target.taken {
                return Err(AppError::conflict(taken));
            }
            Ok(RestoreTarget {
                url: target.url,
                create: target.create,
                clean: false,
                label: target.label,
            })
        }
        RestoreInto::Original { confirm } => {
            if confirm.trim() != member.entry.name.as_str() {
                return Err(AppError::invalid(format!(
                    "restoring over {} replaces its data: type {:?} to confirm",
                    member.entry.name, member.entry.name
                )));
            }
            db.dumps().over_original().map_err(AppError::invalid)?;
            Ok(RestoreTarget {
                url: url.clone(),
                create: None,
                clean: true,
                label: format!("{} (over the original)", member.entry.name),
            })
        }
    }
}

/// A restore job's work.
pub struct Restore {
    pub storage: Arc<dyn BackupStorage>,
    pub url: SecretUrl,
    pub backup: BackupRow,
    pub target: RestoreTarget,
    pub work_dir: PathBuf,
    pub parallel: usize,
    pub db: Arc<dyn ManagedDb>,
}

impl Restore {
    pub async fn run(self, ctx: JobCtx) -> Result<String, JobFailure> {
        let (_room, parallel) = room(&*self.db, 1, self.parallel, &ctx).await?;
        ctx.progress(Some(0.05), "checking the SHA-256");
        let sha256 = self.backup.sha256.clone().unwrap_or_default();
        check_sum(&*self.storage, &self.backup.location, &sha256, &ctx).await?;
        let dumps = self.db.dumps();
        if let Some(name) = &self.target.create {
            dumps.create_database(&self.url, name).await.map_err(failure)?;
        }
        ctx.progress(Some(0.2), &format!("restoring into {}", self.target.label));
        let t = Instant::now();
        let pipe = JobPipe::new(&ctx, &*self.storage, &self.backup.location, &self.work_dir);
        dumps
            .restore(
                &RestoreTo {
                    format: &self.backup.format,
                    url: &self.target.url,
                    clean: self.target.clean,
                    jobs: parallel,
                },
                &pipe,
            )
            .await
            .map_err(failure)?;
        Ok(format!(
            "backup #{} restored into {} in {:.1}s",
            self.backup.id,
            self.target.label,
            t.elapsed().as_secs_f64()
        ))
    }
}
