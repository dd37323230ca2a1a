//! PostgreSQL dumps and restores: pg_dump reading a snapshot the panel
//! exports (so the row counts it takes in the same snapshot match the dump
//! exactly), custom format or, with parallel jobs, directory format packed
//! in one tar; pg_restore the reverse. Point-in-time readiness from
//! pg_settings and pg_stat_archiver.

use std::path::Path;
use std::process::Stdio;
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::process::Command;

use crate::config::SecretUrl;
use crate::engine::dump::{self, Counts, DumpFormat, DumpFrom, Dumped, Dumps, NewTarget, Pipe, RestoreTo};
use crate::engine::maintenance::quote_pg;
use crate::engine::tools::{self, split_password};
use crate::engine::{EngineError, EngineResult};

/// pg_dump's custom format, one stream.
const CUSTOM: DumpFormat = DumpFormat {
    name: "pg_dump custom",
    ext: "dump",
};
/// pg_dump's directory format (parallel jobs), packed in a tar.
const DIRECTORY: DumpFormat = DumpFormat {
    name: "pg_dump directory",
    ext: "dir.tar",
};
const CLIENT: &str = "the PostgreSQL client (postgresql-client)";

fn pg_options(url: &SecretUrl) -> EngineResult<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(url.expose())
        .map_err(EngineError::from)?
        .application_name("custodian")
        .options([("statement_timeout", "0")]))
}

async fn connect(url: &SecretUrl) -> EngineResult<PgConnection> {
    PgConnection::connect_with(&pg_options(url)?)
        .await
        .map_err(EngineError::from)
}

/// A PostgreSQL snapshot held open for pg_dump --snapshot.
struct PgSnapshot {
    conn: PgConnection,
    id: String,
    counts: Counts,
    server_version: String,
}

impl PgSnapshot {
    /// REPEATABLE READ and export the snapshot (pg_export_snapshot, 9.2+).
    /// Counting happens in [`PgSnapshot::count`], while pg_dump runs.
    async fn take(url: &SecretUrl) -> EngineResult<PgSnapshot> {
        let mut conn = PgConnection::connect_with(&pg_options(url)?)
            .await
            .map_err(EngineError::from)?;
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut conn)
            .await
            .map_err(EngineError::from)?;
        let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut conn)
            .await
            .map_err(EngineError::from)?;
        let server_version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut conn)
            .await
            .map_err(EngineError::from)?;
        Ok(PgSnapshot {
            conn,
            id,
            counts: Counts::new(),
            server_version,
        })
    }

    /// Count every user table in the snapshot (the rows pg_dump sees).
    async fn count(&mut self) -> EngineResult<()> {
        self.counts = pg_count(&mut self.conn).await?;
        Ok(())
    }

    /// End the transaction (after the dump has finished with the snapshot).
    async fn release(mut self) {
        let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
        let _ = self.conn.close().await;
    }
}

/// Count every ordinary table of the user schemas on this connection.
async fn pg_count(conn: &mut PgConnection) -> EngineResult<Counts> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' \
         ORDER BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::from)?;
    let mut counts = Counts::new();
    for (schema, name) in tables {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {}.{}",
            quote_pg(&schema)?,
            quote_pg(&name)?
        ))
        .fetch_one(&mut *conn)
        .await
        .map_err(EngineError::from)?;
        counts.insert(format!("{schema}.{name}"), n);
    }
    Ok(counts)
}

/// pg_dump/pg_restore/psql for a URL: `--dbname` without the password,
/// PGPASSWORD in the environment.
fn pg_command(tool: &Path, url: &SecretUrl) -> Command {
    let (bare, password) = split_password(url);
    let mut cmd = Command::new(tool);
    cmd.arg(format!("--dbname={bare}"))
        .arg("--no-password")
        .env("PGAPPNAME", "custodian")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match password {
        Some(p) => {
            cmd.env("PGPASSWORD", p);
        }
        None => {
            cmd.env_remove("PGPASSWORD");
        }
    }
    cmd
}

/// PostgreSQL's dumps and restores.
pub struct PgDumps;

#[async_trait]
impl Dumps for PgDumps {
    fn format(&self, parallel: usize) -> DumpFormat {
        if parallel > 1 { DIRECTORY } else { CUSTOM }
    }

    fn uses_jobs(&self, parallel: usize) -> bool {
        parallel > 1
    }

    async fn dump(&self, from: &DumpFrom<'_>, pipe: &dyn Pipe) -> EngineResult<Dumped> {
        let url = from.url;
        let tool = tools::tool(&["pg_dump"], CLIENT).await?;
        pipe.progress(None, "exporting a snapshot");
        let mut snapshot = tokio::select! {
            s = PgSnapshot::take(url) => s?,
            _ = pipe.cancelled() => return Err(EngineError::Cancelled),
        };
        let server_major = tools::major_of(&snapshot.server_version);
        if tool.major < server_major {
            let version = snapshot.server_version.clone();
            snapshot.release().await;
            return Err(EngineError::tool(format!(
                "pg_dump {} is older than the server ({version}): install postgresql-client-{server_major}",
                tool.major
            )));
        }
        let mut cmd = pg_command(&tool.path, url);
        // Without pg_dump's own compression: the pipe's zstd does it, faster.
        cmd.args(["--compress=0", &format!("--snapshot={}", snapshot.id)]);
        let dump = async {
            if from.format == DIRECTORY {
                directory_dump(cmd, from.jobs, pipe).await
            } else {
                cmd.arg("--format=custom");
                pipe.store_output(cmd, "pg_dump").await
            }
        };
        // Count rows in the same snapshot while pg_dump reads it.
        let (result, counted) = tokio::join!(dump, snapshot.count());
        if let Err(e) = counted {
            snapshot.release().await;
            return Err(e.context("counting rows"));
        }
        pipe.log(&format!(
            "{} rows in {} tables at snapshot {}",
            snapshot.counts.values().sum::<i64>(),
            snapshot.counts.len(),
            snapshot.id
        ))
        .await;
        let counts = std::mem::take(&mut snapshot.counts);
        let server_version = snapshot.server_version.clone();
        snapshot.release().await;
        result?;
        Ok(Dumped {
            tool_version: tool.version,
            server_version,
            counts,
        })
    }

    async fn restore(&self, to: &RestoreTo<'_>, pipe: &dyn Pipe) -> EngineResult<()> {
        let tool = tools::tool(&["pg_restore"], CLIENT).await?;
        let mut cmd = pg_command(&tool.path, to.url);
        cmd.args(["--no-owner", "--no-privileges", "--exit-on-error"]);
        if to.clean {
            cmd.args(["--clean", "--if-exists"]);
        }
        if to.format == DIRECTORY.name {
            return restore_directory(cmd, to.jobs, pipe).await;
        }
        cmd.stdin(Stdio::piped());
        pipe.feed_tool(cmd, "pg_restore").await
    }

    async fn counts(&self, url: &SecretUrl) -> EngineResult<Counts> {
        let mut conn = connect(url).await?;
        let counts = pg_count(&mut conn).await;
        let _ = conn.close().await;
        counts
    }

    async fn drop_database(&self, url: &SecretUrl, name: &str) -> EngineResult<()> {
        // WITH (FORCE), PostgreSQL 13+: ends the scratch copy's sessions.
        let mut conn = connect(url).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_pg(name)?
        ))
        .execute(&mut conn)
        .await
        .map_err(EngineError::from)?;
        Ok(())
    }

    async fn new_target(&self, url: &SecretUrl, name: &str) -> EngineResult<NewTarget> {
        let mut conn = connect(url).await?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .map_err(EngineError::from)?;
        dump::new_database(url, name, exists)
    }

    async fn create_database(&self, url: &SecretUrl, name: &str) -> EngineResult<()> {
        let mut conn = connect(url).await?;
        sqlx::query(&format!("CREATE DATABASE {}", quote_pg(name)?))
            .execute(&mut conn)
            .await
            .map_err(EngineError::from)?;
        Ok(())
    }
}

/// A place in the work directory for one dump or restore's files.
fn scratch_path(work_dir: &Path, what: &str) -> std::path::PathBuf {
    work_dir.join(format!("{what}-{}", uuid::Uuid::new_v4().simple()))
}

/// pg_dump --format=directory --jobs=N into the work directory, packed into
/// one tar and streamed into the backup.
async fn directory_dump(mut cmd: Command, jobs: usize, pipe: &dyn Pipe) -> EngineResult<()> {
    let base = scratch_path(pipe.work_dir(), "dump");
    let (dir, tarball) = (base.with_extension("d"), base.with_extension("tar"));
    crate::files::create_private_dir(pipe.work_dir())
        .map_err(|e| EngineError::local("the work directory", e))?;
    cmd.args([
        "--format=directory".to_string(),
        format!("--jobs={jobs}"),
        format!("--file={}", dir.display()),
    ])
    .stdout(Stdio::null());
    let result = async {
        pipe.progress(None, &format!("pg_dump with {jobs} parallel jobs"));
        pipe.run(cmd, "pg_dump").await?;
        let (from, to) = (dir.clone(), tarball.clone());
        tokio::task::spawn_blocking(move || dump::pack(&from, &to))
            .await
            .map_err(EngineError::internal)?
            .map_err(|e| EngineError::local("packing the dump directory", e))?;
        pipe.store_file(&tarball, "pack").await
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&tarball);
    result
}

/// Unpack a directory-format backup and pg_restore it with parallel jobs.
async fn restore_directory(mut cmd: Command, jobs: usize, pipe: &dyn Pipe) -> EngineResult<()> {
    crate::files::create_private_dir(pipe.work_dir())
        .map_err(|e| EngineError::local("the work directory", e))?;
    let base = scratch_path(pipe.work_dir(), "restore");
    let (dir, tarball) = (base.with_extension("d"), base.with_extension("tar"));
    let result = async {
        pipe.write_file(&tarball, "unpack").await?;
        let (from, to) = (tarball.clone(), dir.clone());
        tokio::task::spawn_blocking(move || dump::unpack(&from, &to))
            .await
            .map_err(EngineError::internal)?
            .map_err(|e| EngineError::local("unpacking the backup", e))?;
        cmd.arg("--format=directory")
            .arg(format!("--jobs={}", jobs.max(1)))
            .arg(&dir);
        pipe.run(cmd, "pg_restore").await
    }
    .await;
    let _ = std::fs::remove_file(&tarball);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Point-in-time readiness of a PostgreSQL server: (setting, value,
/// problem?) lines from pg_settings and pg_stat_archiver (9.4+).
pub async fn pitr_readiness(conn: &mut PgConnection) -> EngineResult<Vec<(String, String, bool)>> {
    let (wal_level, archive_mode, archive_command): (String, String, String) = sqlx::query_as(
        "SELECT current_setting('wal_level'), current_setting('archive_mode'), current_setting('archive_command')",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(EngineError::from)?;
    let (archived, last_wal, last_time, failed, last_failed): (i64, Option<String>, Option<String>, i64, Option<String>) =
        sqlx::query_as(
            "SELECT archived_count, last_archived_wal, last_archived_time::text, failed_count, \
                    CASE WHEN last_failed_time > COALESCE(last_archived_time, 'epoch') THEN last_failed_time::text END \
             FROM pg_stat_archiver",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(EngineError::from)?;
    let archiving = archive_mode != "off";
    Ok(vec![
        ("wal_level".into(), wal_level.clone(), wal_level == "minimal"),
        ("archive_mode".into(), archive_mode.clone(), false),
        (
            "archive_command".into(),
            if archive_command.is_empty() {
                "(not set)".into()
            } else {
                archive_command
            },
            false,
        ),
        ("archived WAL files".into(), archived.to_string(), false),
        (
            "last archived".into(),
            match (last_wal, last_time) {
                (Some(w), Some(t)) => format!("{w} at {t}"),
                _ => "never".into(),
            },
            false,
        ),
        (
            "archiving failures".into(),
            match &last_failed {
                Some(t) => format!("{failed}, last at {t}: archiving is failing"),
                None => failed.to_string(),
            },
            archiving && last_failed.is_some(),
        ),
    ])
}
