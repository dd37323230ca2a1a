//! Newtypes for values that come from outside (forms, JSON, the CLI). Their
//! constructors are the only way in, so a value of the type is valid.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::AppError;

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

    pub fn as_str(&self) -> &str {
        &self.0
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
}
