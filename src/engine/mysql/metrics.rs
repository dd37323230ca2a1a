//! MySQL/MariaDB's monitoring reading, from information_schema and the
//! processlist, once per server.

use std::collections::HashSet;

use sqlx::{MySqlConnection, Row};

use crate::engine::metrics::{Culprit, PerDatabase, Replica, ServerReading};
use crate::engine::{EngineError, EngineResult};

/// The whole server's sample, once for all its databases: SHOW GLOBAL
/// STATUS (connections, Handler_commit/rollback, InnoDB buffer pool reads),
/// information_schema.PROCESSLIST and INNODB_TRX by schema (the panel's
/// own connections, `own`, left out), table sizes by schema, and SHOW
/// REPLICA STATUS on a replica. A running statement's COMMAND is Query
/// (text protocol) or Execute (prepared statements, as most drivers send).
/// The counters are the server's: MySQL keeps no per-schema commit counts.
pub async fn server(conn: &mut MySqlConnection, own: &HashSet<i64>) -> EngineResult<ServerReading> {
    let vars: Vec<(String, String)> = sqlx::query_as(
        "SHOW GLOBAL STATUS WHERE Variable_name IN \
         ('Threads_connected', 'Handler_commit', 'Handler_rollback', \
          'Innodb_buffer_pool_read_requests', 'Innodb_buffer_pool_reads')",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::from)?;
    let var = |name: &str| {
        vars.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.parse::<f64>().ok())
    };
    let reads = var("Innodb_buffer_pool_read_requests");
    let misses = var("Innodb_buffer_pool_reads");
    let max_connections: Option<i64> = sqlx::query_scalar("SELECT CAST(@@max_connections AS SIGNED)")
        .fetch_one(&mut *conn)
        .await
        .map_err(EngineError::from)?;
    let mut reading = ServerReading {
        connections: var("Threads_connected"),
        max_connections: max_connections.map(|m| m as f64),
        ..ServerReading::default()
    };
    let server_figures = |d: &mut PerDatabase| {
        // Handler_*: every commit, autocommitted statements included
        // (Com_commit counts only explicit COMMIT statements).
        d.commits = var("Handler_commit");
        d.rollbacks = var("Handler_rollback");
        // Pages served from the pool: read requests less those that went to disk.
        d.cache_hits = reads.zip(misses).map(|(r, m)| (r - m).max(0.0));
        d.cache_reads = reads;
    };
    let sizes: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT s.SCHEMA_NAME, CAST(COALESCE(SUM(t.DATA_LENGTH + t.INDEX_LENGTH), 0) AS SIGNED) \
           FROM information_schema.SCHEMATA s \
           LEFT JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = s.SCHEMA_NAME \
          GROUP BY s.SCHEMA_NAME",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::from)?;
    for (schema, size) in sizes {
        let d = reading.databases.entry(schema).or_default();
        d.size_bytes = size.map(|s| s as f64);
        server_figures(d);
    }
    let own_list = if own.is_empty() {
        "0".to_string()
    } else {
        // Numbers the panel's own connections reported: safe to inline.
        own.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
    };
    let sessions: Vec<(String, i64, i64, i64, Option<i64>)> = sqlx::query_as(&format!(
        "SELECT p.DB, \
                CAST(COALESCE(SUM(p.COMMAND IN ('Query', 'Execute')), 0) AS SIGNED), \
                CAST(COALESCE(SUM(p.COMMAND = 'Sleep' AND t.trx_id IS NULL), 0) AS SIGNED), \
                CAST(COALESCE(SUM(p.COMMAND = 'Sleep' AND t.trx_id IS NOT NULL), 0) AS SIGNED), \
                CAST(MAX(TIMESTAMPDIFF(SECOND, t.trx_started, NOW())) AS SIGNED) \
           FROM information_schema.PROCESSLIST p \
           LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID \
          WHERE p.DB IS NOT NULL AND p.ID NOT IN ({own_list}) \
          GROUP BY p.DB"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::from)?;
    for (schema, active, idle, idle_in_xact, longest) in sessions {
        let d = reading.databases.entry(schema).or_default();
        d.active = active as f64;
        d.idle = idle as f64;
        d.idle_in_xact = idle_in_xact as f64;
        d.longest_xact_s = longest.map(|l| l as f64);
    }
    let culprits: Vec<(String, String, i64, i64, Option<String>)> = sqlx::query_as(&format!(
        "SELECT 'query', DB, CAST(ID AS SIGNED), CAST(TIME AS SIGNED), LEFT(INFO, 200) \
           FROM information_schema.PROCESSLIST \
          WHERE DB IS NOT NULL AND ID NOT IN ({own_list}) AND COMMAND IN ('Query', 'Execute') \
         UNION ALL \
         SELECT 'idle', p.DB, CAST(p.ID AS SIGNED), CAST(p.TIME AS SIGNED), LEFT(t.trx_query, 200) \
           FROM information_schema.PROCESSLIST p \
           JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID \
          WHERE p.DB IS NOT NULL AND p.COMMAND = 'Sleep'"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::from)?;
    // The longest of each kind per schema.
    for (kind, schema, pid, seconds, query) in culprits {
        let d = reading.databases.entry(schema).or_default();
        let slot = if kind == "query" {
            &mut d.longest_query
        } else {
            &mut d.longest_idle_xact
        };
        if slot.as_ref().is_none_or(|c| (seconds as f64) > c.seconds) {
            *slot = Some(Culprit {
                pid,
                seconds: seconds as f64,
                query: query.unwrap_or_default(),
            });
        }
    }
    // A replica reports its own delay; a primary knows none of its replicas' lag.
    // Without the REPLICATION CLIENT privilege there is simply no figure.
    // SHOW REPLICA STATUS: MySQL 8.0.22+ (Seconds_Behind_Source), MariaDB
    // 10.5+ (Seconds_Behind_Master); MySQL 8.4 no longer knows SHOW SLAVE STATUS.
    for sql in ["SHOW REPLICA STATUS", "SHOW SLAVE STATUS"] {
        if let Ok(found) = sqlx::query(sql).fetch_optional(&mut *conn).await {
            let lag = found.and_then(|row| {
                ["Seconds_Behind_Source", "Seconds_Behind_Master"]
                    .iter()
                    .find_map(|col| row.try_get::<Option<u64>, _>(*col).ok().flatten())
            });
            if let Some(lag) = lag {
                reading.replicas.push(Replica {
                    name: "this replica".into(),
                    lag_s: lag as f64,
                });
            }
            break;
        }
    }
    Ok(reading)
}
