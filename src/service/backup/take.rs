//! A backup job: room in the server's connection budget for the tool, the
//! engine's dump through the pipe into storage, the catalog row marked good
//! (with bytes, SHA-256, versions and row counts) or failed, never a
//! partial file left behind.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::pipe::{JobPipe, failed, failure};
use super::storage::BackupStorage;
use crate::domain::BackupState;
use crate::engine::ManagedDb;
use crate::engine::dump::{DumpFormat, DumpFrom};
use crate::engine::pool::Reservation;
use crate::service::jobs::{JobCtx, JobFailure};
use crate::store::Store;
use crate::store::backups::{self as rows, Finished};

/// A backup job's work.
pub struct Take {
    pub store: Store,
    pub storage: Arc<dyn BackupStorage>,
    pub url: crate::config::SecretUrl,
    pub backup_id: i64,
    pub key: String,
    pub format: DumpFormat,
    pub work_dir: PathBuf,
    /// Parallel jobs configured (a directory-format dump above 1).
    pub parallel: usize,
    /// The database, for its dump recipe and room in its server's budget.
    pub db: Arc<dyn ManagedDb>,
}

/// Wait for room in the server's connection budget for a tool's own
/// connections (`helpers` of the panel's beside it, one for the tool, or
/// `parallel + 1` for parallel jobs), and say how many parallel jobs the
/// room allows: fewer than configured when the budget is smaller.
pub(super) async fn room(
    db: &dyn ManagedDb,
    helpers: usize,
    parallel: usize,
    ctx: &JobCtx,
) -> Result<(Option<Reservation>, usize), JobFailure> {
    let tool = if db.dumps().uses_jobs(parallel) {
        parallel + 1
    } else {
        1
    };
    let wanted = helpers + tool;
    let reservation = tokio::select! {
        r = db.reserve(wanted) => r.map_err(failure)?,
        _ = ctx.cancelled() => return Err(JobFailure::Cancelled),
    };
    let allowed = match &reservation {
        Some(r) if r.granted() < wanted => {
            let jobs = if r.granted() >= helpers + 3 {
                r.granted() - helpers - 1
            } else {
                1
            };
            ctx.log(&format!(
                "{jobs} parallel job(s) instead of {parallel}: max_connections_per_server leaves room for {} connections",
                r.granted()
            ))
            .await;
            jobs
        }
        _ => parallel,
    };
    Ok((reservation, allowed))
}

impl Take {
    pub async fn run(self, ctx: JobCtx) -> Result<String, JobFailure> {
        let started = Instant::now();
        // The dump's snapshot (or counting) connection beside the tool's.
        let (_room, jobs) = room(&*self.db, 1, self.parallel, &ctx).await?;
        let pipe = JobPipe::new(&ctx, &*self.storage, &self.key, &self.work_dir);
        let result = self
            .db
            .dumps()
            .dump(
                &DumpFrom {
                    url: &self.url,
                    format: self.format,
                    jobs,
                },
                &pipe,
            )
            .await
            .map_err(failure)
            .and_then(|d| {
                let (bytes, sha256) = pipe.written().ok_or_else(|| failed("the dump wrote nothing"))?;
                Ok((d, bytes, sha256))
            });
        let pool = self.store.pool();
        match result {
            Ok((d, bytes, sha256)) => {
                self.storage
                    .commit(&self.key)
                    .await
                    .map_err(|e| failed(format!("cannot finish the backup file: {e}")))?;
                let counts = serde_json::to_string(&d.counts).unwrap_or_else(|_| "{}".into());
                let finished = Finished {
                    bytes: bytes as i64,
                    sha256: &sha256,
                    duration_ms: started.elapsed().as_millis() as i64,
                    tool_version: &d.tool_version,
                    server_version: &d.server_version,
                    table_counts: &counts,
                };
                rows::mark_good(pool, self.backup_id, &finished)
                    .await
                    .map_err(failed)?;
                let took = started.elapsed();
                let rows: i64 = d.counts.values().sum();
                ctx.log(&format!(
                    "{rows} rows in {} tables, {} rows/s; {} written, {}/s",
                    d.counts.len(),
                    super::pipe::per_second(rows, took),
                    crate::format::fmt_bytes(bytes as i64),
                    crate::format::fmt_bytes(super::pipe::per_second(bytes as i64, took)),
                ))
                .await;
                Ok(format!(
                    "backup #{}: {} in {}, {} tables ({rows} rows), sha256 {}",
                    self.backup_id,
                    crate::format::fmt_bytes(bytes as i64),
                    crate::format::fmt_elapsed(took.as_millis() as i64),
                    d.counts.len(),
                    &sha256[..16]
                ))
            }
            Err(e) => {
                // Never leave a partial file; never call it good.
                let _ = self.storage.remove(&self.key).await;
                let (state, why) = match &e {
                    JobFailure::Cancelled => (BackupState::Cancelled, "cancelled".to_string()),
                    JobFailure::Failed(m) => (BackupState::Failed, m.clone()),
                };
                let _ = rows::mark_ended(pool, self.backup_id, state, &why).await;
                Err(e)
            }
        }
    }
}
