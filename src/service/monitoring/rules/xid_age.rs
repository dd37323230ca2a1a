//! `xid_age`: the oldest unfrozen transaction ID is older than the
//! threshold (PostgreSQL's wraparound horizon).

use super::{Facts, Observed, Rule, RuleKey, Setting, Unit, above, on_reading};
use crate::service::monitoring::Settings;

pub struct XidAge;

impl Rule for XidAge {
    fn key(&self) -> RuleKey {
        RuleKey::XidAge
    }

    fn title(&self) -> &'static str {
        "Transaction ID age above"
    }

    fn why(&self) -> &'static str {
        "at about 2 billion PostgreSQL stops accepting writes to prevent wraparound"
    }

    fn unit(&self) -> Unit {
        Unit::Count
    }

    /// Half way to the 2 billion at which writes stop.
    fn default_threshold(&self, _settings: &Settings) -> Option<f64> {
        Some(1_000_000_000.0)
    }

    fn observe(&self, setting: &Setting, facts: &Facts<'_>) -> Observed {
        on_reading(facts, |r| {
            above(r.xid_age, setting.threshold, |v| {
                format!(
                    "the oldest unfrozen transaction ID is {v:.0} transactions old; freeze before 2 billion"
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{self, entry, is_breach, judge};
    use super::*;
    use crate::engine::metrics::Reading;

    #[test]
    fn an_old_xid_breaches_and_no_figure_is_unknown() {
        let e = entry(None);
        let young = Reading {
            xid_age: Some(10.0),
            ..Reading::default()
        };
        assert_eq!(
            judge(RuleKey::XidAge, Some(1e9), &fixtures::facts(&e, &young, None)),
            Observed::Clear
        );
        assert!(is_breach(&judge(
            RuleKey::XidAge,
            Some(1.0),
            &fixtures::facts(&e, &young, None)
        )));
        let none = Reading::default();
        assert_eq!(
            judge(RuleKey::XidAge, Some(1e9), &fixtures::facts(&e, &none, None)),
            Observed::Unknown,
            "an engine without the figure"
        );
    }
}
