//! Newtypes for values that come from outside (forms, JSON, the CLI). Their
//! constructors are the only way in, so a value of the type is valid.
//! The states and kinds stored as text (job, backup, audit action) are in
//! `states.rs`, re-exported here.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::AppError;

mod states;
pub(crate) use states::text_enum;
pub use states::{AuditAction, BackupState, JobKind, JobState, RestoreState, UnknownValue};

/// A user name: 1–64 characters of `a-z 0-9 . _ -`, starting with a letter or
/// digit. Lower case only, so "Alice" and "alice" cannot be two people.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(AppError::invalid("user name is required"));
        }
        if name.len() > Self::MAX_LEN {
            return Err(AppError::invalid(format!(
                "user name is longer than {} characters",
                Self::MAX_LEN
            )));
        }
        let valid_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
        let starts_well = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !starts_well || !name.chars().all(valid_char) {
            return Err(AppError::invalid(
                "user name may use lower-case letters, digits, '.', '_' and '-', \
                 and must start with a letter or digit",
            ));
        }
        Ok(Username(name.to_string()))
    }

    /// A name as a URL path segment carries it (`/users/{name}`): exactly a
    /// valid name, nothing trimmed, or not found.
    pub fn from_path(raw: &str) -> Result<Self, AppError> {
        match Self::parse(raw) {
            Ok(name) if name.0 == raw => Ok(name),
            _ => Err(AppError::not_found("no such user")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A managed database's name in the registry: a slug used in URLs
/// (`/databases/{name}`): 1–63 characters of `a-z 0-9 _ -`, starting with a
/// letter or digit, and not a word the routes use.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DatabaseName(String);

impl DatabaseName {
    pub const MAX_LEN: usize = 63;
    const RESERVED: &[&str] = &["new", "test-connection"];

    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(AppError::invalid("database name is required"));
        }
        if name.len() > Self::MAX_LEN {
            return Err(AppError::invalid(format!(
                "database name is longer than {} characters",
                Self::MAX_LEN
            )));
        }
        let valid = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        let starts_well = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !valid || !starts_well {
            return Err(AppError::invalid(
                "database name may use lower-case letters, digits, '_' and '-', \
                 and must start with a letter or digit",
            ));
        }
        if Self::RESERVED.contains(&name) {
            return Err(AppError::invalid(format!(
                "{name:?} is reserved; choose another name"
            )));
        }
        Ok(DatabaseName(name.to_string()))
    }

    /// A name as a URL path segment carries it (`/databases/{name}`,
    /// `/api/v1/databases/{name}`): exactly a valid name, nothing trimmed,
    /// or not found — `%20pg` is not `pg`.
    pub fn from_path(raw: &str) -> Result<Self, AppError> {
        match Self::parse(raw) {
            Ok(name) if name.0 == raw => Ok(name),
            _ => Err(AppError::not_found(format!("no database named {raw:?}"))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Ids of the panel's own rows and of managed sessions, as paths, the API
/// and the CLI name them: positive whole numbers. Anything else names
/// nothing: `from_path` (and `FromStr`) give a `NotFound` with the message
/// the pages and the API have always shown, and the web edge turns it into
/// a 404 (see `web::path`).
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, |$raw:ident| $missing:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// `None` for zero or a negative number.
            pub fn new(id: i64) -> Option<Self> {
                (id > 0).then_some($name(id))
            }

            pub fn get(self) -> i64 {
                self.0
            }

            /// A positive number (nothing trimmed), or not found.
            pub fn from_path($raw: &str) -> Result<Self, AppError> {
                $raw.parse::<i64>()
                    .ok()
                    .and_then(Self::new)
                    .ok_or_else(|| AppError::not_found($missing))
            }
        }

        impl FromStr for $name {
            type Err = AppError;

            fn from_str(raw: &str) -> Result<Self, AppError> {
                Self::from_path(raw)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        /// From a number (JSON) or its text (a path segment).
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Repr {
                    Number(i64),
                    Text(String),
                }
                let found = match Repr::deserialize(d)? {
                    Repr::Number(n) => $name::new(n).ok_or_else(|| n.to_string()),
                    Repr::Text(t) => $name::from_path(&t).map_err(|_| t),
                };
                found.map_err(|raw| serde::de::Error::custom({
                    let $raw = raw.as_str();
                    $missing
                }))
            }
        }
    };
}

id_type!(
    /// A job (`/jobs/{id}`).
    JobId,
    |raw| format!("There is no job {raw:?}.")
);
id_type!(
    /// A backup in the catalog (`/backups/{id}`).
    BackupId,
    |raw| format!("There is no backup {raw:?}.")
);
id_type!(
    /// A migration request (`/migration-requests/{id}`).
    RequestId,
    |raw| format!("there is no migration request {raw:?}")
);
id_type!(
    /// An alert (`/alerts/{id}`).
    AlertId,
    |raw| format!("There is no alert {raw:?}.")
);
id_type!(
    /// A point-in-time restore (`/recovery-restores/{id}`).
    RestoreId,
    |raw| format!("There is no restore {raw:?}.")
);
id_type!(
    /// A managed database's session (backend pid, MySQL connection id).
    Pid,
    |raw| format!("There is no session with pid {raw:?}.")
);

/// A recovery point or recovery time objective (RPO, RTO): whole seconds,
/// at least one, at most ten years. Longer is no target at all, and the
/// store keeps seconds in a signed 64-bit column, where 2^63 and up would
/// wrap. The one place the API, the form, the CLI and the config file
/// check them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryTarget(Duration);

impl RecoveryTarget {
    /// Ten years of 365 days.
    pub const MAX_SECS: u64 = 10 * 365 * 86_400;

    /// `what` ("RPO" or "RTO") names it in the error.
    pub fn from_secs(what: &str, secs: u64) -> Result<Self, AppError> {
        if secs == 0 {
            return Err(AppError::invalid(format!("{what} must be longer than zero")));
        }
        if secs > Self::MAX_SECS {
            return Err(AppError::invalid(format!(
                "{what} must be at most 10 years ({}d)",
                Self::MAX_SECS / 86_400
            )));
        }
        Ok(RecoveryTarget(Duration::from_secs(secs)))
    }

    /// A duration as configured (whole seconds count).
    pub fn from_duration(what: &str, d: Duration) -> Result<Self, AppError> {
        Self::from_secs(what, d.as_secs())
    }

    /// Typed text like `24h`, `30m` or `7d`; empty means no target.
    pub fn parse(what: &str, raw: &str) -> Result<Option<Self>, AppError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        let d = humantime::parse_duration(raw)
            .map_err(|_| AppError::invalid(format!("{what} must be a duration like 24h, 30m or 7d")))?;
        Self::from_duration(what, d).map(Some)
    }

    pub fn duration(self) -> Duration {
        self.0
    }
}

impl fmt::Display for DatabaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a user may do. Ordered: each role can do everything the one before can.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AppError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(AppError::invalid("role must be viewer, operator or admin")),
        }
    }
}

/// A new password, checked for length. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_LEN: usize = 10;
    /// Long enough for any passphrase, short enough that hashing stays cheap.
    pub const MAX_LEN: usize = 256;

    /// A password being set: enforce the length policy (NIST SP 800-63B:
    /// length matters, composition rules do not).
    pub fn new(raw: String) -> Result<Self, AppError> {
        let chars = raw.chars().count();
        if chars < Self::MIN_LEN {
            return Err(AppError::invalid(format!(
                "password must be at least {} characters",
                Self::MIN_LEN
            )));
        }
        if raw.len() > Self::MAX_LEN {
            return Err(AppError::invalid(format!(
                "password must be at most {} bytes",
                Self::MAX_LEN
            )));
        }
        Ok(Password(raw))
    }

    /// A password typed at sign-in: not checked against the policy (it may
    /// predate it) but still bounded so nobody can make us hash megabytes.
    pub fn attempt(raw: String) -> Result<Self, AppError> {
        if raw.len() > Self::MAX_LEN {
            return Err(AppError::invalid("password is too long"));
        }
        Ok(Password(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl TryFrom<String> for Role {
    type Error = AppError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_slugs() {
        assert_eq!(Username::parse(" alice ").unwrap().as_str(), "alice");
        assert!(Username::parse("ops.team-1_a").is_ok());
        for bad in ["", "Alice", "-x", "a b", "a/b", "é", "a'--", &"a".repeat(65)] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn database_names_are_url_slugs() {
        assert_eq!(DatabaseName::parse("prod-eu_1").unwrap().as_str(), "prod-eu_1");
        for bad in [
            "",
            "Prod",
            "../etc",
            "a/b",
            "a.b",
            "new",
            "-x",
            "a b",
            &"d".repeat(64),
        ] {
            assert!(DatabaseName::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn names_in_paths_are_exact() {
        assert!(DatabaseName::from_path("pg").is_ok());
        assert!(Username::from_path("alice").is_ok());
        for bad in [" pg", "pg ", "\tpg", "pg\n", "\u{a0}pg", "PG", ""] {
            let err = DatabaseName::from_path(bad).unwrap_err();
            assert!(matches!(err, AppError::NotFound(_)), "{bad:?}: {err:?}");
            assert!(
                matches!(Username::from_path(bad), Err(AppError::NotFound(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn recovery_targets_are_bounded() {
        let ok = |s: &str| {
            RecoveryTarget::parse("RPO", s)
                .unwrap()
                .map(|t| t.duration().as_secs())
        };
        assert_eq!(ok("24h"), Some(86_400));
        assert_eq!(ok(" 3650d "), Some(RecoveryTarget::MAX_SECS));
        assert_eq!(ok(""), None);
        for bad in [
            "3651d",
            "11y",
            "300000000000y",
            "0s",
            "10ms",
            "soon",
            "-1h",
            "99999999999999999999y",
        ] {
            assert!(RecoveryTarget::parse("RPO", bad).is_err(), "{bad:?}");
        }
        for secs in [0, RecoveryTarget::MAX_SECS + 1, 1 << 63, u64::MAX] {
            let err = RecoveryTarget::from_secs("RTO", secs).unwrap_err().to_string();
            assert!(err.starts_with("RTO must be"), "{secs}: {err}");
        }
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        assert_eq!("operator".parse::<Role>().unwrap(), Role::Operator);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn passwords_have_a_length_policy_and_hide_in_debug() {
        assert!(Password::new("short".into()).is_err());
        assert!(Password::new("x".repeat(300)).is_err());
        let p = Password::new("correct horse battery".into()).unwrap();
        assert_eq!(format!("{p:?}"), "Password(***)");
    }

    #[test]
    fn ids_are_positive_numbers_or_name_nothing() {
        assert_eq!(JobId::from_path("7").unwrap().get(), 7);
        assert_eq!("12".parse::<Pid>().unwrap(), Pid::new(12).unwrap());
        for bad in ["0", "-1", "abc", "", " 7", "7 ", "1.5", "99999999999999999999"] {
            let err = BackupId::from_path(bad).unwrap_err();
            assert!(matches!(err, AppError::NotFound(_)), "{bad:?}: {err:?}");
        }
        assert_eq!(
            JobId::from_path("x").unwrap_err().to_string(),
            "There is no job \"x\"."
        );
        let id: RequestId = serde_json::from_str("3").unwrap();
        assert_eq!(id.get(), 3);
        let id: RequestId = serde_json::from_str("\"4\"").unwrap();
        assert_eq!(id.get(), 4);
        assert!(serde_json::from_str::<AlertId>("0").is_err());
        assert_eq!(serde_json::to_string(&Pid::new(9).unwrap()).unwrap(), "9");
    }
}
