//! The shared activity sample of one database: single-flight, so however
//! many people watch, the database sees one catalog query per interval.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::{Member, PAGE_READ_LIMIT};
use crate::engine::ActivitySample;
use crate::store::now;

/// The last sample of one database, shared by every viewer.
#[derive(Default)]
pub struct ActivityCache {
    slot: Mutex<Option<Cached>>,
    taken: AtomicU64,
}

struct Cached {
    at: Instant,
    snapshot: Result<Snapshot, String>,
}

/// A sample and when it was taken.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub sample: Arc<ActivitySample>,
    pub taken_at: i64,
}

impl ActivityCache {
    /// How many samples were taken from the database (for tests and the
    /// benchmark: fifty viewers should cost what one does).
    pub fn samples_taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    /// Forget the sample, e.g. after a cancel, so the next view is fresh.
    pub async fn invalidate(&self) {
        *self.slot.lock().await = None;
    }
}

impl Member {
    /// This database's activity, at most `ttl` old. Concurrent callers wait
    /// for the one sample in flight instead of each taking their own.
    pub async fn activity_sample(&self, ttl: Duration) -> Result<Snapshot, String> {
        let member = self;
        if !member.capabilities().activity {
            return Err(format!("{} has no sessions to show", member.entry.engine.label()));
        }
        if let Some(why) = member.unavailable() {
            return Err(why);
        }
        let cache = &member.activity;
        // Waiting for another viewer's sample in flight is time-boxed too.
        let mut slot = tokio::time::timeout(PAGE_READ_LIMIT, cache.slot.lock())
            .await
            .map_err(|_| {
                format!(
                    "{} did not answer within {} seconds",
                    member.entry.name,
                    PAGE_READ_LIMIT.as_secs()
                )
            })?;
        if let Some(cached) = slot.as_ref()
            && cached.at.elapsed() < ttl
        {
            return cached.snapshot.clone();
        }
        cache.taken.fetch_add(1, Ordering::Relaxed);
        let snapshot = member
            .read(|db| async move { db.activity().await })
            .await
            .map(|sample| Snapshot {
                sample: Arc::new(sample),
                taken_at: now(),
            });
        *slot = Some(Cached {
            at: Instant::now(),
            snapshot: snapshot.clone(),
        });
        snapshot
    }
}
