//! What the rules' unit tests share: a database, its backups, the panel's
//! settings and a one-line judge.

use std::time::Duration;

use super::{Facts, Observed, RuleKey, Setting, rule};
use crate::domain::DatabaseName;
use crate::engine::EngineKind;
use crate::engine::metrics::Reading;
use crate::service::monitoring::Settings;
use crate::service::registry::{DbEntry, Schedules, Source};
use crate::store::backups::BackupRow;

pub const NOW: i64 = 1_000_000;

pub fn settings() -> Settings {
    Settings {
        interval: Duration::from_secs(15),
        full_resolution: Duration::from_secs(48 * 3600),
        retention: Duration::from_secs(30 * 86_400),
        long_query_alert: Duration::from_secs(300),
        verify_window: Duration::from_secs(7 * 86_400),
        webhook_retry: Duration::from_secs(30),
        webhook_attempts: 5,
        public_url: None,
    }
}

pub fn entry(rpo: Option<u64>) -> DbEntry {
    DbEntry {
        name: DatabaseName::parse("orders").unwrap(),
        engine: EngineKind::Postgres,
        url_redacted: String::new(),
        migrations_dir: None,
        rpo: rpo.map(Duration::from_secs),
        rto: None,
        schedules: Schedules::default(),
        pitr: Default::default(),
        plan: Default::default(),
        source: Source::Panel,
    }
}

/// A good backup finished at `finished_at`, verified (when, passed) or not.
pub fn backup(finished_at: i64, verified: Option<(i64, bool)>) -> BackupRow {
    BackupRow {
        database_name: "orders".into(),
        bytes: Some(1),
        started_at: finished_at - 10,
        verified_at: verified.map(|v| v.0),
        verify_ok: verified.map(|v| v.1),
        verify_error: verified.filter(|v| !v.1).map(|_| "count mismatch".into()),
        ..BackupRow::good_at(finished_at)
    }
}

/// Facts of a database that answered with `reading`.
pub fn facts<'a>(entry: &'a DbEntry, reading: &'a Reading, backups: Option<&'a [BackupRow]>) -> Facts<'a> {
    Facts {
        now: NOW,
        reading: Ok(reading),
        growth_per_day: None,
        entry,
        backups,
    }
}

/// One rule's verdict with `threshold`.
pub fn judge(key: RuleKey, threshold: Option<f64>, facts: &Facts<'_>) -> Observed {
    let setting = Setting {
        enabled: true,
        threshold,
        for_seconds: 0,
    };
    rule(key).observe(&setting, facts)
}

pub fn is_breach(o: &Observed) -> bool {
    matches!(o, Observed::Breach { .. })
}
