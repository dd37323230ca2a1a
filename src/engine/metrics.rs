//! Monitoring readings: the figures the sampler records for one database at
//! one instant, in as few catalog queries as each engine allows. Counters
//! (commits, cache reads) are the server's cumulative totals; the sampler
//! turns two readings into rates. PostgreSQL's queries need 10+
//! (pg_stat_replication.replay_lag); MariaDB's use information_schema.

use serde::Serialize;
use sqlx::{MySqlPool, PgPool, Row};

use super::{EngineError, EngineResult};

/// One replica (or, on a standby, the standby itself) and how far behind it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Replica {
    pub name: String,
    pub lag_s: f64,
}

/// A session worth naming in an alert: the longest query, the longest idle
/// transaction.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Culprit {
    pub pid: i64,
    pub seconds: f64,
    pub query: String,
}

/// Everything one sample reads. `None` means the engine has no such figure.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Reading {
    /// Client connections on the whole server (against `max_connections`).
    pub connections: Option<f64>,
    pub max_connections: Option<f64>,
    /// This database's sessions by state.
    pub active: Option<f64>,
    pub idle: Option<f64>,
    pub idle_in_xact: Option<f64>,
    /// Cumulative counters.
    pub commits: Option<f64>,
    pub rollbacks: Option<f64>,
    pub cache_hits: Option<f64>,
    pub cache_reads: Option<f64>,
    pub size_bytes: Option<f64>,
    pub longest_query: Option<Culprit>,
    pub longest_xact_s: Option<f64>,
    pub longest_idle_xact: Option<Culprit>,
    pub replicas: Vec<Replica>,
    pub dead_tuples: Option<f64>,
    pub xid_age: Option<f64>,
    /// WAL archiving: the last attempt failed (PostgreSQL).
    pub archive_failing: Option<bool>,
}

fn err(e: sqlx::Error) -> EngineError {
    EngineError::from_sqlx(e)
}

/// Queries shorter than this are not worth naming (the sampler's own are not).
const QUERY_TEXT: usize = 200;

/// pg_stat_activity (this database's sessions, not the panel's own sampling
/// connection), pg_stat_database, pg_stat_user_tables, pg_database,
/// pg_stat_archiver and pg_stat_replication.
pub async fn postgres(pool: &PgPool) -> EngineResult<Reading> {
    let mut conn = pool.acquire().await.map_err(err)?;
    let row = sqlx::query(
        "WITH s AS (SELECT * FROM pg_stat_activity \
                    WHERE datname = current_database() AND backend_type = 'client backend' \
                      AND pid <> pg_backend_pid()) \
         SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::float8 AS connections, \
                current_setting('max_connections')::float8 AS max_connections, \
                (SELECT count(*) FROM s WHERE state = 'active')::float8 AS active, \
                (SELECT count(*) FROM s WHERE state = 'idle')::float8 AS idle, \
                (SELECT count(*) FROM s WHERE state LIKE 'idle in transaction%')::float8 AS idle_in_xact, \
                (SELECT max(extract(epoch FROM now() - xact_start)) FROM s)::float8 AS longest_xact_s, \
                d.xact_commit::float8 AS commits, d.xact_rollback::float8 AS rollbacks, \
                d.blks_hit::float8 AS cache_hits, (d.blks_hit + d.blks_read)::float8 AS cache_reads, \
                pg_database_size(current_database())::float8 AS size_bytes, \
                (SELECT sum(n_dead_tup) FROM pg_stat_user_tables)::float8 AS dead_tuples, \
                (SELECT age(datfrozenxid) FROM pg_database WHERE datname = current_database())::float8 AS xid_age, \
                (SELECT last_failed_time IS NOT NULL \
                        AND last_failed_time > COALESCE(last_archived_time, '-infinity') \
                   FROM pg_stat_archiver) AS archive_failing \
         FROM pg_stat_database d WHERE d.datname = current_database()",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(err)?;
    let f = |name: &str| row.try_get::<Option<f64>, _>(name).map_err(err);
    let mut reading = Reading {
        connections: f("connections")?,
        max_connections: f("max_connections")?,
        active: f("active")?,
        idle: f("idle")?,
        idle_in_xact: f("idle_in_xact")?,
        commits: f("commits")?,
        rollbacks: f("rollbacks")?,
        cache_hits: f("cache_hits")?,
        cache_reads: f("cache_reads")?,
        size_bytes: f("size_bytes")?,
        longest_xact_s: f("longest_xact_s")?,
        dead_tuples: Some(f("dead_tuples")?.unwrap_or(0.0)),
        xid_age: f("xid_age")?,
        archive_failing: row.try_get("archive_failing").map_err(err)?,
        ..Reading::default()
    };
    // The oldest running query and the oldest idle transaction, by name.
    let culprits: Vec<(String, i32, f64, String)> = sqlx::query_as(
        "(SELECT 'query', pid, extract(epoch FROM now() - query_start)::float8, left(query, $1) \
            FROM pg_stat_activity \
           WHERE datname = current_database() AND backend_type = 'client backend' \
             AND pid <> pg_backend_pid() AND state = 'active' AND query_start IS NOT NULL \
           ORDER BY query_start LIMIT 1) \
         UNION ALL \
         (SELECT 'idle', pid, extract(epoch FROM now() - state_change)::float8, left(query, $1) \
            FROM pg_stat_activity \
           WHERE datname = current_database() AND backend_type = 'client backend' \
             AND state LIKE 'idle in transaction%' AND state_change IS NOT NULL \
           ORDER BY state_change LIMIT 1)",
    )
    .bind(QUERY_TEXT as i32)
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    for (kind, pid, seconds, query) in culprits {
        let c = Culprit {
            pid: pid as i64,
            seconds,
            query,
        };
        if kind == "query" {
            reading.longest_query = Some(c);
        } else {
            reading.longest_idle_xact = Some(c);
        }
    }
    // Replicas of a primary, named application_name@address (standbys all
    // default to "walreceiver"); on a standby, its own replay delay, zero
    // when it has replayed all it received (an idle primary sends nothing,
    // and the last replayed transaction only grows older).
    let replicas: Vec<(String, f64)> = sqlx::query_as(
        "SELECT COALESCE(NULLIF(application_name, ''), 'replica') || '@' || COALESCE(host(client_addr), 'local'), \
                COALESCE(extract(epoch FROM replay_lag), 0)::float8 \
           FROM pg_stat_replication \
         UNION ALL \
         SELECT 'this standby', \
                CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
                     ELSE COALESCE(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8 \
          WHERE pg_is_in_recovery()",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    reading.replicas = replicas
        .into_iter()
        .map(|(name, lag_s)| Replica { name, lag_s })
        .collect();
    Ok(reading)
}

/// SHOW GLOBAL STATUS (connections, Handler_commit/rollback, InnoDB buffer
/// pool reads), information_schema.PROCESSLIST and INNODB_TRX for this
/// schema's sessions, table sizes, and SHOW SLAVE STATUS on a replica.
/// A running statement's COMMAND is Query (text protocol) or Execute
/// (prepared statements, as most drivers send).
pub async fn mysql(pool: &MySqlPool) -> EngineResult<Reading> {
    let vars: Vec<(String, String)> = sqlx::query_as(
        "SHOW GLOBAL STATUS WHERE Variable_name IN \
         ('Threads_connected', 'Handler_commit', 'Handler_rollback', \
          'Innodb_buffer_pool_read_requests', 'Innodb_buffer_pool_reads')",
    )
    .fetch_all(pool)
    .await
    .map_err(err)?;
    let var = |name: &str| {
        vars.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.parse::<f64>().ok())
    };
    let row = sqlx::query(
        "SELECT CAST(@@max_connections AS SIGNED) AS max_connections, \
                CAST((SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.TABLES \
                       WHERE table_schema = DATABASE()) AS SIGNED) AS size_bytes, \
                CAST(COALESCE(SUM(p.COMMAND IN ('Query', 'Execute')), 0) AS SIGNED) AS active, \
                CAST(COALESCE(SUM(p.COMMAND = 'Sleep' AND t.trx_id IS NULL), 0) AS SIGNED) AS idle, \
                CAST(COALESCE(SUM(p.COMMAND = 'Sleep' AND t.trx_id IS NOT NULL), 0) AS SIGNED) AS idle_in_xact, \
                CAST(MAX(TIMESTAMPDIFF(SECOND, t.trx_started, NOW())) AS SIGNED) AS longest_xact_s \
         FROM information_schema.PROCESSLIST p \
         LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID \
         WHERE p.DB = DATABASE() AND p.ID <> CONNECTION_ID()",
    )
    .fetch_one(pool)
    .await
    .map_err(err)?;
    let i = |name: &str| {
        row.try_get::<Option<i64>, _>(name)
            .map(|v| v.map(|v| v as f64))
            .map_err(err)
    };
    let reads = var("Innodb_buffer_pool_read_requests");
    let misses = var("Innodb_buffer_pool_reads");
    let mut reading = Reading {
        connections: var("Threads_connected"),
        max_connections: i("max_connections")?,
        active: i("active")?,
        idle: i("idle")?,
        idle_in_xact: i("idle_in_xact")?,
        // Handler_*: every commit, autocommitted statements included
        // (Com_commit counts only explicit COMMIT statements).
        commits: var("Handler_commit"),
        rollbacks: var("Handler_rollback"),
        // Pages served from the pool: read requests less those that went to disk.
        cache_hits: reads.zip(misses).map(|(r, m)| (r - m).max(0.0)),
        cache_reads: reads,
        size_bytes: i("size_bytes")?,
        longest_xact_s: i("longest_xact_s")?,
        ..Reading::default()
    };
    let culprits: Vec<(String, i64, i64, Option<String>)> = sqlx::query_as(
        "(SELECT 'query', CAST(ID AS SIGNED), CAST(TIME AS SIGNED), LEFT(INFO, 200) \
            FROM information_schema.PROCESSLIST \
           WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND COMMAND IN ('Query', 'Execute') \
           ORDER BY TIME DESC LIMIT 1) \
         UNION ALL \
         (SELECT 'idle', CAST(p.ID AS SIGNED), CAST(p.TIME AS SIGNED), LEFT(t.trx_query, 200) \
            FROM information_schema.PROCESSLIST p \
            JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID \
           WHERE p.DB = DATABASE() AND p.COMMAND = 'Sleep' \
           ORDER BY p.TIME DESC LIMIT 1)",
    )
    .fetch_all(pool)
    .await
    .map_err(err)?;
    for (kind, pid, seconds, query) in culprits {
        let c = Culprit {
            pid,
            seconds: seconds as f64,
            query: query.unwrap_or_default(),
        };
        if kind == "query" {
            reading.longest_query = Some(c);
        } else {
            reading.longest_idle_xact = Some(c);
        }
    }
    // A replica reports its own delay; a primary knows none of its replicas' lag.
    // Without the REPLICATION CLIENT privilege there is simply no figure.
    // SHOW REPLICA STATUS: MySQL 8.0.22+ (Seconds_Behind_Source), MariaDB
    // 10.5+ (Seconds_Behind_Master); MySQL 8.4 no longer knows SHOW SLAVE STATUS.
    for sql in ["SHOW REPLICA STATUS", "SHOW SLAVE STATUS"] {
        if let Ok(found) = sqlx::query(sql).fetch_optional(pool).await {
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
