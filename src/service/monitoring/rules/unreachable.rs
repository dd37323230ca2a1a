//! `unreachable`: the panel cannot connect, or the server does not answer.

use super::{Facts, Observed, Rule, RuleKey, Setting, breach};

pub struct Unreachable;

impl Rule for Unreachable {
    fn key(&self) -> RuleKey {
        RuleKey::Unreachable
    }

    fn title(&self) -> &'static str {
        "Database unreachable"
    }

    fn why(&self) -> &'static str {
        "the panel cannot connect or the server does not answer"
    }

    /// A minute, so one dropped connection does not page anybody.
    fn default_for(&self) -> i64 {
        60
    }

    fn observe(&self, _setting: &Setting, facts: &Facts<'_>) -> Observed {
        match facts.reading {
            Ok(_) => Observed::Clear,
            Err(why) => breach(None, format!("{} does not answer: {why}", facts.entry.name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{self, NOW, entry, is_breach, judge};
    use super::*;
    use crate::engine::metrics::Reading;

    #[test]
    fn breaches_only_when_the_database_does_not_answer() {
        let e = entry(None);
        let reading = Reading::default();
        let up = fixtures::facts(&e, &reading, Some(&[]));
        assert_eq!(judge(RuleKey::Unreachable, None, &up), Observed::Clear);
        let down = Facts {
            now: NOW,
            reading: Err("connection refused"),
            growth_per_day: None,
            entry: &e,
            backups: Some(&[]),
        };
        let verdict = judge(RuleKey::Unreachable, None, &down);
        assert!(is_breach(&verdict));
        match verdict {
            Observed::Breach { message, .. } => {
                assert_eq!(message, "orders does not answer: connection refused")
            }
            other => panic!("{other:?}"),
        }
    }
}
