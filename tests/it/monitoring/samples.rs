//! Samples: accumulation, roll-up and retention, charts as SVG, SQLite.

use std::time::Duration;

use custodian::domain::Role;
use custodian::service::monitoring::charts;
use custodian::store::metrics::{self as samples, SampleRow};
use custodian::store::now;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;

use super::fast_panel_on;
use crate::helpers::{StoreChoice, TestApp, TestDb, api_get, eventually};
use crate::on_both_stores;

fn row(db: &str, at: i64, active: f64) -> SampleRow {
    SampleRow {
        database_name: db.to_string(),
        at,
        active: Some(active),
        idle: Some(1.0),
        idle_in_xact: Some(0.0),
        connections: Some(active + 1.0),
        longest_query_s: Some(active * 10.0),
        size_bytes: Some(1000.0 + active),
        ..SampleRow::default()
    }
}

on_both_stores!(samples_accumulate_then_roll_up_and_old_ones_are_deleted);
async fn samples_accumulate_then_roll_up_and_old_ones_are_deleted(store: StoreChoice) {
    let app = fast_panel_on(store).await;
    let db = TestDb::postgres().await;
    app.register("live", &db.url).await;
    let pool = app.state.store.pool();
    // Real samples accumulate, one a second.
    eventually("three samples of a live database", || async {
        let (raw, _) = samples::count(pool, "live").await.ok()?;
        (raw >= 3).then_some(())
    })
    .await;

    // Thirty-five days of history for a second database, every ten minutes,
    // and, for a third, two samples in one five-minute bucket three days ago.
    app.register("history", "postgres://postgres@127.0.0.1:1/history")
        .await;
    let t = now();
    let mut inserted = 0;
    let mut at = t - 35 * 86_400;
    while at < t {
        samples::insert(pool, &row("history", at, 2.0)).await.unwrap();
        inserted += 1;
        at += 600;
    }
    app.register("pair", "postgres://postgres@127.0.0.1:1/pair").await;
    let bucket = (t - 3 * 86_400) / 300 * 300;
    samples::insert(pool, &row("pair", bucket + 7, 2.0))
        .await
        .unwrap();
    samples::insert(pool, &row("pair", bucket + 37, 6.0))
        .await
        .unwrap();
    // And a database that was removed from the registry long ago.
    samples::insert(pool, &row("removed", t - 7200, 1.0))
        .await
        .unwrap();

    // Alert history: one resolved 95 days ago (past three retention
    // periods), one still firing since 100 days ago.
    use custodian::store::alerts::{self as alert_rows, RuleKey};
    let old = alert_rows::open_pending(
        pool,
        "history",
        RuleKey::XidAge,
        "old",
        None,
        None,
        t - 100 * 86_400,
    )
    .await
    .unwrap()
    .unwrap();
    alert_rows::fire(pool, old, t - 100 * 86_400).await.unwrap();
    alert_rows::resolve(pool, old, t - 95 * 86_400).await.unwrap();
    let ongoing = alert_rows::open_pending(
        pool,
        "history",
        RuleKey::WalArchiving,
        "ongoing",
        None,
        None,
        t - 100 * 86_400,
    )
    .await
    .unwrap()
    .unwrap();
    alert_rows::fire(pool, ongoing, t - 100 * 86_400).await.unwrap();

    let done = app.state.monitor.compact(t).await.unwrap();
    assert!(
        alert_rows::get(pool, old).await.unwrap().is_none(),
        "old history is pruned"
    );
    assert!(
        alert_rows::get(pool, ongoing).await.unwrap().is_some(),
        "an open alert never is"
    );
    assert!(done.rolled > 0 && done.deleted > 0, "{done:?}");
    let (raw, rolled) = samples::count(pool, "history").await.unwrap();
    // Raw samples remain only for the last 48 hours...
    let raw_expected = (0..)
        .map(|i| t - 35 * 86_400 + i * 600)
        .take_while(|a| *a < t)
        .filter(|a| *a >= (t - 48 * 3600) / 300 * 300)
        .count() as i64;
    assert_eq!(raw, raw_expected);
    // ...older ones are five-minute roll-ups, none older than 30 days.
    let old = samples::series(pool, "history", 0, 1).await.unwrap();
    assert!(
        old.iter().all(|r| r.at >= t - 30 * 86_400),
        "nothing older than the retention"
    );
    assert!(
        rolled > 0 && raw + rolled < inserted,
        "{raw} + {rolled} of {inserted}"
    );
    // The table is bounded by the windows, whatever the history's length.
    assert!(raw + rolled <= 48 * 12 + 30 * 288 + 2, "{raw} + {rolled}");
    // The two samples in one bucket became one row: average active,
    // the longest query's maximum.
    let merged = samples::series(pool, "pair", bucket, 1)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.at == bucket)
        .expect("the rolled-up bucket");
    assert_eq!(merged.active, Some(4.0));
    assert_eq!(merged.longest_query_s, Some(60.0));
    // The removed database's samples are gone.
    assert_eq!(samples::count(pool, "removed").await.unwrap(), (0, 0));
    // Compacting again changes nothing.
    let again = app.state.monitor.compact(t).await.unwrap();
    assert_eq!((again.rolled, again.deleted), (0, 0));
}

/// Every `<svg class="chart">` of a page, parsed as XML.
fn charts_of(html: &str) -> Vec<String> {
    html.match_indices("<svg class=\"chart\"")
        .map(|(i, _)| {
            let end = html[i..].find("</svg>").expect("closed svg") + i + "</svg>".len();
            html[i..end].to_string()
        })
        .collect()
}

/// Points of one series in the chart titled `title`.
fn points_in(svgs: &[String], title: &str, series: &str) -> Vec<(f64, f64)> {
    let svg = svgs
        .iter()
        .find(|s| s.contains(&format!("aria-label=\"{title}\"")))
        .unwrap_or_else(|| panic!("no chart titled {title}"));
    let doc = roxmltree::Document::parse(svg).expect("the chart is well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.attribute("data-series") == Some(series))
        .flat_map(|g| g.children().filter(|c| c.has_tag_name("polyline")))
        .flat_map(|p| {
            p.attribute("points")
                .unwrap()
                .split(' ')
                .map(|xy| {
                    let (x, y) = xy.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

on_both_stores!(charts_are_svg_with_one_point_per_bucket_of_the_range);
async fn charts_are_svg_with_one_point_per_bucket_of_the_range(store: StoreChoice) {
    let app = TestApp::spawn_on(store).await;
    // Unreachable: the sampler stores nothing for it, only this test does.
    app.register("charted", "postgres://postgres@127.0.0.1:1/charted")
        .await;
    let pool = app.state.store.pool();
    let t = now();
    // Two hours of samples every 30 seconds, with an hour-long hole.
    let times: Vec<i64> = (0..240)
        .map(|k| t - 30 * k)
        .filter(|at| !(t - 5400..=t - 3600).contains(at))
        .collect();
    for (k, at) in times.iter().enumerate() {
        samples::insert(pool, &row("charted", *at, (k % 7) as f64))
            .await
            .unwrap();
    }
    let viewer = app.signed_in("v", Role::Viewer).await;

    let (status, html) = viewer.text("/databases/charted/monitoring?range=1h").await;
    assert_eq!(status, StatusCode::OK);
    let svgs = charts_of(&html);
    let hour = points_in(&svgs, "Connections by state", "active");
    let within_hour = times.iter().filter(|at| **at > t - 3600).count();
    assert_eq!(
        hour.len(),
        within_hour,
        "one point per 30-second sample in the hour"
    );
    assert!(hour.windows(2).all(|w| w[0].0 < w[1].0), "x grows with time");
    assert!(
        hour.iter()
            .all(|(x, y)| (0.0..=charts::WIDTH).contains(x) && (0.0..=charts::HEIGHT).contains(y))
    );

    let (_, html) = viewer.text("/databases/charted/monitoring?range=24h").await;
    let day = points_in(&charts_of(&html), "Connections by state", "active");
    let mut buckets: Vec<i64> = times.iter().map(|at| at / 300).collect();
    buckets.dedup();
    assert_eq!(day.len(), buckets.len(), "one point per five-minute bucket");
    // The hole breaks the line in two.
    let runs = charts_of(&html)
        .iter()
        .find(|s| s.contains("aria-label=\"Connections by state\""))
        .map(|s| {
            let doc = roxmltree::Document::parse(s).unwrap();
            doc.descendants()
                .filter(|n| n.attribute("data-series") == Some("active"))
                .map(|g| g.children().filter(|c| c.has_tag_name("polyline")).count())
                .sum::<usize>()
        })
        .unwrap();
    assert_eq!(runs, 2, "a gap in the samples is a gap in the line");

    // The overview draws the day as sparklines.
    let (_, overview) = viewer.text("/").await;
    let spark = overview
        .split("aria-label=\"connections over the last day\"><polyline points=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a connections sparkline");
    assert_eq!(
        spark.split(' ').count(),
        buckets.len(),
        "one point per five-minute bucket"
    );

    // The API agrees with the chart.
    let token = app.token_for("ci", Role::Viewer).await;
    let v: Value = api_get(&app, &token, "/api/v1/databases/charted/samples?range=24h")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["points"].as_array().unwrap().len(), buckets.len());
    let res = api_get(&app, &token, "/api/v1/databases/charted/samples?range=1y").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_sqlite_database_is_sampled_for_its_size() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        c.sample_interval = Duration::from_secs(1);
        c.demo = true;
    })
    .await;
    let pool = app.state.store.pool();
    let row = eventually("a sample of the demo database", || async {
        samples::newest(pool, "demo").await.ok().flatten()
    })
    .await;
    // The same figure read directly from the file.
    let file = app.data_dir.path().join("demo").join("demo.sqlite");
    let mut direct = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let size: i64 = sqlx::query_scalar(
        "SELECT (SELECT page_count FROM pragma_page_count()) * (SELECT page_size FROM pragma_page_size())",
    )
    .fetch_one(&mut direct)
    .await
    .unwrap();
    assert_eq!(row.size_bytes, Some(size as f64));
    assert_eq!(row.longest_query_s, None, "SQLite has no sessions to read");
}
