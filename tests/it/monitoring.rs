//! Monitoring and alerting: rules firing and resolving on real PostgreSQL
//! sessions, webhooks received by a server the test runs (with retries),
//! samples rolled up and pruned, charts parsed as SVG, `/metrics` parsed as
//! Prometheus exposition, and who may silence.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use axum::routing::post;
use custodian::domain::Role;
use custodian::store::metrics::{self as samples, SampleRow};
use custodian::store::now;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{Client, StoreChoice, TestApp, TestDb, api_get, api_post, eventually};
use crate::on_both_stores;

/// A webhook receiver: records every body; answers 500 to the first
/// `failures` requests.
#[derive(Clone)]
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    requests: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(failures: usize) -> Receiver {
        #[derive(Clone)]
        struct S {
            bodies: Arc<Mutex<Vec<Value>>>,
            requests: Arc<AtomicUsize>,
            failures: usize,
        }
        async fn hook(State(s): State<S>, axum::Json(body): axum::Json<Value>) -> AxumStatus {
            let n = s.requests.fetch_add(1, Ordering::SeqCst);
            if n < s.failures {
                return AxumStatus::INTERNAL_SERVER_ERROR;
            }
            s.bodies.lock().unwrap().push(body);
            AxumStatus::OK
        }
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        let state = S {
            bodies: bodies.clone(),
            requests: requests.clone(),
            failures,
        };
        let app = axum::Router::new().route("/hook", post(hook)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url: format!("http://{addr}/hook"),
            bodies,
            requests,
        }
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// The first body for which `pick` holds, once it arrives.
    async fn received(&self, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        eventually(what, || async { self.bodies().into_iter().find(|b| pick(b)) }).await
    }
}

/// A panel that samples every second and retries webhooks after a second.
async fn fast_panel() -> TestApp {
    fast_panel_on(StoreChoice::Sqlite).await
}

async fn fast_panel_on(store: StoreChoice) -> TestApp {
    TestApp::spawn_with(store, |c| {
        c.sample_interval = Duration::from_secs(1);
        c.webhook_retry = Duration::from_secs(1);
    })
    .await
}

/// Admin: set one rule's threshold and "for" on a database, as the form does.
async fn set_rule(admin: &Client, db: &str, rule: &str, threshold: &str, for_seconds: &str) {
    let res = admin
        .post(
            &format!("/databases/{db}/monitoring/rules"),
            &[
                ("rule", rule),
                ("enabled", "on"),
                ("threshold", threshold),
                ("for_seconds", for_seconds),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "saving rule {rule}");
}

async fn add_webhook(admin: &Client, name: &str, url: &str, format: &str) {
    let res = admin
        .post(
            "/alerts/webhooks",
            &[("name", name), ("url", url), ("format", format)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "adding webhook {name}");
}

/// The alert of `rule` on `db` in `state` (from the API), once there is one.
async fn alert_in(app: &TestApp, token: &str, db: &str, rule: &str, state: &str) -> Value {
    eventually(&format!("{rule} on {db} to be {state}"), || async {
        let v: Value = api_get(app, token, "/api/v1/alerts").await.json().await.ok()?;
        let all = v["open"]
            .as_array()?
            .iter()
            .chain(v["history"].as_array()?.iter())
            .cloned()
            .collect::<Vec<_>>();
        all.into_iter()
            .find(|a| a["database"] == db && a["rule"] == rule && a["state"] == state)
    })
    .await
}

#[tokio::test]
async fn a_long_query_fires_its_alert_notifies_and_resolves_after_cancel() {
    let app = fast_panel().await;
    let db = TestDb::postgres().await;
    app.register("orders", &db.url).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("dba", Role::Operator).await;
    let json_hook = Receiver::start(0).await;
    let slack_hook = Receiver::start(0).await;
    add_webhook(&admin, "pager", &json_hook.url, "json").await;
    add_webhook(&admin, "slack", &slack_hook.url, "slack").await;
    set_rule(&admin, "orders", "long_query", "2", "0").await;

    let mut sleeper = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut sleeper)
        .await
        .unwrap();
    let running = tokio::spawn(async move {
        sqlx::query("SELECT pg_sleep(120)")
            .execute(&mut sleeper)
            .await
            .map(|_| ())
    });

    let firing = alert_in(&app, &token, "orders", "long_query", "firing").await;
    assert!(
        firing["message"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {pid}")),
        "the alert names the session: {firing}"
    );
    assert!(
        firing["query"].as_str().unwrap().contains("pg_sleep(120)"),
        "the page and API show the statement: {firing}"
    );
    let sent = json_hook
        .received("the firing notification", |b| {
            b["event"] == "firing" && b["rule"] == "long_query"
        })
        .await;
    assert_eq!(sent["database"], "orders");
    assert_eq!(sent["rule"], "long_query");
    assert_eq!(sent["alert_id"], firing["id"]);
    let slack = slack_hook
        .received("the Slack-style firing message", |b| {
            b["text"]
                .as_str()
                .is_some_and(|t| t.contains("FIRING") && t.contains("Query running longer than"))
        })
        .await;
    assert!(slack["text"].as_str().unwrap().contains("orders"), "{slack}");
    // SQL can carry secrets: notifications name the pid, never the statement.
    assert!(!sent.to_string().contains("pg_sleep"), "{sent}");
    assert!(!slack.to_string().contains("pg_sleep"), "{slack}");

    // Cancel it through the API, as a DBA would: the query really stops...
    let res = api_post(
        &app,
        &token,
        &format!("/api/v1/databases/orders/activity/{pid}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let outcome = running.await.unwrap();
    let err = outcome.expect_err("the sleep was cancelled");
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("57014")
    );
    // ...and the alert resolves, with a notification.
    let resolved = alert_in(&app, &token, "orders", "long_query", "resolved").await;
    assert_eq!(resolved["id"], firing["id"]);
    assert!(resolved["resolved_at"].is_string());
    json_hook
        .received("the resolved notification", |b| {
            b["event"] == "resolved" && b["alert_id"] == firing["id"]
        })
        .await;

    // The page shows it in the history, and deliveries as delivered.
    let viewer = app.signed_in("manager", Role::Viewer).await;
    let (status, html) = viewer.text("/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Query running longer than"), "{html}");
    assert!(html.contains("delivered"), "{html}");
}

#[tokio::test]
async fn an_idle_transaction_fires_its_rule_until_it_ends() {
    let app = fast_panel().await;
    let db = TestDb::postgres().await;
    app.register("billing", &db.url).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("v", Role::Viewer).await;
    set_rule(&admin, "billing", "idle_in_transaction", "1", "0").await;

    let mut idle = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut idle)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut idle).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut idle).await.unwrap();

    let firing = alert_in(&app, &token, "billing", "idle_in_transaction", "firing").await;
    let message = firing["message"].as_str().unwrap();
    assert!(message.contains(&format!("pid {pid}")), "{message}");
    assert!(message.contains("idle in transaction"), "{message}");

    sqlx::query("ROLLBACK").execute(&mut idle).await.unwrap();
    alert_in(&app, &token, "billing", "idle_in_transaction", "resolved").await;
}

on_both_stores!(an_unreachable_database_fires_and_a_failing_webhook_is_retried);
async fn an_unreachable_database_fires_and_a_failing_webhook_is_retried(store: StoreChoice) {
    let app = fast_panel_on(store).await;
    // Nothing listens on port 1.
    app.register("gone", "postgres://postgres@127.0.0.1:1/gone").await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("v", Role::Viewer).await;
    // The receiver fails twice, then accepts.
    let hook = Receiver::start(2).await;
    add_webhook(&admin, "flaky", &hook.url, "json").await;
    set_rule(&admin, "gone", "unreachable", "", "0").await;

    let firing = alert_in(&app, &token, "gone", "unreachable", "firing").await;
    assert!(
        firing["message"].as_str().unwrap().contains("does not answer"),
        "{firing}"
    );
    let sent = hook
        .received("the firing notification after retries", |b| {
            b["event"] == "firing" && b["rule"] == "unreachable"
        })
        .await;
    assert_eq!(sent["database"], "gone");
    assert_eq!(
        hook.requests.load(Ordering::SeqCst),
        3,
        "two failures, then the delivery"
    );
    // The delivery's record says so.
    let d = eventually("the delivery to be recorded as delivered", || async {
        custodian::service::monitoring::notify::deliveries(&app.state.monitor, 10)
            .await
            .ok()?
            .into_iter()
            .find(|d| d.row.event == "firing" && d.row.state == "delivered")
    })
    .await;
    assert_eq!(d.row.attempts, 3);
    assert_eq!(
        d.row.last_error, None,
        "a delivered notification carries no error"
    );
    // The overview counts it.
    let (_, html) = admin.text("/").await;
    assert!(html.contains("1 firing"), "{html}");
}

#[tokio::test]
async fn viewers_see_alerts_but_only_operators_silence_and_silences_are_audited() {
    let app = fast_panel().await;
    app.register("quiet", "postgres://postgres@127.0.0.1:1/quiet")
        .await;
    let admin = app.signed_in("root", Role::Admin).await;
    let hook = Receiver::start(0).await;
    add_webhook(&admin, "pager", &hook.url, "json").await;

    let viewer = app.signed_in("manager", Role::Viewer).await;
    let operator = app.signed_in("dba", Role::Operator).await;
    let silence = [
        ("database", "quiet"),
        ("rule", "unreachable"),
        ("duration", "4h"),
        ("reason", "decommissioning"),
    ];
    let res = viewer.post("/alerts/silences", &silence).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let viewer_token = app.token_for("manager2", Role::Viewer).await;
    let res = api_post(
        &app,
        &viewer_token,
        "/api/v1/databases/quiet/silences",
        json!({"duration": "1h"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = operator.post("/alerts/silences", &silence).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = operator
        .post(
            "/alerts/silences",
            &[("database", "quiet"), ("duration", "forever")],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a bad duration is refused"
    );

    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|r| r.action == "access.denied" && r.target == "/alerts/silences" && r.actor == "manager"),
        "the viewer's attempt is audited as denied"
    );
    let rows: Vec<_> = audit.iter().filter(|r| r.action == "alert.silence").collect();
    let outcomes: Vec<&str> = rows.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        ["success"],
        "one silence made (the bad duration never reached the service)"
    );
    let ok = rows[0];
    assert_eq!(ok.actor, "dba");
    assert!(
        ok.detail.contains("unreachable for 4h: decommissioning"),
        "{}",
        ok.detail
    );

    // Only now may it fire at once.
    set_rule(&admin, "quiet", "unreachable", "", "0").await;
    // The alert fires and shows as silenced; no notification is queued,
    // even after further samples have been judged.
    let token = app.token_for("v", Role::Viewer).await;
    let firing = alert_in(&app, &token, "quiet", "unreachable", "firing").await;
    assert!(firing["silenced_until"].is_string(), "{firing}");
    let id = firing["id"].as_i64().unwrap();
    eventually("a later sample to be judged", || async {
        let a = custodian::store::alerts::get(app.state.store.pool(), id)
            .await
            .ok()??;
        (a.updated_at > a.fired_at?).then_some(())
    })
    .await;
    let (_, html) = viewer.text("/alerts").await;
    assert!(html.contains("silenced for"), "{html}");
    let queued = custodian::service::monitoring::notify::deliveries(&app.state.monitor, 10)
        .await
        .unwrap();
    assert!(
        queued.is_empty(),
        "silenced alerts notify nobody: {}",
        queued.len()
    );
    assert_eq!(hook.requests.load(Ordering::SeqCst), 0);

    // Acknowledging is an operator's, and audited.
    let res = viewer.post(&format!("/alerts/{id}/ack"), &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = operator.post(&format!("/alerts/{id}/ack"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let acked = alert_in(&app, &token, "quiet", "unreachable", "firing").await;
    assert_eq!(acked["acknowledged_by"], "dba");
    assert!(
        app.audit()
            .await
            .iter()
            .any(|r| r.action == "alert.ack" && r.outcome == "success" && r.actor == "dba")
    );
}

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
    use custodian::store::alerts as alert_rows;
    let old = alert_rows::open_pending(pool, "history", "xid_age", "old", None, None, t - 100 * 86_400)
        .await
        .unwrap()
        .unwrap();
    alert_rows::fire(pool, old, t - 100 * 86_400).await.unwrap();
    alert_rows::resolve(pool, old, t - 95 * 86_400).await.unwrap();
    let ongoing = alert_rows::open_pending(
        pool,
        "history",
        "wal_archiving",
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
            .all(|(x, y)| (0.0..=640.0).contains(x) && (0.0..=170.0).contains(y))
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

    // A range nobody asked for falls back to the day; the API agrees with the chart.
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

#[tokio::test]
async fn mariadb_is_sampled_and_its_long_queries_and_idle_transactions_alert() {
    let app = fast_panel().await;
    let db = TestDb::mariadb().await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB").await;
    app.register("maria", &db.url).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("v", Role::Viewer).await;
    set_rule(&admin, "maria", "long_query", "2", "0").await;
    set_rule(&admin, "maria", "idle_in_transaction", "1", "0").await;

    let mut sleeper = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
    let sleeper_id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
        .fetch_one(&mut sleeper)
        .await
        .unwrap();
    let running = tokio::spawn(async move {
        let _ = sqlx::query("SELECT SLEEP(8)").execute(&mut sleeper).await;
    });
    let mut idle = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
    let idle_id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
        .fetch_one(&mut idle)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut idle).await.unwrap();
    sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&mut idle)
        .await
        .unwrap();

    let long = alert_in(&app, &token, "maria", "long_query", "firing").await;
    assert!(
        long["message"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {sleeper_id}")),
        "{long}"
    );
    let idle_alert = alert_in(&app, &token, "maria", "idle_in_transaction", "firing").await;
    assert!(
        idle_alert["message"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {idle_id}")),
        "{idle_alert}"
    );
    // The stored figures match the server: two of this schema's sessions,
    // one of them in a transaction; the schema's size is InnoDB's.
    let v: Value = api_get(&app, &token, "/api/v1/databases/maria/samples?range=1h")
        .await
        .json()
        .await
        .unwrap();
    let last = v["points"].as_array().unwrap().last().unwrap().clone();
    assert!(last["idle_in_transaction"].as_f64().unwrap() >= 1.0, "{last}");
    assert!(last["size_bytes"].as_f64().unwrap() > 0.0, "{last}");
    assert!(last["max_connections"].as_f64().unwrap() > 0.0, "{last}");

    sqlx::query("ROLLBACK").execute(&mut idle).await.unwrap();
    running.await.unwrap();
    alert_in(&app, &token, "maria", "long_query", "resolved").await;
    alert_in(&app, &token, "maria", "idle_in_transaction", "resolved").await;
}

#[tokio::test]
async fn bad_alert_input_is_refused_and_webhook_urls_stay_secret() {
    let app = TestApp::spawn().await;
    app.register("quiet", "postgres://postgres@127.0.0.1:1/quiet")
        .await;
    let admin = app.signed_in("root", Role::Admin).await;
    let operator_token = app.token_for("dba", Role::Operator).await;
    let rules = "/databases/quiet/monitoring/rules";
    for (fields, why) in [
        (
            vec![("rule", "long_query"), ("threshold", "soon")],
            "a threshold that is not a number",
        ),
        (
            vec![("rule", "long_query"), ("threshold", "-5")],
            "a negative threshold",
        ),
        (
            vec![("rule", "long_query"), ("threshold", "")],
            "a missing threshold",
        ),
        (
            vec![("rule", "drop_tables"), ("threshold", "1")],
            "an unknown rule",
        ),
        (
            vec![("rule", "long_query"), ("threshold", "5"), ("for_seconds", "1e9")],
            "a 'for' that is not whole seconds",
        ),
        (
            vec![
                ("rule", "long_query"),
                ("threshold", "5"),
                ("for_seconds", "99999999"),
            ],
            "a 'for' longer than a week",
        ),
    ] {
        let res = admin.post(rules, &fields).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
    }
    let res = admin
        .post("/databases/nosuch/monitoring/rules", &[("rule", "long_query")])
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Nothing was stored: the defaults still hold.
    let stored = custodian::store::alerts::rules(app.state.store.pool(), "quiet")
        .await
        .unwrap();
    assert!(stored.is_empty(), "{stored:?}");

    for (body, why) in [
        (json!({"duration": "forever"}), "a duration that is not one"),
        (json!({"duration": "90d"}), "longer than 30 days"),
        (json!({"duration": "0s"}), "no time at all"),
        (json!({"duration": "500ms"}), "less than a minute"),
        (json!({"duration": "1h", "rule": "nosuch"}), "an unknown rule"),
        (
            json!({"duration": "1h", "reason": "x".repeat(501)}),
            "a reason too long",
        ),
    ] {
        let res = api_post(&app, &operator_token, "/api/v1/databases/quiet/silences", body).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
        let v: Value = res.json().await.unwrap();
        assert!(v["error"].is_string(), "{v}");
    }
    let res = api_post(
        &app,
        &operator_token,
        "/api/v1/databases/nosuch/silences",
        json!({"duration": "1h"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = api_post(&app, &operator_token, "/api/v1/alerts/0/ack", json!({})).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(
        custodian::store::alerts::silences(app.state.store.pool(), 0)
            .await
            .unwrap()
            .is_empty(),
        "no silence was made"
    );

    for (url, why) in [
        ("javascript:alert(1)", "not http"),
        ("ftp://example.com/hook", "not http"),
        ("hooks.slack.com/services/x", "no scheme"),
    ] {
        let res = admin
            .post(
                "/alerts/webhooks",
                &[("name", "bad"), ("url", url), ("format", "json")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
    }
    let res = admin
        .post(
            "/alerts/webhooks",
            &[
                ("name", "bad"),
                ("url", "https://example.com/"),
                ("format", "xml"),
            ],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "an unknown format"
    );

    // A Slack URL carries its secret in the path: it is sealed in the store
    // and shown nowhere, not on the page and not in the audit log.
    let secret = "T000/B000/XXXXsecretXXXX";
    let url = format!("https://hooks.slack.example/services/{secret}");
    add_webhook(&admin, "team", &url, "slack").await;
    let res = admin
        .post(
            "/alerts/webhooks",
            &[("name", "team"), ("url", &url), ("format", "slack")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT, "the name is taken");
    let (_, html) = admin.text("/alerts").await;
    assert!(html.contains("hooks.slack.example"), "the host is shown");
    assert!(!html.contains(secret), "the secret path is not");
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|r| r.action == "webhook.create" && r.outcome == "success")
    );
    assert!(
        audit
            .iter()
            .all(|r| !r.detail.contains(secret) && !r.target.contains(secret))
    );
    let stored = custodian::store::alerts::webhooks(app.state.store.pool())
        .await
        .unwrap();
    assert!(stored.iter().all(|w| !w.url_sealed.contains(secret)));
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

#[tokio::test]
async fn notifications_come_in_pairs_whatever_the_silences() {
    let app = fast_panel().await;
    let db = TestDb::postgres().await;
    app.register("pairs", &db.url).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let operator = app.signed_in("dba", Role::Operator).await;
    let token = app.token_for("ops", Role::Operator).await;
    let hook = Receiver::start(0).await;
    add_webhook(&admin, "pager", &hook.url, "json").await;
    set_rule(&admin, "pairs", "idle_in_transaction", "1", "0").await;
    let events = |id: &Value| -> Vec<String> {
        hook.bodies()
            .iter()
            .filter(|b| b["alert_id"] == *id)
            .map(|b| b["event"].as_str().unwrap().to_string())
            .collect()
    };
    let mut idle = sqlx::PgConnection::connect(&db.url).await.unwrap();

    // 1. Fired and announced, then silenced: its end is still announced.
    sqlx::raw_sql("BEGIN; SELECT 1").execute(&mut idle).await.unwrap();
    let first = alert_in(&app, &token, "pairs", "idle_in_transaction", "firing").await;
    hook.received("the first firing", |b| b["alert_id"] == first["id"])
        .await;
    let res = api_post(
        &app,
        &token,
        "/api/v1/databases/pairs/silences",
        json!({"duration": "1h", "reason": "looking into it"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let silence: Value = res.json().await.unwrap();
    sqlx::query("ROLLBACK").execute(&mut idle).await.unwrap();
    hook.received("the first resolved, despite the silence", |b| {
        b["alert_id"] == first["id"] && b["event"] == "resolved"
    })
    .await;
    assert_eq!(events(&first["id"]), ["firing", "resolved"]);

    // 2. Fired under the silence: nothing; the silence ends: the firing
    // goes out late, and its end follows.
    sqlx::raw_sql("BEGIN; SELECT 1").execute(&mut idle).await.unwrap();
    let second = alert_in(&app, &token, "pairs", "idle_in_transaction", "firing").await;
    assert!(second["silenced_until"].is_string(), "{second}");
    let res = operator
        .post(&format!("/alerts/silences/{}/end", silence["id"]), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    hook.received("the late firing once the silence ended", |b| {
        b["alert_id"] == second["id"] && b["event"] == "firing"
    })
    .await;
    sqlx::query("ROLLBACK").execute(&mut idle).await.unwrap();
    hook.received("the second resolved", |b| {
        b["alert_id"] == second["id"] && b["event"] == "resolved"
    })
    .await;
    assert_eq!(events(&second["id"]), ["firing", "resolved"]);
    assert!(
        app.audit()
            .await
            .iter()
            .any(|r| r.action == "alert.unsilence" && r.actor == "dba" && r.outcome == "success")
    );
}
