//! The panel's own state: users, API tokens, sessions and the sign-in
//! throttle, the audit log, the database registry (and removed databases),
//! jobs, the backup catalog, migration requests and approvals, metric
//! samples, alerts and webhooks, settings and leases, in SQLite (the
//! default) or PostgreSQL (several panel instances). States are enums
//! stored as the same TEXT on both (`text.rs`).
//!
//! Queries are written once in portable SQL with `$1` binds and run on either
//! pool through [`on_pool!`]; the schemas differ only in types and live in
//! `migrations/sqlite` and `migrations/postgres`. Timestamps are stored as
//! BIGINT unix seconds on both, so comparisons and ordering are the same.
//! Only `service` code calls into this module.

pub mod alerts;
pub mod audit;
pub mod backups;
pub mod jobs;
pub mod leases;
pub mod metrics;
pub mod migrations;
pub mod recovery;
pub mod registry;
mod sessions;
pub mod settings;
mod text;
pub mod throttle;
pub mod tokens;
pub mod users;
pub mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub use sessions::SessionBackend;

use crate::config::{SecretUrl, StoreKind};
use crate::error::AppError;

/// A pool on one of the two store engines.
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Run the same code against whichever pool the store has. The body is
/// expanded once per engine, so `sqlx::query_as::<_, Row>` infers each.
macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::store::Pool::Sqlite($p) => $body,
            $crate::store::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// The panel's store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// Connect, creating the SQLite file and its directory if needed, and
    /// bring the schema up to date.
    pub async fn open(url: &SecretUrl) -> anyhow::Result<Store> {
        let pool = match StoreKind::of(url.expose())? {
            StoreKind::Sqlite => {
                let options = SqliteConnectOptions::from_str(url.expose())
                    .with_context(|| format!("bad SQLite store URL {url}"))?;
                let file = options.get_filename().to_path_buf();
                if let Some(dir) = file.parent()
                    && !dir.as_os_str().is_empty()
                {
                    crate::files::create_private_dir(dir)
                        .with_context(|| format!("cannot create store directory {}", dir.display()))?;
                }
                private_store_files(&file)
                    .with_context(|| format!("cannot make the SQLite store {} private", file.display()))?;
                let options = options
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(options)
                    .await
                    .with_context(|| format!("cannot open the SQLite store {url}"))?;
                sqlx::migrate!("migrations/sqlite")
                    .run(&pool)
                    .await
                    .context("cannot migrate the SQLite store")?;
                Pool::Sqlite(pool)
            }
            StoreKind::Postgres => {
                let options = PgConnectOptions::from_str(url.expose())
                    .with_context(|| format!("bad PostgreSQL store URL {url}"))?
                    .application_name("custodian");
                let pool = PgPoolOptions::new()
                    .max_connections(10)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .with_context(|| format!("cannot connect to the PostgreSQL store {url}"))?;
                sqlx::migrate!("migrations/postgres")
                    .run(&pool)
                    .await
                    .context("cannot migrate the PostgreSQL store")?;
                Pool::Postgres(pool)
            }
        };
        Ok(Store { pool })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn kind(&self) -> StoreKind {
        match self.pool {
            Pool::Sqlite(_) => StoreKind::Sqlite,
            Pool::Postgres(_) => StoreKind::Postgres,
        }
    }

    /// The session store on the same database, its table created if missing.
    pub async fn session_backend(&self) -> anyhow::Result<SessionBackend> {
        SessionBackend::new(&self.pool).await
    }

    /// Is the store answering? For `/healthz`.
    pub async fn ping(&self) -> bool {
        on_pool!(&self.pool, |p| sqlx::query("SELECT 1").execute(p).await.is_ok())
    }

    pub async fn close(&self) {
        on_pool!(&self.pool, |p| p.close().await)
    }
}

/// The SQLite store holds session ids and sealed URLs: it is the panel's
/// alone. A new store file is created empty with mode 0600 before the
/// driver opens it (SQLite gives its `-wal` and `-shm` the main file's
/// mode); existing ones are made private.
fn private_store_files(file: &std::path::Path) -> std::io::Result<()> {
    if file.as_os_str() == ":memory:" {
        return Ok(());
    }
    let mut options = crate::files::private_options();
    options.truncate(false).create_new(true);
    match options.open(file) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut path = file.as_os_str().to_owned();
        path.push(suffix);
        crate::files::tighten(std::path::Path::new(&path))?;
    }
    Ok(())
}

/// Seconds since the Unix epoch: the store's time format (the panel's
/// clock, `crate::clock`, which layers above the store read directly).
pub use crate::clock::now;

/// Turns a unique-constraint violation ("that name is taken") into a 409
/// with the caller's message; any other store error stays internal.
pub trait ConflictOnUnique<T> {
    fn conflict_on_unique(self, message: impl FnOnce() -> String) -> Result<T, AppError>;
}

impl<T> ConflictOnUnique<T> for sqlx::Result<T> {
    fn conflict_on_unique(self, message: impl FnOnce() -> String) -> Result<T, AppError> {
        self.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => AppError::conflict(message()),
            _ => e.into(),
        })
    }
}
