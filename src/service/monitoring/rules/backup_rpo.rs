//! `backup_rpo`: the last good backup is older than the database's RPO.

use std::time::Duration;

use super::{Facts, Observed, Rule, RuleKey, Setting, breach};
use crate::format::{fmt_age, fmt_duration};
use crate::service::backup::status;

pub struct BackupRpo;

impl Rule for BackupRpo {
    fn key(&self) -> RuleKey {
        RuleKey::BackupRpo
    }

    fn title(&self) -> &'static str {
        "Last good backup older than the RPO"
    }

    fn why(&self) -> &'static str {
        "losing the database now would lose more than the RPO allows (needs an RPO target)"
    }

    fn observe(&self, _setting: &Setting, facts: &Facts<'_>) -> Observed {
        let Some(backups) = facts.backups else {
            return Observed::Unknown;
        };
        // No RPO: nothing to hold the backups to.
        let Some(rpo) = facts.entry.rpo else {
            return Observed::Clear;
        };
        // The backups tab's judgement picks the last good backup; its level
        // and reasons, with their own window, are not used here.
        let health = status::judge(facts.entry.targets(), backups, facts.now, Duration::ZERO);
        match &health.last_good {
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{self, NOW, backup, entry, is_breach, judge};
    use super::*;
    use crate::engine::metrics::Reading;
    use crate::store::backups::BackupRow;

    fn rpo(e: &crate::service::registry::DbEntry, backups: Option<&[BackupRow]>) -> Observed {
        let reading = Reading::default();
        judge(RuleKey::BackupRpo, None, &fixtures::facts(e, &reading, backups))
    }

    #[test]
    fn the_last_good_backup_is_held_to_the_rpo() {
        // No RPO: nothing to judge against.
        assert_eq!(rpo(&entry(None), Some(&[])), Observed::Clear);
        let hourly = entry(Some(3600));
        assert!(is_breach(&rpo(&hourly, Some(&[]))), "no good backup at all");
        assert!(is_breach(&rpo(&hourly, Some(&[backup(NOW - 7200, None)]))));
        assert_eq!(rpo(&hourly, Some(&[backup(NOW - 600, None)])), Observed::Clear);
        // The catalog could not be read: no verdict either way.
        assert_eq!(rpo(&hourly, None), Observed::Unknown);
    }
}
