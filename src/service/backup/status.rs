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

/// What point-in-time recovery adds to the judgement, for a database with
/// a pgBackRest stanza: how its WAL archiving does, its newest physical
/// backup, and its last recovery drill.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PitrFacts {
    /// `None` while unknown (the server was not read yet).
    pub archiving: Option<ArchivingState>,
    /// When the newest physical backup finished (Unix seconds).
    pub newest_physical: Option<i64>,
    /// When the server last archived a WAL segment (Unix seconds).
    pub last_archived_at: Option<i64>,
    pub last_drill: Option<Drill>,
}

/// WAL archiving as judged from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchivingState {
    /// Every finished segment is archived. `unarchived_since`: WAL written
    /// after the last archived segment (archived then, Unix seconds) waits
    /// in the segment being written, archived when it fills or when
    /// `archive_timeout_s` (0: never) passes.
    Working {
        unarchived_since: Option<i64>,
        archive_timeout_s: i64,
    },
    /// Off, failing, or stalled, with why.
    Broken(String),
    /// Finished segments wait unarchived since `since` (Unix seconds).
    Behind { since: i64 },
}

/// A recovery drill's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drill {
    pub at: i64,
    pub ok: bool,
    pub rto_s: Option<i64>,
    pub error: String,
}

/// The recovery point now, as a DBA reads it: how much would be lost if
/// the server were lost now ("4s of WAL", "2h since the last backup").
pub fn rpo_now(health: &BackupHealth, pitr: Option<&PitrFacts>, now: i64) -> String {
    match pitr.and_then(|p| p.archiving.as_ref()) {
        Some(ArchivingState::Working {
            unarchived_since: None,
            ..
        }) => return "0s: all WAL archived".into(),
        Some(ArchivingState::Working {
            unarchived_since: Some(since),
            ..
        }) => return format!("{} of WAL", fmt_age(now - since)),
        Some(ArchivingState::Behind { since }) => {
            return format!("{} of WAL (archiving behind)", fmt_age(now - since));
        }
        _ => {}
    }
    let newest = [
        health
            .last_good
            .as_ref()
            .map(|b| b.finished_at.unwrap_or(b.started_at)),
        pitr.and_then(|p| p.newest_physical),
    ]
    .into_iter()
    .flatten()
    .max();
    match newest {
        Some(at) => format!("{} since the last backup", fmt_age(now - at)),
        None => "everything".into(),
    }
}

/// The recovery time as measured: the last drill's, else the last
/// verification's restore.
pub fn rto_now(health: &BackupHealth, pitr: Option<&PitrFacts>) -> String {
    match pitr.and_then(|p| p.last_drill.as_ref()) {
        Some(d) if d.ok => format!("{} (drill)", d.rto_s.map(fmt_age).unwrap_or_default()),
        Some(_) => "drill failed".into(),
        None => match health.last_verified.as_ref().and_then(|v| v.restore_ms) {
            Some(ms) => format!("{} (restore)", fmt_age(ms / 1000)),
            None => "not measured".into(),
        },
    }
}

/// `backups` newest first (any state).
pub fn judge(entry: Targets, backups: &[BackupRow], now: i64, verify_window: Duration) -> BackupHealth {
    judge_with(entry, backups, now, verify_window, None)
}

/// [`judge`], and for a database with point-in-time recovery: the RPO from
/// the WAL archive while archiving works (else from the newest backup,
/// logical or physical), a failing drill red, and the RTO from the last
/// drill's measured time.
pub fn judge_with(
    entry: Targets,
    backups: &[BackupRow],
    now: i64,
    verify_window: Duration,
    pitr: Option<&PitrFacts>,
) -> BackupHealth {
    let Some(pitr) = pitr else {
        return judge_logical(entry, backups, now, verify_window);
    };
    let mut level = Level::Green;
    let mut reasons = Vec::new();
    let mut lower = |to: Level, why: String, reasons: &mut Vec<String>| {
        level = level.min(to);
        reasons.push(why);
    };
    let good: Vec<&BackupRow> = backups.iter().filter(|b| b.state.is_good()).collect();
    let last_good = good.first().map(|b| (*b).clone());
    let newest = [
        last_good.as_ref().map(|b| b.finished_at.unwrap_or(b.started_at)),
        pitr.newest_physical,
    ]
    .into_iter()
    .flatten()
    .max();
    let rpo = entry.rpo;
    match (&pitr.archiving, newest) {
        (Some(ArchivingState::Broken(why)), _) => lower(Level::Red, why.clone(), &mut reasons),
        (_, None) => lower(
            Level::Red,
            "no good backup (logical or physical)".into(),
            &mut reasons,
        ),
        (Some(ArchivingState::Behind { since }), _) => {
            if let Some(rpo) = rpo
                && now - since > rpo.as_secs() as i64
            {
                lower(
                    Level::Red,
                    format!(
                        "WAL archiving is stalled: finished WAL has waited {}; RPO is {}",
                        fmt_age(now - since),
                        fmt_duration(rpo)
                    ),
                    &mut reasons,
                );
            }
        }
        (
            Some(ArchivingState::Working {
                unarchived_since: Some(since),
                archive_timeout_s,
            }),
            _,
        ) => {
            if let Some(rpo) = rpo
                && now - since > rpo.as_secs() as i64
            {
                let advice = if *archive_timeout_s == 0 || *archive_timeout_s > rpo.as_secs() as i64 {
                    format!(
                        " (archive_timeout is {}: set it below the RPO)",
                        if *archive_timeout_s == 0 {
                            "off".to_string()
                        } else {
                            fmt_age(*archive_timeout_s)
                        }
                    )
                } else {
                    String::new()
                };
                lower(
                    Level::Red,
                    format!(
                        "unarchived WAL: the segment being written holds up to {} of changes and is archived only when it fills; RPO is {}{advice}",
                        fmt_age(now - since),
                        fmt_duration(rpo)
                    ),
                    &mut reasons,
                );
            }
        }
        (Some(ArchivingState::Working { .. }), _) => {}
        (None, Some(at)) => {
            if let Some(rpo) = rpo
                && now - at > rpo.as_secs() as i64
            {
                lower(
                    Level::Red,
                    format!(
                        "archiving state unknown and the newest backup is {} old; RPO is {}",
                        fmt_age(now - at),
                        fmt_duration(rpo)
                    ),
                    &mut reasons,
                );
            }
        }
    }
    if rpo.is_none() {
        lower(Level::Amber, "no RPO target set".into(), &mut reasons);
    }
    let last_verified = good
        .iter()
        .filter(|b| b.verified_at.is_some())
        .max_by_key(|b| b.verified_at)
        .map(|b| (*b).clone());
    match &pitr.last_drill {
        Some(d) if !d.ok => lower(
            Level::Red,
            format!("the last recovery drill failed: {}", d.error),
            &mut reasons,
        ),
        Some(d) => {
            if now - d.at > verify_window.as_secs() as i64 {
                lower(
                    Level::Amber,
                    format!(
                        "last recovery drill {} ago (window {})",
                        fmt_age(now - d.at),
                        fmt_duration(verify_window)
                    ),
                    &mut reasons,
                );
            }
            match (d.rto_s, entry.rto) {
                (Some(took), Some(rto)) if took > rto.as_secs() as i64 => lower(
                    Level::Red,
                    format!(
                        "a recovery drill took {}; RTO is {}",
                        fmt_age(took),
                        fmt_duration(rto)
                    ),
                    &mut reasons,
                ),
                (_, None) => lower(Level::Amber, "no RTO target set".into(), &mut reasons),
                _ => {}
            }
        }
        None => lower(
            Level::Amber,
            "no recovery drill yet: the RTO is not measured".into(),
            &mut reasons,
        ),
    }
    BackupHealth {
        level,
        reasons,
        last_good,
        last_verified,
    }
}

fn judge_logical(entry: Targets, backups: &[BackupRow], now: i64, verify_window: Duration) -> BackupHealth {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Targets {
        Targets {
            rpo: Some(Duration::from_secs(900)),
            rto: Some(Duration::from_secs(600)),
        }
    }

    fn drill(ok: bool, rto_s: i64) -> Drill {
        Drill {
            at: 1_000,
            ok,
            rto_s: Some(rto_s),
            error: if ok {
                String::new()
            } else {
                "proof query returned false".into()
            },
        }
    }

    #[test]
    fn pitr_judges_the_rpo_from_the_archive_and_the_rto_from_the_drill() {
        let facts = PitrFacts {
            archiving: Some(ArchivingState::Working {
                unarchived_since: None,
                archive_timeout_s: 0,
            }),
            newest_physical: Some(0),
            last_archived_at: Some(0),
            last_drill: Some(drill(true, 30)),
        };
        // The physical backup is a day old, but the archive is current.
        let h = judge_with(
            targets(),
            &[],
            86_400,
            Duration::from_secs(7 * 86_400),
            Some(&facts),
        );
        assert_eq!(h.level, Level::Green, "{:?}", h.reasons);

        let slow = PitrFacts {
            last_drill: Some(drill(true, 3_600)),
            ..facts.clone()
        };
        let h = judge_with(targets(), &[], 2_000, Duration::from_secs(86_400), Some(&slow));
        assert_eq!(h.level, Level::Red);
        assert!(h.reasons[0].contains("recovery drill took 1h"), "{:?}", h.reasons);

        let failed = PitrFacts {
            last_drill: Some(drill(false, 30)),
            ..facts.clone()
        };
        let h = judge_with(targets(), &[], 2_000, Duration::from_secs(86_400), Some(&failed));
        assert_eq!(h.level, Level::Red);
        assert!(h.reasons[0].contains("proof query returned false"));

        // WAL waiting in the segment being written longer than the RPO.
        let waiting = PitrFacts {
            archiving: Some(ArchivingState::Working {
                unarchived_since: Some(0),
                archive_timeout_s: 0,
            }),
            ..facts.clone()
        };
        let h = judge_with(targets(), &[], 1_000, Duration::from_secs(86_400), Some(&waiting));
        assert_eq!(h.level, Level::Red, "{:?}", h.reasons);
        assert!(h.reasons[0].contains("archive_timeout is off"), "{:?}", h.reasons);
        assert_eq!(rpo_now(&h, Some(&waiting), 1_000), "16m of WAL");
        let h = judge_with(targets(), &[], 600, Duration::from_secs(86_400), Some(&waiting));
        assert_eq!(h.level, Level::Green, "{:?}", h.reasons);
        assert_eq!(rpo_now(&h, Some(&facts), 600), "0s: all WAL archived");

        let broken = PitrFacts {
            archiving: Some(ArchivingState::Broken("WAL archiving is failing: …".into())),
            ..facts
        };
        let h = judge_with(targets(), &[], 2_000, Duration::from_secs(86_400), Some(&broken));
        assert_eq!(h.level, Level::Red);
        assert!(h.reasons[0].starts_with("WAL archiving is failing"));
    }
}
