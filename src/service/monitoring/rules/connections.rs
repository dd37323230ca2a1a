//! `connections`: the server's client connections above a share of
//! `max_connections`.

use super::{Facts, Observed, Rule, RuleKey, Setting, Unit, above, on_reading};
use crate::service::monitoring::Settings;

pub struct Connections;

impl Rule for Connections {
    fn key(&self) -> RuleKey {
        RuleKey::Connections
    }

    fn title(&self) -> &'static str {
        "Connections above"
    }

    fn why(&self) -> &'static str {
        "at max_connections new clients are refused"
    }

    fn unit(&self) -> Unit {
        Unit::Percent
    }

    fn default_threshold(&self, _settings: &Settings) -> Option<f64> {
        Some(80.0)
    }

    /// Two minutes: a burst of connections at a deploy is not an incident.
    fn default_for(&self) -> i64 {
        120
    }

    fn observe(&self, setting: &Setting, facts: &Facts<'_>) -> Observed {
        on_reading(facts, |r| {
            let pct = r
                .connections
                .zip(r.max_connections)
                .filter(|(_, max)| *max > 0.0)
                .map(|(c, max)| c / max * 100.0);
            above(pct, setting.threshold, |v| {
                format!(
                    "{v:.0}% of max_connections in use ({} of {})",
                    r.connections.unwrap_or(0.0),
                    r.max_connections.unwrap_or(0.0)
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{self, entry, judge};
    use super::*;
    use crate::engine::metrics::Reading;

    #[test]
    fn a_share_of_max_connections_above_the_threshold_breaches() {
        let e = entry(None);
        let reading = Reading {
            connections: Some(90.0),
            max_connections: Some(100.0),
            ..Reading::default()
        };
        let facts = fixtures::facts(&e, &reading, None);
        match judge(RuleKey::Connections, Some(80.0), &facts) {
            Observed::Breach { value, message, .. } => {
                assert_eq!(value, Some(90.0));
                assert!(message.contains("90 of 100"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(judge(RuleKey::Connections, Some(95.0), &facts), Observed::Clear);
        let unknown_max = Reading {
            connections: Some(90.0),
            max_connections: Some(0.0),
            ..Reading::default()
        };
        assert_eq!(
            judge(
                RuleKey::Connections,
                Some(80.0),
                &fixtures::facts(&e, &unknown_max, None)
            ),
            Observed::Unknown
        );
    }
}
