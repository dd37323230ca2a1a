//! The live gate's reading of a PostgreSQL database: pg_class for sizes,
//! pg_locks joined to pg_stat_activity for the sessions in the way,
//! pg_stat_activity for old transactions, pg_stat_replication for lag.
//! One catalog connection, a handful of small queries.

use sqlx::PgConnection;

use crate::engine::gate::{GateFacts, Holder, RelationFacts, Wanted};
use crate::engine::{EngineError, EngineResult};
use crate::sqltext::locks::{On, conflicts};

/// Sessions of others (never the panel's own), newest transaction last.
const HOLDERS_SQL: &str = "SELECT l.pid::int8, a.usename::text, a.state, \
        extract(epoch FROM now() - a.xact_start)::float8, left(a.query, 500), l.mode, l.granted \
     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
     WHERE l.locktype = 'relation' AND l.relation = $1::oid AND l.pid <> pg_backend_pid() \
       AND l.mode = ANY($2) AND a.application_name IS DISTINCT FROM 'custodian' \
     ORDER BY 4 DESC NULLS LAST, 1 LIMIT 20";

const LONG_SQL: &str = "SELECT a.pid::int8, a.usename::text, a.state, \
        extract(epoch FROM now() - a.xact_start)::float8, left(a.query, 500), NULL::text, true \
     FROM pg_stat_activity a \
     WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid() \
       AND a.datname = current_database() AND a.application_name IS DISTINCT FROM 'custodian' \
       AND a.xact_start < now() - make_interval(secs => $1) \
     ORDER BY 4 DESC, 1 LIMIT 20";

type HolderRow = (
    i64,
    Option<String>,
    Option<String>,
    Option<f64>,
    Option<String>,
    Option<String>,
    bool,
);

fn holder(r: HolderRow) -> Holder {
    Holder {
        pid: r.0,
        user: r.1,
        state: r.2,
        xact_age_s: r.3,
        query: r.4,
        mode: r.5,
        granted: r.6,
    }
}

pub async fn read(
    conn: &mut PgConnection,
    wanted: &[Wanted],
    max_xact_age_s: f64,
) -> EngineResult<GateFacts> {
    let mut facts = GateFacts::default();
    for w in wanted {
        // The relation the lock is taken on: an index's lock is on its
        // table too (DROP INDEX locks the table).
        let found: Option<(i64, String, i64, f64)> = match &w.on {
            On::Table(name) => sqlx::query_as(
                "SELECT c.oid::int8, n.nspname || '.' || c.relname, pg_total_relation_size(c.oid), c.reltuples::float8 \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
            )
            .bind(name)
            .fetch_optional(&mut *conn)
            .await,
            On::Index(name) => sqlx::query_as(
                "SELECT c.oid::int8, n.nspname || '.' || c.relname, pg_total_relation_size(c.oid), c.reltuples::float8 \
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE i.indexrelid = to_regclass($1)",
            )
            .bind(name)
            .fetch_optional(&mut *conn)
            .await,
        }
        .map_err(EngineError::from)?;
        let Some((oid, table, bytes, rows)) = found else {
            facts.relations.push(RelationFacts::default());
            continue;
        };
        let modes: Vec<&str> = conflicts(w.mode).to_vec();
        let holders: Vec<HolderRow> = sqlx::query_as(HOLDERS_SQL)
            .bind(oid)
            .bind(&modes)
            .fetch_all(&mut *conn)
            .await
            .map_err(EngineError::from)?;
        facts.relations.push(RelationFacts {
            table: Some(table),
            bytes: Some(bytes),
            rows: Some(rows.max(0.0)),
            holders: holders.into_iter().map(holder).collect(),
        });
    }
    let long: Vec<HolderRow> = sqlx::query_as(LONG_SQL)
        .bind(max_xact_age_s)
        .fetch_all(&mut *conn)
        .await
        .map_err(EngineError::from)?;
    facts.long_transactions = long.into_iter().map(holder).collect();
    facts.replica_lag_s =
        sqlx::query_scalar("SELECT max(extract(epoch FROM replay_lag))::float8 FROM pg_stat_replication")
            .fetch_one(&mut *conn)
            .await
            .map_err(EngineError::from)?;
    Ok(facts)
}
