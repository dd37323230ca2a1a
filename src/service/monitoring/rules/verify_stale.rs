//! `verify_stale`: the newest restore verification failed, or none passed
//! within the threshold (counted from the first good backup when a
//! database was never verified).

use std::time::Duration;

use super::{Facts, Observed, Rule, RuleKey, Setting, Unit, breach};
use crate::format::fmt_age;
use crate::service::backup::status;
use crate::service::monitoring::Settings;

pub struct VerifyStale;

impl Rule for VerifyStale {
    fn key(&self) -> RuleKey {
        RuleKey::VerifyStale
    }

    fn title(&self) -> &'static str {
        "Restore verification failing or stale"
    }

    fn why(&self) -> &'static str {
        "a backup nobody has restored is a hope, not a backup"
    }

    fn unit(&self) -> Unit {
        Unit::Seconds
    }

    fn default_threshold(&self, settings: &Settings) -> Option<f64> {
        Some(settings.verify_window.as_secs_f64())
    }

    fn observe(&self, setting: &Setting, facts: &Facts<'_>) -> Observed {
        let Some(backups) = facts.backups else {
            return Observed::Unknown;
        };
        let Some(oldest_good) = backups.iter().rfind(|b| b.state.is_good()) else {
            return Observed::Clear;
        };
        // The backups tab's judgement picks the last verified backup; this
        // rule holds it to its own threshold.
        let health = status::judge(facts.entry.targets(), backups, facts.now, Duration::ZERO);
        let window = setting.threshold.unwrap_or(f64::MAX);
        match health.last_verified.as_ref() {
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
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{self, NOW, backup, entry, is_breach, judge};
    use super::*;
    use crate::engine::metrics::Reading;
    use crate::store::backups::BackupRow;

    fn stale(backups: Option<&[BackupRow]>) -> Observed {
        let e = entry(None);
        let reading = Reading::default();
        judge(
            RuleKey::VerifyStale,
            Some(86_400.0),
            &fixtures::facts(&e, &reading, backups),
        )
    }

    #[test]
    fn backups_are_held_to_the_verification_window() {
        assert_eq!(stale(Some(&[])), Observed::Clear, "nothing to verify yet");
        assert_eq!(
            stale(Some(&[backup(NOW - 600, None)])),
            Observed::Clear,
            "a young backup"
        );
        assert!(
            is_breach(&stale(Some(&[backup(NOW - 2 * 86_400, None)]))),
            "never verified"
        );
        assert!(
            is_breach(&stale(Some(&[backup(NOW - 600, Some((NOW - 60, false)))]))),
            "failed"
        );
        assert_eq!(
            stale(Some(&[backup(NOW - 600, Some((NOW - 60, true)))])),
            Observed::Clear
        );
        assert!(is_breach(&stale(Some(&[backup(
            NOW - 9 * 86_400,
            Some((NOW - 8 * 86_400, true))
        )]))));
        assert_eq!(stale(None), Observed::Unknown, "the catalog could not be read");
    }
}
