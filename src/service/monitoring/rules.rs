//! The built-in alert rules: one entry per rule with its defaults and one
//! function that looks at the facts of a sample and says whether the rule
//! is breached. Thresholds and "for" durations are set per database
//! (`alert_rules`); a rule without a row uses the defaults here.

use std::time::Duration;

use crate::engine::metrics::Reading;
use crate::format::{fmt_age, fmt_bytes, fmt_duration};
use crate::service::backup::status;
use crate::service::registry::DbEntry;
use crate::store::backups::BackupRow;

/// What a threshold is measured in, for forms and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// No threshold: the rule's condition is yes or no.
    None,
    Seconds,
    Percent,
    Count,
    BytesPerDay,
}

impl Unit {
    pub fn label(self) -> &'static str {
        match self {
            Unit::None => "",
            Unit::Seconds => "seconds",
            Unit::Percent => "% of max_connections",
            Unit::Count => "transactions",
            Unit::BytesPerDay => "bytes per day",
        }
    }

    pub fn show(self, v: f64) -> String {
        match self {
            Unit::None => String::new(),
            Unit::Seconds => fmt_age(v as i64),
            Unit::Percent => format!("{v:.0}%"),
            Unit::Count => format!("{v:.0}"),
            Unit::BytesPerDay => format!("{}/day", fmt_bytes(v as i64)),
        }
    }
}

/// One rule of the catalogue.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub key: &'static str,
    pub title: &'static str,
    pub unit: Unit,
    /// Why it matters, shown beside the settings.
    pub why: &'static str,
    pub default_for: i64,
}

pub const RULES: &[Rule] = &[
    Rule {
        key: "unreachable",
        title: "Database unreachable",
        unit: Unit::None,
        why: "the panel cannot connect or the server does not answer",
        default_for: 60,
    },
    Rule {
        key: "backup_rpo",
        title: "Last good backup older than the RPO",
        unit: Unit::None,
        why: "losing the database now would lose more than the RPO allows (needs an RPO target)",
        default_for: 0,
    },
    Rule {
        key: "verify_stale",
        title: "Restore verification failing or stale",
        unit: Unit::Seconds,
        why: "a backup nobody has restored is a hope, not a backup",
        default_for: 0,
    },
    Rule {
        key: "long_query",
        title: "Query running longer than",
        unit: Unit::Seconds,
        why: "long queries hold locks and snapshots and keep vacuum from cleaning up",
        default_for: 0,
    },
    Rule {
        key: "idle_in_transaction",
        title: "Idle in transaction longer than",
        unit: Unit::Seconds,
        why: "an open transaction doing nothing holds its locks and blocks vacuum",
        default_for: 0,
    },
    Rule {
        key: "connections",
        title: "Connections above",
        unit: Unit::Percent,
        why: "at max_connections new clients are refused",
        default_for: 120,
    },
    Rule {
        key: "replication_lag",
        title: "Replication lag above",
        unit: Unit::Seconds,
        why: "a lagging replica serves stale reads and loses data on failover",
        default_for: 60,
    },
    Rule {
        key: "xid_age",
        title: "Transaction ID age above",
        unit: Unit::Count,
        why: "at about 2 billion PostgreSQL stops accepting writes to prevent wraparound",
        default_for: 0,
    },
    Rule {
        key: "wal_archiving",
        title: "WAL archiving failing",
        unit: Unit::None,
        why: "without archived WAL there is no point-in-time recovery and pg_wal fills the disk",
        default_for: 0,
    },
    Rule {
        key: "size_growth",
        title: "Database growing faster than",
        unit: Unit::BytesPerDay,
        why: "a sudden growth fills disks; measured over the last day of samples",
        default_for: 0,
    },
];

pub fn find(key: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.key == key)
}

/// A rule's settings on one database.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    pub enabled: bool,
    pub threshold: Option<f64>,
    pub for_seconds: i64,
}

/// The defaults, some from the panel's configuration.
pub fn default_setting(rule: &Rule, long_query_alert: Duration, verify_window: Duration) -> Setting {
    let threshold = match rule.key {
        "verify_stale" => Some(verify_window.as_secs_f64()),
        "long_query" => Some(long_query_alert.as_secs_f64()),
        "idle_in_transaction" => Some(60.0),
        "connections" => Some(80.0),
        "replication_lag" => Some(60.0),
        "xid_age" => Some(1_000_000_000.0),
        "size_growth" => Some(10.0 * 1024.0 * 1024.0 * 1024.0),
        _ => None,
    };
    Setting {
        enabled: true,
        threshold,
        for_seconds: rule.default_for,
    }
}

/// What the panel knows about a database at one sample.
pub struct Facts<'a> {
    pub now: i64,
    /// The reading, or why there is none (the database did not answer).
    pub reading: Result<&'a Reading, &'a str>,
    /// Size growth extrapolated to a day, when there is enough history.
    pub growth_per_day: Option<f64>,
    pub entry: &'a DbEntry,
    /// Backups newest first; `None` if the catalog could not be read.
    pub backups: Option<&'a [BackupRow]>,
}

/// A rule's verdict on one sample.
#[derive(Clone, Debug, PartialEq)]
pub enum Observed {
    /// Nothing to judge by (no figure, or the database is down).
    Unknown,
    Clear,
    Breach {
        value: Option<f64>,
        /// What happened, in words fit for a chat channel: never SQL text.
        message: String,
        /// The statement behind it, for the panel's own pages only (SQL
        /// can carry literals such as passwords).
        query: Option<String>,
    },
}

fn breach(value: Option<f64>, message: String) -> Observed {
    Observed::Breach {
        value,
        message,
        query: None,
    }
}

/// The same verdict, naming the statement behind it.
fn with_query(observed: Observed, sql: &str) -> Observed {
    match observed {
        Observed::Breach { value, message, .. } => Observed::Breach {
            value,
            message,
            query: Some(sql.to_string()).filter(|q| !q.is_empty()),
        },
        other => other,
    }
}

/// `value` against `threshold`: a breach with `message` above it.
fn above(value: Option<f64>, threshold: Option<f64>, message: impl FnOnce(f64) -> String) -> Observed {
    match (value, threshold) {
        (Some(v), Some(t)) if v > t => breach(Some(v), message(v)),
        (Some(_), _) => Observed::Clear,
        (None, _) => Observed::Unknown,
    }
}

/// Judge one rule.
pub fn observe(rule: &Rule, setting: &Setting, facts: &Facts<'_>) -> Observed {
    let t = setting.threshold;
    if rule.key == "unreachable" {
        return match facts.reading {
            Ok(_) => Observed::Clear,
            Err(why) => breach(None, format!("{} does not answer: {why}", facts.entry.name)),
        };
    }
    if matches!(rule.key, "backup_rpo" | "verify_stale") {
        return match facts.backups {
            Some(backups) => observe_backups(rule, t, facts, backups),
            None => Observed::Unknown,
        };
    }
    let Ok(r) = facts.reading else {
        return Observed::Unknown;
    };
    match rule.key {
        "long_query" => match &r.longest_query {
            Some(q) => with_query(
                above(Some(q.seconds), t, |v| {
                    format!("pid {} has been running a query for {}", q.pid, fmt_age(v as i64))
                }),
                &q.query,
            ),
            None => Observed::Clear,
        },
        "idle_in_transaction" => match &r.longest_idle_xact {
            Some(q) => with_query(
                above(Some(q.seconds), t, |v| {
                    format!(
                        "pid {} has been idle in transaction for {}",
                        q.pid,
                        fmt_age(v as i64)
                    )
                }),
                &q.query,
            ),
            None => Observed::Clear,
        },
        "connections" => {
            let pct = r
                .connections
                .zip(r.max_connections)
                .filter(|(_, max)| *max > 0.0)
                .map(|(c, max)| c / max * 100.0);
            above(pct, t, |v| {
                format!(
                    "{v:.0}% of max_connections in use ({} of {})",
                    r.connections.unwrap_or(0.0),
                    r.max_connections.unwrap_or(0.0)
                )
            })
        }
        "replication_lag" => {
            let worst = r.replicas.iter().max_by(|a, b| a.lag_s.total_cmp(&b.lag_s));
            match worst {
                Some(w) => above(Some(w.lag_s), t, |v| {
                    format!("replica {} is {} behind", w.name, fmt_age(v as i64))
                }),
                None => Observed::Clear,
            }
        }
        "xid_age" => above(r.xid_age, t, |v| {
            format!("the oldest unfrozen transaction ID is {v:.0} transactions old; freeze before 2 billion")
        }),
        "wal_archiving" => match r.archive_failing {
            Some(true) => breach(
                Some(1.0),
                "the last WAL archiving attempt failed (pg_stat_archiver)".into(),
            ),
            Some(false) => Observed::Clear,
            None => Observed::Unknown,
        },
        "size_growth" => above(facts.growth_per_day, t, |v| {
            format!("growing by {}/day", fmt_bytes(v as i64))
        }),
        _ => Observed::Unknown,
    }
}

fn observe_backups(
    rule: &Rule,
    threshold: Option<f64>,
    facts: &Facts<'_>,
    backups: &[BackupRow],
) -> Observed {
    // The backups tab's judgement picks the last good and the last verified
    // backup; these rules hold them to their own thresholds.
    // (Its level and reasons, with their own window, are not used here.)
    let health = status::judge(facts.entry, backups, facts.now, Duration::ZERO);
    if rule.key == "backup_rpo" {
        let Some(rpo) = facts.entry.rpo else {
            return Observed::Clear;
        };
        return match &health.last_good {
            None => breach(None, format!("no good backup; RPO is {}", fmt_duration(rpo))),
            Some(b) => {
                let age = facts.now - b.finished_at.unwrap_or(b.started_at);
                if age > rpo.as_secs() as i64 {
                    breach(
                        Some(age as f64),
                        format!(
                            "last good backup is {} old; RPO is {}",
                            fmt_age(age),
                            fmt_duration(rpo)
                        ),
                    )
                } else {
                    Observed::Clear
                }
            }
        };
    }
    // verify_stale: the newest verification failed, or none passed within
    // the threshold (counted from the first good backup when never verified).
    let Some(oldest_good) = backups.iter().rfind(|b| b.state.is_good()) else {
        return Observed::Clear;
    };
    let window = threshold.unwrap_or(f64::MAX);
    let last = health.last_verified.as_ref();
    match last {
        Some(v) if v.verify_ok == Some(false) => breach(
            None,
            format!(
                "the last restore verification failed: {}",
                v.verify_error.clone().unwrap_or_default()
            ),
        ),
        Some(v) => {
            let age = facts.now - v.verified_at.unwrap_or(0);
            if age as f64 > window {
                breach(
                    Some(age as f64),
                    format!("no restore verification for {}", fmt_age(age)),
                )
            } else {
                Observed::Clear
            }
        }
        None => {
            let age = facts.now - oldest_good.finished_at.unwrap_or(oldest_good.started_at);
            if age as f64 > window {
                breach(
                    Some(age as f64),
                    format!(
                        "backups of {} have never been verified by a restore",
                        fmt_age(age)
                    ),
                )
            } else {
                Observed::Clear
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DatabaseName;
    use crate::engine::EngineKind;
    use crate::engine::metrics::Replica;
    use crate::service::registry::{Schedules, Source};

    fn entry(rpo: Option<u64>) -> DbEntry {
        DbEntry {
            name: DatabaseName::parse("orders").unwrap(),
            engine: EngineKind::Postgres,
            url_redacted: String::new(),
            migrations_dir: None,
            rpo: rpo.map(Duration::from_secs),
            rto: None,
            schedules: Schedules::default(),
            plan: Default::default(),
            source: Source::Panel,
        }
    }

    fn backup(finished_at: i64, verified: Option<(i64, bool)>) -> BackupRow {
        BackupRow {
            id: 1,
            database_name: "orders".into(),
            job_id: None,
            state: crate::domain::BackupState::Good,
            engine: "postgres".into(),
            format: String::new(),
            compression: String::new(),
            location: String::new(),
            bytes: Some(1),
            sha256: None,
            started_at: finished_at - 10,
            finished_at: Some(finished_at),
            duration_ms: None,
            tool_version: String::new(),
            server_version: String::new(),
            table_counts: "{}".into(),
            error: None,
            verified_at: verified.map(|v| v.0),
            verify_ok: verified.map(|v| v.1),
            verify_error: verified.filter(|v| !v.1).map(|_| "count mismatch".into()),
            restore_ms: None,
        }
    }

    fn judge(key: &str, threshold: Option<f64>, facts: &Facts<'_>) -> Observed {
        let rule = find(key).unwrap();
        let setting = Setting {
            enabled: true,
            threshold,
            for_seconds: 0,
        };
        observe(rule, &setting, facts)
    }

    fn is_breach(o: &Observed) -> bool {
        matches!(o, Observed::Breach { .. })
    }

    const NOW: i64 = 1_000_000;

    #[test]
    fn backups_are_judged_against_the_rpo_and_the_verification_window() {
        let reading = Reading::default();
        let with = |e: &DbEntry, b: &[BackupRow], f: &dyn Fn(&Facts<'_>) -> Observed| {
            let facts = Facts {
                now: NOW,
                reading: Ok(&reading),
                growth_per_day: None,
                entry: e,
                backups: Some(b),
            };
            f(&facts)
        };
        let rpo = |f: &Facts<'_>| judge("backup_rpo", None, f);
        // No RPO: nothing to judge against.
        assert_eq!(with(&entry(None), &[], &rpo), Observed::Clear);
        assert!(
            is_breach(&with(&entry(Some(3600)), &[], &rpo)),
            "no good backup at all"
        );
        assert!(is_breach(&with(
            &entry(Some(3600)),
            &[backup(NOW - 7200, None)],
            &rpo
        )));
        assert_eq!(
            with(&entry(Some(3600)), &[backup(NOW - 600, None)], &rpo),
            Observed::Clear
        );

        let stale = |f: &Facts<'_>| judge("verify_stale", Some(86_400.0), f);
        let e = entry(None);
        assert_eq!(with(&e, &[], &stale), Observed::Clear, "nothing to verify yet");
        assert_eq!(
            with(&e, &[backup(NOW - 600, None)], &stale),
            Observed::Clear,
            "a young backup"
        );
        assert!(
            is_breach(&with(&e, &[backup(NOW - 2 * 86_400, None)], &stale)),
            "never verified"
        );
        assert!(
            is_breach(&with(&e, &[backup(NOW - 600, Some((NOW - 60, false)))], &stale)),
            "failed"
        );
        assert_eq!(
            with(&e, &[backup(NOW - 600, Some((NOW - 60, true)))], &stale),
            Observed::Clear
        );
        assert!(is_breach(&with(
            &e,
            &[backup(NOW - 9 * 86_400, Some((NOW - 8 * 86_400, true)))],
            &stale
        )));
        // The catalog could not be read: no verdict either way.
        let facts = Facts {
            now: NOW,
            reading: Ok(&reading),
            growth_per_day: None,
            entry: &e,
            backups: None,
        };
        assert_eq!(judge("backup_rpo", None, &facts), Observed::Unknown);
    }

    #[test]
    fn live_rules_read_the_sample_and_say_unknown_when_the_database_is_down() {
        let e = entry(None);
        let reading = Reading {
            connections: Some(90.0),
            max_connections: Some(100.0),
            replicas: vec![
                Replica {
                    name: "a".into(),
                    lag_s: 5.0,
                },
                Replica {
                    name: "b".into(),
                    lag_s: 120.0,
                },
            ],
            xid_age: Some(10.0),
            archive_failing: Some(true),
            ..Reading::default()
        };
        let facts = Facts {
            now: NOW,
            reading: Ok(&reading),
            growth_per_day: Some(2e9),
            entry: &e,
            backups: Some(&[]),
        };
        match judge("connections", Some(80.0), &facts) {
            Observed::Breach { value, message, .. } => {
                assert_eq!(value, Some(90.0));
                assert!(message.contains("90 of 100"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(judge("connections", Some(95.0), &facts), Observed::Clear);
        match judge("replication_lag", Some(60.0), &facts) {
            Observed::Breach { message, .. } => assert!(message.contains("replica b"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(judge("xid_age", Some(1e9), &facts), Observed::Clear);
        assert!(is_breach(&judge("wal_archiving", None, &facts)));
        assert!(is_breach(&judge("size_growth", Some(1e9), &facts)));
        assert_eq!(
            judge("long_query", Some(1.0), &facts),
            Observed::Clear,
            "nothing running"
        );
        assert_eq!(judge("unreachable", None, &facts), Observed::Clear);

        let down = Facts {
            now: NOW,
            reading: Err("connection refused"),
            growth_per_day: None,
            entry: &e,
            backups: Some(&[]),
        };
        assert!(is_breach(&judge("unreachable", None, &down)));
        for key in [
            "long_query",
            "connections",
            "replication_lag",
            "xid_age",
            "wal_archiving",
        ] {
            assert_eq!(judge(key, Some(1.0), &down), Observed::Unknown, "{key}");
        }
    }
}
