//! Applying a migration on SQLite: one IMMEDIATE transaction (SQLite's own
//! write lock serialises two panels), recorded in Custodian's history table.

use std::time::Instant;

use sqlx::{Executor, SqliteConnection, SqlitePool};

use crate::engine::history::{
    DELETE_SQL, HISTORY_TABLE_SQL, MigrationRun, RunOutcome, UPSERT_SQL, record_history,
};
use crate::engine::{EngineError, EngineResult};

pub async fn apply(pool: SqlitePool, run: MigrationRun) -> EngineResult<RunOutcome> {
    let mut conn = pool.acquire().await.map_err(EngineError::from_sqlx)?;
    conn.execute(HISTORY_TABLE_SQL)
        .await
        .map_err(EngineError::from_sqlx)?;
    conn.execute("BEGIN IMMEDIATE")
        .await
        .map_err(EngineError::from_sqlx)?;
    let started = Instant::now();
    match steps(&mut conn, &run, started).await {
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
                let _ = record(&mut conn, &run, started, false).await;
            }
            Err(EngineError::from_sqlx(e))
        }
    }
}

async fn steps(
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
    record(conn, run, started, true).await?;
    Ok(Some(RunOutcome::Done {
        execution_ms: started.elapsed().as_millis() as i64,
        transactional: true,
    }))
}

async fn record(
    conn: &mut SqliteConnection,
    run: &MigrationRun,
    started: Instant,
    success: bool,
) -> Result<(), sqlx::Error> {
    record_history!(conn, run, started, success, UPSERT_SQL, DELETE_SQL)
}
