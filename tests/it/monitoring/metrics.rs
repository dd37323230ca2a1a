//! `/metrics` as Prometheus exposition, and panels sharing a store.

use std::time::Duration;

use custodian::domain::Role;
use custodian::store::now;
use reqwest::StatusCode;
use sqlx::Connection;

use super::fast_panel_on;
use crate::helpers::{StoreChoice, TestApp, TestDb, eventually};
use crate::on_both_stores;

/// One sample line of an exposition: name, labels, value.
type Series = (String, Vec<(String, String)>, f64);

/// A strict reading of the Prometheus/OpenMetrics text format: every line
/// is a HELP or TYPE comment, the EOF marker, or a sample of a declared
/// family with well-formed labels and a numeric value. Returns the samples.
fn parse_exposition(text: &str) -> Vec<Series> {
    let mut families = std::collections::HashSet::new();
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "ends with # EOF");
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["gauge", "counter"].contains(&kind), "known type: {line}");
            families.insert(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line}");
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("numeric value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = Vec::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert!(
                        !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                        "label name in {line}"
                    );
                    assert_eq!(chars.next(), Some('"'), "quoted label value in {line}");
                    let mut val = String::new();
                    loop {
                        match chars.next().expect("closing quote") {
                            '\\' => val.push(chars.next().expect("escaped char")),
                            '"' => break,
                            c => val.push(c),
                        }
                    }
                    labels.push((key, val));
                    if chars.peek() == Some(&',') {
                        chars.next();
                    }
                }
                (name, labels)
            }
            None => (series, Vec::new()),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name: {line}"
        );
        let family = name.strip_suffix("_total").unwrap_or(name);
        assert!(
            families.contains(family),
            "{name} has a TYPE line before its samples"
        );
        out.push((name.to_string(), labels, value));
    }
    out
}

fn find<'a>(samples: &'a [Series], name: &str, labels: &[(&str, &str)]) -> Option<&'a f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| v)
}

#[tokio::test]
async fn metrics_are_valid_exposition_and_need_a_token() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        c.sample_interval = Duration::from_secs(1);
        c.metrics_token = Some("scrape-secret".to_string().into());
    })
    .await;
    let db = TestDb::postgres().await;
    app.register("shop", &db.url).await;
    db.exec(
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100); DELETE FROM t WHERE id <= 50",
    )
    .await;
    let http = reqwest::Client::new();

    let res = http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = http
        .get(app.url("/metrics"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let viewer_token = app.token_for("prometheus", Role::Viewer).await;
    let text = eventually("a sample of shop in /metrics", || async {
        let res = http
            .get(app.url("/metrics"))
            .bearer_auth(&viewer_token)
            .send()
            .await
            .ok()?;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        let text = res.text().await.ok()?;
        // Two samples: the second has rates.
        (text.contains("custodian_commits_per_second{")
            && text.contains("custodian_database_up{database=\"shop\""))
        .then_some(text)
    })
    .await;
    let samples = parse_exposition(&text);
    let shop = [("database", "shop"), ("engine", "postgres")];
    assert_eq!(find(&samples, "custodian_database_up", &shop), Some(&1.0));
    let size = find(&samples, "custodian_database_size_bytes", &shop).expect("size");
    assert!(*size > 1_000_000.0, "a PostgreSQL database is megabytes: {size}");
    let max = find(&samples, "custodian_max_connections", &shop).expect("max_connections");
    let direct: String = {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar("SHOW max_connections")
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    assert_eq!(*max, direct.parse::<f64>().unwrap());
    assert!(
        find(
            &samples,
            "custodian_sessions",
            &[("database", "shop"), ("state", "idle")]
        )
        .is_some()
    );
    assert!(find(&samples, "custodian_cache_hit_ratio", &shop).is_some_and(|r| (0.0..=1.0).contains(r)));
    assert!(find(&samples, "custodian_xid_age", &shop).is_some());
    assert!(find(&samples, "custodian_poll_errors_total", &shop).is_some());

    // The configured token works too, and an allow-listed address needs none.
    let res = http
        .get(app.url("/metrics"))
        .bearer_auth("scrape-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let open = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        c.metrics_allow = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let res = http.get(open.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    parse_exposition(&res.text().await.unwrap());
}

on_both_stores!(panels_sharing_a_store_take_turns_to_sample);
async fn panels_sharing_a_store_take_turns_to_sample(store: StoreChoice) {
    use custodian::store::leases;
    let app = fast_panel_on(store).await;
    let pool = app.state.store.pool();
    let lease = "monitoring.sampler";
    // The running panel took the lease at start; another instance cannot.
    eventually("the panel to hold the sampling lease", || async {
        let t = now();
        (app.state.monitor.lead(t).await && !leases::acquire(pool, lease, "other", t + 30, t).await.unwrap())
            .then_some(())
    })
    .await;
    // Once the holder stops renewing, the other takes over, and keeps it
    // while it renews; the first no longer samples.
    let later = now() + 3600;
    assert!(
        leases::acquire(pool, lease, "other", later + 30, later)
            .await
            .unwrap()
    );
    assert!(!app.state.monitor.lead(later + 1).await);
    assert!(
        leases::acquire(pool, lease, "other", later + 60, later + 20)
            .await
            .unwrap()
    );
    assert!(!app.state.monitor.lead(later + 40).await);
    assert!(
        app.state.monitor.lead(later + 61).await,
        "the lease ran out: back to the first"
    );
}

#[tokio::test]
async fn two_panels_on_one_store_sample_once_and_both_serve_metrics() {
    let key = "c".repeat(64);
    let first = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        c.sample_interval = Duration::from_secs(1);
        c.secret_key = Some(key.clone().into());
    })
    .await;
    let shared = format!(
        "sqlite://{}",
        first.data_dir.path().join("custodian.db").display()
    );
    let second = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        c.sample_interval = Duration::from_secs(1);
        c.poll_interval = Duration::from_secs(1);
        c.secret_key = Some(key.clone().into());
        c.store_url = Some(custodian::config::SecretUrl::new(shared.clone()));
    })
    .await;
    let db = TestDb::postgres().await;
    first.register("shop", &db.url).await;
    let name = custodian::domain::DatabaseName::parse("shop").unwrap();
    // The second panel learns of the database from the store, then both
    // run their samplers; only the lease holder samples.
    eventually("the second panel to know shop", || async {
        second.state.fleet.get(&name).map(|_| ())
    })
    .await;
    let token = first.token_for("prometheus", Role::Viewer).await;
    let http = reqwest::Client::new();
    for app in [&first, &second] {
        eventually("fresh figures of shop in /metrics", || async {
            let text = http
                .get(app.url("/metrics"))
                .bearer_auth(&token)
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let samples = parse_exposition(&text);
            find(&samples, "custodian_database_size_bytes", &[("database", "shop")]).map(|_| ())
        })
        .await;
    }
    let sampled = [&first, &second]
        .iter()
        .filter(|app| app.state.monitor.latest(&name).is_some())
        .count();
    assert_eq!(sampled, 1, "exactly one panel samples the fleet");
}
