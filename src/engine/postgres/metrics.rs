//! PostgreSQL's monitoring reading: the server-wide part once per server
//! (queries need 10+: pg_stat_replication.replay_lag), dead tuples per database.

use std::collections::HashSet;

use sqlx::{PgConnection, Row};

use crate::engine::metrics::{Culprit, PerDatabase, QUERY_TEXT, Replica, ServerReading};
use crate::engine::{EngineError, EngineResult};

/// The server-wide part of a sample, once per server for all its
/// databases: pg_stat_activity by database (the panel's own connections,
/// `own`, left out), pg_stat_database, pg_database (sizes where we may
/// connect, datfrozenxid), pg_stat_archiver and pg_stat_replication.
pub async fn server(conn: &mut PgConnection, own: &HashSet<i64>) -> EngineResult<ServerReading> {
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
    .map_err(EngineError::from)?;
    let mut reading = ServerReading::default();
    for row in rows {
        let f = |name: &str| row.try_get::<Option<f64>, _>(name).map_err(EngineError::from);
        let name: String = row.try_get("datname").map_err(EngineError::from)?;
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
        .map_err(EngineError::from)?;
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
    .map_err(EngineError::from)?;
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
    .map_err(EngineError::from)?;
    reading.replicas = replicas
        .into_iter()
        .map(|(name, lag_s)| Replica { name, lag_s })
        .collect();
    Ok(reading)
}

/// The one figure only a connection to the database itself can read:
/// dead tuples over its tables (pg_stat_user_tables).
pub async fn dead_tuples(conn: &mut PgConnection) -> EngineResult<Option<f64>> {
    sqlx::query_scalar("SELECT sum(n_dead_tup)::float8 FROM pg_stat_user_tables")
        .fetch_one(&mut *conn)
        .await
        .map_err(EngineError::from)
}
