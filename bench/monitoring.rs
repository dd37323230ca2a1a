//! Monitoring (issue 8): a month of samples at the default 30-second
//! interval is written into a running panel's store, compacted as the
//! panel does hourly, and the monitoring page is timed for every range,
//! beside a page that does no chart work.

use std::time::{Duration, Instant};

use sqlx::sqlite::SqlitePoolOptions;

use super::{Panel, env, summary};

const RUNS: usize = 60;
const INTERVAL: i64 = 30;

async fn get_ms(http: &reqwest::Client, panel: &Panel, path: &str) -> (f64, String) {
    let t = Instant::now();
    let res = http
        .get(format!("{}{path}", panel.base))
        .header("cookie", format!("custodian_session={}", panel.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "{path}");
    let body = res.text().await.unwrap();
    (t.elapsed().as_secs_f64() * 1000.0, body)
}

/// Median and p99 of `RUNS` requests, and the last body.
async fn time_page(http: &reqwest::Client, panel: &Panel, path: &str) -> (f64, f64, String) {
    let mut ms = Vec::with_capacity(RUNS);
    let mut body = String::new();
    for _ in 0..RUNS {
        let (t, b) = get_ms(http, panel, path).await;
        ms.push(t);
        body = b;
    }
    let (p50, p99) = summary(ms);
    (p50, p99, body)
}

/// The store's size on disk: the database file and its write-ahead log.
fn file_bytes(store: &str) -> u64 {
    [store.to_string(), format!("{store}-wal")]
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

pub async fn report(panel: &Panel, name: &str) -> String {
    let store = format!("{}/{name}/custodian.db", env("BENCH_WORK"));
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&store)
                .busy_timeout(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    let now = custodian::store::now();
    let month = 30 * 86_400;
    // A day's shape: connections and TPS rise and fall; size grows.
    let mut tx = pool.begin().await.unwrap();
    let t = Instant::now();
    let mut rows = 0;
    let mut at = now - month;
    while at < now - 60 {
        let phase = (at % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU;
        let load = 1.0 + phase.sin();
        sqlx::query(
            "INSERT INTO metric_samples (database_name, at, step, connections, active, idle, idle_in_xact, \
             max_connections, commits_ps, rollbacks_ps, cache_hit, size_bytes, longest_query_s, longest_xact_s, \
             longest_idle_xact_s, dead_tuples, xid_age) \
             VALUES ('shop', $1, 0, $2, $3, $4, 0, 300, $5, $6, 0.99, $7, $8, $8, 0, $9, $10) ON CONFLICT DO NOTHING",
        )
        .bind(at)
        .bind(20.0 + 15.0 * load)
        .bind(3.0 * load)
        .bind(17.0 + 10.0 * load)
        .bind(120.0 * load)
        .bind(2.0 * load)
        .bind(1.0e9 + (at - now + month) as f64 * 40.0)
        .bind(0.2 + load)
        .bind(5000.0 * load)
        .bind(1.0e6 + (at % 86_400) as f64)
        .execute(&mut *tx)
        .await
        .unwrap();
        rows += 1;
        at += INTERVAL;
    }
    tx.commit().await.unwrap();
    let insert_s = t.elapsed().as_secs_f64();
    let bytes_before = file_bytes(&store);

    // The panel's own hourly compaction, on the same store file.
    let t = Instant::now();
    let store_handle =
        custodian::store::Store::open(&custodian::config::SecretUrl::new(format!("sqlite://{store}")))
            .await
            .unwrap();
    let done = custodian::store::metrics::compact(
        store_handle.pool(),
        now - 48 * 3600,
        now - month,
        &["shop".to_string()],
        now - 3600,
    )
    .await
    .unwrap();
    let compact_s = t.elapsed().as_secs_f64();
    let (raw, rolled) = custodian::store::metrics::count(store_handle.pool(), "shop")
        .await
        .unwrap();
    sqlx::query("VACUUM").execute(&pool).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .unwrap();
    let bytes_after = file_bytes(&store);
    store_handle.close().await;
    pool.close().await;

    let http = reqwest::Client::new();
    let (jobs_p50, jobs_p99, _) = time_page(&http, panel, "/jobs").await;
    let mut lines = String::new();
    let mut month_p50 = 0.0;
    for range in ["1h", "24h", "7d", "30d"] {
        let (p50, p99, body) =
            time_page(&http, panel, &format!("/databases/shop/monitoring?range={range}")).await;
        let points = body
            .split("data-points=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("?")
            .to_string();
        let charts = body.matches("<svg class=\"chart\"").count();
        lines.push_str(&format!(
            "| monitoring page, range {range} ({charts} charts, {points} points per line) | {p50:.2} ms | {p99:.2} ms |\n"
        ));
        if range == "30d" {
            month_p50 = p50;
        }
    }
    let (over_p50, over_p99, _) = time_page(&http, panel, "/").await;
    let ratio = month_p50 / jobs_p50;
    format!(
        "## Monitoring charts (issue 8)\n\
\n\
A month of samples for one database at the default 30-second interval ({rows} rows, written in {insert_s:.1} s \
in one transaction) was compacted as the panel does every hour: {rolled_in} raw samples older than 48 hours \
became five-minute averages in {compact_s:.2} s, leaving {raw} raw rows and {rolled} roll-ups ({total} rows; \
store file and WAL {before:.1} MiB before, {after:.1} MiB after VACUUM). The same retention bounds the table for any \
history length: 48 h / 30 s + 30 d / 5 min = 14,400 rows per database.\n\
\n\
Pages signed in as an operator, {RUNS} requests each, charts drawn on the server as SVG:\n\
\n\
| page | median | p99 |\n\
|---|---|---|\n\
| for scale: a signed-in page with no chart work (`GET /jobs`) | {jobs_p50:.2} ms | {jobs_p99:.2} ms |\n\
{lines}\
| overview with a day's sparklines | {over_p50:.2} ms | {over_p99:.2} ms |\n\
\n\
A month of charts renders in **{month_p50:.2} ms** median, {ratio:.1}× a page with no chart work: the store \
buckets the month into two-hour points (360 per line) before anything is drawn.\n",
        rolled_in = done.rolled,
        total = raw + rolled,
        before = bytes_before as f64 / 1_048_576.0,
        after = bytes_after as f64 / 1_048_576.0,
    )
}
