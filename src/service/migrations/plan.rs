//! Files against history: what is applied, what is pending, and drift — an
//! applied migration whose file changed, an applied version whose file is
//! gone, a pending version older than the newest applied one.

use serde::Serialize;

pub use crate::engine::history::Applied;

use super::source::{Migration, Source, Version};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Drift {
    /// The file differs from what was applied.
    ChecksumChanged {
        version: String,
        applied: String,
        now: String,
    },
    /// Applied, but no file has this version any more.
    FileMissing { version: String },
    /// Not applied, yet older than the newest applied version.
    OutOfOrder { version: String, newest_applied: String },
}

impl Drift {
    pub fn message(&self) -> String {
        match self {
            Drift::ChecksumChanged { version, .. } => {
                format!(
                    "version {version} was changed after it was applied: the database does not match the file"
                )
            }
            Drift::FileMissing { version } => {
                format!("version {version} is applied but its file is gone from the migrations directory")
            }
            Drift::OutOfOrder {
                version,
                newest_applied,
            } => {
                format!(
                    "version {version} is pending but older than the newest applied version {newest_applied}"
                )
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Plan<'a> {
    pub pending: Vec<&'a Migration>,
    pub drift: Vec<Drift>,
}

/// Compare `source` with Custodian's own history rows (`applied`). Failed
/// rows count as not applied.
pub fn compare<'a>(source: &'a Source, applied: &[Applied]) -> Plan<'a> {
    let done: Vec<(Version, &Applied)> = applied
        .iter()
        .filter(|a| a.success)
        .filter_map(|a| Version::parse(&a.version).map(|v| (v, a)))
        .collect();
    let newest = done.iter().map(|(v, _)| v).max();
    let mut plan = Plan::default();
    for m in &source.migrations {
        match done.iter().find(|(v, _)| *v == m.version) {
            Some((_, row)) => {
                if let Some(recorded) = row.checksum.as_ref().filter(|c| **c != m.up.checksum) {
                    plan.drift.push(Drift::ChecksumChanged {
                        version: m.version.to_string(),
                        applied: recorded.clone(),
                        now: m.up.checksum.clone(),
                    });
                }
            }
            None => {
                if let Some(newest) = newest.filter(|n| **n > m.version) {
                    plan.drift.push(Drift::OutOfOrder {
                        version: m.version.to_string(),
                        newest_applied: newest.to_string(),
                    });
                }
                plan.pending.push(m);
            }
        }
    }
    for (version, _) in &done {
        if !source.migrations.iter().any(|m| m.version == *version) {
            plan.drift.push(Drift::FileMissing {
                version: version.to_string(),
            });
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::service::migrations::checksum;
    use crate::service::migrations::source::Script;

    fn migration(version: &str, sql: &str) -> Migration {
        Migration {
            version: Version::parse(version).unwrap(),
            description: format!("m{version}"),
            up: Script {
                path: PathBuf::from(format!("V{version}__m.sql")),
                sql: sql.into(),
                checksum: checksum(sql),
            },
            down: None,
        }
    }

    fn applied(version: &str, sql: &str, success: bool) -> Applied {
        Applied {
            version: version.into(),
            description: format!("m{version}"),
            checksum: Some(checksum(sql)),
            applied_by: Some("alice".into()),
            applied_at: Some("2026-11-01T10:00:00Z".into()),
            execution_ms: Some(12),
            success,
            tool: "custodian",
        }
    }

    #[test]
    fn pending_and_every_kind_of_drift() {
        let source = Source {
            migrations: vec![
                migration("1", "SELECT 1;"),
                migration("2", "SELECT 2; -- edited"),
                migration("3", "SELECT 3;"),
                migration("5", "SELECT 5;"),
                migration("10", "SELECT 10;"),
            ],
            problems: vec![],
        };
        let history = [
            applied("1", "SELECT 1;", true),
            applied("2", "SELECT 2;", true),
            applied("4", "SELECT 4;", true),
            applied("5", "SELECT 5;", false),
        ];
        let plan = compare(&source, &history);
        let pending: Vec<&str> = plan.pending.iter().map(|m| m.version.as_str()).collect();
        assert_eq!(pending, ["3", "5", "10"], "a failed apply stays pending");
        assert_eq!(
            plan.drift,
            vec![
                Drift::ChecksumChanged {
                    version: "2".into(),
                    applied: checksum("SELECT 2;"),
                    now: checksum("SELECT 2; -- edited"),
                },
                Drift::OutOfOrder {
                    version: "3".into(),
                    newest_applied: "4".into()
                },
                Drift::FileMissing { version: "4".into() },
            ]
        );
    }

    #[test]
    fn a_clean_history_has_no_drift() {
        let source = Source {
            migrations: vec![migration("1", "SELECT 1;"), migration("2", "SELECT 2;")],
            problems: vec![],
        };
        let plan = compare(&source, &[applied("1", "SELECT 1;", true)]);
        assert!(plan.drift.is_empty());
        assert_eq!(plan.pending.len(), 1);
        let foreign = Applied {
            checksum: None,
            tool: "flyway",
            ..applied("2", "other", true)
        };
        let plan = compare(&source, &[applied("1", "SELECT 1;", true), foreign]);
        assert!(plan.drift.is_empty(), "another tool's checksum is not compared");
        assert!(plan.pending.is_empty());
    }
}
