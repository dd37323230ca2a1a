//! The configuration's URLs: [`SecretUrl`], whose `Debug` and `Display`
//! redact the password and which cannot be serialized, and [`StoreKind`],
//! which store a URL names.

use std::fmt;

use anyhow::bail;
use serde::Deserialize;

/// Which database the store lives in, decided by the URL scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

impl StoreKind {
    pub fn of(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(StoreKind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(StoreKind::Postgres)
        } else {
            bail!("store_url must start with sqlite:// or postgres://")
        }
    }
}

/// A connection URL that may carry a password. `Debug` and `Display` redact
/// the password so the URL can be logged; `expose` is for connecting only.
/// Deliberately not `Serialize`: a struct holding one cannot be written out
/// (as JSON, TOML or a figment layer) with its password in it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        SecretUrl(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut parsed) if parsed.password().is_some() => {
                // set_password only fails for URLs that cannot have one.
                let _ = parsed.set_password(Some("***"));
                parsed.to_string()
            }
            Ok(_) => self.0.clone(),
            // Unparseable: show only the scheme, never the rest.
            Err(_) => match self.0.split_once(':') {
                Some((scheme, _)) => format!("{scheme}:<unparseable URL>"),
                None => "<unparseable URL>".into(),
            },
        }
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({})", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_url_never_shows_its_password() {
        let url = SecretUrl::new("postgres://admin:hunter2@db.example:5432/panel");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(!url.to_string().contains("hunter2"));
        assert!(url.to_string().contains("admin:***@db.example"));
        assert_eq!(url.expose(), "postgres://admin:hunter2@db.example:5432/panel");
    }

    #[test]
    fn unparseable_url_is_not_echoed() {
        let url = SecretUrl::new("postgres://u:p@ss:w0rd@[bad");
        assert!(!url.to_string().contains("w0rd"));
    }

    #[test]
    fn store_kind_follows_the_scheme() {
        assert_eq!(StoreKind::of("sqlite://x.db").unwrap(), StoreKind::Sqlite);
        assert_eq!(StoreKind::of("postgres://h/db").unwrap(), StoreKind::Postgres);
        assert!(StoreKind::of("mysql://h/db").is_err());
    }
}
