//! The values alert tables keep in TEXT columns, as enums: the alert
//! state, the rule key, a notification's event and its delivery's state,
//! with the stored strings they always had.

use std::fmt;
use std::str::FromStr;

use sqlx::FromRow;
use sqlx::error::BoxDynError;

/// A value read from a TEXT column that names no variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.what, self.value)
    }
}

impl std::error::Error for UnknownValue {}

/// An enum stored as TEXT: its variants and their stored values in one
/// list, giving `ALL`, `as_str`, `FromStr`, `Display`, `Serialize` and the
/// sqlx encoding on both stores. A value cannot be forgotten in one of them.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stored (and shown, and sent) value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { what: $what, value: s.to_string() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                Ok(text.parse::<$name>()?)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            &'q str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, BoxDynError> {
                <&'q str as sqlx::Encode<'q, DB>>::encode_by_ref(&self.as_str(), buf)
            }
        }
    };
}

text_enum! {
    /// Where an alert is: pending until its condition has held for the
    /// rule's "for" duration, then firing until it clears.
    AlertState, "alert state" {
        Pending = "pending",
        Firing = "firing",
        Resolved = "resolved",
    }
}

text_enum! {
    /// The built-in alert rules, by the key stored in `alert_rules`,
    /// `alerts` and `alert_silences` (and sent in notifications). Each has
    /// its file in `service::monitoring::rules`.
    RuleKey, "alert rule" {
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
    AlertEvent, "alert event" {
        Firing = "firing",
        Resolved = "resolved",
    }
}

text_enum! {
    /// A queued notification to one webhook: pending (until delivered, or
    /// failed for good after the last attempt).
    DeliveryState, "delivery state" {
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
