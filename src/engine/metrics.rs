//! Monitoring readings: the figures the sampler records for one database at
//! one instant, in as few catalog queries as each engine allows. Counters
//! (commits, cache reads) are the server's cumulative totals; the sampler
//! turns two readings into rates. PostgreSQL's queries need 10+
//! (pg_stat_replication.replay_lag); MariaDB's use information_schema.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sqlx::{MySqlConnection, PgConnection, Row};

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

/// One database's figures within a server-wide reading.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PerDatabase {
    pub active: f64,
    pub idle: f64,
    pub idle_in_xact: f64,
    pub longest_xact_s: Option<f64>,
    pub commits: Option<f64>,
    pub rollbacks: Option<f64>,
    pub cache_hits: Option<f64>,
    pub cache_reads: Option<f64>,
    pub size_bytes: Option<f64>,
    pub xid_age: Option<f64>,
    pub longest_query: Option<Culprit>,
    pub longest_idle_xact: Option<Culprit>,
}

/// What one sample of a server reads for all its databases.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerReading {
    pub connections: Option<f64>,
    pub max_connections: Option<f64>,
    pub archive_failing: Option<bool>,
    pub replicas: Vec<Replica>,
    pub databases: HashMap<String, PerDatabase>,
}

impl ServerReading {
    /// The reading of one database: the server's figures, its own row, and
    /// what only its own connection can see (PostgreSQL's dead tuples).
    pub fn reading_for(&self, database: &str, dead_tuples: Option<f64>) -> Reading {
        let d = self.databases.get(database).cloned().unwrap_or_default();
        Reading {
            connections: self.connections,
            max_connections: self.max_connections,
            active: Some(d.active),
            idle: Some(d.idle),
            idle_in_xact: Some(d.idle_in_xact),
            commits: d.commits,
            rollbacks: d.rollbacks,
            cache_hits: d.cache_hits,
            cache_reads: d.cache_reads,
            size_bytes: d.size_bytes,
            longest_query: d.longest_query,
            longest_xact_s: d.longest_xact_s,
            longest_idle_xact: d.longest_idle_xact,
            replicas: self.replicas.clone(),
            dead_tuples,
            xid_age: d.xid_age,
            archive_failing: self.archive_failing,
        }
    }
}

/// The server-wide part of a sample, once per server for all its
/// databases: pg_stat_activity by database (the panel's own connections,
/// `own`, left out), pg_stat_database, pg_database (sizes where we may
/// connect, datfrozenxid), pg_stat_archiver and pg_stat_replication.
pub async fn postgres_server(conn: &mut PgConnection, own: &HashSet<i64>) -> EngineResult<ServerReading> {
    let own: Vec<i32> = own.iter().filter_map(|p| i32::try_from(*p).ok()).collect();
    let rows = sqlx::query(
        "WITH s AS (SELECT datname, state, xact_start FROM pg_stat_activity \
                    WHERE backend_type = 'client backend' AND NOT (pid = ANY($1))), \
              a AS (SELECT datname, \
                           count(*) FILTER (WHERE state = 'active') AS active, \
                           count(*) FILTER (WHERE state = 'idle') AS idle, \
                           count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_xact, \
                           max(extract(epoch FROM now() - xact_start)) AS longest_xact \
                      FROM s GROUP BY datname) \
         SELECT db.datname::text AS datname, \
                COALESCE(a.active, 0)::float8 AS active, COALESCE(a.idle, 0)::float8 AS idle, \
                COALESCE(a.idle_in_xact, 0)::float8 AS idle_in_xact, a.longest_xact::float8 AS longest_xact_s, \
                d.xact_commit::float8 AS commits, d.xact_rollback::float8 AS rollbacks, \
                d.blks_hit::float8 AS cache_hits, (d.blks_hit + d.blks_read)::float8 AS cache_reads, \
                CASE WHEN has_database_privilege(db.datname, 'CONNECT') \
                     THEN pg_database_size(db.datname) END::float8 AS size_bytes, \
                age(db.datfrozenxid)::float8 AS xid_age \
           FROM pg_database db \
           LEFT JOIN pg_stat_database d ON d.datid = db.oid \
           LEFT JOIN a ON a.datname = db.datname \
          WHERE db.datallowconn AND NOT db.datistemplate",
    )
    .bind(&own)
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    let mut reading = ServerReading::default();
    for row in rows {
        let f = |name: &str| row.try_get::<Option<f64>, _>(name).map_err(err);
        let name: String = row.try_get("datname").map_err(err)?;
        reading.databases.insert(
            name,
            PerDatabase {
                active: f("active")?.unwrap_or(0.0),
                idle: f("idle")?.unwrap_or(0.0),
                idle_in_xact: f("idle_in_xact")?.unwrap_or(0.0),
                longest_xact_s: f("longest_xact_s")?,
                commits: f("commits")?,
                rollbacks: f("rollbacks")?,
                cache_hits: f("cache_hits")?,
                cache_reads: f("cache_reads")?,
                size_bytes: f("size_bytes")?,
                xid_age: f("xid_age")?,
                ..PerDatabase::default()
            },
        );
    }
    let (connections, max_connections, archive_failing): (Option<f64>, Option<f64>, Option<bool>) =
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::float8, \
                    current_setting('max_connections')::float8, \
                    (SELECT last_failed_time IS NOT NULL \
                            AND last_failed_time > COALESCE(last_archived_time, '-infinity') \
                       FROM pg_stat_archiver)",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(err)?;
    reading.connections = connections;
    reading.max_connections = max_connections;
    reading.archive_failing = archive_failing;
    // The oldest running query and the oldest idle transaction of each
    // database, by name.
    let culprits: Vec<(String, String, i32, f64, String)> = sqlx::query_as(
        "(SELECT DISTINCT ON (datname) 'query', datname::text, pid, \
                 extract(epoch FROM now() - query_start)::float8, left(query, $1) \
            FROM pg_stat_activity \
           WHERE backend_type = 'client backend' AND NOT (pid = ANY($2)) AND state = 'active' \
             AND query_start IS NOT NULL AND datname IS NOT NULL \
           ORDER BY datname, query_start) \
         UNION ALL \
         (SELECT DISTINCT ON (datname) 'idle', datname::text, pid, \
                 extract(epoch FROM now() - state_change)::float8, left(query, $1) \
            FROM pg_stat_activity \
           WHERE backend_type = 'client backend' AND state LIKE 'idle in transaction%' \
             AND state_change IS NOT NULL AND datname IS NOT NULL \
           ORDER BY datname, state_change)",
    )
    .bind(QUERY_TEXT as i32)
    .bind(&own)
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    for (kind, database, pid, seconds, query) in culprits {
        let c = Culprit {
            pid: pid as i64,
            seconds,
            query,
        };
        let d = reading.databases.entry(database).or_default();
        if kind == "query" {
            d.longest_query = Some(c);
        } else {
            d.longest_idle_xact = Some(c);
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

/// The one figure only a connection to the database itself can read:
/// dead tuples over its tables (pg_stat_user_tables).
pub async fn postgres_dead_tuples(conn: &mut PgConnection) -> EngineResult<Option<f64>> {
    sqlx::query_scalar("SELECT sum(n_dead_tup)::float8 FROM pg_stat_user_tables")
        .fetch_one(&mut *conn)
        .await
        .map_err(err)
}

/// The whole server's sample, once for all its databases: SHOW GLOBAL
/// STATUS (connections, Handler_commit/rollback, InnoDB buffer pool reads),
/// information_schema.PROCESSLIST and INNODB_TRX by schema (the panel's
/// own connections, `own`, left out), table sizes by schema, and SHOW
/// REPLICA STATUS on a replica. A running statement's COMMAND is Query
/// (text protocol) or Execute (prepared statements, as most drivers send).
/// The counters are the server's: MySQL keeps no per-schema commit counts.
pub async fn mysql_server(conn: &mut MySqlConnection, own: &HashSet<i64>) -> EngineResult<ServerReading> {
    let vars: Vec<(String, String)> = sqlx::query_as(
        "SHOW GLOBAL STATUS WHERE Variable_name IN \
         ('Threads_connected', 'Handler_commit', 'Handler_rollback', \
          'Innodb_buffer_pool_read_requests', 'Innodb_buffer_pool_reads')",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
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
        .map_err(err)?;
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
    .map_err(err)?;
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
    .map_err(err)?;
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
    .map_err(err)?;
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
