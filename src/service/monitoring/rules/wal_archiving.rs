//! `wal_archiving`: the last WAL archiving attempt failed
//! (`pg_stat_archiver`).

use super::{Facts, Observed, Rule, RuleKey, Setting, breach, on_reading};

pub struct WalArchiving;

impl Rule for WalArchiving {
    fn key(&self) -> RuleKey {
        RuleKey::WalArchiving
    }

    fn title(&self) -> &'static str {
        "WAL archiving failing"
    }

    fn why(&self) -> &'static str {
        "without archived WAL there is no point-in-time recovery and pg_wal fills the disk"
    }

    fn observe(&self, _setting: &Setting, facts: &Facts<'_>) -> Observed {
        on_reading(facts, |r| match r.archive_failing {
            Some(true) => breach(
                Some(1.0),
                "the last WAL archiving attempt failed (pg_stat_archiver)".into(),
            ),
            Some(false) => Observed::Clear,
            None => Observed::Unknown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{self, entry, is_breach, judge};
    use super::*;
    use crate::engine::metrics::Reading;

    #[test]
    fn a_failed_attempt_breaches() {
        let e = entry(None);
        let judged = |failing: Option<bool>| {
            let r = Reading {
                archive_failing: failing,
                ..Reading::default()
            };
            judge(RuleKey::WalArchiving, None, &fixtures::facts(&e, &r, None))
        };
        assert!(is_breach(&judged(Some(true))));
        assert_eq!(judged(Some(false)), Observed::Clear);
        assert_eq!(judged(None), Observed::Unknown, "no archiver to ask");
    }
}
