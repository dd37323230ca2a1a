//! MySQL/MariaDB dumps and restores: mariadb-dump (or mysqldump)
//! --single-transaction, with row counts taken in a consistent snapshot
//! just before; the mariadb client to restore. Connection settings reach
//! the tools through a 0600 option file, never the command line.
//! Point-in-time readiness: the binary log.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::{Connection, MySqlConnection};
use tokio::process::Command;

use crate::config::SecretUrl;
use crate::engine::dump::{self, Counts, DumpFormat, DumpFrom, Dumped, Dumps, NewTarget, Pipe, RestoreTo};
use crate::engine::maintenance::quote_mysql;
use crate::engine::tools::{self, percent_decode};
use crate::engine::{EngineError, EngineResult};

const SQL: DumpFormat = DumpFormat {
    name: "mariadb-dump sql",
    ext: "sql",
};
const CLIENT: &str = "the MariaDB client (mariadb-client)";

fn mysql_options(url: &SecretUrl) -> EngineResult<MySqlConnectOptions> {
    MySqlConnectOptions::from_str(&url.expose().replacen("mariadb://", "mysql://", 1))
        .map_err(EngineError::from)
}

async fn connect(url: &SecretUrl) -> EngineResult<MySqlConnection> {
    MySqlConnection::connect_with(&mysql_options(url)?)
        .await
        .map_err(EngineError::from)
}

/// MySQL/MariaDB: counts in a consistent snapshot taken just before the
/// dump's own (--single-transaction); exact unless rows change in between.
/// Returns (counts, server version).
async fn counts_and_version(url: &SecretUrl) -> EngineResult<(Counts, String)> {
    let mut conn = connect(url).await?;
    sqlx::query("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .execute(&mut conn)
        .await
        .map_err(EngineError::from)?;
    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(&mut conn)
        .await
        .map_err(EngineError::from)?;
    let counts = mysql_count(&mut conn).await?;
    let _ = sqlx::query("COMMIT").execute(&mut conn).await;
    let _ = conn.close().await;
    Ok((counts, version))
}

async fn mysql_count(conn: &mut MySqlConnection) -> EngineResult<Counts> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT TABLE_NAME FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::from)?;
    let mut counts = Counts::new();
    for name in tables {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT CAST(COUNT(*) AS SIGNED) FROM {}",
            quote_mysql(&name)?
        ))
        .fetch_one(&mut *conn)
        .await
        .map_err(EngineError::from)?;
        // Keyed by table alone: a restored copy lives in another schema.
        counts.insert(name, n);
    }
    Ok(counts)
}

/// Connection settings of a mysql:// or mariadb:// URL.
struct MysqlTarget {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    database: String,
}

fn mysql_target(url: &SecretUrl) -> EngineResult<MysqlTarget> {
    let raw = url.expose().replacen("mariadb://", "mysql://", 1);
    let u = url::Url::parse(&raw).map_err(|_| EngineError::invalid("not a valid MySQL URL"))?;
    Ok(MysqlTarget {
        host: u.host_str().unwrap_or("localhost").to_string(),
        port: u.port().unwrap_or(3306),
        user: percent_decode(u.username()),
        password: u.password().map(percent_decode),
        database: u.path().trim_start_matches('/').to_string(),
    })
}

/// A MySQL client option file (mode 0600) holding the connection
/// settings, removed when dropped.
struct OptionFile {
    path: PathBuf,
}

impl OptionFile {
    fn write(dir: &Path, target: &MysqlTarget) -> std::io::Result<OptionFile> {
        crate::files::create_private_dir(dir)?;
        let path = dir.join(format!("client-{}.cnf", uuid::Uuid::new_v4().simple()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path)?;
        let escape = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
        let mut text = format!(
            "[client]\nhost=\"{}\"\nport={}\nuser=\"{}\"\n",
            escape(&target.host),
            target.port,
            escape(&target.user)
        );
        if let Some(p) = &target.password {
            text.push_str(&format!("password=\"{}\"\n", escape(p)));
        }
        std::io::Write::write_all(&mut file, text.as_bytes())?;
        Ok(OptionFile { path })
    }
}

impl Drop for OptionFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// MySQL/MariaDB's dumps and restores.
pub struct MysqlDumps;

/// A client tool run with the connection settings of `url` in an option
/// file (removed when the returned guard drops).
fn client_command(
    tool: &Path,
    url: &SecretUrl,
    work_dir: &Path,
) -> EngineResult<(Command, OptionFile, String)> {
    let target = mysql_target(url)?;
    let options =
        OptionFile::write(work_dir, &target).map_err(|e| EngineError::local("the client option file", e))?;
    let mut cmd = Command::new(tool);
    cmd.arg(format!("--defaults-extra-file={}", options.path.display()))
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    Ok((cmd, options, target.database))
}

#[async_trait]
impl Dumps for MysqlDumps {
    fn format(&self, _parallel: usize) -> DumpFormat {
        SQL
    }

    async fn dump(&self, from: &DumpFrom<'_>, pipe: &dyn Pipe) -> EngineResult<Dumped> {
        let url = from.url;
        let tool = tools::tool(&["mariadb-dump", "mysqldump"], CLIENT).await?;
        pipe.progress(None, "counting rows");
        let (counts, server_version) = tokio::select! {
            c = counts_and_version(url) => c?,
            _ = pipe.cancelled() => return Err(EngineError::Cancelled),
        };
        let (mut cmd, options, database) = client_command(&tool.path, url, pipe.work_dir())?;
        cmd.args([
            "--single-transaction",
            "--quick",
            "--routines",
            "--triggers",
            "--skip-lock-tables",
        ])
        .arg(&database)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
        let result = pipe.store_output(cmd, "mariadb-dump").await;
        drop(options);
        result?;
        Ok(Dumped {
            tool_version: tool.version,
            server_version,
            counts,
        })
    }

    async fn restore(&self, to: &RestoreTo<'_>, pipe: &dyn Pipe) -> EngineResult<()> {
        let tool = tools::tool(&["mariadb", "mysql"], CLIENT).await?;
        let (mut cmd, options, database) = client_command(&tool.path, to.url, pipe.work_dir())?;
        cmd.arg(&database).stdin(Stdio::piped()).stdout(Stdio::null());
        let result = pipe.feed_tool(cmd, "mariadb").await;
        drop(options);
        result
    }

    async fn counts(&self, url: &SecretUrl) -> EngineResult<Counts> {
        let mut conn = connect(url).await?;
        let counts = mysql_count(&mut conn).await;
        let _ = conn.close().await;
        counts
    }

    async fn drop_database(&self, url: &SecretUrl, name: &str) -> EngineResult<()> {
        let mut conn = connect(url).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {}", quote_mysql(name)?))
            .execute(&mut conn)
            .await
            .map_err(EngineError::from)?;
        Ok(())
    }

    async fn new_target(&self, url: &SecretUrl, name: &str) -> EngineResult<NewTarget> {
        let mut conn = connect(url).await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
        )
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .map_err(EngineError::from)?;
        dump::new_database(url, name, n > 0)
    }

    async fn create_database(&self, url: &SecretUrl, name: &str) -> EngineResult<()> {
        let mut conn = connect(url).await?;
        sqlx::query(&format!("CREATE DATABASE {}", quote_mysql(name)?))
            .execute(&mut conn)
            .await
            .map_err(EngineError::from)?;
        Ok(())
    }
}

/// Point-in-time readiness of a MySQL/MariaDB server: the binary log.
pub async fn pitr_readiness(conn: &mut MySqlConnection) -> EngineResult<Vec<(String, String, bool)>> {
    let log_bin: Option<(String, String)> = sqlx::query_as("SHOW VARIABLES LIKE 'log_bin'")
        .fetch_optional(&mut *conn)
        .await
        .map_err(EngineError::from)?;
    let format: Option<(String, String)> = sqlx::query_as("SHOW VARIABLES LIKE 'binlog_format'")
        .fetch_optional(&mut *conn)
        .await
        .map_err(EngineError::from)?;
    let on = log_bin.as_ref().is_some_and(|(_, v)| v == "ON");
    Ok(vec![
        ("log_bin".into(), log_bin.map(|(_, v)| v).unwrap_or_default(), !on),
        (
            "binlog_format".into(),
            format.map(|(_, v)| v).unwrap_or_default(),
            false,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_becomes_option_file_settings() {
        let t = mysql_target(&SecretUrl::new("mariadb://root:s3%2Fcret@db:3307/shop")).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str(), t.database.as_str()),
            ("db", 3307, "root", "shop")
        );
        assert_eq!(t.password.as_deref(), Some("s3/cret"));
    }
}
