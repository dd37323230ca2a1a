//! PostgreSQL maintenance: table and index health (pg_stat_user_tables,
//! pg_index, pg_class; PostgreSQL 12+), wraparound ages and autovacuum
//! settings, and VACUUM / ANALYZE / VACUUM FULL / REINDEX CONCURRENTLY with
//! progress from the pg_stat_progress_* views (PostgreSQL 13+ for ANALYZE's).

use std::time::Duration;

use sqlx::{PgConnection, Row};
use tracing::instrument::WithSubscriber;

use super::Postgres;
use super::notices::Notices;
use crate::engine::maintenance::{
    Action, Control, DatabaseHealth, IndexHealth, Relation, TableHealth, TableList, TableQuery, TableSort,
    Target, cancelled, quote_pg,
};
use crate::engine::{EngineError, EngineResult};
use crate::format::fmt_bytes;

const USER_SCHEMAS: &str =
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'";

/// A table's autovacuum threshold from its own reloptions, else the server's
/// settings: threshold + scale_factor × reltuples.
const VACUUM_THRESHOLD: &str = "COALESCE((SELECT option_value::float8 FROM pg_options_to_table(c.reloptions) \
       WHERE option_name = 'autovacuum_vacuum_threshold'), current_setting('autovacuum_vacuum_threshold')::float8) \
     + COALESCE((SELECT option_value::float8 FROM pg_options_to_table(c.reloptions) \
       WHERE option_name = 'autovacuum_vacuum_scale_factor'), current_setting('autovacuum_vacuum_scale_factor')::float8) \
     * GREATEST(c.reltuples, 0)";

/// pg_stat_user_tables with sizes, one sorted page, and the total.
pub async fn tables(conn: &mut PgConnection, q: &TableQuery) -> EngineResult<TableList> {
    // ORDER BY comes from this fixed list, never from input.
    let order = match q.sort {
        TableSort::TotalSize => "pg_total_relation_size(c.oid)",
        TableSort::DeadTuples => "s.n_dead_tup",
        TableSort::DeadPct => "s.n_dead_tup::float8 / NULLIF(s.n_live_tup + s.n_dead_tup, 0)",
        TableSort::Name => "n.nspname || '.' || c.relname",
        TableSort::LastVacuum => "GREATEST(s.last_vacuum, s.last_autovacuum)",
        TableSort::LastAnalyze => "GREATEST(s.last_analyze, s.last_autoanalyze)",
    };
    let direction = if q.descending {
        "DESC NULLS LAST"
    } else {
        "ASC NULLS FIRST"
    };
    let sql = format!(
        "SELECT c.oid::int8, n.nspname::text, c.relname::text, \
                pg_total_relation_size(c.oid), pg_relation_size(c.oid), pg_indexes_size(c.oid), \
                COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0), \
                s.n_live_tup, s.n_dead_tup, \
                extract(epoch FROM s.last_vacuum)::int8, extract(epoch FROM s.last_autovacuum)::int8, \
                extract(epoch FROM s.last_analyze)::int8, extract(epoch FROM s.last_autoanalyze)::int8, \
                s.vacuum_count, s.autovacuum_count, s.analyze_count, s.autoanalyze_count, \
                COALESCE(s.n_dead_tup > {VACUUM_THRESHOLD}, false), \
                (s.last_analyze IS NULL AND s.last_autoanalyze IS NULL), \
                count(*) OVER (), \
                EXISTS (SELECT 1 FROM unnest(c.reloptions) o \
                        WHERE lower(o) ~ '^autovacuum_enabled=(false|off|no|0|f|n)$') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid \
         WHERE c.relkind IN ('r', 'm', 'p') AND {USER_SCHEMAS} \
           AND ($1::text IS NULL OR strpos(lower(n.nspname || '.' || c.relname), lower($1)) > 0) \
         ORDER BY {order} {direction}, n.nspname, c.relname \
         LIMIT $2 OFFSET $3"
    );
    let rows = sqlx::query(&sql)
        .bind(q.search.as_deref())
        .bind(q.limit)
        .bind(q.offset)
        .fetch_all(&mut *conn)
        .await
        .map_err(EngineError::from)?;
    let mut list = TableList::default();
    for r in rows {
        list.total = r.try_get(19).map_err(EngineError::from)?;
        list.rows.push(TableHealth {
            oid: Some(r.try_get(0).map_err(EngineError::from)?),
            schema: r.try_get(1).map_err(EngineError::from)?,
            name: r.try_get(2).map_err(EngineError::from)?,
            total_bytes: r.try_get(3).map_err(EngineError::from)?,
            table_bytes: r.try_get(4).map_err(EngineError::from)?,
            index_bytes: r.try_get(5).map_err(EngineError::from)?,
            toast_bytes: r.try_get(6).map_err(EngineError::from)?,
            live_tuples: r.try_get(7).map_err(EngineError::from)?,
            dead_tuples: r.try_get(8).map_err(EngineError::from)?,
            last_vacuum: r.try_get(9).map_err(EngineError::from)?,
            last_autovacuum: r.try_get(10).map_err(EngineError::from)?,
            last_analyze: r.try_get(11).map_err(EngineError::from)?,
            last_autoanalyze: r.try_get(12).map_err(EngineError::from)?,
            vacuum_count: r.try_get(13).map_err(EngineError::from)?,
            autovacuum_count: r.try_get(14).map_err(EngineError::from)?,
            analyze_count: r.try_get(15).map_err(EngineError::from)?,
            autoanalyze_count: r.try_get(16).map_err(EngineError::from)?,
            needs_vacuum: r.try_get(17).map_err(EngineError::from)?,
            never_analyzed: r.try_get(18).map_err(EngineError::from)?,
            storage_engine: None,
            data_free: None,
            autovacuum_disabled: r.try_get(20).map_err(EngineError::from)?,
            bloat_bytes: None,
        });
    }
    // Bloat for the rows shown only (at most one page), from the planner's
    // statistics: never a scan of the table.
    let oids: Vec<i64> = list.rows.iter().filter_map(|t| t.oid).collect();
    let facts: Vec<BloatFacts> = sqlx::query_as(BLOAT_SQL)
        .bind(&oids)
        .fetch_all(&mut *conn)
        .await
        .map_err(EngineError::from)?;
    for f in facts {
        if let Some(t) = list.rows.iter_mut().find(|t| t.oid == Some(f.oid)) {
            t.bloat_bytes = f.estimate();
        }
    }
    let (autovacuum, track_counts): (String, String) =
        sqlx::query_as("SELECT current_setting('autovacuum'), current_setting('track_counts')")
            .fetch_one(&mut *conn)
            .await
            .map_err(EngineError::from)?;
    list.autovacuum_off = if autovacuum != "on" {
        Some(
            "autovacuum = off on this server: no table is vacuumed or analyzed unless someone runs it".into(),
        )
    } else if track_counts != "on" {
        Some("track_counts = off on this server: autovacuum cannot tell which tables need it".into())
    } else {
        None
    };
    Ok(list)
}

/// What the bloat estimate needs of one table: its block size, its pages
/// and rows as the last VACUUM/ANALYZE counted them (the same moment, so a
/// table that grew since is not called bloated), fillfactor, and from pg_stats the average width of
/// a row's values and whether any are NULL (`None` before ANALYZE).
const BLOAT_SQL: &str = "SELECT c.oid::int8 AS oid, current_setting('block_size')::int8 AS block_size, \
        c.relpages::int8 * current_setting('block_size')::int8 AS bytes, c.reltuples::float8 AS reltuples, c.relnatts::int8 AS columns, \
        COALESCE((SELECT substring(o FROM 'fillfactor=([0-9]+)')::int8 FROM unnest(c.reloptions) o \
                  WHERE o LIKE 'fillfactor=%' LIMIT 1), 100) AS fillfactor, \
        (SELECT sum((1 - s.null_frac) * s.avg_width)::float8 FROM pg_stats s \
          WHERE s.schemaname = n.nspname AND s.tablename = c.relname AND NOT s.inherited) AS data_width, \
        COALESCE((SELECT bool_or(s.null_frac > 0) FROM pg_stats s \
          WHERE s.schemaname = n.nspname AND s.tablename = c.relname AND NOT s.inherited), false) AS has_nulls \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.oid = ANY($1) AND c.relkind IN ('r', 'm')";

#[derive(sqlx::FromRow)]
struct BloatFacts {
    oid: i64,
    block_size: i64,
    bytes: i64,
    reltuples: f64,
    columns: i64,
    fillfactor: i64,
    data_width: Option<f64>,
    has_nulls: bool,
}

impl BloatFacts {
    /// The space beyond what the live rows need at the table's fillfactor:
    /// a 23-byte tuple header (and null bitmap), data, aligned to 8, a
    /// 4-byte line pointer, on pages of block_size less their 24-byte
    /// header (the estimate pgHero and check_postgres make, table side).
    fn estimate(&self) -> Option<i64> {
        let width = self.data_width?;
        if self.reltuples < 0.0 || self.block_size <= 0 {
            return None;
        }
        let align = |n: f64| (n / 8.0).ceil() * 8.0;
        let bitmap = if self.has_nulls {
            (self.columns as f64 / 8.0).ceil()
        } else {
            0.0
        };
        let tuple = align(align(23.0 + bitmap) + width) + 4.0;
        let usable = (self.block_size - 24) as f64 * self.fillfactor.clamp(10, 100) as f64 / 100.0;
        let per_page = (usable / tuple).floor().max(1.0);
        let needed = (self.reltuples / per_page).ceil() as i64;
        let pages = self.bytes / self.block_size;
        Some((pages - needed).max(0) * self.block_size)
    }
}

/// pg_index with sizes and scans: invalid (a failed CONCURRENTLY build),
/// unused (no scans, enforcing no key or constraint), duplicate (its
/// columns lead another index of the table, same predicate, no
/// expressions; of two identical ones the newer is reported).
pub async fn indexes(conn: &mut PgConnection, limit: i64) -> EngineResult<Vec<IndexHealth>> {
    let sql = format!(
        "SELECT i.indexrelid::int8, n.nspname::text, t.relname::text, ic.relname::text, \
                pg_relation_size(i.indexrelid), s.idx_scan, i.indisunique, i.indisprimary, i.indisvalid, \
                (COALESCE(s.idx_scan, 0) = 0 AND NOT i.indisunique AND NOT i.indisprimary \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)), \
                (SELECT oc.relname::text FROM pg_index o JOIN pg_class oc ON oc.oid = o.indexrelid \
                  WHERE o.indrelid = i.indrelid AND o.indexrelid <> i.indexrelid \
                    AND o.indexprs IS NULL AND i.indexprs IS NULL AND NOT i.indisunique AND o.indisvalid \
                    AND COALESCE(pg_get_expr(o.indpred, o.indrelid), '') = COALESCE(pg_get_expr(i.indpred, i.indrelid), '') \
                    AND (o.indkey::text || ' ') LIKE (i.indkey::text || ' %') \
                    AND (o.indnatts > i.indnatts OR o.indexrelid < i.indexrelid OR o.indisunique) \
                  ORDER BY o.indexrelid LIMIT 1), \
                pg_get_indexdef(i.indexrelid) \
         FROM pg_index i \
         JOIN pg_class ic ON ic.oid = i.indexrelid \
         JOIN pg_class t ON t.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid \
         WHERE {USER_SCHEMAS} \
         ORDER BY i.indisvalid, 10 DESC, 11 IS NULL, pg_relation_size(i.indexrelid) DESC \
         LIMIT $1"
    );
    let rows = sqlx::query(&sql)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
        .map_err(EngineError::from)?;
    rows.into_iter()
        .map(|r| {
            Ok(IndexHealth {
                oid: Some(r.try_get(0).map_err(EngineError::from)?),
                schema: r.try_get(1).map_err(EngineError::from)?,
                table: r.try_get(2).map_err(EngineError::from)?,
                name: r.try_get(3).map_err(EngineError::from)?,
                bytes: r.try_get(4).map_err(EngineError::from)?,
                scans: r.try_get(5).map_err(EngineError::from)?,
                unique: r.try_get(6).map_err(EngineError::from)?,
                primary: r.try_get(7).map_err(EngineError::from)?,
                valid: r.try_get(8).map_err(EngineError::from)?,
                unused: r.try_get(9).map_err(EngineError::from)?,
                duplicate_of: r.try_get(10).map_err(EngineError::from)?,
                definition: r.try_get(11).map_err(EngineError::from)?,
            })
        })
        .collect()
}

/// age(datfrozenxid) per database, the oldest tables here, autovacuum
/// settings and per-table overrides.
pub async fn database_health(conn: &mut PgConnection) -> EngineResult<DatabaseHealth> {
    let xid_ages: Vec<(String, i64)> =
        sqlx::query_as("SELECT datname::text, age(datfrozenxid)::int8 FROM pg_database ORDER BY 2 DESC")
            .fetch_all(&mut *conn)
            .await
            .map_err(EngineError::from)?;
    let oldest_tables: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT n.nspname || '.' || c.relname, age(c.relfrozenxid)::int8 \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'm') AND {USER_SCHEMAS} ORDER BY 2 DESC LIMIT 10"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::from)?;
    let settings: Vec<(String, String)> = sqlx::query_as(
        "SELECT name::text, setting || COALESCE(' ' || unit, '') FROM pg_settings \
         WHERE name LIKE 'autovacuum%' OR name IN ('vacuum_cost_limit', 'vacuum_cost_delay', 'maintenance_work_mem') \
         ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::from)?;
    let overrides: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT n.nspname || '.' || c.relname, array_to_string(c.reloptions, ', ') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.reloptions IS NOT NULL AND {USER_SCHEMAS} \
           AND EXISTS (SELECT 1 FROM unnest(c.reloptions) o WHERE o LIKE 'autovacuum%' OR o LIKE 'toast.autovacuum%') \
         ORDER BY 1 LIMIT 200"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::from)?;
    Ok(DatabaseHealth {
        xid_ages,
        oldest_tables,
        settings,
        overrides,
        pages: None,
    })
}

/// Tables by `oid:N` or `schema.table`, as they are in pg_class now.
pub async fn resolve_tables(conn: &mut PgConnection, names: &[String]) -> EngineResult<Vec<Relation>> {
    let mut found = Vec::new();
    for raw in names {
        let rows: Vec<(String, String)> = match raw.strip_prefix("oid:") {
            Some(oid) => {
                let oid: i64 = oid
                    .parse()
                    .map_err(|_| EngineError::Invalid(format!("{raw:?} is not a table's identity")))?;
                sqlx::query_as(&format!(
                    "SELECT n.nspname::text, c.relname::text FROM pg_class c \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.oid = $1::int8::oid AND c.relkind IN ('r', 'm', 'p') AND {USER_SCHEMAS}"
                ))
                .bind(oid)
                .fetch_all(&mut *conn)
                .await
                .map_err(EngineError::from)?
            }
            None => sqlx::query_as(&format!(
                "SELECT n.nspname::text, c.relname::text FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname || '.' || c.relname = $1 AND c.relkind IN ('r', 'm', 'p') AND {USER_SCHEMAS}"
            ))
            .bind(raw)
            .fetch_all(&mut *conn)
            .await
            .map_err(EngineError::from)?,
        };
        match rows.as_slice() {
            [(schema, name)] => found.push(Relation {
                schema: schema.clone(),
                name: name.clone(),
            }),
            [] => {
                return Err(EngineError::Invalid(format!(
                    "There is no table {raw:?} in this database."
                )));
            }
            _ => {
                return Err(EngineError::Invalid(format!(
                    "{raw:?} names more than one table; use its oid."
                )));
            }
        }
    }
    Ok(found)
}

/// An index by `oid:N` or `schema.index`.
pub async fn resolve_index(conn: &mut PgConnection, raw: &str) -> EngineResult<Relation> {
    let (clause, value) = match raw.strip_prefix("oid:") {
        Some(oid) => (
            "c.oid = $1::int8::oid",
            oid.parse::<i64>().map(|v| v.to_string()).ok(),
        ),
        None => ("n.nspname || '.' || c.relname = $1", Some(raw.to_string())),
    };
    let value = value.ok_or_else(|| EngineError::Invalid(format!("{raw:?} is not an index's identity")))?;
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE {clause} AND c.relkind IN ('i', 'I') AND {USER_SCHEMAS}"
    );
    let query = sqlx::query_as::<_, (String, String)>(&sql);
    let rows = if raw.starts_with("oid:") {
        query
            .bind(value.parse::<i64>().unwrap_or(0))
            .fetch_all(&mut *conn)
            .await
    } else {
        query.bind(value).fetch_all(&mut *conn).await
    }
    .map_err(EngineError::from)?;
    match rows.as_slice() {
        [(schema, name)] => Ok(Relation {
            schema: schema.clone(),
            name: name.clone(),
        }),
        [] => Err(EngineError::Invalid(format!(
            "There is no index {raw:?} in this database."
        ))),
        _ => Err(EngineError::Invalid(format!(
            "{raw:?} names more than one index; use its oid."
        ))),
    }
}

/// Every user table, for a whole-database run.
async fn all_tables(conn: &mut PgConnection) -> EngineResult<Vec<Relation>> {
    let rows: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'm') AND {USER_SCHEMAS} ORDER BY 1, 2"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::from)?;
    Ok(rows
        .into_iter()
        .map(|(schema, name)| Relation { schema, name })
        .collect())
}

/// The progress views for one backend: (phase, fraction done). Read over
/// a catalog connection from the budget; `None` when none was free.
async fn progress_of(db: &Postgres, pid: i32) -> Option<(String, Option<f64>)> {
    let mut conn = db.lease().await.ok()?;
    sqlx::query_as(
        "SELECT phase, heap_blks_scanned::float8 / NULLIF(heap_blks_total, 0) FROM pg_stat_progress_vacuum WHERE pid = $1 \
         UNION ALL SELECT phase, sample_blks_scanned::float8 / NULLIF(sample_blks_total, 0) FROM pg_stat_progress_analyze WHERE pid = $1 \
         UNION ALL SELECT phase, heap_blks_scanned::float8 / NULLIF(heap_blks_total, 0) FROM pg_stat_progress_cluster WHERE pid = $1 \
         UNION ALL SELECT phase, blocks_done::float8 / NULLIF(blocks_total, 0) FROM pg_stat_progress_create_index WHERE pid = $1",
    )
    .bind(pid)
    .fetch_optional(&mut *conn)
    .await
    .ok()
    .flatten()
}

/// What the job's own backend waits on when it waits for a lock: the
/// sessions holding it (pg_blocking_pids, only while it waits). `None`
/// when it is not waiting for a lock, or nothing could be read.
async fn lock_wait_of(db: &Postgres, pid: i32) -> Option<Vec<i64>> {
    let mut conn = db.lease().await.ok()?;
    let blockers: Option<Vec<i32>> = sqlx::query_scalar(
        "SELECT CASE WHEN wait_event_type = 'Lock' THEN pg_blocking_pids(pid) END \
         FROM pg_stat_activity WHERE pid = $1",
    )
    .bind(pid)
    .fetch_optional(&mut *conn)
    .await
    .ok()
    .flatten()
    .flatten();
    blockers.map(|b| b.into_iter().map(i64::from).collect())
}

/// The relation's size on disk (with its indexes and TOAST for a table),
/// or `None` when it is no longer there under this name. Read right before
/// the statement that names it, and again after, for the log.
async fn size_if_there(conn: &mut PgConnection, rel: &Relation, kinds: &str) -> EngineResult<Option<i64>> {
    sqlx::query_scalar(&format!(
        "SELECT pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ({kinds})"
    ))
    .bind(&rel.schema)
    .bind(&rel.name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(EngineError::from)
}

/// pg_cancel_backend on the job's own backend; true once the server took it.
async fn cancel_backend(db: &Postgres, pid: i32) -> bool {
    let Ok(mut conn) = db.lease().await else {
        return false;
    };
    matches!(
        sqlx::query_scalar::<_, bool>("SELECT pg_cancel_backend($1)")
            .bind(pid)
            .fetch_one(&mut *conn)
            .await,
        Ok(true)
    )
}

/// Run `action` on `target` on a connection of its own from the server's
/// budget (no statement timeout: VACUUM FULL may run for hours), reporting
/// progress from the pg_stat_progress_* views and cancelling the backend
/// when asked.
pub async fn maintain(
    db: &Postgres,
    action: Action,
    target: &Target,
    control: &Control,
) -> EngineResult<String> {
    let (relations, kinds) = match target {
        Target::Tables(t) => (t.clone(), "'r', 'm', 'p'"),
        Target::Index(i) => (vec![i.clone()], "'i', 'I'"),
        Target::Database => (all_tables(&mut *db.lease().await?).await?, "'r', 'm', 'p'"),
    };
    if relations.is_empty() {
        return Ok("no tables to work on".into());
    }
    // Waiting for a slot (other jobs hold the server's budget) ends when
    // the job is cancelled.
    let mut conn = tokio::select! {
        c = db.long_lease(true) => c?,
        _ = control.cancelled() => return Err(cancelled()),
    };
    let pid = conn.id() as i32;
    let n = relations.len() as f64;
    let (notices, heard) = Notices::start();
    let mut total = Done::default();
    let mut skipped: Vec<String> = Vec::new();
    for (i, rel) in relations.iter().enumerate() {
        if control.is_cancelled() {
            return Err(cancelled());
        }
        let Some(before) = size_if_there(&mut conn, rel, kinds).await? else {
            return Err(EngineError::Invalid(format!(
                "{} no longer exists",
                rel.display()
            )));
        };
        let quoted = format!("{}.{}", quote_pg(&rel.schema)?, quote_pg(&rel.name)?);
        // VERBOSE: the server says what it did (pages and tuples removed,
        // rows sampled, the index rebuilt), and the job's log keeps it.
        let sql = match (action, target) {
            (Action::Reindex, Target::Index(_)) => format!("REINDEX (VERBOSE) INDEX CONCURRENTLY {quoted}"),
            (Action::Reindex, _) => format!("REINDEX (VERBOSE) TABLE CONCURRENTLY {quoted}"),
            (Action::Vacuum, _) => format!("VACUUM (VERBOSE) {quoted}"),
            (Action::VacuumAnalyze, _) => format!("VACUUM (VERBOSE, ANALYZE) {quoted}"),
            (Action::Analyze, _) => format!("ANALYZE VERBOSE {quoted}"),
            (Action::VacuumFull, _) => format!("VACUUM (FULL, VERBOSE) {quoted}"),
            (other, _) => {
                return Err(EngineError::Invalid(format!(
                    "PostgreSQL has no {}",
                    other.label()
                )));
            }
        };
        let base = i as f64 / n;
        control.report(Some(base), &format!("{} {}", action.label(), rel.display()));
        // Asked to stop, and whether the server has taken the cancel: a
        // cancel that could not be sent (the pool busy, the server slow) is
        // sent again at the next tick rather than forgotten.
        let mut cancel_asked = false;
        let mut cancel_sent = false;
        let mut last_phase: Option<String> = None;
        let mut waiting_since: Option<std::time::Instant> = None;
        let mut told_wait = false;
        let result = {
            let exec = sqlx::query(&sql)
                .persistent(false)
                .execute(&mut *conn)
                .with_subscriber(notices.clone());
            tokio::pin!(exec);
            loop {
                tokio::select! {
                    r = &mut exec => break r,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {
                        if cancel_asked && !cancel_sent {
                            cancel_sent = cancel_backend(db, pid).await;
                        }
                        // Waiting for a lock: say on what and behind whom.
                        match lock_wait_of(db, pid).await {
                            Some(blockers) => {
                                let since = *waiting_since.get_or_insert_with(std::time::Instant::now);
                                let who = match blockers.as_slice() {
                                    [] => "another session".to_string(),
                                    [one] => format!("pid {one}"),
                                    many => format!(
                                        "pids {}",
                                        many.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
                                    ),
                                };
                                let words = format!(
                                    "{} {}: waiting {}s for a lock held by {who} (see the activity page)",
                                    action.label(),
                                    rel.display(),
                                    since.elapsed().as_secs()
                                );
                                if !told_wait {
                                    control.note(format!("{}: waiting for a lock held by {who}", rel.display()));
                                    told_wait = true;
                                }
                                control.report(Some(base), &words);
                                continue;
                            }
                            None => waiting_since = None,
                        }
                        if let Some((phase, fraction)) = progress_of(db, pid).await {
                            // Each new phase (REINDEX CONCURRENTLY's build,
                            // validate, swap…; VACUUM's heap and index
                            // passes) goes to the log as it starts.
                            if last_phase.as_deref() != Some(phase.as_str()) {
                                control.note(format!("{}: {phase}", rel.display()));
                                last_phase = Some(phase.clone());
                            }
                            let done = base + fraction.unwrap_or(0.0).clamp(0.0, 1.0) / n;
                            control.report(Some(done), &format!("{} {}: {phase}", action.label(), rel.display()));
                        }
                    }
                    _ = control.cancelled(), if !cancel_asked => {
                        cancel_asked = true;
                        cancel_sent = cancel_backend(db, pid).await;
                    }
                }
            }
        };
        let said = heard.take();
        // A few tables: everything the server said. Many (the whole
        // database): the lines that count what was removed, so the log
        // stays readable and small.
        let everything = relations.len() <= 5;
        for m in &said {
            if m.warning {
                control.note(format!("WARNING: {}", m.text));
                // "skipping "t" --- only table or database owner can
                // vacuum it": the statement succeeds having done nothing.
                if m.text.contains("skipping") {
                    skipped.push(m.text.clone());
                }
                continue;
            }
            let mut lines = m.text.lines();
            if let Some(first) = lines.next().filter(|_| everything) {
                control.note(first.to_string());
            }
            for more in lines {
                let more = more.trim();
                if everything || more.starts_with("tuples:") || more.starts_with("pages:") {
                    control.note(format!("    {more}"));
                }
            }
        }
        if let Err(e) = result {
            if cancel_asked {
                return Err(cancelled());
            }
            return Err(EngineError::from_sqlx(e).context(rel.display()));
        }
        let after = size_if_there(&mut conn, rel, kinds).await?.unwrap_or(before);
        control.note(format!(
            "{}: {} → {}{}",
            rel.display(),
            fmt_bytes(before),
            fmt_bytes(after),
            match before - after {
                0 => String::new(),
                d if d > 0 => format!(" ({} given back)", fmt_bytes(d)),
                d => format!(" ({} more)", fmt_bytes(-d)),
            }
        ));
        let texts: Vec<String> = said.into_iter().filter(|m| !m.warning).map(|m| m.text).collect();
        total.add(&texts, before, after);
    }
    drop(conn);
    if !skipped.is_empty() {
        return Err(EngineError::Refused(format!(
            "the server did not do it: {}",
            skipped.join("; ")
        )));
    }
    let what = match relations.as_slice() {
        [one] => format!("{} {}", action.label(), one.display()),
        many => format!("{} on {} tables", action.label(), many.len()),
    };
    Ok(match total.summary() {
        s if s.is_empty() => what,
        s => format!("{what}: {s}"),
    })
}

/// What a run did, summed over its relations from the server's VERBOSE
/// messages and the sizes read around each statement.
#[derive(Debug, Default, PartialEq)]
struct Done {
    tuples_removed: Option<i64>,
    pages_removed: Option<i64>,
    before: i64,
    after: i64,
}

impl Done {
    fn add(&mut self, said: &[String], before: i64, after: i64) {
        for line in said.iter().flat_map(|m| m.lines()) {
            let line = line.trim();
            // VACUUM: "tuples: 5000 removed, …" and "pages: 0 removed, …";
            // VACUUM FULL: "\"public.t\": found 5000 removable, …".
            let tuples = count_before(line, "tuples: ", " removed")
                .or_else(|| count_after(line, "found ", " removable"));
            if let Some(t) = tuples {
                *self.tuples_removed.get_or_insert(0) += t;
            }
            if let Some(p) = count_before(line, "pages: ", " removed") {
                *self.pages_removed.get_or_insert(0) += p;
            }
        }
        self.before += before;
        self.after += after;
    }

    fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = self.tuples_removed {
            parts.push(format!("{t} dead tuples removed"));
        }
        if let Some(p) = self.pages_removed {
            parts.push(format!("{p} pages removed"));
        }
        parts.push(format!("{} → {}", fmt_bytes(self.before), fmt_bytes(self.after)));
        parts.join(", ")
    }
}

/// "tuples: 5000 removed, …" → 5000: the number right after `head` at the
/// start of the line, followed by `tail`.
fn count_before(line: &str, head: &str, tail: &str) -> Option<i64> {
    let rest = line.strip_prefix(head)?;
    let (n, more) = rest.split_once(' ')?;
    more.starts_with(tail.trim_start()).then_some(())?;
    n.parse().ok()
}

/// "… found 5000 removable, …" → 5000: the number between `head` and
/// `tail` anywhere in the line.
fn count_after(line: &str, head: &str, tail: &str) -> Option<i64> {
    let at = line.find(head)? + head.len();
    let rest = &line[at..];
    let end = rest.find(tail)?;
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_sums_what_vacuum_and_vacuum_full_said() {
        let mut done = Done::default();
        // PostgreSQL 15's VACUUM (VERBOSE): one message, many lines.
        let vacuum = "finished vacuuming \"db.public.t\": index scans: 1\n\
                      pages: 3 removed, 42 remain, 45 scanned (100.00% of total)\n\
                      tuples: 5000 removed, 5000 remain, 0 are dead but not yet removable"
            .to_string();
        done.add(&["vacuuming \"db.public.t\"".into(), vacuum], 400_000, 380_000);
        // VACUUM (FULL, VERBOSE).
        let full = "\"public.u\": found 120 removable, 880 nonremovable row versions in 9 pages".to_string();
        done.add(&[full], 100_000, 60_000);
        assert_eq!(done.tuples_removed, Some(5120));
        assert_eq!(done.pages_removed, Some(3));
        assert_eq!((done.before, done.after), (500_000, 440_000));
        assert!(
            done.summary()
                .starts_with("5120 dead tuples removed, 3 pages removed, ")
        );
    }

    #[test]
    fn analyze_alone_reports_only_sizes() {
        let mut done = Done::default();
        done.add(
            &["\"public.t\": scanned 45 of 45 pages, containing 5000 live rows and 0 dead rows".into()],
            8192,
            8192,
        );
        assert_eq!(done.tuples_removed, None);
        assert_eq!(done.pages_removed, None);
        assert!(!done.summary().contains("removed"));
    }
}
