//! Schedules (5-field cron, via croner) for backups and verifications, and
//! retention: keep the last N plus the newest per day, ISO week and month
//! (grandfather-father-son). A run missed while the panel was down runs once
//! at the next start. Pruning is a job (audited like every job).

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Datelike, TimeZone, Utc};

use super::storage::BackupStorage;
use crate::error::AppError;
use crate::service::jobs::{JobCtx, JobFailure};
use crate::store::backups::{self as rows, BackupRow};
use crate::store::{Store, now, settings};

/// A parsed 5-field cron line.
pub fn parse_cron(line: &str) -> Result<croner::Cron, AppError> {
    let line = line.trim();
    if line.split_whitespace().count() != 5 {
        return Err(AppError::invalid(format!(
            "schedule {line:?} must be a 5-field cron line, e.g. \"0 3 * * *\" for 03:00 every day"
        )));
    }
    croner::Cron::new(line)
        .parse()
        .map_err(|e| AppError::invalid(format!("schedule {line:?} is not a valid cron line: {e}")))
}

/// Is a run of `cron` due, given the last run (or the moment the schedule
/// was first seen)? True once for any number of missed occurrences.
pub fn due(cron: &croner::Cron, last: i64, at: i64) -> bool {
    let Some(last) = Utc.timestamp_opt(last, 0).single() else {
        return false;
    };
    match cron.find_next_occurrence(&last, false) {
        Ok(next) => next.timestamp() <= at,
        Err(_) => false,
    }
}

/// Has the `kind` schedule of `database` come due? Records the run if so.
/// The first look only remembers "now": a new schedule waits for its first
/// occurrence.
pub async fn take_due(
    store: &Store,
    kind: crate::domain::JobKind,
    database: &str,
    cron: &croner::Cron,
) -> Result<bool, AppError> {
    take_due_named(store, kind.as_str(), database, cron).await
}

/// [`take_due`] for a schedule named `what` ("physical_backup:full").
pub async fn take_due_named(
    store: &Store,
    what: &str,
    database: &str,
    cron: &croner::Cron,
) -> Result<bool, AppError> {
    let key = format!("schedule:{what}:{database}");
    let at = now();
    let last = settings::get(store.pool(), &key)
        .await?
        .and_then(|v| v.parse::<i64>().ok());
    match last {
        None => {
            settings::put(store.pool(), &key, &at.to_string()).await?;
            Ok(false)
        }
        Some(last) if due(cron, last, at) => {
            settings::put(store.pool(), &key, &at.to_string()).await?;
            Ok(true)
        }
        Some(_) => Ok(false),
    }
}

/// Pruning runs at most once an hour per database, and at once the first
/// time a policy has something to prune. Records the run if due.
pub async fn prune_due(store: &Store, database: &str) -> Result<bool, AppError> {
    let key = format!("schedule:prune:{database}");
    let at = now();
    let last = settings::get(store.pool(), &key)
        .await?
        .and_then(|v| v.parse::<i64>().ok());
    if last.is_some_and(|l| at - l < 3600) {
        return Ok(false);
    }
    settings::put(store.pool(), &key, &at.to_string()).await?;
    Ok(true)
}

/// How many backups to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    pub last: usize,
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
}

impl Retention {
    pub fn is_empty(&self) -> bool {
        *self == Retention::default()
    }

    /// The good backups (newest first) this policy keeps: the newest
    /// `last`, and the newest of each of the latest `daily` days, `weekly`
    /// ISO weeks and `monthly` months that have a backup.
    pub fn keep(&self, good: &[BackupRow]) -> HashSet<i64> {
        let mut keep: HashSet<i64> = good.iter().take(self.last).map(|b| b.id).collect();
        let when = |b: &BackupRow| {
            Utc.timestamp_opt(b.finished_at.unwrap_or(b.started_at), 0)
                .single()
                .unwrap_or_default()
        };
        let mut bucket = |count: usize, period: &dyn Fn(DateTime<Utc>) -> (i32, u32)| {
            let mut seen = Vec::new();
            for b in good {
                let p = period(when(b));
                if !seen.contains(&p) {
                    if seen.len() == count {
                        break;
                    }
                    seen.push(p);
                    keep.insert(b.id);
                }
            }
        };
        bucket(self.daily, &|t| (t.year(), t.ordinal()));
        bucket(self.weekly, &|t| (t.iso_week().year(), t.iso_week().week()));
        bucket(self.monthly, &|t| (t.year(), t.month()));
        keep
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "last={} daily={} weekly={} monthly={}",
            self.last, self.daily, self.weekly, self.monthly
        )
    }
}

impl FromStr for Retention {
    type Err = AppError;

    /// `last=7 daily=7 weekly=4 monthly=6` (any subset, any order).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut r = Retention::default();
        for part in s.split([' ', ',']).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                AppError::invalid(format!(
                    "retention {part:?}: write it as last=7 daily=7 weekly=4 monthly=6"
                ))
            })?;
            let n: usize = v
                .parse()
                .ok()
                .filter(|n| *n <= 10_000)
                .ok_or_else(|| AppError::invalid(format!("retention {k}={v}: not a count")))?;
            match k {
                "last" => r.last = n,
                "daily" => r.daily = n,
                "weekly" => r.weekly = n,
                "monthly" => r.monthly = n,
                other => {
                    return Err(AppError::invalid(format!(
                        "retention has no {other:?}: use last, daily, weekly, monthly"
                    )));
                }
            }
        }
        Ok(r)
    }
}

/// A prune job's work: delete the good backups the policy does not keep.
pub async fn prune(
    store: Store,
    storage: Arc<dyn BackupStorage>,
    database: String,
    policy: Retention,
    ctx: JobCtx,
) -> Result<String, JobFailure> {
    if policy.is_empty() {
        return Ok("no retention policy: nothing pruned".into());
    }
    let good = rows::good(store.pool(), &database)
        .await
        .map_err(|e| JobFailure::Failed(e.to_string()))?;
    let keep = policy.keep(&good);
    let doomed: Vec<&BackupRow> = good.iter().filter(|b| !keep.contains(&b.id)).collect();
    for (i, b) in doomed.iter().enumerate() {
        if ctx.is_cancelled() {
            return Err(JobFailure::Cancelled);
        }
        ctx.progress(
            Some(i as f64 / doomed.len().max(1) as f64),
            &format!("removing backup #{}", b.id),
        );
        storage
            .remove(&b.location)
            .await
            .map_err(|e| JobFailure::Failed(format!("cannot remove backup #{}: {e}", b.id)))?;
        rows::mark_pruned(store.pool(), b.id)
            .await
            .map_err(|e| JobFailure::Failed(e.to_string()))?;
        ctx.log(&format!("pruned backup #{}", b.id)).await;
    }
    Ok(format!("kept {} backups, pruned {}", keep.len(), doomed.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(id: i64, at: &str) -> BackupRow {
        let t = DateTime::parse_from_rfc3339(at).unwrap().timestamp();
        BackupRow {
            id,
            ..BackupRow::good_at(t)
        }
    }

    #[test]
    fn grandfather_father_son() {
        // Newest first: two today, one a day for the week before, and older months.
        let good = vec![
            backup(10, "2026-11-25T12:00:00Z"),
            backup(9, "2026-11-25T03:00:00Z"),
            backup(8, "2026-11-24T03:00:00Z"),
            backup(7, "2026-11-23T03:00:00Z"),
            backup(6, "2026-11-16T03:00:00Z"),
            backup(5, "2026-11-02T03:00:00Z"),
            backup(4, "2026-10-15T03:00:00Z"),
            backup(3, "2026-09-15T03:00:00Z"),
        ];
        let policy: Retention = "last=1 daily=2 weekly=2 monthly=3".parse().unwrap();
        let mut keep: Vec<i64> = policy.keep(&good).into_iter().collect();
        keep.sort();
        // last=1: 10. daily=2: the 25th (10), the 24th (8). weekly=2: ISO week
        // 48, 23–29 Nov (10), week 47 (6). monthly=3: Nov (10), Oct (4), Sep (3).
        assert_eq!(keep, vec![3, 4, 6, 8, 10], "{keep:?}");
        assert!(Retention::default().is_empty());
        assert!("last=x".parse::<Retention>().is_err());
        assert!("forever=1".parse::<Retention>().is_err());
    }

    #[test]
    fn missed_runs_are_due_once() {
        let cron = parse_cron("0 3 * * *").unwrap();
        let yesterday_3am = DateTime::parse_from_rfc3339("2026-11-24T03:00:00Z")
            .unwrap()
            .timestamp();
        let today_10am = DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .unwrap()
            .timestamp();
        let today_2am = DateTime::parse_from_rfc3339("2026-11-25T02:00:00Z")
            .unwrap()
            .timestamp();
        assert!(
            due(&cron, yesterday_3am, today_10am),
            "today's 03:00 was missed: run now"
        );
        assert!(!due(&cron, yesterday_3am, today_2am), "not yet");
        assert!(
            !due(&cron, today_10am, today_10am + 3600),
            "ran at 10:00: next is tomorrow"
        );
        assert!(parse_cron("* * *").is_err());
        assert!(parse_cron("99 * * * *").is_err());
    }
}
