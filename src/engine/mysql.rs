//! MySQL and MariaDB catalog queries (information_schema and server status
//! variables; MySQL 5.7+, MariaDB 10.3+). The protocol has no application
//! name, so the panel's sessions are recognised by their connection ids.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool};
use sqlx::{Executor, Row};

use super::mysql_maintenance as maintenance;
use super::{
    Action, ActivitySample, Control, DatabaseEntry, EngineError, EngineKind, EngineResult, ManagedDb,
    Relation, STATEMENT_TIMEOUT, SchemaEntry, ServerStatus, Session, SessionLookup, Signal, TableList,
    TableQuery, Target, bad_url, pool_options,
};
use crate::config::SecretUrl;
use crate::error::AppError;

pub struct Mysql {
    pool: MySqlPool,
    /// For maintenance jobs' own connections.
    options: MySqlConnectOptions,
    /// Connection ids of the panel's own pool connections.
    own: Arc<Mutex<HashSet<i64>>>,
}

impl Mysql {
    pub fn connect(url: &SecretUrl) -> Result<Self, AppError> {
        // sqlx speaks mysql://; mariadb:// is the same protocol.
        let raw = url.expose();
        let normalised = match raw.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => raw.to_string(),
        };
        let options =
            MySqlConnectOptions::from_str(&normalised).map_err(|e| bad_url(EngineKind::Mysql, e))?;
        let secs = STATEMENT_TIMEOUT.as_secs();
        let own: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let record = own.clone();
        let maintenance_options = options.clone();
        let pool = pool_options::<sqlx::MySql>()
            .after_connect(move |conn, _meta| {
                let record = record.clone();
                Box::pin(async move {
                    let id: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
                        .fetch_one(&mut *conn)
                        .await?;
                    if let Ok(mut own) = record.lock() {
                        own.insert(id);
                    }
                    // Bound catalog queries: MariaDB's max_statement_time
                    // (seconds) or MySQL's max_execution_time (ms, SELECTs).
                    let mariadb = conn
                        .execute(format!("SET SESSION max_statement_time = {secs}").as_str())
                        .await;
                    if mariadb.is_err() {
                        let _ = conn
                            .execute(format!("SET SESSION max_execution_time = {}", secs * 1000).as_str())
                            .await;
                    }
                    Ok(())
                })
            })
            .connect_lazy_with(options);
        Ok(Mysql {
            pool,
            options: maintenance_options,
            own,
        })
    }
}

#[async_trait]
impl ManagedDb for Mysql {
    fn kind(&self) -> EngineKind {
        EngineKind::Mysql
    }

    /// VERSION(), global status Uptime and Threads_connected, @@max_connections,
    /// and information_schema.tables for the current database's size.
    async fn status(&self) -> EngineResult<ServerStatus> {
        let row = sqlx::query(
            "SELECT VERSION() AS version, \
                    @@max_connections AS max_connections, \
                    (SELECT CAST(COALESCE(SUM(data_length + index_length), 0) AS SIGNED) \
                       FROM information_schema.tables WHERE table_schema = DATABASE()) AS size_bytes, \
                    DATABASE() AS db",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(EngineError::from_sqlx)?;
        let version: String = row.try_get("version").map_err(EngineError::from_sqlx)?;
        let max_connections: Option<i64> = row
            .try_get::<Option<u64>, _>("max_connections")
            .ok()
            .flatten()
            .map(|v| v as i64);
        let db: Option<String> = row.try_get("db").map_err(EngineError::from_sqlx)?;
        let size_bytes: Option<i64> = if db.is_some() {
            row.try_get("size_bytes").map_err(EngineError::from_sqlx)?
        } else {
            None
        };
        let vars: Vec<(String, String)> =
            sqlx::query_as("SHOW GLOBAL STATUS WHERE Variable_name IN ('Uptime', 'Threads_connected')")
                .fetch_all(&self.pool)
                .await
                .map_err(EngineError::from_sqlx)?;
        let var = |name: &str| {
            vars.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.parse::<i64>().ok())
        };
        Ok(ServerStatus {
            version,
            uptime_s: var("Uptime"),
            size_bytes,
            connections: var("Threads_connected"),
            max_connections,
        })
    }

    /// information_schema.schemata with per-schema sizes from information_schema.tables.
    async fn databases(&self) -> EngineResult<Vec<DatabaseEntry>> {
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT s.schema_name, \
                    CAST(SUM(t.data_length + t.index_length) AS SIGNED) \
             FROM information_schema.schemata s \
             LEFT JOIN information_schema.tables t ON t.table_schema = s.schema_name \
             GROUP BY s.schema_name ORDER BY s.schema_name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(EngineError::from_sqlx)?;
        Ok(rows
            .into_iter()
            .map(|(name, size_bytes)| DatabaseEntry { name, size_bytes })
            .collect())
    }

    /// In MySQL a schema is a database: the current one, with its base tables.
    async fn schemas(&self) -> EngineResult<Vec<SchemaEntry>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT DATABASE(), CAST(COUNT(*) AS SIGNED) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' HAVING DATABASE() IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(EngineError::from_sqlx)?;
        Ok(rows
            .into_iter()
            .map(|(name, tables)| SchemaEntry { name, tables })
            .collect())
    }

    async fn apply_migration(
        &self,
        run: &super::history::MigrationRun,
    ) -> EngineResult<super::history::RunOutcome> {
        // On a task of its own: a dropped caller never abandons it halfway.
        tokio::spawn(super::other_migrate::mysql(self.pool.clone(), run.clone()))
            .await
            .map_err(|e| EngineError(format!("the migration task failed: {e}")))?
    }

    async fn reading(&self) -> EngineResult<super::metrics::Reading> {
        super::metrics::mysql(&self.pool).await
    }

    async fn text_rows(&self, sql: &str) -> EngineResult<Vec<Vec<Option<String>>>> {
        let rows = sqlx::query(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(EngineError::from_sqlx)?;
        rows.iter().map(super::text_cells).collect()
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    /// information_schema.PROCESSLIST for this database's connections, with
    /// InnoDB's transactions (INNODB_TRX) and lock waits (INNODB_LOCK_WAITS,
    /// INNODB_LOCKS: MariaDB and MySQL 5.7). MySQL 8 moved lock waits to
    /// performance_schema: there the sample comes without blocking detail.
    async fn activity(&self) -> EngineResult<ActivitySample> {
        let rows = match sqlx::query(&activity_sql(true)).fetch_all(&self.pool).await {
            Err(sqlx::Error::Database(e)) if e.message().contains("Unknown table") => {
                sqlx::query(&activity_sql(false)).fetch_all(&self.pool).await
            }
            other => other,
        }
        .map_err(EngineError::from_sqlx)?;
        let own = self.own.lock().map(|o| o.clone()).unwrap_or_default();
        let mut sample = ActivitySample::default();
        for row in rows {
            let get = |e| EngineError::from_sqlx(e);
            let pid: i64 = row.try_get("pid").map_err(get)?;
            let command: String = row.try_get("command").map_err(get)?;
            let in_trx: bool = row.try_get::<i64, _>("in_trx").map_err(get)? != 0;
            let seconds: Option<i64> = row.try_get("seconds").map_err(get)?;
            let blocked_by: Option<String> = row.try_get("blocked_by").map_err(get)?;
            let state = state_of(&command, in_trx);
            sample.server_connections = row.try_get("server_conns").map_err(get)?;
            sample.max_connections = row.try_get("max_conns").map_err(get)?;
            sample.sessions.push(Session {
                pid,
                own: own.contains(&pid),
                user: row.try_get("usr").map_err(get)?,
                application: None,
                client: row.try_get("host").map_err(get)?,
                database: row.try_get("db").map_err(get)?,
                query_age_s: if state == "active" {
                    seconds.map(|s| s as f64)
                } else {
                    None
                },
                state: Some(state),
                wait_event: row
                    .try_get::<Option<String>, _>("wait")
                    .map_err(get)?
                    .filter(|w| !w.is_empty()),
                query: row.try_get("info").map_err(get)?,
                xact_age_s: row.try_get("xact_age").map_err(get)?,
                blocked_by: blocked_by
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|p| p.trim().parse().ok())
                    .collect(),
                lock_mode: row.try_get("lock_mode").map_err(get)?,
            });
        }
        Ok(sample)
    }

    /// PROCESSLIST for one connection id, in any database.
    async fn session(&self, pid: i64) -> EngineResult<Option<SessionLookup>> {
        let row: Option<(i64, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT CAST(COALESCE(p.DB = DATABASE(), 0) AS SIGNED), p.COMMAND, p.INFO, \
                    CAST(t.trx_id IS NOT NULL AS SIGNED) \
             FROM information_schema.PROCESSLIST p \
             LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID \
             WHERE p.ID = ?",
        )
        .bind(pid)
        .fetch_optional(&self.pool)
        .await
        .map_err(EngineError::from_sqlx)?;
        let own = self.own.lock().map(|o| o.contains(&pid)).unwrap_or(false);
        Ok(row.map(|(in_database, command, query, in_trx)| SessionLookup {
            in_database: in_database != 0,
            own,
            state: Some(state_of(&command, in_trx != 0)),
            query,
        }))
    }

    async fn tables(&self, query: &TableQuery) -> EngineResult<TableList> {
        maintenance::tables(&self.pool, query).await
    }

    async fn resolve_tables(&self, names: &[String]) -> EngineResult<Vec<Relation>> {
        maintenance::resolve_tables(&self.pool, names).await
    }

    async fn maintain(&self, action: Action, target: &Target, control: &Control) -> EngineResult<String> {
        maintenance::maintain(&self.pool, &self.options, action, target, control).await
    }

    /// KILL QUERY / KILL. The id is a number checked against PROCESSLIST
    /// by the caller, so formatting it into the statement is safe.
    async fn signal(&self, pid: i64, signal: Signal) -> EngineResult<bool> {
        let sql = match signal {
            Signal::Cancel => format!("KILL QUERY {pid}"),
            Signal::Terminate => format!("KILL {pid}"),
        };
        match sqlx::raw_sql(&sql).execute(&self.pool).await {
            Ok(_) => Ok(true),
            // ER_NO_SUCH_THREAD: it ended in the meantime.
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("HY000") && e.message().contains("Unknown thread") =>
            {
                Ok(false)
            }
            Err(e) => Err(EngineError::from_sqlx(e)),
        }
    }
}

/// PostgreSQL's words for a MySQL/MariaDB connection's COMMAND.
fn state_of(command: &str, in_transaction: bool) -> String {
    match (command, in_transaction) {
        ("Sleep", true) => "idle in transaction".into(),
        ("Sleep", false) => "idle".into(),
        ("Query" | "Execute", _) => "active".into(),
        (other, _) => other.to_lowercase(),
    }
}

/// The activity query, with or without InnoDB lock-wait detail.
fn activity_sql(with_locks: bool) -> String {
    let (blocked_by, lock_mode) = if with_locks {
        (
            "(SELECT GROUP_CONCAT(b.trx_mysql_thread_id) FROM information_schema.INNODB_LOCK_WAITS w \
               JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id \
               WHERE w.requesting_trx_id = t.trx_id)",
            "(SELECT l.lock_mode FROM information_schema.INNODB_LOCKS l \
               WHERE l.lock_id = t.trx_requested_lock_id LIMIT 1)",
        )
    } else {
        ("NULL", "NULL")
    };
    format!(
        "SELECT CAST(p.ID AS SIGNED) AS pid, p.USER AS usr, p.HOST AS host, p.DB AS db, \
                p.COMMAND AS command, CAST(p.TIME AS SIGNED) AS seconds, p.STATE AS wait, p.INFO AS info, \
                CAST(t.trx_id IS NOT NULL AS SIGNED) AS in_trx, \
                CAST(TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)) / 1000000 AS DOUBLE) AS xact_age, \
                CAST({blocked_by} AS CHAR) AS blocked_by, CAST({lock_mode} AS CHAR) AS lock_mode, \
                (SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.PROCESSLIST WHERE COMMAND <> 'Daemon') AS server_conns, \
                CAST(@@max_connections AS SIGNED) AS max_conns \
         FROM information_schema.PROCESSLIST p \
         LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID \
         WHERE p.DB = DATABASE() AND p.COMMAND NOT IN ('Daemon', 'Binlog Dump') \
         ORDER BY p.TIME DESC, p.ID"
    )
}
