//! `long_query`: a query has been running longer than the threshold.

use super::{Facts, Observed, Rule, RuleKey, Setting, Unit, above, on_reading, with_query};
use crate::format::fmt_age;
use crate::service::monitoring::Settings;

pub struct LongQuery;

impl Rule for LongQuery {
    fn key(&self) -> RuleKey {
        RuleKey::LongQuery
    }

    fn title(&self) -> &'static str {
        "Query running longer than"
    }

    fn why(&self) -> &'static str {
        "long queries hold locks and snapshots and keep vacuum from cleaning up"
    }

    fn unit(&self) -> Unit {
        Unit::Seconds
    }

    /// The panel's `long_query_alert`, the same the activity page marks.
    fn default_threshold(&self, settings: &Settings) -> Option<f64> {
        Some(settings.long_query_alert.as_secs_f64())
    }

    fn observe(&self, setting: &Setting, facts: &Facts<'_>) -> Observed {
        on_reading(facts, |r| match &r.longest_query {
            Some(q) => with_query(
                above(Some(q.seconds), setting.threshold, |v| {
                    format!("pid {} has been running a query for {}", q.pid, fmt_age(v as i64))
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
    fn the_longest_query_is_named_with_its_statement() {
        let e = entry(None);
        let idle = Reading::default();
        let facts = fixtures::facts(&e, &idle, None);
        assert_eq!(
            judge(RuleKey::LongQuery, Some(1.0), &facts),
            Observed::Clear,
            "nothing running"
        );
        let busy = Reading {
            longest_query: Some(Culprit {
                pid: 42,
                seconds: 600.0,
                query: "SELECT pg_sleep(600)".into(),
            }),
            ..Reading::default()
        };
        let facts = fixtures::facts(&e, &busy, None);
        assert_eq!(judge(RuleKey::LongQuery, Some(600.0), &facts), Observed::Clear);
        assert_eq!(
            judge(RuleKey::LongQuery, Some(300.0), &facts),
            Observed::Breach {
                value: Some(600.0),
                message: "pid 42 has been running a query for 10m".into(),
                query: Some("SELECT pg_sleep(600)".into()),
            }
        );
    }
}
