//! Point-in-time recovery on pgBackRest: what the server says about its
//! WAL archiving and its relation files (read here, time-boxed like every
//! catalog read), driving `pgbackrest` (`pgbackrest`), starting and
//! stopping restored servers (`cluster`), and reading archived WAL with
//! the server's own `pg_waldump` (`wal`). The panel drives the tools and
//! reads their catalog; it keeps no second copy that could disagree.

pub mod cluster;
pub mod pgbackrest;
pub mod wal;

use std::path::PathBuf;

use sqlx::PgConnection;

use crate::engine::{EngineError, EngineResult};

/// What the server says about itself that recovery needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    pub data_directory: String,
    /// `SHOW server_version_num` / 10000.
    pub major: u32,
    /// The managed database's oid (WAL names files as tablespace/db/file).
    pub db_oid: i64,
    pub wal_segment_size: i64,
    pub archive_mode: String,
    pub archive_command: String,
    pub archived_count: i64,
    pub last_archived_wal: Option<String>,
    /// Unix seconds.
    pub last_archived_at: Option<i64>,
    pub failed_count: i64,
    pub last_failed_wal: Option<String>,
    /// Unix seconds; only when the last failure is newer than the last success.
    pub last_failed_at: Option<i64>,
    /// The server's clock, Unix seconds (archive ages are judged on it).
    pub now: i64,
    /// The WAL segment being written now (`None` on a standby).
    pub current_wal: Option<String>,
    /// How far into it WAL has been inserted, in bytes: a segment holds
    /// unarchived writes once this is past its page header.
    pub current_offset: Option<i64>,
    /// `archive_timeout` in seconds (0: a segment is archived only when full).
    pub archive_timeout_s: i64,
    /// A fingerprint of the user relations and their files (count, sum of
    /// files, newest oid): when it is unchanged, so is [`relation_files`].
    pub relations: String,
}

impl Facts {
    /// Archiving is on and an archive command is set.
    pub fn archiving_on(&self) -> bool {
        self.archive_mode != "off" && !self.archive_command.trim().is_empty()
    }
}

/// pg_stat_archiver, as read.
#[derive(sqlx::FromRow)]
struct Archiver {
    archived_count: i64,
    last_archived_wal: Option<String>,
    last_archived_at: Option<f64>,
    failed_count: i64,
    last_failed_wal: Option<String>,
    last_failed_at: Option<f64>,
    now: f64,
    current_wal: Option<String>,
    current_offset: Option<i64>,
    archive_timeout_s: i64,
}

pub(crate) async fn facts(conn: &mut PgConnection) -> EngineResult<Facts> {
    let row: (String, i32, i64, String, String, String, String) = sqlx::query_as(
        "SELECT current_setting('data_directory'), current_setting('server_version_num')::int, \
                (SELECT oid::int8 FROM pg_database WHERE datname = current_database()), \
                current_setting('wal_segment_size'), current_setting('archive_mode'), \
                current_setting('archive_command'), \
                (SELECT count(*) || ':' || COALESCE(sum(relfilenode::int8), 0) || ':' || COALESCE(max(oid::int8), 0) \
                 FROM pg_class WHERE oid >= 16384 AND relpersistence <> 't' AND relkind IN ('r', 'p', 'm', 'i', 't'))",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(EngineError::from)?;
    let archiver: Archiver = sqlx::query_as(
        "SELECT archived_count, last_archived_wal, extract(epoch FROM last_archived_time)::float8 AS last_archived_at, \
                failed_count, last_failed_wal, \
                CASE WHEN last_failed_time > COALESCE(last_archived_time, 'epoch') \
                     THEN extract(epoch FROM last_failed_time)::float8 END AS last_failed_at, \
                extract(epoch FROM now())::float8 AS now, \
                CASE WHEN pg_is_in_recovery() THEN NULL \
                     ELSE (pg_walfile_name_offset(pg_current_wal_insert_lsn())).file_name END AS current_wal, \
                CASE WHEN pg_is_in_recovery() THEN NULL \
                     ELSE (pg_walfile_name_offset(pg_current_wal_insert_lsn())).file_offset::int8 END AS current_offset, \
                (SELECT setting::int8 FROM pg_settings WHERE name = 'archive_timeout') AS archive_timeout_s \
         FROM pg_stat_archiver",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(EngineError::from)?;
    Ok(Facts {
        data_directory: row.0,
        major: (row.1 / 10000) as u32,
        db_oid: row.2,
        wal_segment_size: parse_size(&row.3),
        archive_mode: row.4,
        archive_command: row.5,
        archived_count: archiver.archived_count,
        last_archived_wal: archiver.last_archived_wal,
        last_archived_at: archiver.last_archived_at.map(|t| t as i64),
        failed_count: archiver.failed_count,
        last_failed_wal: archiver.last_failed_wal,
        last_failed_at: archiver.last_failed_at.map(|t| t as i64),
        now: archiver.now as i64,
        current_wal: archiver.current_wal,
        current_offset: archiver.current_offset,
        archive_timeout_s: archiver.archive_timeout_s,
        relations: row.6,
    })
}

/// "16MB" → bytes (what `SHOW wal_segment_size` prints), within what
/// PostgreSQL allows (1 MB to 1 GB).
fn parse_size(text: &str) -> i64 {
    let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).take(12).collect();
    let n: i64 = digits.parse().unwrap_or(16);
    let unit = text[digits.len()..].trim().to_ascii_uppercase();
    let bytes = n.saturating_mul(match unit.as_str() {
        "KB" => 1024,
        "MB" => 1024 * 1024,
        "GB" => 1024 * 1024 * 1024,
        _ => 1,
    });
    bytes.clamp(1024 * 1024, 1024 * 1024 * 1024)
}

/// A relation of the managed database and the file that holds it now.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RelationFile {
    pub relfilenode: i64,
    pub oid: i64,
    /// `schema.name`.
    pub name: String,
    /// pg_class.relkind.
    pub relkind: String,
}

/// Every user relation's file (tables, indexes, views' none): the panel
/// records these so the timeline names a relation after it is dropped.
pub(crate) async fn relation_files(conn: &mut PgConnection) -> EngineResult<Vec<RelationFile>> {
    let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
        "SELECT pg_relation_filenode(c.oid)::int8, c.oid::int8, \
                quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind::text \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.oid >= 16384 AND c.relkind IN ('r', 'p', 'm', 'i', 't') \
           AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%' \
           AND pg_relation_filenode(c.oid) IS NOT NULL \
         LIMIT 200000",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::from)?;
    Ok(rows
        .into_iter()
        .map(|(relfilenode, oid, name, relkind)| RelationFile {
            relfilenode,
            oid,
            name,
            relkind,
        })
        .collect())
}

/// A PostgreSQL server program of major version `major` (pg_ctl,
/// pg_waldump): the server's own, never another version's.
pub fn server_program(major: u32, name: &str) -> EngineResult<PathBuf> {
    let candidates = [
        PathBuf::from(format!("/usr/lib/postgresql/{major}/bin/{name}")),
        PathBuf::from(format!("/usr/pgsql-{major}/bin/{name}")),
    ];
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    if let Some(found) = crate::engine::tools::find(&[name]) {
        let version = std::process::Command::new(&found)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        if crate::engine::tools::major_of(version.rsplit(' ').next().unwrap_or("")) == major {
            return Ok(found);
        }
    }
    Err(EngineError::Tool(format!(
        "{name} for PostgreSQL {major} was not found: install postgresql-{major} (Debian) or postgresql{major}-server"
    )))
}

#[cfg(test)]
mod tests {
    #[test]
    fn segment_sizes_parse() {
        assert_eq!(super::parse_size("16MB"), 16 * 1024 * 1024);
        assert_eq!(super::parse_size("1GB"), 1024 * 1024 * 1024);
        assert_eq!(super::parse_size("64GB"), 1024 * 1024 * 1024);
        assert_eq!(super::parse_size("99999999999999999999MB"), 1024 * 1024 * 1024);
    }
}
