//! Dumps and restores, the part every engine shares: what a dump records
//! (row counts at its snapshot, versions), the [`Dumps`] each engine
//! implements in its folder with its own tools, and the [`Pipe`] the
//! service hands it: where the bytes go (compressed, hashed, stored) or
//! come from, progress, cancellation. The engine knows the tools and the
//! catalog; the service knows storage and jobs.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use tokio::process::Command;

use super::{EngineError, EngineResult};
use crate::config::SecretUrl;

/// Rows per table, keyed `schema.table`.
pub type Counts = BTreeMap<String, i64>;

/// How a backup is stored: the catalog's name of the format and the
/// file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DumpFormat {
    pub name: &'static str,
    pub ext: &'static str,
}

/// What a dump produced besides its bytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dumped {
    pub tool_version: String,
    pub server_version: String,
    /// Rows per table at the dump's snapshot.
    pub counts: Counts,
}

/// A new place to restore into, checked.
#[derive(Clone, Debug)]
pub struct NewTarget {
    pub url: SecretUrl,
    /// A database to create first (none for a file).
    pub create: Option<String>,
    /// As the DBA reads it: "new database shop_copy", a file's path.
    pub label: String,
    /// Why it cannot be used: it exists already.
    pub taken: Option<String>,
}

/// The service's side of a dump or restore: storage, progress, stopping.
/// Every method that moves bytes hashes and compresses (dump) or checks and
/// decompresses (restore) on the way, and stops when the job is cancelled
/// (with [`EngineError::Cancelled`]).
#[async_trait]
pub trait Pipe: Send + Sync {
    /// Scratch space for copies, dump directories and option files.
    fn work_dir(&self) -> &Path;
    fn progress(&self, fraction: Option<f64>, message: &str);
    async fn log(&self, line: &str);
    /// Resolves when the job is asked to stop.
    async fn cancelled(&self);
    /// A dump tool's stdout into the backup; waits for the tool to succeed.
    async fn store_output(&self, cmd: Command, name: &str) -> EngineResult<()>;
    /// A file into the backup.
    async fn store_file(&self, path: &Path, what: &str) -> EngineResult<()>;
    /// The backup into a restore tool's stdin; waits for the tool to succeed.
    async fn feed_tool(&self, cmd: Command, name: &str) -> EngineResult<()>;
    /// The backup into a file.
    async fn write_file(&self, path: &Path, what: &str) -> EngineResult<()>;
    /// Run a tool to its end; its stderr says why it failed.
    async fn run(&self, cmd: Command, name: &str) -> EngineResult<()>;
}

/// Dumps and restores with an engine's own tools (pg_dump, mariadb-dump,
/// VACUUM INTO). Reached from [`super::ManagedDb::dumps`]. Each function
/// opens its own connections from a URL: a dump's transaction must stay
/// open as long as the dump runs, off the shared pool (the caller reserves
/// room for them in the server's budget first).
#[async_trait]
pub trait Dumps: Send + Sync {
    /// The format a dump takes with `parallel` jobs configured.
    fn format(&self, parallel: usize) -> DumpFormat;

    /// Whether a dump with `parallel` jobs uses them (the budget must hold
    /// `parallel + 1` connections for the tool then, else one).
    fn uses_jobs(&self, parallel: usize) -> bool {
        let _ = parallel;
        false
    }

    /// Dump a database into the pipe; counts rows in the dump's snapshot.
    async fn dump(&self, from: &DumpFrom<'_>, pipe: &dyn Pipe) -> EngineResult<Dumped>;

    /// Restore a backup from the pipe into an existing database.
    async fn restore(&self, to: &RestoreTo<'_>, pipe: &dyn Pipe) -> EngineResult<()>;

    /// Row counts of the database at `url` (a restored copy), keyed as the
    /// dump keyed them.
    async fn counts(&self, url: &SecretUrl) -> EngineResult<Counts>;

    /// A new, empty scratch database `name` beside the one at `url` (a file
    /// in `work_dir` for SQLite), for a verification: its URL.
    async fn create_scratch(&self, url: &SecretUrl, name: &str, work_dir: &Path) -> EngineResult<SecretUrl> {
        let _ = work_dir;
        self.create_database(url, name).await?;
        with_database(url, name)
    }

    /// Remove what [`Dumps::create_scratch`] made.
    async fn drop_scratch(&self, url: &SecretUrl, name: &str, scratch: &SecretUrl) -> EngineResult<()> {
        let _ = scratch;
        self.drop_database(url, name).await
    }

    /// Check a new database `name` to restore into beside the one at `url`.
    async fn new_target(&self, url: &SecretUrl, name: &str) -> EngineResult<NewTarget>;

    /// Restoring over the original: `Err` says what to do instead.
    fn over_original(&self) -> Result<(), &'static str> {
        Ok(())
    }

    /// Create an empty database `name` on the server of `url` (connected as
    /// that URL's user, who needs CREATEDB / CREATE).
    async fn create_database(&self, url: &SecretUrl, name: &str) -> EngineResult<()>;

    /// Drop database `name` on the server of `url`, ending its sessions.
    async fn drop_database(&self, url: &SecretUrl, name: &str) -> EngineResult<()>;
}

/// What a dump reads and how.
#[derive(Clone, Copy, Debug)]
pub struct DumpFrom<'a> {
    /// The database to dump.
    pub url: &'a SecretUrl,
    /// One of [`Dumps::format`]'s.
    pub format: DumpFormat,
    /// Parallel jobs where the format allows.
    pub jobs: usize,
}

/// Where a restore goes and how.
#[derive(Clone, Copy, Debug)]
pub struct RestoreTo<'a> {
    /// The backup's format, as the catalog names it.
    pub format: &'a str,
    /// The existing database to restore into.
    pub url: &'a SecretUrl,
    /// Drop what is there first (restoring over the original).
    pub clean: bool,
    /// Parallel jobs where the format allows.
    pub jobs: usize,
}

/// A URL like `url` but for database `name` on the same server.
pub fn with_database(url: &SecretUrl, name: &str) -> EngineResult<SecretUrl> {
    let mut u = url::Url::parse(url.expose()).map_err(|_| EngineError::invalid("not a valid URL"))?;
    u.set_path(&format!("/{name}"));
    Ok(SecretUrl::new(u.to_string()))
}

/// A server's new database to restore into: taken when it exists.
pub(crate) fn new_database(url: &SecretUrl, name: &str, exists: bool) -> EngineResult<NewTarget> {
    Ok(NewTarget {
        url: with_database(url, name)?,
        create: Some(name.to_string()),
        label: format!("new database {name}"),
        taken: exists.then(|| format!("a database named {name} already exists on the server")),
    })
}

/// A directory as a tar file (relative paths).
pub(crate) fn pack(dir: &Path, to: &Path) -> std::io::Result<()> {
    let file = crate::files::create_private(to)?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    builder.append_dir_all(".", dir)?;
    builder
        .into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
}

/// Unpack a tar file into `dir`.
pub(crate) fn unpack(from: &Path, dir: &Path) -> std::io::Result<()> {
    crate::files::create_private_dir(dir)?;
    tar::Archive::new(std::io::BufReader::new(std::fs::File::open(from)?)).unpack(dir)
}
