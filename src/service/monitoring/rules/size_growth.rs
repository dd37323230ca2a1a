//! `size_growth`: the database grows faster than the threshold, measured
//! over the last day of samples.

use super::{Facts, Observed, Rule, RuleKey, Setting, Unit, above, on_reading};
use crate::format::fmt_bytes;
use crate::service::monitoring::Settings;

pub struct SizeGrowth;

impl Rule for SizeGrowth {
    fn key(&self) -> RuleKey {
        RuleKey::SizeGrowth
    }

    fn title(&self) -> &'static str {
        "Database growing faster than"
    }

    fn why(&self) -> &'static str {
        "a sudden growth fills disks; measured over the last day of samples"
    }

    fn unit(&self) -> Unit {
        Unit::BytesPerDay
    }

    /// 10 GiB a day.
    fn default_threshold(&self, _settings: &Settings) -> Option<f64> {
        Some(10.0 * 1024.0 * 1024.0 * 1024.0)
    }

    fn observe(&self, setting: &Setting, facts: &Facts<'_>) -> Observed {
        on_reading(facts, |_| {
            above(facts.growth_per_day, setting.threshold, |v| {
                format!("growing by {}/day", fmt_bytes(v as i64))
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
    fn growth_above_the_threshold_breaches_and_too_little_history_is_unknown() {
        let e = entry(None);
        let reading = Reading::default();
        let mut facts = fixtures::facts(&e, &reading, None);
        assert_eq!(
            judge(RuleKey::SizeGrowth, Some(1e9), &facts),
            Observed::Unknown,
            "less than an hour of samples"
        );
        facts.growth_per_day = Some(2e9);
        assert!(is_breach(&judge(RuleKey::SizeGrowth, Some(1e9), &facts)));
        assert_eq!(judge(RuleKey::SizeGrowth, Some(3e9), &facts), Observed::Clear);
    }
}
