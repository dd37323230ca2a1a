//! The built-in alert rules, one file each (squawk's shape): a [`Rule`]
//! says its key, words, unit and defaults, and judges one sample's
//! [`Facts`]. Thresholds and "for" durations are set per database
//! (`alert_rules`); a rule without a row uses its defaults.
//!
//! A new rule is a [`RuleKey`] variant (its stored value) and a file here;
//! [`rule`] matches every key, so a rule without a file does not compile.

mod backup_rpo;
mod connections;
mod idle_in_transaction;
mod long_query;
mod replication_lag;
mod size_growth;
mod unreachable;
mod verify_stale;
mod wal_archiving;
mod xid_age;

#[cfg(test)]
mod fixtures;

use crate::engine::metrics::Reading;
use crate::format::{fmt_age, fmt_bytes};
use crate::service::registry::DbEntry;
use crate::store::backups::BackupRow;

pub use crate::store::alerts::RuleKey;

use super::Settings;

/// One alert rule.
pub trait Rule: Sync {
    fn key(&self) -> RuleKey;
    /// What it watches, as a heading: "Query running longer than".
    fn title(&self) -> &'static str;
    /// Why it matters, shown beside the settings.
    fn why(&self) -> &'static str;
    /// What its threshold is measured in; `Unit::None` for a yes-or-no rule.
    fn unit(&self) -> Unit {
        Unit::None
    }
    /// The threshold a database without its own setting uses.
    fn default_threshold(&self, _settings: &Settings) -> Option<f64> {
        None
    }
    /// How long (seconds) a breach holds before the alert fires.
    fn default_for(&self) -> i64 {
        0
    }
    /// The rule's verdict on one sample.
    fn observe(&self, setting: &Setting, facts: &Facts<'_>) -> Observed;
}

/// The rule of a key. Exhaustive: a key without a rule is a compile error.
pub fn rule(key: RuleKey) -> &'static dyn Rule {
    match key {
        RuleKey::Unreachable => &unreachable::Unreachable,
        RuleKey::BackupRpo => &backup_rpo::BackupRpo,
        RuleKey::VerifyStale => &verify_stale::VerifyStale,
        RuleKey::LongQuery => &long_query::LongQuery,
        RuleKey::IdleInTransaction => &idle_in_transaction::IdleInTransaction,
        RuleKey::Connections => &connections::Connections,
        RuleKey::ReplicationLag => &replication_lag::ReplicationLag,
        RuleKey::XidAge => &xid_age::XidAge,
        RuleKey::WalArchiving => &wal_archiving::WalArchiving,
        RuleKey::SizeGrowth => &size_growth::SizeGrowth,
    }
}

/// Every rule, in the order pages list them.
pub fn all() -> impl Iterator<Item = &'static dyn Rule> {
    RuleKey::ALL.iter().map(|k| rule(*k))
}

/// A rule named by a form or the API; `None` for a name that is no rule.
pub fn find(key: &str) -> Option<Info> {
    key.parse().ok().map(|k| Info::of(rule(k)))
}

/// A rule as pages list it: the settings table, flash messages.
#[derive(Clone, Copy)]
pub struct Info {
    pub rule: &'static dyn Rule,
    pub key: &'static str,
    pub title: &'static str,
    pub why: &'static str,
    pub unit: Unit,
}

impl Info {
    pub fn of(rule: &'static dyn Rule) -> Info {
        Info {
            rule,
            key: rule.key().as_str(),
            title: rule.title(),
            why: rule.why(),
            unit: rule.unit(),
        }
    }
}

impl std::fmt::Debug for Info {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Info")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// What a threshold is measured in, for forms and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// No threshold: the rule's condition is yes or no.
    None,
    Seconds,
    Percent,
    Count,
    BytesPerDay,
}

impl Unit {
    pub fn label(self) -> &'static str {
        match self {
            Unit::None => "",
            Unit::Seconds => "seconds",
            Unit::Percent => "% of max_connections",
            Unit::Count => "transactions",
            Unit::BytesPerDay => "bytes per day",
        }
    }

    pub fn show(self, v: f64) -> String {
        match self {
            Unit::None => String::new(),
            Unit::Seconds => fmt_age(v as i64),
            Unit::Percent => format!("{v:.0}%"),
            Unit::Count => format!("{v:.0}"),
            Unit::BytesPerDay => format!("{}/day", fmt_bytes(v as i64)),
        }
    }
}

/// A rule's settings on one database.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    pub enabled: bool,
    pub threshold: Option<f64>,
    pub for_seconds: i64,
}

/// A rule's defaults, some from the panel's configuration.
pub fn default_setting(rule: &dyn Rule, settings: &Settings) -> Setting {
    Setting {
        enabled: true,
        threshold: rule.default_threshold(settings),
        for_seconds: rule.default_for(),
    }
}

/// What the panel knows about a database at one sample.
pub struct Facts<'a> {
    pub now: i64,
    /// The reading, or why there is none (the database did not answer).
    pub reading: Result<&'a Reading, &'a str>,
    /// Size growth extrapolated to a day, when there is enough history.
    pub growth_per_day: Option<f64>,
    pub entry: &'a DbEntry,
    /// Backups newest first; `None` if the catalog could not be read.
    pub backups: Option<&'a [BackupRow]>,
}

/// A rule's verdict on one sample.
#[derive(Clone, Debug, PartialEq)]
pub enum Observed {
    /// Nothing to judge by (no figure, or the database is down).
    Unknown,
    Clear,
    Breach {
        value: Option<f64>,
        /// What happened, in words fit for a chat channel: never SQL text.
        message: String,
        /// The statement behind it, for the panel's own pages only (SQL
        /// can carry literals such as passwords).
        query: Option<String>,
    },
}

fn breach(value: Option<f64>, message: String) -> Observed {
    Observed::Breach {
        value,
        message,
        query: None,
    }
}

/// The same verdict, naming the statement behind it.
fn with_query(observed: Observed, sql: &str) -> Observed {
    match observed {
        Observed::Breach { value, message, .. } => Observed::Breach {
            value,
            message,
            query: Some(sql.to_string()).filter(|q| !q.is_empty()),
        },
        other => other,
    }
}

/// `value` against `threshold`: a breach with `message` above it.
fn above(value: Option<f64>, threshold: Option<f64>, message: impl FnOnce(f64) -> String) -> Observed {
    match (value, threshold) {
        (Some(v), Some(t)) if v > t => breach(Some(v), message(v)),
        (Some(_), _) => Observed::Clear,
        (None, _) => Observed::Unknown,
    }
}

/// A rule on the live reading: `Unknown` while the database does not answer.
fn on_reading(facts: &Facts<'_>, judge: impl FnOnce(&Reading) -> Observed) -> Observed {
    match facts.reading {
        Ok(r) => judge(r),
        Err(_) => Observed::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_its_rule_and_its_stored_value_reads_back() {
        for key in RuleKey::ALL {
            assert_eq!(rule(key).key(), key);
            assert_eq!(key.as_str().parse::<RuleKey>(), Ok(key));
            assert_eq!(find(key.as_str()).map(|i| i.key), Some(key.as_str()));
        }
        assert!(find("nosuch").is_none());
        assert_eq!(all().count(), RuleKey::ALL.len());
    }

    #[test]
    fn defaults_are_those_the_panel_always_had() {
        let s = fixtures::settings();
        let d = |k: RuleKey| default_setting(rule(k), &s);
        let expect = [
            (RuleKey::Unreachable, None, 60),
            (RuleKey::BackupRpo, None, 0),
            (RuleKey::VerifyStale, Some(s.verify_window.as_secs_f64()), 0),
            (RuleKey::LongQuery, Some(s.long_query_alert.as_secs_f64()), 0),
            (RuleKey::IdleInTransaction, Some(60.0), 0),
            (RuleKey::Connections, Some(80.0), 120),
            (RuleKey::ReplicationLag, Some(60.0), 60),
            (RuleKey::XidAge, Some(1_000_000_000.0), 0),
            (RuleKey::WalArchiving, None, 0),
            (RuleKey::SizeGrowth, Some(10.0 * 1024.0 * 1024.0 * 1024.0), 0),
        ];
        assert_eq!(expect.len(), RuleKey::ALL.len());
        for (key, threshold, for_seconds) in expect {
            let got = d(key);
            assert!(got.enabled, "{key}");
            assert_eq!(got.threshold, threshold, "{key}");
            assert_eq!(got.for_seconds, for_seconds, "{key}");
            // A rule with a threshold has a unit to show it in, and back.
            assert_eq!(rule(key).unit() == Unit::None, threshold.is_none(), "{key}");
        }
    }

    #[test]
    fn live_rules_say_unknown_when_the_database_is_down() {
        let e = fixtures::entry(None);
        let down = Facts {
            now: fixtures::NOW,
            reading: Err("connection refused"),
            growth_per_day: None,
            entry: &e,
            backups: Some(&[]),
        };
        for key in [
            RuleKey::LongQuery,
            RuleKey::IdleInTransaction,
            RuleKey::Connections,
            RuleKey::ReplicationLag,
            RuleKey::XidAge,
            RuleKey::WalArchiving,
            RuleKey::SizeGrowth,
        ] {
            assert_eq!(fixtures::judge(key, Some(1.0), &down), Observed::Unknown, "{key}");
        }
    }
}
