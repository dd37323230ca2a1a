//! What can go wrong talking to a managed database, by whose it is. Which
//! variant to use:
//! - `Refused`: the managed server answered with an error. Its own message
//!   is shown to the DBA (right for a DBA tool: "permission denied for
//!   table orders", "lock timeout").
//! - `Unreachable`: no connection (down, refusing, network, TLS).
//! - `TimedOut`: the server did not answer within the panel's time box.
//! - `Invalid`: the request does not fit this database (a table not in the
//!   catalog, an identifier that cannot be quoted, a bad URL, a feature the
//!   engine lacks).
//! - `Tool`: an external tool (pg_dump, mariadb, …) is missing or failed,
//!   with what it said or which package to install.
//! - `Local`: a file on the panel's own machine could not be read or
//!   written; the text says what failed without the server's paths.
//! - `Cancelled`: the job was asked to stop.
//! - `Internal`: a decode or protocol bug of ours. Logged with its detail
//!   when it is made; everyone else sees an opaque message and a 500.

use crate::error::AppError;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    TimedOut(String),
    /// PostgreSQL gave up waiting for a lock (lock_timeout, SQLSTATE
    /// 55P03): nothing was done, and trying again later may work.
    #[error("{0}")]
    LockTimeout(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Tool(String),
    #[error("{0}")]
    Local(String),
    #[error("cancelled")]
    Cancelled,
    #[error("the panel failed reading the database's answer (an internal error, logged)")]
    Internal(String),
}

pub type EngineResult<T> = Result<T, EngineError>;

/// SQLSTATE of a statement cancelled by statement_timeout (PostgreSQL).
const QUERY_CANCELED: &str = "57014";
/// SQLSTATE of a lock not obtained within lock_timeout (PostgreSQL).
const LOCK_NOT_AVAILABLE: &str = "55P03";

impl EngineError {
    /// A bug of ours: logged here, once, with its detail.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let detail = detail.to_string();
        tracing::error!(error = %detail, "internal error talking to a managed database");
        EngineError::Internal(detail)
    }

    pub fn invalid(why: impl Into<String>) -> Self {
        EngineError::Invalid(why.into())
    }

    pub fn tool(why: impl Into<String>) -> Self {
        EngineError::Tool(why.into())
    }

    /// A local file operation failed: `what` says which ("writing the backup").
    pub fn local(what: &str, err: impl std::fmt::Display) -> Self {
        EngineError::Local(format!("{what}: {err}"))
    }

    pub(crate) fn from_sqlx(err: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &err {
            E::PoolTimedOut => EngineError::Unreachable(format!(
                "could not connect within {} seconds (the server is down, unreachable or refusing connections)",
                super::CONNECT_TIMEOUT.as_secs()
            )),
            E::PoolClosed => EngineError::Unreachable("the connection pool was closed".into()),
            E::Io(io) => EngineError::Unreachable(format!("could not connect to the server: {io}")),
            E::Tls(e) => EngineError::Unreachable(format!("TLS failed: {e}")),
            E::Database(db) if db.code().as_deref() == Some(QUERY_CANCELED) => {
                EngineError::TimedOut(db.message().to_string())
            }
            E::Database(db) if db.code().as_deref() == Some(LOCK_NOT_AVAILABLE) => {
                EngineError::LockTimeout(db.message().to_string())
            }
            E::Database(db) => EngineError::Refused(db.message().to_string()),
            E::Configuration(e) => EngineError::Invalid(format!("bad connection settings: {e}")),
            // Something at that address that does not speak the engine's
            // protocol (a wrong port, another service, an auth method the
            // driver lacks): the DBA's to fix, not a bug of ours.
            E::Protocol(m) => EngineError::Unreachable(format!(
                "the server's answer could not be understood (is this the right address for this engine?): {m}"
            )),
            E::InvalidArgument(m) => EngineError::Invalid(m.clone()),
            _ => EngineError::internal(err),
        }
    }

    /// The same error with `what` before its message ("public.orders: …").
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        use EngineError as E;
        match self {
            E::Refused(m) => E::Refused(format!("{what}: {m}")),
            E::Unreachable(m) => E::Unreachable(format!("{what}: {m}")),
            E::TimedOut(m) => E::TimedOut(format!("{what}: {m}")),
            E::LockTimeout(m) => E::LockTimeout(format!("{what}: {m}")),
            E::Invalid(m) => E::Invalid(format!("{what}: {m}")),
            E::Tool(m) => E::Tool(format!("{what}: {m}")),
            E::Local(m) => E::Local(format!("{what}: {m}")),
            other => other,
        }
    }

    /// The server's side was at fault or away, not the panel's code.
    pub fn is_internal(&self) -> bool {
        matches!(self, EngineError::Internal(_))
    }
}

impl From<sqlx::Error> for EngineError {
    fn from(err: sqlx::Error) -> Self {
        EngineError::from_sqlx(err)
    }
}

/// At the service edge: an internal error is an opaque 500 (already
/// logged); anything else is the DBA's to read (422).
impl From<EngineError> for AppError {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::Internal(detail) => AppError::Internal(anyhow::anyhow!(detail)),
            other => AppError::Invalid(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_bugs_are_opaque_and_server_messages_are_not() {
        let bug = EngineError::from_sqlx(sqlx::Error::ColumnNotFound("datname".into()));
        assert!(bug.is_internal());
        assert!(!bug.to_string().contains("datname"));
        assert!(matches!(AppError::from(bug), AppError::Internal(_)));
        let wrong_port = EngineError::from_sqlx(sqlx::Error::Protocol("unexpected response".into()));
        assert!(matches!(wrong_port, EngineError::Unreachable(_)), "{wrong_port}");
        let down = EngineError::from_sqlx(sqlx::Error::PoolTimedOut);
        assert!(matches!(down, EngineError::Unreachable(_)));
        assert!(matches!(AppError::from(down), AppError::Invalid(_)));
    }
}
