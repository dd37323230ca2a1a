//! WAL archiving as the server reports it, judged for the page and for
//! the RPO; the restorable window; pgBackRest's retention settings.

use crate::engine::pitr::Facts;
use crate::engine::pitr::pgbackrest::{Info, segment_parts};
use crate::service::backup::status::ArchivingState;

/// WAL archiving as the page and the API show it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Archiving {
    pub ok: bool,
    pub failing: bool,
    pub last_archived_at: Option<i64>,
    pub last_archived_wal: Option<String>,
    pub message: String,
    pub archive_mode: String,
    pub archive_command: String,
    pub failed_count: i64,
}

/// The restorable window: from the oldest backup's consistency point to
/// the newest archived WAL (Unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

/// The `repo*-retention-*` lines of pgBackRest's config (given, or its default places).
pub(super) fn retention_of(config: Option<&str>) -> Vec<String> {
    let candidates: Vec<&str> = match config {
        Some(c) => vec![c],
        None => vec!["/etc/pgbackrest/pgbackrest.conf", "/etc/pgbackrest.conf"],
    };
    candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|text| {
            text.lines()
                .map(str::trim)
                .filter(|l| l.starts_with("repo") && l.contains("-retention-"))
                .map(|l| l.chars().take(100).collect())
                .collect()
        })
        .unwrap_or_default()
}

/// Archiving as judged for the RPO: behind (since the last archived
/// segment) when finished segments wait; else working, with unarchived
/// WAL since the last archived segment when the segment being written
/// holds more than its page header.
pub(super) fn archiving_state(f: &Facts) -> ArchivingState {
    let a = archiving_of(&Ok(f.clone()));
    if !a.ok {
        return ArchivingState::Broken(a.message);
    }
    let size = f.wal_segment_size.max(1024 * 1024);
    // A backup history file ("….00000028.backup") names its segment first.
    let number = |w: &Option<String>| {
        w.as_deref()
            .and_then(|w| segment_parts(w.get(..24)?, size))
            .map(|(_, n)| n)
    };
    let done = number(&f.last_archived_wal);
    let writing = number(&f.current_wal);
    match (done, writing, f.last_archived_at) {
        (Some(done), Some(now_at), Some(since)) if now_at > done + 1 => ArchivingState::Behind { since },
        (Some(_), Some(_), Some(since)) => ArchivingState::Working {
            unarchived_since: f
                .current_offset
                .is_some_and(|o| o > WAL_PAGE_HEADER)
                .then_some(since),
            archive_timeout_s: f.archive_timeout_s,
        },
        _ => ArchivingState::Working {
            unarchived_since: None,
            archive_timeout_s: f.archive_timeout_s,
        },
    }
}

/// The long page header at the start of every WAL segment
/// (SizeOfXLogLongPHD): an offset past it means WAL was written there.
const WAL_PAGE_HEADER: i64 = 40;

/// Archiving as the page shows it.
pub(super) fn archiving_of(facts: &Result<Facts, String>) -> Archiving {
    let f = match facts {
        Ok(f) => f,
        Err(e) => {
            return Archiving {
                message: format!("cannot read the server's archiver: {e}"),
                ..Archiving::default()
            };
        }
    };
    let base = Archiving {
        last_archived_at: f.last_archived_at,
        last_archived_wal: f.last_archived_wal.clone(),
        archive_mode: f.archive_mode.clone(),
        archive_command: f.archive_command.clone(),
        failed_count: f.failed_count,
        ..Archiving::default()
    };
    if !f.archiving_on() {
        return Archiving {
            message: format!(
                "WAL archiving is off (archive_mode={}{}): point-in-time recovery cannot reach past the last backup",
                f.archive_mode,
                if f.archive_command.trim().is_empty() {
                    ", no archive_command"
                } else {
                    ""
                }
            ),
            ..base
        };
    }
    if let Some(at) = f.last_failed_at {
        return Archiving {
            failing: true,
            message: format!(
                "WAL archiving is failing: {} could not be archived ({} ago, {} failures so far); check archive_command and pgBackRest's log",
                f.last_failed_wal.clone().unwrap_or_else(|| "a segment".into()),
                crate::format::fmt_age(f.now - at),
                f.failed_count
            ),
            ..base
        };
    }
    match (&f.last_archived_wal, f.last_archived_at) {
        (Some(wal), Some(at)) => Archiving {
            ok: true,
            message: format!(
                "archiving works: {wal} archived {} ago",
                crate::format::fmt_age(f.now - at)
            ),
            ..base
        },
        _ => Archiving {
            message: "no WAL archived yet: run check to archive one".into(),
            ..base
        },
    }
}

/// From the oldest good backup's end to the newest archived WAL (or the
/// newest backup's end, when nothing was archived after it).
pub(super) fn window_of(info: &Info, archiving: &Archiving) -> Option<Window> {
    let good: Vec<_> = info.backups.iter().filter(|b| !b.error).collect();
    let from = good.iter().map(|b| b.finished_at).min()?;
    let newest = good.iter().map(|b| b.finished_at).max().unwrap_or(from);
    let to = archiving.last_archived_at.unwrap_or(newest).max(newest);
    Some(Window { from, to })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server archiving to pgBackRest, writing into segment 6 after 5 was archived at t=1000.
    fn facts(current: &str, offset: i64) -> Facts {
        Facts {
            major: 15,
            wal_segment_size: 16 * 1024 * 1024,
            archive_mode: "on".into(),
            archive_command: "pgbackrest --stanza=main archive-push %p".into(),
            archived_count: 5,
            last_archived_wal: Some("000000010000000000000005".into()),
            last_archived_at: Some(1_000),
            now: 1_100,
            current_wal: Some(current.into()),
            current_offset: Some(offset),
            ..Facts::default()
        }
    }

    #[test]
    fn unarchived_writes_finished_segments_and_failures_are_told_apart() {
        // Nothing written since the switch: nothing at risk.
        assert_eq!(
            archiving_state(&facts("000000010000000000000006", 40)),
            ArchivingState::Working {
                unarchived_since: None,
                archive_timeout_s: 0
            }
        );
        // Writes wait in the segment being written.
        assert_eq!(
            archiving_state(&facts("000000010000000000000006", 8192)),
            ArchivingState::Working {
                unarchived_since: Some(1_000),
                archive_timeout_s: 0
            }
        );
        // Finished segments wait: behind.
        assert_eq!(
            archiving_state(&facts("000000010000000000000009", 100)),
            ArchivingState::Behind { since: 1_000 }
        );
        // A backup history file names its segment first.
        let mut f = facts("000000010000000000000006", 40);
        f.last_archived_wal = Some("000000010000000000000005.00000028.backup".into());
        assert!(matches!(
            archiving_state(&f),
            ArchivingState::Working {
                unarchived_since: None,
                ..
            }
        ));
        // A failure newer than the last success: broken, with why.
        let mut f = facts("000000010000000000000006", 40);
        f.last_failed_at = Some(1_050);
        f.last_failed_wal = Some("000000010000000000000006".into());
        f.failed_count = 3;
        match archiving_state(&f) {
            ArchivingState::Broken(why) => assert!(why.contains("failing"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Off.
        let mut f = facts("000000010000000000000006", 40);
        f.archive_mode = "off".into();
        assert!(matches!(archiving_state(&f), ArchivingState::Broken(_)));
    }
}
