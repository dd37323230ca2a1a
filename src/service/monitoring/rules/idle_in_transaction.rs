//! `idle_in_transaction`: a session has sat in an open transaction, doing
//! nothing, longer than the threshold.

use super::{Facts, Observed, Rule, RuleKey, Setting, Unit, above, on_reading, with_query};
use crate::format::fmt_age;
use crate::service::monitoring::Settings;

pub struct IdleInTransaction;

impl Rule for IdleInTransaction {
    fn key(&self) -> RuleKey {
        RuleKey::IdleInTransaction
    }

    fn title(&self) -> &'static str {
        "Idle in transaction longer than"
    }

    fn why(&self) -> &'static str {
        "an open transaction doing nothing holds its locks and blocks vacuum"
    }

    fn unit(&self) -> Unit {
        Unit::Seconds
    }

    fn default_threshold(&self, _settings: &Settings) -> Option<f64> {
        Some(60.0)
    }

    fn observe(&self, setting: &Setting, facts: &Facts<'_>) -> Observed {
        on_reading(facts, |r| match &r.longest_idle_xact {
            Some(q) => with_query(
                above(Some(q.seconds), setting.threshold, |v| {
                    format!(
                        "pid {} has been idle in transaction for {}",
                        q.pid,
                        fmt_age(v as i64)
                    )
                }),
                &q.query,
            ),
            None => Observed::Clear,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{self, entry, judge};
    use super::*;
    use crate::engine::metrics::{Culprit, Reading};

    #[test]
    fn the_longest_idle_transaction_is_named() {
        let e = entry(None);
        let none = Reading::default();
        assert_eq!(
            judge(
                RuleKey::IdleInTransaction,
                Some(60.0),
                &fixtures::facts(&e, &none, None)
            ),
            Observed::Clear
        );
        let idle = Reading {
            longest_idle_xact: Some(Culprit {
                pid: 7,
                seconds: 120.0,
                query: String::new(),
            }),
            ..Reading::default()
        };
        let facts = fixtures::facts(&e, &idle, None);
        assert_eq!(
            judge(RuleKey::IdleInTransaction, Some(60.0), &facts),
            Observed::Breach {
                value: Some(120.0),
                message: "pid 7 has been idle in transaction for 2m".into(),
                query: None,
            },
            "an empty statement is not named"
        );
        assert_eq!(
            judge(RuleKey::IdleInTransaction, Some(300.0), &facts),
            Observed::Clear
        );
    }
}
