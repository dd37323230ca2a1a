//! SQLite backups: the online copy (VACUUM INTO, SQLite 3.27+), consistent
//! while the database stays in use, stored whole; restores write a new
//! file. Row counts read the file itself.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

use crate::config::SecretUrl;
use crate::engine::dump::{Counts, DumpFormat, DumpFrom, Dumped, Dumps, NewTarget, Pipe, RestoreTo};
use crate::engine::maintenance::quote_pg;
use crate::engine::{EngineError, EngineResult};

const FILE: DumpFormat = DumpFormat {
    name: "sqlite file",
    ext: "sqlite",
};

fn url_of(path: &Path) -> SecretUrl {
    SecretUrl::new(format!("sqlite://{}", path.display()))
}

/// SQLite: counts of a database file (a backup copy or a restored one).
async fn file_counts(path: &Path) -> EngineResult<Counts> {
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(EngineError::from)?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .map_err(EngineError::from)?;
    let mut counts = Counts::new();
    for name in tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", quote_pg(&name)?))
            .fetch_one(&mut conn)
            .await
            .map_err(EngineError::from)?;
        counts.insert(format!("main.{name}"), n);
    }
    let _ = conn.close().await;
    Ok(counts)
}

/// SQLite's online copy: VACUUM INTO a new file (SQLite 3.27+), consistent
/// while the database stays in use.
async fn copy(source: &SecretUrl, to: &Path) -> EngineResult<()> {
    let options = SqliteConnectOptions::from_str(source.expose())
        .map_err(EngineError::from)?
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_secs(30));
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(EngineError::from)?;
    let literal = format!("'{}'", to.display().to_string().replace('\'', "''"));
    sqlx::query(&format!("VACUUM INTO {literal}"))
        .execute(&mut conn)
        .await
        .map_err(EngineError::from)?;
    let _ = conn.close().await;
    Ok(())
}

/// The file behind a sqlite:// URL.
fn path_of(url: &SecretUrl) -> EngineResult<PathBuf> {
    let options = SqliteConnectOptions::from_str(url.expose()).map_err(EngineError::from)?;
    Ok(options.get_filename().to_path_buf())
}

/// SQLite's backups and restores.
pub struct SqliteDumps;

#[async_trait]
impl Dumps for SqliteDumps {
    fn format(&self, _parallel: usize) -> DumpFormat {
        FILE
    }

    async fn dump(&self, from: &DumpFrom<'_>, pipe: &dyn Pipe) -> EngineResult<Dumped> {
        let url = from.url;
        let work_dir = pipe.work_dir();
        crate::files::create_private_dir(work_dir)
            .map_err(|e| EngineError::local("the work directory", e))?;
        let copied = work_dir.join(format!("backup-{}.sqlite", uuid::Uuid::new_v4().simple()));
        pipe.progress(None, "copying the database (VACUUM INTO)");
        let result = async {
            copy(url, &copied).await?;
            let counts = file_counts(&copied).await?;
            pipe.store_file(&copied, "copy").await?;
            Ok(Dumped {
                tool_version: "VACUUM INTO".into(),
                server_version: "SQLite".into(),
                counts,
            })
        }
        .await;
        let _ = std::fs::remove_file(&copied);
        result
    }

    async fn restore(&self, to: &RestoreTo<'_>, pipe: &dyn Pipe) -> EngineResult<()> {
        pipe.write_file(&path_of(to.url)?, "restore").await
    }

    async fn counts(&self, url: &SecretUrl) -> EngineResult<Counts> {
        file_counts(&path_of(url)?).await
    }

    async fn create_scratch(&self, _url: &SecretUrl, name: &str, work_dir: &Path) -> EngineResult<SecretUrl> {
        crate::files::create_private_dir(work_dir)
            .map_err(|e| EngineError::local("the work directory", e))?;
        Ok(url_of(&work_dir.join(format!("{name}.sqlite"))))
    }

    async fn drop_scratch(&self, _url: &SecretUrl, _name: &str, scratch: &SecretUrl) -> EngineResult<()> {
        if let Ok(path) = path_of(scratch) {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    async fn new_target(&self, url: &SecretUrl, name: &str) -> EngineResult<NewTarget> {
        let dir = path_of(url)?.parent().map(Path::to_path_buf).unwrap_or_default();
        let path = dir.join(format!("{name}.sqlite"));
        Ok(NewTarget {
            url: url_of(&path),
            create: None,
            label: path.display().to_string(),
            taken: path
                .exists()
                .then(|| format!("{} already exists", path.display())),
        })
    }

    fn over_original(&self) -> Result<(), &'static str> {
        Err("restore a SQLite backup into a new file, then swap the files while the application is stopped")
    }

    async fn create_database(&self, _url: &SecretUrl, _name: &str) -> EngineResult<()> {
        Ok(())
    }

    async fn drop_database(&self, _url: &SecretUrl, _name: &str) -> EngineResult<()> {
        Ok(())
    }
}
