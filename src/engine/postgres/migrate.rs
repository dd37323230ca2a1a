//! Applying a migration on PostgreSQL: under a session advisory lock, in a
//! transaction with SET LOCAL timeouts, or — when it holds a statement
//! PostgreSQL refuses in a transaction (CREATE INDEX CONCURRENTLY …) — one
//! statement at a time outside one. Success or failure is recorded in
//! custodian_schema_history.

use std::time::Instant;

use sqlx::{Connection, Executor, PgConnection};

use crate::engine::history::{
    DELETE_SQL, HISTORY_TABLE_SQL, MigrationRun, RunOutcome, UPSERT_SQL, record_history,
};
use crate::engine::pool::Lease;
use crate::engine::{EngineError, EngineResult};

/// The advisory lock key every Custodian apply takes ("custodia" in ASCII).
const LOCK_KEY: i64 = 0x6375_7374_6f64_6961;

/// Owned arguments: the future must be `Send` for any caller's lifetimes.
/// On a connection of its own from the server's budget, closed afterwards.
pub async fn apply(mut conn: Lease<PgConnection>, run: MigrationRun) -> EngineResult<RunOutcome> {
    let locked = lock(&mut conn).await.map_err(EngineError::from_sqlx)?;
    if !locked {
        return Err(EngineError::Invalid(
            "another migration is being applied to this database right now; try again when it ends".into(),
        ));
    }
    let result = apply_locked(&mut conn, &run).await;
    if unlock(&mut conn).await.is_err() {
        // Never hand a connection that may still hold the lock back to the pool.
        conn.discard();
    }
    result
}

async fn lock(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query(HISTORY_TABLE_SQL)
        .persistent(false)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut *conn)
        .await
}

async fn unlock(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("RESET lock_timeout").execute(&mut *conn).await?;
    sqlx::query("RESET statement_timeout").execute(&mut *conn).await?;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn apply_locked(conn: &mut PgConnection, run: &MigrationRun) -> EngineResult<RunOutcome> {
    let done: Option<bool> =
        sqlx::query_scalar("SELECT success FROM custodian_schema_history WHERE version = $1")
            .bind(&run.version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(EngineError::from_sqlx)?;
    if (done == Some(true)) != run.rollback {
        return Ok(RunOutcome::AlreadyApplied);
    }
    let transactional = !crate::sqltext::postgres::needs_no_transaction(&run.sql);
    let started = Instant::now();
    let outcome = if transactional {
        in_transaction(conn, run, started).await
    } else {
        statement_by_statement(conn, run, started).await
    };
    let execution_ms = started.elapsed().as_millis() as i64;
    match outcome {
        Ok(()) => Ok(RunOutcome::Done {
            execution_ms,
            transactional,
        }),
        Err(e) => {
            let error = match EngineError::from_sqlx(e) {
                // In a transaction, a lock timeout left nothing behind: no
                // failed history row, and trying again later may work.
                EngineError::LockTimeout(m) if transactional => return Err(EngineError::LockTimeout(m)),
                // Outside one, the statements before it stay applied: not
                // something to simply try again.
                EngineError::LockTimeout(m) => EngineError::Refused(format!(
                    "{m} (outside a transaction: the statements before it stay applied)"
                )),
                other => other,
            };
            if run.rollback {
                return Err(error);
            }
            if let Err(e) = record(conn, run, started, false).await {
                tracing::warn!(error = %e, version = %run.version, "cannot record a failed migration");
            }
            Err(error)
        }
    }
}

fn timeouts(run: &MigrationRun, scope: &str) -> String {
    format!(
        "SET {scope} lock_timeout = {}; SET {scope} statement_timeout = {}",
        run.lock_timeout_ms, run.statement_timeout_ms
    )
}

/// The whole migration and its history row in one transaction.
async fn in_transaction(
    conn: &mut PgConnection,
    run: &MigrationRun,
    started: Instant,
) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    match steps(&mut tx, run, started).await {
        Ok(()) => tx.commit().await,
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

async fn steps(tx: &mut PgConnection, run: &MigrationRun, started: Instant) -> Result<(), sqlx::Error> {
    let set = timeouts(run, "LOCAL");
    tx.execute(set.as_str()).await?;
    // A &str runs as a simple query: every statement of the file, in this transaction.
    tx.execute(run.sql.as_str()).await?;
    record(tx, run, started, true).await
}

/// Each statement on its own (autocommit), for what cannot run in a transaction.
async fn statement_by_statement(
    conn: &mut PgConnection,
    run: &MigrationRun,
    started: Instant,
) -> Result<(), sqlx::Error> {
    let set = timeouts(run, "SESSION");
    conn.execute(set.as_str()).await?;
    let statements = crate::sqltext::postgres::statements(&run.sql);
    for statement in statements.iter() {
        conn.execute(statement.as_str()).await?;
    }
    record(conn, run, started, true).await
}

async fn record(
    conn: &mut PgConnection,
    run: &MigrationRun,
    started: Instant,
    success: bool,
) -> Result<(), sqlx::Error> {
    record_history!(conn, run, started, success, UPSERT_SQL, DELETE_SQL)
}
