//! The values alert tables keep in TEXT columns, as enums: the alert
//! state, the rule key, a notification's event and its delivery's state,
//! with the stored strings they always had.

use sqlx::FromRow;

pub use crate::domain::UnknownValue;
use crate::domain::text_enum;

text_enum! {
    /// Where an alert is: pending until its condition has held for the
    /// rule's "for" duration, then firing until it clears.
    pub enum AlertState ("alert state") {
        Pending = "pending",
        Firing = "firing",
        Resolved = "resolved",
    }
}

text_enum! {
    /// The built-in alert rules, by the key stored in `alert_rules`,
    /// `alerts` and `alert_silences` (and sent in notifications). Each has
    /// its file in `service::monitoring::rules`.
    pub enum RuleKey ("alert rule") {
        Unreachable = "unreachable",
        BackupRpo = "backup_rpo",
        VerifyStale = "verify_stale",
        LongQuery = "long_query",
        IdleInTransaction = "idle_in_transaction",
        Connections = "connections",
        ReplicationLag = "replication_lag",
        XidAge = "xid_age",
        WalArchiving = "wal_archiving",
        SizeGrowth = "size_growth",
    }
}

text_enum! {
    /// What a notification says happened: the `event` of its payload and
    /// of its delivery rows.
    pub enum AlertEvent ("alert event") {
        Firing = "firing",
        Resolved = "resolved",
    }
}

text_enum! {
    /// A queued notification to one webhook: pending (until delivered, or
    /// failed for good after the last attempt).
    pub enum DeliveryState ("delivery state") {
        Pending = "pending",
        Delivered = "delivered",
        Failed = "failed",
    }
}

/// The rows this build can read; any other is logged and skipped.
pub(crate) fn readable<R, T>(rows: Vec<R>, table: &str) -> Vec<T>
where
    R: sqlx::Row,
    T: for<'r> FromRow<'r, R>,
{
    rows.iter()
        .filter_map(|row| match T::from_row(row) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(table, error = %e, "skipping a row this panel cannot read");
                None
            }
        })
        .collect()
}
