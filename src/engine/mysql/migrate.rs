//! Applying a migration on MySQL/MariaDB: GET_LOCK as the advisory lock;
//! DDL there commits by itself, so statements run one by one and a failure
//! leaves the earlier ones applied (the page warns first).

use std::time::Instant;

use sqlx::{Executor, MySqlConnection};

use crate::engine::history::{MigrationRun, RunOutcome, record_history};
use crate::engine::pool::Lease;
use crate::engine::{EngineError, EngineResult};

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

/// On a connection of its own (closed afterwards, so a lock it might still
/// hold dies with it).
pub async fn apply(mut conn: Lease<MySqlConnection>, run: MigrationRun) -> EngineResult<RunOutcome> {
    conn.execute(MYSQL_HISTORY)
        .await
        .map_err(EngineError::from_sqlx)?;
    let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK('custodian_migrate', 0)")
        .fetch_one(&mut *conn)
        .await
        .map_err(EngineError::from_sqlx)?;
    if locked != Some(1) {
        return Err(EngineError::Invalid(
            "another migration is being applied to this database right now; try again when it ends".into(),
        ));
    }
    let result = apply_locked(&mut conn, &run).await;
    if sqlx::query("SELECT RELEASE_LOCK('custodian_migrate')")
        .execute(&mut *conn)
        .await
        .is_err()
    {
        conn.discard();
    }
    result
}

async fn apply_locked(conn: &mut MySqlConnection, run: &MigrationRun) -> EngineResult<RunOutcome> {
    let done: Option<bool> =
        sqlx::query_scalar("SELECT success FROM custodian_schema_history WHERE version = ?")
            .bind(&run.version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(EngineError::from_sqlx)?;
    if (done == Some(true)) != run.rollback {
        return Ok(RunOutcome::AlreadyApplied);
    }
    let statements = crate::sqltext::mysql::statements(&run.sql)
        .map_err(|at| EngineError::Invalid(format!("the migration has a quote never closed (byte {at})")))?;
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
    record(conn, run, started, success)
        .await
        .map_err(EngineError::from_sqlx)?;
    match ran {
        Ok(()) => Ok(RunOutcome::Done {
            execution_ms: started.elapsed().as_millis() as i64,
            transactional: false,
        }),
        Err(e) => Err(EngineError::Refused(format!(
            "{} ({done_count} of {} statements had run and stay applied: MySQL/MariaDB DDL is not transactional)",
            EngineError::from_sqlx(e),
            statements.len()
        ))),
    }
}

async fn record(
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
