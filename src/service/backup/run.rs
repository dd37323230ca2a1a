//! The work of backup, verify and restore jobs: child processes for the dump
//! tools, their output streamed through zstd and SHA-256 into storage (never
//! held whole in memory), and the reverse for restores.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use async_compression::tokio::bufread::{ZstdDecoder, ZstdEncoder};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use super::storage::BackupStorage;
use super::tools::{self, OptionFile};
use crate::config::SecretUrl;
use crate::engine::dump::{self, Counts};
use crate::engine::pool::Reservation;
use crate::engine::{EngineKind, ManagedDb};
use crate::error::{AppError, AppResult};
use crate::service::fleet::Member;
use crate::service::jobs::{JobCtx, JobFailure};
use crate::store::Store;
use crate::store::backups::{self as rows, BackupRow, Finished};

/// The catalog's name of PostgreSQL's directory format (packed in a tar).
const PG_DIRECTORY: &str = "pg_dump directory";

/// The dump format and file extension per engine.
pub fn format_of(engine: EngineKind, parallel: usize) -> (&'static str, &'static str) {
    match engine {
        EngineKind::Postgres if parallel > 1 => (PG_DIRECTORY, "dir.tar"),
        EngineKind::Postgres => ("pg_dump custom", "dump"),
        EngineKind::Mysql => ("mariadb-dump sql", "sql"),
        EngineKind::Sqlite => ("sqlite file", "sqlite"),
    }
}

fn failed(e: impl std::fmt::Display) -> JobFailure {
    JobFailure::Failed(e.to_string())
}

const CHUNK: usize = 256 * 1024;

/// Copy `src` into `dst`, hashing what is written; reports progress.
async fn pump<R: AsyncRead + Unpin, W: AsyncWrite + Unpin + ?Sized>(
    mut src: R,
    dst: &mut W,
    ctx: &JobCtx,
    what: &str,
) -> Result<(u64, String), JobFailure> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total: u64 = 0;
    let mut last_report = Instant::now();
    loop {
        let n = tokio::select! {
            r = src.read(&mut buf) => r.map_err(|e| failed(format!("reading {what}: {e}")))?,
            _ = ctx.cancelled() => return Err(JobFailure::Cancelled),
        };
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])
            .await
            .map_err(|e| failed(format!("writing the backup: {e}")))?;
        total += n as u64;
        if last_report.elapsed().as_millis() >= 500 {
            ctx.progress(
                None,
                &format!("{what}: {} written", crate::format::fmt_bytes(total as i64)),
            );
            last_report = Instant::now();
        }
    }
    dst.flush()
        .await
        .map_err(|e| failed(format!("writing the backup: {e}")))?;
    dst.shutdown()
        .await
        .map_err(|e| failed(format!("writing the backup: {e}")))?;
    let digest = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((total, digest))
}

/// Wait for a child; on failure, its stderr says why.
async fn finish_child(mut child: Child, name: &str) -> Result<(), JobFailure> {
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr).await;
    }
    let status = child.wait().await.map_err(|e| failed(format!("{name}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        let tail: String = stderr
            .trim()
            .chars()
            .rev()
            .take(2000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Err(failed(format!("{name} failed ({status}): {tail}")))
    }
}

fn spawn(mut cmd: Command, name: &str) -> Result<Child, JobFailure> {
    cmd.spawn()
        .map_err(|e| failed(format!("cannot start {name}: {e}")))
}

/// A backup job's work.
pub struct Take {
    pub store: Store,
    pub storage: Arc<dyn BackupStorage>,
    pub engine: EngineKind,
    pub url: SecretUrl,
    pub backup_id: i64,
    pub key: String,
    pub work_dir: PathBuf,
    /// Parallel jobs configured (a directory-format dump above 1)...
    pub parallel: usize,
    /// ...and those the server's connection budget allows this run.
    pub jobs: usize,
    /// The database, for room in its server's connection budget.
    pub db: Arc<dyn ManagedDb>,
}

/// Wait for room in the server's connection budget for a tool's own
/// connections (`helpers` of the panel's beside it, one for the tool, or
/// `parallel + 1` for parallel jobs), and say how many parallel jobs the
/// room allows: fewer than configured when the budget is smaller.
async fn room(
    db: &dyn ManagedDb,
    helpers: usize,
    parallel: usize,
    ctx: &JobCtx,
) -> Result<(Option<Reservation>, usize), JobFailure> {
    let tool = if parallel > 1 { parallel + 1 } else { 1 };
    let wanted = helpers + tool;
    let reservation = tokio::select! {
        r = db.reserve(wanted) => r.map_err(failed)?,
        _ = ctx.cancelled() => return Err(JobFailure::Cancelled),
    };
    let allowed = match &reservation {
        Some(r) if r.granted() < wanted => {
            let jobs = if r.granted() >= helpers + 3 {
                r.granted() - helpers - 1
            } else {
                1
            };
            ctx.log(&format!(
                "{jobs} parallel job(s) instead of {parallel}: max_connections_per_server leaves room for {} connections",
                r.granted()
            ))
            .await;
            jobs
        }
        _ => parallel,
    };
    Ok((reservation, allowed))
}

/// What a dump produced.
struct Dumped {
    bytes: u64,
    sha256: String,
    tool_version: String,
    server_version: String,
    counts: Counts,
}

impl Take {
    pub async fn run(mut self, ctx: JobCtx) -> Result<String, JobFailure> {
        let started = Instant::now();
        // The dump's snapshot (or counting) connection beside the tool's.
        let (_room, jobs) = room(&*self.db, 1, self.parallel, &ctx).await?;
        self.jobs = jobs;
        let result = match self.engine {
            EngineKind::Postgres => self.postgres(&ctx).await,
            EngineKind::Mysql => self.mysql(&ctx).await,
            EngineKind::Sqlite => self.sqlite(&ctx).await,
        };
        let pool = self.store.pool();
        match result {
            Ok(d) => {
                self.storage
                    .commit(&self.key)
                    .await
                    .map_err(|e| failed(format!("cannot finish the backup file: {e}")))?;
                let counts = serde_json::to_string(&d.counts).unwrap_or_else(|_| "{}".into());
                let finished = Finished {
                    bytes: d.bytes as i64,
                    sha256: &d.sha256,
                    duration_ms: started.elapsed().as_millis() as i64,
                    tool_version: &d.tool_version,
                    server_version: &d.server_version,
                    table_counts: &counts,
                };
                rows::mark_good(pool, self.backup_id, &finished)
                    .await
                    .map_err(failed)?;
                let summary = format!(
                    "backup #{}: {} in {:.1}s, {} tables, sha256 {}",
                    self.backup_id,
                    crate::format::fmt_bytes(d.bytes as i64),
                    started.elapsed().as_secs_f64(),
                    d.counts.len(),
                    &d.sha256[..16]
                );
                Ok(summary)
            }
            Err(e) => {
                // Never leave a partial file; never call it good.
                let _ = self.storage.remove(&self.key).await;
                let (state, why) = match &e {
                    JobFailure::Cancelled => (crate::domain::BackupState::Cancelled, "cancelled".to_string()),
                    JobFailure::Failed(m) => (crate::domain::BackupState::Failed, m.clone()),
                };
                let _ = rows::mark_ended(pool, self.backup_id, state, &why).await;
                Err(e)
            }
        }
    }

    async fn postgres(&self, ctx: &JobCtx) -> Result<Dumped, JobFailure> {
        let tool = tools::tool(&["pg_dump"], "the PostgreSQL client (postgresql-client)")
            .await
            .map_err(failed)?;
        ctx.progress(None, "exporting a snapshot");
        let mut snapshot = tokio::select! {
            s = dump::PgSnapshot::take(&self.url) => s.map_err(failed)?,
            _ = ctx.cancelled() => return Err(JobFailure::Cancelled),
        };
        let server_major = tools::major_of(&snapshot.server_version);
        if tool.major < server_major {
            let version = snapshot.server_version.clone();
            snapshot.release().await;
            return Err(failed(format!(
                "pg_dump {} is older than the server ({version}): install postgresql-client-{server_major}",
                tool.major
            )));
        }
        let mut cmd = tools::pg_command(&tool.path, &self.url);
        // Without pg_dump's own compression: zstd does it, faster.
        cmd.args(["--compress=0", &format!("--snapshot={}", snapshot.id)]);
        let dump = async {
            if self.parallel > 1 {
                self.directory_dump(cmd, ctx).await
            } else {
                cmd.arg("--format=custom");
                self.stream_child(cmd, "pg_dump", ctx).await
            }
        };
        // Count rows in the same snapshot while pg_dump reads it.
        let (result, counted) = tokio::join!(dump, snapshot.count());
        if let Err(e) = counted {
            snapshot.release().await;
            return Err(failed(format!("counting rows: {e}")));
        }
        ctx.log(&format!(
            "{} rows in {} tables at snapshot {}",
            snapshot.counts.values().sum::<i64>(),
            snapshot.counts.len(),
            snapshot.id
        ))
        .await;
        let counts = snapshot.counts.clone();
        let server_version = snapshot.server_version.clone();
        snapshot.release().await;
        let (bytes, sha256) = result?;
        Ok(Dumped {
            bytes,
            sha256,
            tool_version: tool.version,
            server_version,
            counts,
        })
    }

    async fn mysql(&self, ctx: &JobCtx) -> Result<Dumped, JobFailure> {
        let tool = tools::tool(
            &["mariadb-dump", "mysqldump"],
            "the MariaDB client (mariadb-client)",
        )
        .await
        .map_err(failed)?;
        ctx.progress(None, "counting rows");
        let (counts, server_version) = tokio::select! {
            c = dump::mysql_counts(&self.url) => c.map_err(failed)?,
            _ = ctx.cancelled() => return Err(JobFailure::Cancelled),
        };
        let target = tools::mysql_target(&self.url).map_err(failed)?;
        let options =
            OptionFile::write(&self.work_dir, &target).map_err(|e| failed(format!("option file: {e}")))?;
        let mut cmd = Command::new(&tool.path);
        cmd.arg(format!("--defaults-extra-file={}", options.path.display()))
            .args([
                "--single-transaction",
                "--quick",
                "--routines",
                "--triggers",
                "--skip-lock-tables",
            ])
            .arg(&target.database)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let (bytes, sha256) = self.stream_child(cmd, "mariadb-dump", ctx).await?;
        drop(options);
        Ok(Dumped {
            bytes,
            sha256,
            tool_version: tool.version,
            server_version,
            counts,
        })
    }

    async fn sqlite(&self, ctx: &JobCtx) -> Result<Dumped, JobFailure> {
        crate::files::create_private_dir(&self.work_dir).map_err(|e| failed(format!("work dir: {e}")))?;
        let copy = self.work_dir.join(format!("backup-{}.sqlite", self.backup_id));
        let _ = std::fs::remove_file(&copy);
        ctx.progress(None, "copying the database (VACUUM INTO)");
        let result = async {
            dump::sqlite_copy(&self.url, &copy).await.map_err(failed)?;
            let counts = dump::sqlite_counts(&copy).await.map_err(failed)?;
            let file = tokio::fs::File::open(&copy).await.map_err(failed)?;
            let mut out = self
                .storage
                .create(&self.key)
                .await
                .map_err(|e| failed(format!("cannot write the backup: {e}")))?;
            let (bytes, sha256) = pump(ZstdEncoder::new(BufReader::new(file)), &mut out, ctx, "copy").await?;
            Ok::<_, JobFailure>(Dumped {
                bytes,
                sha256,
                tool_version: "VACUUM INTO".into(),
                server_version: String::new(),
                counts,
            })
        }
        .await;
        let _ = std::fs::remove_file(&copy);
        let mut dumped = result?;
        dumped.server_version = "SQLite".into();
        Ok(dumped)
    }

    /// pg_dump --format=directory --jobs=N into a work directory, packed
    /// into one tar and streamed through zstd into storage.
    async fn directory_dump(&self, mut cmd: Command, ctx: &JobCtx) -> Result<(u64, String), JobFailure> {
        let dir = self.work_dir.join(format!("backup-{}.d", self.backup_id));
        let tarball = self.work_dir.join(format!("backup-{}.tar", self.backup_id));
        let _ = std::fs::remove_dir_all(&dir);
        crate::files::create_private_dir(&self.work_dir).map_err(|e| failed(format!("work dir: {e}")))?;
        cmd.args([
            "--format=directory".to_string(),
            format!("--jobs={}", self.jobs),
            format!("--file={}", dir.display()),
        ])
        .stdout(Stdio::null());
        let result = async {
            let mut child = spawn(cmd, "pg_dump")?;
            ctx.progress(None, &format!("pg_dump with {} parallel jobs", self.jobs));
            tokio::select! {
                _ = child.wait() => {}
                _ = ctx.cancelled() => {
                    let _ = child.kill().await;
                    return Err(JobFailure::Cancelled);
                }
            }
            finish_child(child, "pg_dump").await?;
            let (from, to) = (dir.clone(), tarball.clone());
            tokio::task::spawn_blocking(move || pack(&from, &to))
                .await
                .map_err(failed)?
                .map_err(|e| failed(format!("packing the dump directory: {e}")))?;
            let file = tokio::fs::File::open(&tarball).await.map_err(failed)?;
            let mut out = self.storage.create(&self.key).await.map_err(|e| {
                failed(format!(
                    "cannot write the backup to {}: {e}",
                    self.storage.describe()
                ))
            })?;
            pump(ZstdEncoder::new(BufReader::new(file)), &mut out, ctx, "pack").await
        }
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&tarball);
        result
    }

    /// Run a dump tool and stream its stdout through zstd into storage.
    async fn stream_child(
        &self,
        cmd: Command,
        name: &str,
        ctx: &JobCtx,
    ) -> Result<(u64, String), JobFailure> {
        let mut out = self.storage.create(&self.key).await.map_err(|e| {
            failed(format!(
                "cannot write the backup to {}: {e}",
                self.storage.describe()
            ))
        })?;
        let mut child = spawn(cmd, name)?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| failed(format!("{name} has no output")))?;
        let pumped = pump(ZstdEncoder::new(BufReader::new(stdout)), &mut out, ctx, name).await;
        match pumped {
            Ok(done) => {
                finish_child(child, name).await?;
                Ok(done)
            }
            Err(e) => {
                let _ = child.kill().await;
                Err(e)
            }
        }
    }
}

/// A directory as a tar file (relative paths).
fn pack(dir: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
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
fn unpack(from: &std::path::Path, dir: &std::path::Path) -> std::io::Result<()> {
    crate::files::create_private_dir(dir)?;
    tar::Archive::new(std::io::BufReader::new(std::fs::File::open(from)?)).unpack(dir)
}

/// Check the SHA-256 of a stored backup.
async fn check_sum(storage: &dyn BackupStorage, backup: &BackupRow, ctx: &JobCtx) -> Result<(), String> {
    let expected = backup.sha256.clone().unwrap_or_default();
    let reader = storage
        .open(&backup.location)
        .await
        .map_err(|e| format!("cannot read the backup file: {e}"))?;
    let mut sink = tokio::io::sink();
    let (_, actual) = pump(reader, &mut sink, ctx, "checksum")
        .await
        .map_err(|e| match e {
            JobFailure::Cancelled => "cancelled".to_string(),
            JobFailure::Failed(m) => m,
        })?;
    if actual != expected {
        return Err(format!(
            "checksum mismatch: the file's SHA-256 is {actual}, the catalog says {expected}: the backup is damaged"
        ));
    }
    Ok(())
}

/// Restore a stored backup into the database at `url` (which exists).
async fn restore_into(
    storage: &dyn BackupStorage,
    backup: &BackupRow,
    url: &SecretUrl,
    work_dir: &std::path::Path,
    clean: bool,
    parallel: usize,
    ctx: &JobCtx,
) -> Result<(), JobFailure> {
    let engine = EngineKind::of_url(&format!("{}://", backup.engine)).map_err(failed)?;
    if backup.format == PG_DIRECTORY {
        return restore_directory(storage, backup, url, work_dir, clean, parallel, ctx).await;
    }
    let file = storage
        .open(&backup.location)
        .await
        .map_err(|e| failed(format!("cannot read the backup: {e}")))?;
    let decoded = ZstdDecoder::new(BufReader::new(file));
    match engine {
        EngineKind::Postgres => {
            let tool = tools::tool(&["pg_restore"], "the PostgreSQL client (postgresql-client)")
                .await
                .map_err(failed)?;
            let mut cmd = tools::pg_command(&tool.path, url);
            cmd.args(["--no-owner", "--no-privileges", "--exit-on-error"]);
            if clean {
                cmd.args(["--clean", "--if-exists"]);
            }
            cmd.stdin(Stdio::piped());
            feed_child(cmd, "pg_restore", decoded, ctx).await
        }
        EngineKind::Mysql => {
            let tool = tools::tool(&["mariadb", "mysql"], "the MariaDB client (mariadb-client)")
                .await
                .map_err(failed)?;
            let target = tools::mysql_target(url).map_err(failed)?;
            let options =
                OptionFile::write(work_dir, &target).map_err(|e| failed(format!("option file: {e}")))?;
            let mut cmd = Command::new(&tool.path);
            cmd.arg(format!("--defaults-extra-file={}", options.path.display()))
                .arg(&target.database)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let result = feed_child(cmd, "mariadb", decoded, ctx).await;
            drop(options);
            result
        }
        EngineKind::Sqlite => {
            let path = dump::sqlite_path(url).map_err(failed)?;
            let mut out = tokio::fs::File::create(&path)
                .await
                .map_err(|e| failed(format!("{}: {e}", path.display())))?;
            pump(decoded, &mut out, ctx, "restore").await.map(|_| ())
        }
    }
}

/// Unpack a directory-format backup and pg_restore it with parallel jobs.
async fn restore_directory(
    storage: &dyn BackupStorage,
    backup: &BackupRow,
    url: &SecretUrl,
    work_dir: &std::path::Path,
    clean: bool,
    parallel: usize,
    ctx: &JobCtx,
) -> Result<(), JobFailure> {
    let tool = tools::tool(&["pg_restore"], "the PostgreSQL client (postgresql-client)")
        .await
        .map_err(failed)?;
    crate::files::create_private_dir(work_dir).map_err(failed)?;
    let tarball = work_dir.join(format!(
        "restore-{}-{}.tar",
        backup.id,
        uuid::Uuid::new_v4().simple()
    ));
    let dir = tarball.with_extension("d");
    let result = async {
        let file = storage
            .open(&backup.location)
            .await
            .map_err(|e| failed(format!("cannot read the backup: {e}")))?;
        let mut out = crate::files::create_private_async(&tarball)
            .await
            .map_err(failed)?;
        pump(ZstdDecoder::new(BufReader::new(file)), &mut out, ctx, "unpack").await?;
        let (from, to) = (tarball.clone(), dir.clone());
        tokio::task::spawn_blocking(move || unpack(&from, &to))
            .await
            .map_err(failed)?
            .map_err(|e| failed(format!("unpacking the backup: {e}")))?;
        let mut cmd = tools::pg_command(&tool.path, url);
        cmd.args([
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--format=directory",
        ])
        .arg(format!("--jobs={}", parallel.max(1)));
        if clean {
            cmd.args(["--clean", "--if-exists"]);
        }
        cmd.arg(&dir);
        let mut child = spawn(cmd, "pg_restore")?;
        tokio::select! {
            _ = child.wait() => {}
            _ = ctx.cancelled() => {
                let _ = child.kill().await;
                return Err(JobFailure::Cancelled);
            }
        }
        finish_child(child, "pg_restore").await
    }
    .await;
    let _ = std::fs::remove_file(&tarball);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Run a restore tool, feeding it `input` on stdin.
async fn feed_child<R: AsyncRead + Unpin>(
    mut cmd: Command,
    name: &str,
    input: R,
    ctx: &JobCtx,
) -> Result<(), JobFailure> {
    cmd.kill_on_drop(true);
    let mut child = spawn(cmd, name)?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| failed(format!("{name} has no input")))?;
    // Read its stderr meanwhile, so a chatty tool never blocks on a full pipe.
    let stderr = child.stderr.take();
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_string(&mut text).await;
        }
        text
    });
    let fed = pump(input, &mut stdin, ctx, name).await;
    drop(stdin);
    let status = child.wait().await.map_err(|e| failed(format!("{name}: {e}")))?;
    let stderr = errors.await.unwrap_or_default();
    fed?;
    if !status.success() {
        let tail: String = stderr.trim().chars().take(2000).collect();
        return Err(failed(format!("{name} failed ({status}): {tail}")));
    }
    Ok(())
}

fn compare(expected: &Counts, actual: &Counts) -> Result<(), String> {
    let mut problems = Vec::new();
    for (table, n) in expected {
        // Restored copies of MariaDB backups live in another schema: match
        // on the table part when the schema differs.
        let got = actual.get(table).or_else(|| {
            let bare = table.rsplit('.').next().unwrap_or(table);
            actual
                .iter()
                .find(|(k, _)| k.rsplit('.').next() == Some(bare))
                .map(|(_, v)| v)
        });
        match got {
            Some(m) if m == n => {}
            Some(m) => problems.push(format!("{table}: {m} rows restored, {n} in the backup")),
            None => problems.push(format!("{table}: missing after restore")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("row counts differ: {}", problems.join("; ")))
    }
}

/// A verify job's work.
pub struct Verify {
    pub store: Store,
    pub storage: Arc<dyn BackupStorage>,
    pub url: SecretUrl,
    pub backup: BackupRow,
    pub work_dir: PathBuf,
    pub parallel: usize,
    pub db: Arc<dyn ManagedDb>,
}

impl Verify {
    pub async fn run(mut self, ctx: JobCtx) -> Result<String, JobFailure> {
        let id = self.backup.id;
        // The scratch database's create, count and drop beside pg_restore.
        let (_room, parallel) = room(&*self.db, 1, self.parallel, &ctx).await?;
        self.parallel = parallel;
        let started = Instant::now();
        let outcome = self.check(&ctx).await;
        let pool = self.store.pool();
        match outcome {
            Ok((restore_ms, tables)) => {
                rows::record_verify(pool, id, true, None, Some(restore_ms))
                    .await
                    .map_err(failed)?;
                Ok(format!(
                    "backup #{id} verified: restored in {:.1}s, {tables} tables' row counts match ({:.1}s in all)",
                    restore_ms as f64 / 1000.0,
                    started.elapsed().as_secs_f64()
                ))
            }
            Err(JobFailure::Cancelled) => Err(JobFailure::Cancelled),
            Err(JobFailure::Failed(why)) => {
                // A failed verification flags the backup.
                rows::record_verify(pool, id, false, Some(&why), None)
                    .await
                    .map_err(failed)?;
                Err(JobFailure::Failed(why))
            }
        }
    }

    /// Checksum, restore into scratch, count, compare, drop the scratch.
    async fn check(&self, ctx: &JobCtx) -> Result<(i64, usize), JobFailure> {
        ctx.progress(Some(0.05), "checking the SHA-256");
        check_sum(&*self.storage, &self.backup, ctx)
            .await
            .map_err(failed)?;
        ctx.log("checksum ok").await;
        let expected: Counts = serde_json::from_str(&self.backup.table_counts).unwrap_or_default();
        let engine = EngineKind::of_url(&format!("{}://", self.backup.engine)).map_err(failed)?;
        let scratch_name = format!(
            "custodian_verify_{}_{}",
            self.backup.id,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let scratch_url = match engine {
            EngineKind::Sqlite => {
                crate::files::create_private_dir(&self.work_dir).map_err(failed)?;
                SecretUrl::new(format!(
                    "sqlite://{}",
                    self.work_dir.join(format!("{scratch_name}.sqlite")).display()
                ))
            }
            _ => dump::with_database(&self.url, &scratch_name).map_err(failed)?,
        };
        ctx.progress(
            Some(0.2),
            &format!("restoring into scratch database {scratch_name}"),
        );
        dump::create_database(&self.url, &scratch_name)
            .await
            .map_err(failed)?;
        let restored = async {
            let t = Instant::now();
            restore_into(
                &*self.storage,
                &self.backup,
                &scratch_url,
                &self.work_dir,
                false,
                self.parallel,
                ctx,
            )
            .await?;
            let restore_ms = t.elapsed().as_millis() as i64;
            ctx.log(&format!("restored in {:.1}s", restore_ms as f64 / 1000.0))
                .await;
            ctx.progress(Some(0.8), "counting rows in the restored copy");
            let actual = dump::counts(&scratch_url).await.map_err(failed)?;
            compare(&expected, &actual).map_err(failed)?;
            Ok((restore_ms, expected.len()))
        }
        .await;
        ctx.progress(Some(0.95), "dropping the scratch database");
        match engine {
            EngineKind::Sqlite => {
                if let Ok(path) = dump::sqlite_path(&scratch_url) {
                    let _ = std::fs::remove_file(path);
                }
            }
            _ => {
                if let Err(e) = dump::drop_database(&self.url, &scratch_name).await {
                    ctx.log(&format!("could not drop scratch database {scratch_name}: {e}"))
                        .await;
                }
            }
        }
        restored
    }
}

/// Where a restore goes.
#[derive(Clone, Debug)]
pub enum RestoreInto {
    /// A new database on the same server (a new file for SQLite).
    New(String),
    /// Over the original; `confirm` must be the database's registry name.
    Original { confirm: String },
}

/// A checked restore target.
#[derive(Clone, Debug)]
pub struct RestoreTarget {
    url: SecretUrl,
    /// Create this database first.
    create: Option<String>,
    clean: bool,
    label: String,
}

impl RestoreTarget {
    pub fn describe(&self) -> String {
        self.label.clone()
    }
}

pub async fn check_restore_target(
    member: &Member,
    url: &SecretUrl,
    into: &RestoreInto,
) -> AppResult<RestoreTarget> {
    match into {
        RestoreInto::New(name) => {
            let name = name.trim();
            let valid = !name.is_empty()
                && name.len() <= 63
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
            if !valid {
                return Err(AppError::invalid(
                    "the new database's name may use lower-case letters, digits and '_', starting with a letter",
                ));
            }
            if member.entry.engine == EngineKind::Sqlite {
                let dir = dump::sqlite_path(url)
                    .map_err(|e| AppError::invalid(e.to_string()))?
                    .parent()
                    .map(|p| p.to_path_buf())
                    .unwrap_or_default();
                let path = dir.join(format!("{name}.sqlite"));
                if path.exists() {
                    return Err(AppError::conflict(format!("{} already exists", path.display())));
                }
                return Ok(RestoreTarget {
                    url: SecretUrl::new(format!("sqlite://{}", path.display())),
                    create: None,
                    clean: false,
                    label: path.display().to_string(),
                });
            }
            if dump::database_exists(url, name)
                .await
                .map_err(|e| AppError::invalid(e.to_string()))?
            {
                return Err(AppError::conflict(format!(
                    "a database named {name} already exists on the server"
                )));
            }
            Ok(RestoreTarget {
                url: dump::with_database(url, name).map_err(|e| AppError::invalid(e.to_string()))?,
                create: Some(name.to_string()),
                clean: false,
                label: format!("new database {name}"),
            })
        }
        RestoreInto::Original { confirm } => {
            if confirm.trim() != member.entry.name.as_str() {
                return Err(AppError::invalid(format!(
                    "restoring over {} replaces its data: type {:?} to confirm",
                    member.entry.name, member.entry.name
                )));
            }
            if member.entry.engine == EngineKind::Sqlite {
                return Err(AppError::invalid(
                    "restore a SQLite backup into a new file, then swap the files while the application is stopped",
                ));
            }
            Ok(RestoreTarget {
                url: url.clone(),
                create: None,
                clean: true,
                label: format!("{} (over the original)", member.entry.name),
            })
        }
    }
}

/// A restore job's work.
pub struct Restore {
    pub storage: Arc<dyn BackupStorage>,
    pub url: SecretUrl,
    pub backup: BackupRow,
    pub target: RestoreTarget,
    pub work_dir: PathBuf,
    pub parallel: usize,
    pub db: Arc<dyn ManagedDb>,
}

impl Restore {
    pub async fn run(mut self, ctx: JobCtx) -> Result<String, JobFailure> {
        let (_room, parallel) = room(&*self.db, 1, self.parallel, &ctx).await?;
        self.parallel = parallel;
        ctx.progress(Some(0.05), "checking the SHA-256");
        check_sum(&*self.storage, &self.backup, &ctx)
            .await
            .map_err(failed)?;
        if let Some(name) = &self.target.create {
            dump::create_database(&self.url, name).await.map_err(failed)?;
        }
        ctx.progress(Some(0.2), &format!("restoring into {}", self.target.label));
        let t = Instant::now();
        restore_into(
            &*self.storage,
            &self.backup,
            &self.target.url,
            &self.work_dir,
            self.target.clean,
            self.parallel,
            &ctx,
        )
        .await?;
        Ok(format!(
            "backup #{} restored into {} in {:.1}s",
            self.backup.id,
            self.target.label,
            t.elapsed().as_secs_f64()
        ))
    }
}
