//! Store queries for `metric_samples`: one row of figures per database per
//! sample, rolled up into five-minute rows as they age and deleted past
//! retention, so the table stays bounded whatever the fleet's age.

use sqlx::FromRow;

use super::{Pool, on_pool};

/// The figures of one sample (or one roll-up, or one chart bucket).
#[derive(Clone, Debug, Default, FromRow, PartialEq)]
pub struct SampleRow {
    pub database_name: String,
    pub at: i64,
    pub connections: Option<f64>,
    pub active: Option<f64>,
    pub idle: Option<f64>,
    pub idle_in_xact: Option<f64>,
    pub max_connections: Option<f64>,
    pub commits_ps: Option<f64>,
    pub rollbacks_ps: Option<f64>,
    pub cache_hit: Option<f64>,
    pub size_bytes: Option<f64>,
    pub longest_query_s: Option<f64>,
    pub longest_xact_s: Option<f64>,
    pub longest_idle_xact_s: Option<f64>,
    pub replication_lag_s: Option<f64>,
    pub dead_tuples: Option<f64>,
    pub xid_age: Option<f64>,
    pub archive_failing: Option<f64>,
}

/// The figure columns and how several rows combine into one: averages for
/// levels and rates, maxima for "the longest" and for failures, so a
/// roll-up never hides a spike an alert would have seen.
const FIGURES: &[(&str, &str)] = &[
    ("connections", "AVG"),
    ("active", "AVG"),
    ("idle", "AVG"),
    ("idle_in_xact", "AVG"),
    ("max_connections", "MAX"),
    ("commits_ps", "AVG"),
    ("rollbacks_ps", "AVG"),
    ("cache_hit", "AVG"),
    ("size_bytes", "AVG"),
    ("longest_query_s", "MAX"),
    ("longest_xact_s", "MAX"),
    ("longest_idle_xact_s", "MAX"),
    ("replication_lag_s", "MAX"),
    ("dead_tuples", "AVG"),
    ("xid_age", "MAX"),
    ("archive_failing", "MAX"),
];

/// The roll-up step, in seconds.
pub const ROLLUP_STEP: i64 = 300;

fn columns() -> String {
    FIGURES.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
}

fn aggregates() -> String {
    FIGURES
        .iter()
        .map(|(c, agg)| format!("{agg}({c}) AS {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn insert(pool: &Pool, s: &SampleRow) -> sqlx::Result<()> {
    let binds = (3..FIGURES.len() + 3)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO metric_samples (database_name, at, step, {}) VALUES ($1, $2, 0, {binds}) \
         ON CONFLICT (database_name, step, at) DO NOTHING",
        columns()
    );
    on_pool!(pool, |p| sqlx::query(&sql)
        .bind(&s.database_name)
        .bind(s.at)
        .bind(s.connections)
        .bind(s.active)
        .bind(s.idle)
        .bind(s.idle_in_xact)
        .bind(s.max_connections)
        .bind(s.commits_ps)
        .bind(s.rollbacks_ps)
        .bind(s.cache_hit)
        .bind(s.size_bytes)
        .bind(s.longest_query_s)
        .bind(s.longest_xact_s)
        .bind(s.longest_idle_xact_s)
        .bind(s.replication_lag_s)
        .bind(s.dead_tuples)
        .bind(s.xid_age)
        .bind(s.archive_failing)
        .execute(p)
        .await
        .map(|_| ()))
}

/// A database's figures from `since` on, combined into buckets of `step`
/// seconds (each bucket's `at` is its start), oldest first.
pub async fn series(pool: &Pool, database: &str, since: i64, step: i64) -> sqlx::Result<Vec<SampleRow>> {
    let sql = format!(
        "SELECT database_name, (at / $3) * $3 AS at, {} FROM metric_samples \
         WHERE database_name = $1 AND at >= $2 GROUP BY 1, 2 ORDER BY 2",
        aggregates()
    );
    on_pool!(pool, |p| sqlx::query_as::<_, SampleRow>(&sql)
        .bind(database)
        .bind(since)
        .bind(step.max(1))
        .fetch_all(p)
        .await)
}

/// Connections and transactions per second only, bucketed as `series`
/// does: the overview's sparklines read two figures of every database, so
/// they skip the other fourteen aggregates.
pub async fn sparkline(pool: &Pool, database: &str, since: i64, step: i64) -> sqlx::Result<Vec<(f64, f64)>> {
    let rows: Vec<(i64, Option<f64>, Option<f64>)> = on_pool!(pool, |p| sqlx::query_as(
        "SELECT (at / $3) * $3, \
                AVG(COALESCE(active, 0) + COALESCE(idle, 0) + COALESCE(idle_in_xact, 0)), \
                AVG(COALESCE(commits_ps, 0) + COALESCE(rollbacks_ps, 0)) \
           FROM metric_samples WHERE database_name = $1 AND at >= $2 GROUP BY 1 ORDER BY 1"
    )
    .bind(database)
    .bind(since)
    .bind(step.max(1))
    .fetch_all(p)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|(_, c, t)| (c.unwrap_or(0.0), t.unwrap_or(0.0)))
        .collect())
}

/// The sample nearest after `at` (for growth over a day).
pub async fn first_since(pool: &Pool, database: &str, at: i64) -> sqlx::Result<Option<SampleRow>> {
    let sql = format!(
        "SELECT database_name, at, {} FROM metric_samples WHERE database_name = $1 AND at >= $2 \
         ORDER BY at LIMIT 1",
        columns()
    );
    on_pool!(pool, |p| sqlx::query_as::<_, SampleRow>(&sql)
        .bind(database)
        .bind(at)
        .fetch_optional(p)
        .await)
}

/// When a database's oldest kept sample was taken (raw or rolled up).
pub async fn oldest_at(pool: &Pool, database: &str) -> sqlx::Result<Option<i64>> {
    on_pool!(pool, |p| sqlx::query_scalar(
        "SELECT MIN(at) FROM metric_samples WHERE database_name = $1"
    )
    .bind(database)
    .fetch_one(p)
    .await)
}

/// A database's newest raw sample (for an instance that does not sample).
pub async fn newest(pool: &Pool, database: &str) -> sqlx::Result<Option<SampleRow>> {
    let sql = format!(
        "SELECT database_name, at, {} FROM metric_samples WHERE database_name = $1 AND step = 0 \
         ORDER BY at DESC LIMIT 1",
        columns()
    );
    on_pool!(pool, |p| sqlx::query_as::<_, SampleRow>(&sql)
        .bind(database)
        .fetch_optional(p)
        .await)
}

/// Rows by step (0 raw, 300 roll-ups), for tests and the monitoring page.
pub async fn count(pool: &Pool, database: &str) -> sqlx::Result<(i64, i64)> {
    on_pool!(pool, |p| sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN step = 0 THEN 1 ELSE 0 END), 0), \
                COALESCE(SUM(CASE WHEN step > 0 THEN 1 ELSE 0 END), 0) \
           FROM metric_samples WHERE database_name = $1"
    )
    .bind(database)
    .fetch_one(p)
    .await)
}

/// What one compaction did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Raw samples folded into roll-ups.
    pub rolled: u64,
    /// Roll-ups past retention, and rows of databases no longer registered.
    pub deleted: u64,
}

/// Fold raw samples older than `raw_before` into five-minute roll-ups,
/// delete everything older than `keep_after`, and drop the rows of
/// databases not in `known` that are older than `orphaned_before` (a grace
/// period: a database registered while this runs is not in `known` yet, and
/// its first samples must survive). One transaction: a crash never leaves
/// a bucket counted twice or lost.
pub async fn compact(
    pool: &Pool,
    raw_before: i64,
    keep_after: i64,
    known: &[String],
    orphaned_before: i64,
) -> sqlx::Result<Compacted> {
    // Whole buckets only: a bucket whose later samples are still raw would
    // otherwise be rolled up twice.
    let cutoff = raw_before.div_euclid(ROLLUP_STEP) * ROLLUP_STEP;
    let rollup = format!(
        "INSERT INTO metric_samples (database_name, at, step, {cols}) \
         SELECT database_name, (at / {ROLLUP_STEP}) * {ROLLUP_STEP}, {ROLLUP_STEP}, {aggs} \
           FROM metric_samples WHERE step = 0 AND at < $1 \
          GROUP BY 1, 2 \
         ON CONFLICT (database_name, step, at) DO NOTHING",
        cols = columns(),
        aggs = FIGURES
            .iter()
            .map(|(c, agg)| format!("{agg}({c})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    on_pool!(pool, |p| {
        let mut tx = p.begin().await?;
        sqlx::query(&rollup).bind(cutoff).execute(&mut *tx).await?;
        let rolled = sqlx::query("DELETE FROM metric_samples WHERE step = 0 AND at < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let mut deleted = sqlx::query("DELETE FROM metric_samples WHERE at < $1")
            .bind(keep_after)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let names: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT database_name FROM metric_samples")
            .fetch_all(&mut *tx)
            .await?;
        for (name,) in names {
            if !known.contains(&name) {
                deleted += sqlx::query("DELETE FROM metric_samples WHERE database_name = $1 AND at < $2")
                    .bind(&name)
                    .bind(orphaned_before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
        }
        tx.commit().await?;
        Ok(Compacted { rolled, deleted })
    })
}
