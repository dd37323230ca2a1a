//! `replication_lag`: the most lagging replica is further behind than the
//! threshold.

use super::{Facts, Observed, Rule, RuleKey, Setting, Unit, above, on_reading};
use crate::format::fmt_age;
use crate::service::monitoring::Settings;

pub struct ReplicationLag;

impl Rule for ReplicationLag {
    fn key(&self) -> RuleKey {
        RuleKey::ReplicationLag
    }

    fn title(&self) -> &'static str {
        "Replication lag above"
    }

    fn why(&self) -> &'static str {
        "a lagging replica serves stale reads and loses data on failover"
    }

    fn unit(&self) -> Unit {
        Unit::Seconds
    }

    fn default_threshold(&self, _settings: &Settings) -> Option<f64> {
        Some(60.0)
    }

    fn default_for(&self) -> i64 {
        60
    }

    fn observe(&self, setting: &Setting, facts: &Facts<'_>) -> Observed {
        on_reading(facts, |r| {
            let worst = r.replicas.iter().max_by(|a, b| a.lag_s.total_cmp(&b.lag_s));
            match worst {
                Some(w) => above(Some(w.lag_s), setting.threshold, |v| {
                    format!("replica {} is {} behind", w.name, fmt_age(v as i64))
                }),
                None => Observed::Clear,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{self, entry, judge};
    use super::*;
    use crate::engine::metrics::{Reading, Replica};

    #[test]
    fn the_worst_replica_is_named() {
        let e = entry(None);
        let reading = Reading {
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
            ..Reading::default()
        };
        let facts = fixtures::facts(&e, &reading, None);
        match judge(RuleKey::ReplicationLag, Some(60.0), &facts) {
            Observed::Breach { message, .. } => assert!(message.contains("replica b"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            judge(RuleKey::ReplicationLag, Some(600.0), &facts),
            Observed::Clear
        );
        let none = Reading::default();
        assert_eq!(
            judge(
                RuleKey::ReplicationLag,
                Some(60.0),
                &fixtures::facts(&e, &none, None)
            ),
            Observed::Clear,
            "no replicas"
        );
    }
}
