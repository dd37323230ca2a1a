//! Migration histories kept in a managed database: Custodian's own table and,
//! read-only, those of Flyway, Liquibase, Alembic, sqlx and Rails, so a team
//! sees its real history whichever tool applied it. Table names are
//! constants; nothing from a request reaches this SQL.

use serde::Serialize;

use super::{EngineResult, ManagedDb};

/// One applied migration, whichever tool recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub version: String,
    pub description: String,
    /// SHA-256 of the file as applied (Custodian's history only: other
    /// tools' checksums are computed differently and are not compared).
    pub checksum: Option<String>,
    pub applied_by: Option<String>,
    pub applied_at: Option<String>,
    pub execution_ms: Option<i64>,
    pub success: bool,
    /// "custodian", "flyway", "liquibase", "alembic", "sqlx" or "rails".
    pub tool: &'static str,
}

pub const CUSTODIAN_TABLE: &str = "custodian_schema_history";

/// Custodian's history table in a managed database (portable SQL).
pub const HISTORY_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS custodian_schema_history (\
    version TEXT PRIMARY KEY, description TEXT NOT NULL, checksum TEXT NOT NULL, \
    applied_by TEXT NOT NULL, applied_at TEXT NOT NULL, execution_ms INTEGER NOT NULL, \
    success BOOLEAN NOT NULL)";

/// Record a run in custodian_schema_history: upsert its row, or delete it
/// after a rollback. `$upsert`/`$delete` are the dialect's statements; the
/// binds are the same on every engine.
macro_rules! record_history {
    ($conn:expr, $run:expr, $started:expr, $success:expr, $upsert:expr, $delete:expr) => {{
        let (conn, run) = ($conn, $run);
        if run.rollback {
            sqlx::query($delete)
                .bind(&run.version)
                .execute(&mut *conn)
                .await
                .map(|_| ())
        } else {
            sqlx::query($upsert)
                .bind(&run.version)
                .bind(&run.description)
                .bind(&run.checksum)
                .bind(&run.applied_by)
                .bind(&run.applied_at)
                .bind($started.elapsed().as_millis() as i64)
                .bind($success)
                .execute(&mut *conn)
                .await
                .map(|_| ())
        }
    }};
}
pub(crate) use record_history;

/// Upsert of a history row, PostgreSQL and SQLite.
pub(crate) const UPSERT_SQL: &str = "INSERT INTO custodian_schema_history \
       (version, description, checksum, applied_by, applied_at, execution_ms, success) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (version) DO UPDATE SET description = excluded.description, \
       checksum = excluded.checksum, applied_by = excluded.applied_by, \
       applied_at = excluded.applied_at, execution_ms = excluded.execution_ms, success = excluded.success";
pub(crate) const DELETE_SQL: &str = "DELETE FROM custodian_schema_history WHERE version = $1";

/// One migration to apply, with what to record about it.
#[derive(Clone, Debug)]
pub struct MigrationRun {
    pub version: String,
    pub description: String,
    pub checksum: String,
    pub sql: String,
    pub applied_by: String,
    /// "2026-11-25 10:00:00 UTC".
    pub applied_at: String,
    pub lock_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    /// Run the undo/down SQL of an applied version and remove its history
    /// row, instead of applying it.
    pub rollback: bool,
}

/// How a migration run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Applied now, taking this long.
    Done { execution_ms: i64, transactional: bool },
    /// Another run applied it (or, rolling back, undid it) first.
    AlreadyApplied,
}

/// (tool, table, SELECT of version, description, checksum, applied_by,
/// applied_at, execution_ms, success — every column cast to text by `{t}`).
const HISTORIES: &[(&str, &str, &str)] = &[
    (
        "custodian",
        CUSTODIAN_TABLE,
        "SELECT CAST(version AS {t}), description, checksum, applied_by, CAST(applied_at AS {t}), \
      CAST(execution_ms AS {t}), CAST(success AS {t}) FROM custodian_schema_history",
    ),
    (
        "flyway",
        "flyway_schema_history",
        "SELECT CAST(version AS {t}), description, NULL, installed_by, CAST(installed_on AS {t}), \
      CAST(execution_time AS {t}), CAST(success AS {t}) FROM flyway_schema_history \
      WHERE version IS NOT NULL ORDER BY installed_rank",
    ),
    (
        "liquibase",
        "databasechangelog",
        "SELECT CAST(id AS {t}), COALESCE(description, filename), NULL, author, CAST(dateexecuted AS {t}), \
      NULL, CAST(1 AS {t}) FROM databasechangelog ORDER BY orderexecuted",
    ),
    (
        "alembic",
        "alembic_version",
        "SELECT CAST(version_num AS {t}), 'current revision', NULL, NULL, NULL, NULL, CAST(1 AS {t}) \
      FROM alembic_version",
    ),
    (
        "sqlx",
        "_sqlx_migrations",
        "SELECT CAST(version AS {t}), description, NULL, NULL, CAST(installed_on AS {t}), \
      CAST(execution_time / 1000000 AS {t}), CAST(success AS {t}) FROM _sqlx_migrations ORDER BY version",
    ),
    (
        "rails",
        "schema_migrations",
        "SELECT CAST(version AS {t}), '', NULL, NULL, NULL, NULL, CAST(1 AS {t}) FROM schema_migrations",
    ),
];

/// Every history present, Custodian's first; per tool in applied order.
pub async fn read(db: &dyn ManagedDb) -> EngineResult<Vec<Applied>> {
    let names = HISTORIES
        .iter()
        .map(|(_, table, _)| format!("'{table}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let present: Vec<String> = db
        .text_rows(&db.tables_named_sql().replace("{names}", &names))
        .await?
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
        .collect();
    let mut out = Vec::new();
    for (tool, table, select) in HISTORIES {
        if !present.iter().any(|p| p == table) {
            continue;
        }
        for row in db.text_rows(&select.replace("{t}", db.text_type())).await? {
            let cell = |i: usize| row.get(i).cloned().flatten();
            let Some(version) = cell(0) else { continue };
            out.push(Applied {
                version,
                description: cell(1).unwrap_or_default(),
                checksum: cell(2),
                applied_by: cell(3),
                applied_at: cell(4),
                execution_ms: cell(5)
                    .and_then(|ms| ms.trim().parse::<f64>().ok())
                    .map(|ms| ms as i64),
                success: cell(6).is_some_and(|s| matches!(s.trim(), "1" | "t" | "true" | "TRUE")),
                tool,
            });
        }
    }
    Ok(out)
}

/// Run a migration on a task of its own: a caller that goes away (a
/// dropped request) never abandons it halfway.
pub(crate) async fn detached(
    run: impl std::future::Future<Output = EngineResult<RunOutcome>> + Send + 'static,
) -> EngineResult<RunOutcome> {
    tokio::spawn(run)
        .await
        .map_err(|e| super::EngineError::internal(format!("the migration task failed: {e}")))?
}
