//! A verify job: the SHA-256 checked, the backup restored into a scratch
//! database beside the original, its row counts compared with the ones
//! taken at the dump's snapshot, the scratch dropped. A failure flags the
//! backup.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pipe::{JobPipe, check_sum, failed, failure};
use super::storage::BackupStorage;
use super::take::room;
use crate::config::SecretUrl;
use crate::engine::ManagedDb;
use crate::engine::dump::Counts;
use crate::engine::dump::RestoreTo;
use crate::format::fmt_elapsed as fmt_secs;
use crate::service::jobs::{JobCtx, JobFailure};
use crate::store::Store;
use crate::store::backups::{self as rows, BackupRow};

/// Compare the row counts of a restored copy with the backup's.
pub(super) fn compare(expected: &Counts, actual: &Counts) -> Result<(), String> {
    let mut problems = Vec::new();
    for (table, n) in expected {
        // Restored copies of MariaDB backups live in another schema: match
        // on the table part when the schema differs.
        let got = actual.get(table).or_else(|| {
            let bare = table.rsplit('.').next().unwrap_or(table);
            actual
                .iter()
                .find(|(k, _)| k.rsplit('.').next() == Some(bare))
                .map(|(_, v)| v)
        });
        match got {
            Some(m) if m == n => {}
            Some(m) => problems.push(format!("{table}: {m} rows restored, {n} in the backup")),
            None => problems.push(format!("{table}: missing after restore")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("row counts differ: {}", problems.join("; ")))
    }
}

/// A verify job's work.
pub struct Verify {
    pub store: Store,
    pub storage: Arc<dyn BackupStorage>,
    pub url: SecretUrl,
    pub backup: BackupRow,
    pub work_dir: PathBuf,
    pub parallel: usize,
    pub db: Arc<dyn ManagedDb>,
}

impl Verify {
    pub async fn run(mut self, ctx: JobCtx) -> Result<String, JobFailure> {
        let id = self.backup.id;
        // The scratch database's create, count and drop beside pg_restore.
        let (_room, parallel) = room(&*self.db, 1, self.parallel, &ctx).await?;
        self.parallel = parallel;
        let started = Instant::now();
        let outcome = self.check(&ctx).await;
        let whole_ms = started.elapsed().as_millis() as i64;
        let pool = self.store.pool();
        match outcome {
            Ok((restore_ms, tables)) => {
                rows::record_verify(pool, id, true, None, Some(restore_ms), whole_ms)
                    .await
                    .map_err(failed)?;
                Ok(format!(
                    "backup #{id} verified in {}: restored in {}, {tables} tables' row counts match",
                    fmt_secs(whole_ms),
                    fmt_secs(restore_ms),
                ))
            }
            Err(JobFailure::Cancelled) => Err(JobFailure::Cancelled),
            Err(JobFailure::Failed(why)) => {
                // A failed verification flags the backup.
                rows::record_verify(pool, id, false, Some(&why), None, whole_ms)
                    .await
                    .map_err(failed)?;
                Err(JobFailure::Failed(why))
            }
        }
    }

    /// Checksum, restore into scratch, count, compare, drop the scratch.
    async fn check(&self, ctx: &JobCtx) -> Result<(i64, usize), JobFailure> {
        ctx.progress(Some(0.05), "checking the SHA-256");
        let sha256 = self.backup.sha256.clone().unwrap_or_default();
        check_sum(&*self.storage, &self.backup.location, &sha256, ctx).await?;
        ctx.log("checksum ok").await;
        let expected: Counts = serde_json::from_str(&self.backup.table_counts).unwrap_or_default();
        let dumps = self.db.dumps();
        let scratch_name = format!(
            "custodian_verify_{}_{}",
            self.backup.id,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        ctx.progress(
            Some(0.2),
            &format!("restoring into scratch database {scratch_name}"),
        );
        let scratch = dumps
            .create_scratch(&self.url, &scratch_name, &self.work_dir)
            .await
            .map_err(failure)?;
        let restored = async {
            let t = Instant::now();
            let pipe = JobPipe::new(ctx, &*self.storage, &self.backup.location, &self.work_dir);
            dumps
                .restore(
                    &RestoreTo {
                        format: &self.backup.format,
                        url: &scratch,
                        clean: false,
                        jobs: self.parallel,
                    },
                    &pipe,
                )
                .await
                .map_err(failure)?;
            let restore_ms = t.elapsed().as_millis() as i64;
            ctx.log(&format!("restored in {}", fmt_secs(restore_ms))).await;
            ctx.progress(Some(0.8), "counting rows in the restored copy");
            let actual = dumps.counts(&scratch).await.map_err(failure)?;
            compare(&expected, &actual).map_err(failed)?;
            Ok((restore_ms, expected.len()))
        }
        .await;
        ctx.progress(
            Some(0.95),
            &format!("dropping the scratch database {scratch_name}"),
        );
        let t = Instant::now();
        let dropping = dumps.drop_scratch(&self.url, &scratch_name, &scratch);
        tokio::pin!(dropping);
        // A drop that takes a while says what it waits on, from the
        // server's own sessions (the activity sample), every few seconds.
        let mut waited_on = None;
        let dropped = loop {
            tokio::select! {
                r = &mut dropping => break r,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {
                    if let Some(w) = drop_waits_on(&*self.db, &scratch_name).await {
                        waited_on = Some(w);
                    }
                    ctx.progress(Some(0.95), &format!(
                        "dropping the scratch database {scratch_name}: {} so far{}",
                        fmt_secs(t.elapsed().as_millis() as i64),
                        waited_on.as_deref().map(|w| format!(", waiting on {w}")).unwrap_or_default()
                    ));
                }
            }
        };
        match dropped {
            Ok(()) => {
                ctx.log(&format!(
                    "dropped the scratch database in {}{}",
                    fmt_secs(t.elapsed().as_millis() as i64),
                    waited_on
                        .map(|w| format!(" (it waited on {w})"))
                        .unwrap_or_default()
                ))
                .await
            }
            Err(e) => {
                ctx.log(&format!("could not drop scratch database {scratch_name}: {e}"))
                    .await
            }
        }
        restored
    }
}

/// What the session dropping `scratch` waits on, in words, when it waits:
/// PostgreSQL checkpoints before it drops a database, and waits for the
/// sessions still connected to it.
async fn drop_waits_on(db: &dyn ManagedDb, scratch: &str) -> Option<String> {
    let sample = db.activity().await.ok()?;
    let session = sample.sessions.into_iter().find(|s| {
        s.query
            .as_deref()
            .is_some_and(|q| q.starts_with("DROP DATABASE") && q.contains(scratch))
    })?;
    let wait = session.wait_event?;
    Some(match wait.as_str() {
        w if w.contains("Checkpoint") => {
            format!("a checkpoint ({w}): PostgreSQL writes out changed pages before it drops a database")
        }
        w if w.starts_with("Lock") => format!("a lock ({w}): a session is still using the scratch database"),
        w => w.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_across_schemas_and_name_what_differs() {
        let expected: Counts = [("shop.orders".to_string(), 3), ("shop.items".to_string(), 5)].into();
        let same_elsewhere: Counts = [
            ("scratch.orders".to_string(), 3),
            ("scratch.items".to_string(), 5),
        ]
        .into();
        assert_eq!(compare(&expected, &same_elsewhere), Ok(()));
        let short: Counts = [("shop.orders".to_string(), 2)].into();
        let why = compare(&expected, &short).unwrap_err();
        assert!(
            why.contains("shop.orders: 2 rows restored, 3 in the backup"),
            "{why}"
        );
        assert!(why.contains("shop.items: missing after restore"), "{why}");
    }
}
