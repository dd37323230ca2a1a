//! Applying a migration on SQLite (one IMMEDIATE transaction: SQLite's own
//! write lock serialises two panels) and MySQL/MariaDB (GET_LOCK as the
//! advisory lock; DDL there commits by itself, so statements run one by one
//! and a failure leaves the earlier ones applied — the page warns first).

use std::time::Instant;

use sqlx::{Executor, MySqlConnection, SqliteConnection, SqlitePool};

use super::history::{DELETE_SQL, MigrationRun, RunOutcome, UPSERT_SQL, record_history};
use super::pool::Lease;
use super::{EngineError, EngineResult};

const SQLITE_HISTORY: &str = super::history::HISTORY_TABLE_SQL;
const MYSQL_HISTORY: &str = "CREATE TABLE IF NOT EXISTS custodian_schema_history (\
    version VARCHAR(191) PRIMARY KEY, description TEXT NOT NULL, checksum VARCHAR(64) NOT NULL, \
    applied_by VARCHAR(191) NOT NULL, applied_at VARCHAR(64) NOT NULL, execution_ms BIGINT NOT NULL, \
    success BOOLEAN NOT NULL)";

const MYSQL_UPSERT: &str = "INSERT INTO custodian_schema_history \
       (version, description, checksum, applied_by, applied_at, execution_ms, success) \
     VALUES (?, ?, ?, ?, ?, ?, ?) \
     ON DUPLICATE KEY UPDATE description = VALUES(description), checksum = VALUES(checksum), \
       applied_by = VALUES(applied_by), applied_at = VALUES(applied_at), \
       execution_ms = VALUES(execution_ms), success = VALUES(success)";

pub async fn sqlite(pool: SqlitePool, run: MigrationRun) -> EngineResult<RunOutcome> {
    let mut conn = pool.acquire().await.map_err(EngineError::from_sqlx)?;
    conn.execute(SQLITE_HISTORY)
        .await
        .map_err(EngineError::from_sqlx)?;
    conn.execute("BEGIN IMMEDIATE")
        .await
        .map_err(EngineError::from_sqlx)?;
    let started = Instant::now();
    match sqlite_steps(&mut conn, &run, started).await {
        Ok(Some(outcome)) => {
            conn.execute("COMMIT").await.map_err(EngineError::from_sqlx)?;
            Ok(outcome)
        }
        Ok(None) => {
            let _ = conn.execute("ROLLBACK").await;
            Ok(RunOutcome::AlreadyApplied)
        }
        Err(e) => {
            let _ = conn.execute("ROLLBACK").await;
            if !run.rollback {
                let _ = sqlite_record(&mut conn, &run, started, false).await;
            }
            Err(EngineError::from_sqlx(e))
        }
    }
}

async fn sqlite_steps(
    conn: &mut SqliteConnection,
    run: &MigrationRun,
    started: Instant,
) -> Result<Option<RunOutcome>, sqlx::Error> {
    let done: Option<bool> =
        sqlx::query_scalar("SELECT success FROM custodian_schema_history WHERE version = ?1")
            .bind(&run.version)
            .fetch_optional(&mut *conn)
            .await?;
    if (done == Some(true)) != run.rollback {
        return Ok(None);
    }
    conn.execute(run.sql.as_str()).await?;
    sqlite_record(conn, run, started, true).await?;
    Ok(Some(RunOutcome::Done {
        execution_ms: started.elapsed().as_millis() as i64,
        transactional: true,
    }))
}

async fn sqlite_record(
    conn: &mut SqliteConnection,
    run: &MigrationRun,
    started: Instant,
    success: bool,
) -> Result<(), sqlx::Error> {
    record_history!(conn, run, started, success, UPSERT_SQL, DELETE_SQL)
}

/// On a connection of its own (closed afterwards, so a lock it might still
/// hold dies with it).
pub async fn mysql(mut conn: Lease<MySqlConnection>, run: MigrationRun) -> EngineResult<RunOutcome> {
    conn.execute(MYSQL_HISTORY)
        .await
        .map_err(EngineError::from_sqlx)?;
    let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK('custodian_migrate', 0)")
        .fetch_one(&mut *conn)
        .await
        .map_err(EngineError::from_sqlx)?;
    if locked != Some(1) {
        return Err(EngineError(
            "another migration is being applied to this database right now; try again when it ends".into(),
        ));
    }
    let result = mysql_locked(&mut conn, &run).await;
    if sqlx::query("SELECT RELEASE_LOCK('custodian_migrate')")
        .execute(&mut *conn)
        .await
        .is_err()
    {
        conn.discard();
    }
    result
}

async fn mysql_locked(conn: &mut MySqlConnection, run: &MigrationRun) -> EngineResult<RunOutcome> {
    let done: Option<bool> =
        sqlx::query_scalar("SELECT success FROM custodian_schema_history WHERE version = ?")
            .bind(&run.version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(EngineError::from_sqlx)?;
    if (done == Some(true)) != run.rollback {
        return Ok(RunOutcome::AlreadyApplied);
    }
    let statements = crate::lint::mysql_statements(&run.sql)
        .map_err(|at| EngineError(format!("the migration has a quote never closed (byte {at})")))?;
    let started = Instant::now();
    let timeouts = format!(
        "SET SESSION lock_wait_timeout = {}",
        run.lock_timeout_ms.div_ceil(1000).max(1)
    );
    let mut ran = conn.execute(timeouts.as_str()).await.map(|_| ());
    let mut done_count = 0;
    if ran.is_ok() {
        for statement in &statements {
            ran = conn.execute(statement.as_str()).await.map(|_| ());
            if ran.is_err() {
                break;
            }
            done_count += 1;
        }
    }
    let _ = conn.execute("SET SESSION lock_wait_timeout = DEFAULT").await;
    let success = ran.is_ok();
    mysql_record(conn, run, started, success)
        .await
        .map_err(EngineError::from_sqlx)?;
    match ran {
        Ok(()) => Ok(RunOutcome::Done {
            execution_ms: started.elapsed().as_millis() as i64,
            transactional: false,
        }),
        Err(e) => Err(EngineError(format!(
            "{} ({done_count} of {} statements had run and stay applied: MySQL/MariaDB DDL is not transactional)",
            EngineError::from_sqlx(e),
            statements.len()
        ))),
    }
}

async fn mysql_record(
    conn: &mut MySqlConnection,
    run: &MigrationRun,
    started: Instant,
    success: bool,
) -> Result<(), sqlx::Error> {
    record_history!(
        conn,
        run,
        started,
        success,
        MYSQL_UPSERT,
        "DELETE FROM custodian_schema_history WHERE version = ?"
    )
}
