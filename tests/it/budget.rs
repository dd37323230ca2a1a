//! The panel never becomes the incident: however many databases live on one
//! server, it holds at most `max_connections_per_server` connections there,
//! and the server's applications can always connect.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use custodian::domain::Role;
use reqwest::StatusCode;
use sqlx::Connection;

use crate::helpers::{StoreChoice, TestApp, TestDb, ThrowawayPg, api_get, eventually};

/// Count the connections `sql` (a `SELECT count(*)`) finds every 50 ms
/// until stopped; the highest count seen.
fn watch_pg(
    mut conn: sqlx::PgConnection,
    sql: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<i64> {
    tokio::spawn(async move {
        let most = AtomicI64::new(0);
        while !stop.load(Ordering::Relaxed) {
            let n: i64 = sqlx::query_scalar(&sql).fetch_one(&mut conn).await.unwrap();
            most.fetch_max(n, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        most.load(Ordering::Relaxed)
    })
}

/// [`watch_pg`] on MariaDB.
fn watch_my(
    mut conn: sqlx::MySqlConnection,
    sql: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<i64> {
    tokio::spawn(async move {
        let most = AtomicI64::new(0);
        while !stop.load(Ordering::Relaxed) {
            let n: i64 = sqlx::query_scalar(&sql).fetch_one(&mut conn).await.unwrap();
            most.fetch_max(n, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        most.load(Ordering::Relaxed)
    })
}

#[tokio::test]
async fn sixty_databases_on_a_small_server_stay_within_the_connection_budget() {
    // A server with room for 30 clients (27 for applications).
    let server = ThrowawayPg::start(&["max_connections=30"]);
    let mut admin = sqlx::PgConnection::connect(&server.url).await.unwrap();
    let names: Vec<String> = (1..=60).map(|i| format!("app{i:02}")).collect();
    for n in &names {
        sqlx::query(&format!("CREATE DATABASE {n}"))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    // Something to sort and page on the maintenance page.
    let base = url::Url::parse(&server.url).unwrap();
    let url_of = |db: &str| {
        let mut u = base.clone();
        u.set_path(db);
        u.to_string()
    };
    let mut first = sqlx::PgConnection::connect(&url_of("app01")).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE orders (id int primary key); INSERT INTO orders SELECT generate_series(1, 100)",
    )
    .execute(&mut first)
    .await
    .unwrap();
    first.close().await.unwrap();

    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        c.poll_interval = Duration::from_secs(1);
        c.sample_interval = Duration::from_secs(1);
        c.activity_sample_ttl = Duration::from_millis(200);
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let most = watch_pg(
        admin,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'custodian'".into(),
        stop.clone(),
    );
    for n in &names {
        app.register(n, &url_of(n)).await;
    }
    let token = app.token_for("bot", Role::Operator).await;
    let viewer = app.signed_in("watcher", Role::Viewer).await;

    // Polling reaches every database.
    for n in &names {
        let v = app.checked(&token, n).await;
        assert_eq!(v["reachable"], true, "{n}: {v}");
        assert!(v["size_bytes"].as_i64().unwrap() > 0, "{n}: {v}");
        assert_eq!(v["server"], format!("127.0.0.1:{}", base.port().unwrap()));
        assert_eq!(v["panel_connection_limit"], 4);
    }
    // Pages and the API answer for all 60 while polling and sampling run,
    // with several viewers at once.
    let pages = ["activity", "maintenance", "monitoring", ""];
    for round in 0..2 {
        let mut asks = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let page = pages[(i + round) % pages.len()];
            let path = if page.is_empty() {
                format!("/databases/{n}")
            } else {
                format!("/databases/{n}/{page}")
            };
            // The viewer's cookies travel with every clone of its client.
            let http = viewer.http.clone();
            let url = format!("{}{path}", viewer.base);
            asks.push(tokio::spawn(async move {
                let r = http.get(url).send().await.unwrap();
                (path, r.status(), r.text().await.unwrap())
            }));
        }
        for ask in asks {
            let (path, status, body) = ask.await.unwrap();
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            assert!(!body.contains("too many clients"), "{path}");
        }
    }
    for n in &names {
        let r = api_get(&app, &token, &format!("/api/v1/databases/{n}/activity")).await;
        let status = r.status();
        assert_eq!(status, StatusCode::OK, "{n}: {}", r.text().await.unwrap());
    }
    let (_, maintenance) = viewer.text("/databases/app01/maintenance").await;
    assert!(maintenance.contains("orders"), "the tables list reads app01");
    // Every database gets sampled.
    for n in &names {
        eventually(&format!("a sample of {n}"), || async {
            let v: serde_json::Value =
                api_get(&app, &token, &format!("/api/v1/databases/{n}/samples?range=1h"))
                    .await
                    .json()
                    .await
                    .ok()?;
            (!v["points"].as_array()?.is_empty()).then_some(())
        })
        .await;
    }

    // The server's page tells how many connections the panel holds there.
    let (status, servers) = viewer.text("/servers").await;
    assert_eq!(status, StatusCode::OK);
    assert!(servers.contains(&format!("127.0.0.1:{}", base.port().unwrap())));
    assert!(servers.contains(" of 4"), "{servers}");
    let listed: serde_json::Value = api_get(&app, &token, "/api/v1/servers")
        .await
        .json()
        .await
        .unwrap();
    let ours = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["databases"].as_array().unwrap().len() == 60)
        .expect("one server with all sixty databases");
    assert_eq!(ours["limit"], 4);
    assert!(ours["panel_connections"].as_u64().unwrap() <= 4);
    let metrics = api_get(&app, &token, "/metrics").await.text().await.unwrap();
    let limit_line = metrics
        .lines()
        .find(|l| {
            l.starts_with("custodian_panel_connection_limit{")
                && l.contains(&format!(":{}\"", base.port().unwrap()))
        })
        .unwrap_or_else(|| panic!("the budget is in /metrics: {metrics}"));
    assert!(
        limit_line.ends_with(" 4") || limit_line.ends_with(" 4.0"),
        "{limit_line}"
    );

    // An application can still connect while the panel works.
    let mut client = sqlx::PgConnection::connect(&url_of("app30")).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut client).await.unwrap();
    client.close().await.unwrap();

    stop.store(true, Ordering::Relaxed);
    let most = most.await.unwrap();
    assert!(most >= 1, "the watcher saw the panel at work");
    assert!(
        most <= 4,
        "the panel held {most} connections to one server; its budget is 4"
    );

    // Idle connections close within seconds.
    let check = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&server.url)
        .await
        .unwrap();
    app.state.fleet.close().await;
    drop(app);
    eventually("the panel's connections to close", || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'custodian'")
                .fetch_one(&check)
                .await
                .ok()?;
        (n == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn idle_connections_are_closed_within_seconds() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        // The poller would keep them warm: check once, then leave it be.
        c.poll_interval = Duration::from_secs(3600);
        c.sample_interval = Duration::from_secs(3600);
    })
    .await;
    let pg = TestDb::postgres().await;
    app.register("pg", &pg.url).await;
    let token = app.token_for("bot", Role::Viewer).await;
    app.checked(&token, "pg").await;
    let r = api_get(&app, &token, "/api/v1/databases/pg/activity").await;
    assert_eq!(r.status(), StatusCode::OK);
    let conn = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&pg.url)
        .await
        .unwrap();
    let count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'custodian' AND datname = current_database()";
    let before: i64 = sqlx::query_scalar(count).fetch_one(&conn).await.unwrap();
    assert!(before >= 1, "the panel's connection is there after a read");
    eventually("the idle connection to close", || async {
        let n: i64 = sqlx::query_scalar(count).fetch_one(&conn).await.ok()?;
        (n == 0).then_some(())
    })
    .await;
    // The panel's own count follows (a closed slot is held a moment longer).
    eventually("the panel to count no connection", || async {
        (app.db_json(&token, "pg").await["panel_connections"] == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn mariadb_schemas_on_one_server_share_its_budget() {
    let dbs = [
        TestDb::mariadb().await,
        TestDb::mariadb().await,
        TestDb::mariadb().await,
        TestDb::mariadb().await,
        TestDb::mariadb().await,
        TestDb::mariadb().await,
    ];
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        c.poll_interval = Duration::from_secs(1);
        c.sample_interval = Duration::from_secs(1);
        c.max_connections_per_server = 2;
    })
    .await;
    let admin = sqlx::MySqlConnection::connect(&crate::helpers::mysql_admin_url())
        .await
        .unwrap();
    // The panel's connections to our schemas (the shared server has others').
    let list = dbs
        .iter()
        .map(|d| format!("'{}'", d.name))
        .collect::<Vec<_>>()
        .join(",");
    let sql =
        format!("SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.PROCESSLIST WHERE DB IN ({list})");
    let stop = Arc::new(AtomicBool::new(false));
    let most = watch_my(admin, sql, stop.clone());
    for (i, d) in dbs.iter().enumerate() {
        app.register(&format!("shop{i}"), &d.url).await;
    }
    let token = app.token_for("bot", Role::Viewer).await;
    for i in 0..dbs.len() {
        let v = app.checked(&token, &format!("shop{i}")).await;
        assert_eq!(v["reachable"], true, "{v}");
        let r = api_get(&app, &token, &format!("/api/v1/databases/shop{i}/activity")).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // A few rounds of polling and sampling.
    let first = app.db_json(&token, "shop5").await["checked_at"].clone();
    eventually("another round of checks", || async {
        let now = app.db_json(&token, "shop5").await["checked_at"].clone();
        (now != first).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let most = most.await.unwrap();
    assert!(most >= 1, "the watcher saw the panel at work");
    assert!(most <= 2, "the panel held {most} connections; its budget is 2");
}

#[tokio::test]
async fn a_backup_and_its_tools_count_in_the_budget() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        c.poll_interval = Duration::from_secs(1);
        c.sample_interval = Duration::from_secs(1);
        c.max_connections_per_server = 3;
    })
    .await;
    let pg = TestDb::postgres().await;
    // Enough rows that the dump takes a moment.
    pg.exec("CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 200000) g")
        .await;
    app.register("pg", &pg.url).await;
    let token = app.token_for("bot", Role::Operator).await;
    app.checked(&token, "pg").await;
    let admin = sqlx::PgConnection::connect(&crate::helpers::pg_admin_url())
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let most = watch_pg(
        admin,
        format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' \
             AND application_name IN ('custodian', 'pg_dump')",
            pg.name
        ),
        stop.clone(),
    );
    for _ in 0..2 {
        let res = crate::helpers::api_post(
            &app,
            &token,
            "/api/v1/databases/pg/backups",
            serde_json::json!({}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let job = res.json::<serde_json::Value>().await.unwrap()["job_id"]
            .as_i64()
            .unwrap();
        // Pages keep reading while the dump runs.
        for _ in 0..5 {
            let r = api_get(&app, &token, "/api/v1/databases/pg/activity").await;
            assert_eq!(r.status(), StatusCode::OK);
        }
        assert_eq!(app.job_finished(&token, job).await["state"], "succeeded");
    }
    stop.store(true, Ordering::Relaxed);
    let most = most.await.unwrap();
    assert!(most >= 2, "the watcher saw the dump's connections: {most}");
    assert!(
        most <= 3,
        "the panel and its tools held {most} connections; the budget is 3"
    );
}
