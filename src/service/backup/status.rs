//! Judging a database's backups against its RPO and RTO: green when the
//! last good backup is younger than the RPO, a verification passed within
//! its window, and the measured restore time is under the RTO; amber or red
//! otherwise, each with its reason.

use std::time::Duration;

use crate::format::{fmt_age, fmt_duration};
use crate::store::backups::BackupRow;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Red,
    Amber,
    Green,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Red => "red",
            Level::Amber => "amber",
            Level::Green => "green",
        }
    }
}

#[derive(Clone, Debug)]
pub struct BackupHealth {
    pub level: Level,
    pub reasons: Vec<String>,
    pub last_good: Option<BackupRow>,
    /// The most recent verification (of any good backup).
    pub last_verified: Option<BackupRow>,
}

/// A database's recovery targets, as its registry entry sets them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Targets {
    pub rpo: Option<Duration>,
    pub rto: Option<Duration>,
}

/// `backups` newest first (any state).
pub fn judge(entry: Targets, backups: &[BackupRow], now: i64, verify_window: Duration) -> BackupHealth {
    let mut level = Level::Green;
    let mut reasons = Vec::new();
    let mut lower = |to: Level, why: String, reasons: &mut Vec<String>| {
        level = level.min(to);
        reasons.push(why);
    };
    let good: Vec<&BackupRow> = backups.iter().filter(|b| b.state.is_good()).collect();
    let last_good = good.first().map(|b| (*b).clone());
    match (&last_good, entry.rpo) {
        (None, _) => lower(Level::Red, "no good backup".into(), &mut reasons),
        (Some(b), Some(rpo)) => {
            let age = now - b.finished_at.unwrap_or(b.started_at);
            if age > rpo.as_secs() as i64 {
                lower(
                    Level::Red,
                    format!(
                        "last good backup is {} old; RPO is {}",
                        fmt_age(age),
                        fmt_duration(rpo)
                    ),
                    &mut reasons,
                );
            }
        }
        (Some(_), None) => lower(Level::Amber, "no RPO target set".into(), &mut reasons),
    }
    let last_verified = good
        .iter()
        .filter(|b| b.verified_at.is_some())
        .max_by_key(|b| b.verified_at)
        .map(|b| (*b).clone());
    match &last_verified {
        None if last_good.is_some() => {
            lower(Level::Amber, "never verified by a restore".into(), &mut reasons)
        }
        None => {}
        Some(v) if v.verify_ok == Some(false) => lower(
            Level::Red,
            format!(
                "the last verification failed: {}",
                v.verify_error.clone().unwrap_or_default()
            ),
            &mut reasons,
        ),
        Some(v) => {
            let age = now - v.verified_at.unwrap_or(0);
            if age > verify_window.as_secs() as i64 {
                lower(
                    Level::Amber,
                    format!(
                        "last verified {} ago (window {})",
                        fmt_age(age),
                        fmt_duration(verify_window)
                    ),
                    &mut reasons,
                );
            }
            match (v.restore_ms, entry.rto) {
                (Some(ms), Some(rto)) if ms / 1000 > rto.as_secs() as i64 => lower(
                    Level::Red,
                    format!(
                        "a restore takes {}; RTO is {}",
                        fmt_age(ms / 1000),
                        fmt_duration(rto)
                    ),
                    &mut reasons,
                ),
                (_, None) => lower(Level::Amber, "no RTO target set".into(), &mut reasons),
                _ => {}
            }
        }
    }
    BackupHealth {
        level,
        reasons,
        last_good,
        last_verified,
    }
}
