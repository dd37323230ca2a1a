//! The registry: databases added in the browser on real PostgreSQL, MariaDB
//! and SQLite show the right status; edits and removals are audited; the API
//! manages the same registry.

use custodian::domain::Role;
use reqwest::StatusCode;
use sqlx::Connection;

use crate::helpers::{Client, TestApp, TestDb, api_get};

/// Add a database through the browser form, as an admin would.
pub async fn add_in_browser(admin: &Client, name: &str, url: &str) -> reqwest::Response {
    admin
        .post(
            "/databases",
            &[("name", name), ("url", url), ("rpo", "24h"), ("rto", "4h")],
        )
        .await
}

#[tokio::test]
async fn postgres_is_added_tested_and_its_status_is_right() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("bot", Role::Viewer).await;
    let pg = TestDb::postgres().await;
    let mut direct = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    sqlx::query("CREATE TABLE t AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 5000) g")
        .execute(&mut direct)
        .await
        .unwrap();

    let res = admin
        .http
        .post(app.url("/databases/test-connection"))
        .header("hx-request", "true")
        .form(&[
            ("csrf_token", admin.csrf.as_str()),
            ("name", "shop"),
            ("url", &pg.url),
        ])
        .send()
        .await
        .unwrap();
    let html = res.text().await.unwrap();
    assert!(html.contains("Connected: PostgreSQL 1"), "{html}");

    let res = add_in_browser(&admin, "shop", &pg.url).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/databases/shop");

    let v = app.checked(&token, "shop").await;
    assert_eq!(v["reachable"], true, "{v}");
    let version: String = sqlx::query_scalar("SELECT current_setting('server_version')")
        .fetch_one(&mut direct)
        .await
        .unwrap();
    let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut direct)
        .await
        .unwrap();
    let max: String = sqlx::query_scalar("SHOW max_connections")
        .fetch_one(&mut direct)
        .await
        .unwrap();
    assert_eq!(v["version"], version.as_str());
    // Autovacuum may add a visibility map between the two readings.
    let seen = v["size_bytes"].as_i64().unwrap();
    assert!(
        (seen - size).abs() <= 64 * 1024,
        "the size of this database: panel {seen}, direct {size}"
    );
    assert_eq!(v["max_connections"].to_string(), max);
    assert!(
        v["connections"].as_i64().unwrap() >= 1,
        "at least our direct connection"
    );
    assert_eq!(
        (v["rpo_s"].as_i64(), v["rto_s"].as_i64()),
        (Some(86_400), Some(14_400))
    );
    let schemas = v["schemas"].as_array().unwrap();
    assert!(
        schemas.iter().any(|s| s["name"] == "public" && s["tables"] == 1),
        "{schemas:?}"
    );
    assert!(
        v["databases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == pg.name.as_str())
    );

    // The panel's sessions are named on the server.
    let ours: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'custodian' AND datname = current_database()",
    )
    .fetch_one(&mut direct)
    .await
    .unwrap();
    assert!(
        ours >= 1,
        "the panel's pool connects as application_name custodian"
    );

    let (status, page) = admin.text("/databases/shop").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&version) && page.contains("reachable"),
        "the detail page shows it"
    );
    let (_, overview) = admin.text("/").await;
    assert!(overview.contains("shop") && overview.contains(&version));
}

#[tokio::test]
async fn mariadb_is_added_and_its_status_is_right() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("bot", Role::Viewer).await;
    let my = TestDb::mariadb().await;
    let mut direct = sqlx::MySqlConnection::connect(&my.url).await.unwrap();
    sqlx::query("CREATE TABLE t (id INT PRIMARY KEY, pad VARCHAR(200)) ENGINE=InnoDB")
        .execute(&mut direct)
        .await
        .unwrap();
    sqlx::query("INSERT INTO t SELECT seq, REPEAT('x', 150) FROM seq_1_to_2000")
        .execute(&mut direct)
        .await
        .unwrap();
    sqlx::query("ANALYZE TABLE t").execute(&mut direct).await.unwrap();

    let url = my.url.replacen("mysql://", "mariadb://", 1);
    let res = add_in_browser(&admin, "maria", &url).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let v = app.checked(&token, "maria").await;
    assert_eq!(v["reachable"], true, "{v}");
    assert_eq!(v["engine"], "mysql");
    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(&mut direct)
        .await
        .unwrap();
    let size: i64 = sqlx::query_scalar(
        "SELECT CAST(SUM(data_length + index_length) AS SIGNED) FROM information_schema.tables WHERE table_schema = DATABASE()",
    )
    .fetch_one(&mut direct)
    .await
    .unwrap();
    assert_eq!(v["version"], version.as_str());
    assert!(size > 0);
    assert_eq!(v["size_bytes"], size);
    assert!(v["max_connections"].as_i64().unwrap() > 0);
    assert!(v["uptime_s"].as_i64().unwrap() > 0);
    assert_eq!(v["schemas"][0]["tables"], 1);
}

#[tokio::test]
async fn a_sqlite_file_is_added_and_its_status_is_right() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("bot", Role::Viewer).await;
    let file = app.data_dir.path().join("app.db");
    let url = format!("sqlite://{}", file.display());
    let mut direct = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        .execute(&mut direct)
        .await
        .unwrap();
    let version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&mut direct)
        .await
        .unwrap();
    direct.close().await.unwrap();

    assert_eq!(
        add_in_browser(&admin, "notes", &url).await.status(),
        StatusCode::SEE_OTHER
    );
    let v = app.checked(&token, "notes").await;
    assert_eq!(v["reachable"], true, "{v}");
    assert_eq!(v["version"], version.as_str());
    assert_eq!(v["size_bytes"], std::fs::metadata(&file).unwrap().len());
    assert_eq!(
        v["capabilities"]["activity"], false,
        "SQLite has no sessions to show"
    );

    // A path that does not exist is reported, not created.
    let missing = app.data_dir.path().join("missing.db");
    add_in_browser(&admin, "missing", &format!("sqlite://{}", missing.display())).await;
    let v = app.checked(&token, "missing").await;
    assert_eq!(v["reachable"], false);
    assert!(!missing.exists(), "the panel never creates a managed database");
}

#[tokio::test]
async fn registry_changes_are_audited_and_editable() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("bot", Role::Viewer).await;
    let pg = TestDb::postgres().await;
    add_in_browser(&admin, "shop", &pg.url).await;
    app.checked(&token, "shop").await;

    let (status, form) = admin.text("/databases/shop/edit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("24h") && form.contains("4h"));
    let res = admin
        .post(
            "/databases/shop",
            &[("name", "shop"), ("url", ""), ("rpo", "12h"), ("rto", "")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let v = app.db_json(&token, "shop").await;
    assert_eq!((v["rpo_s"].as_i64(), v["rto_s"].as_i64()), (Some(43_200), None));
    assert_eq!(v["reachable"], true, "an empty URL keeps the stored one");

    let res = admin.post("/databases/shop/delete", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        api_get(&app, &token, "/api/v1/databases/shop").await.status(),
        StatusCode::NOT_FOUND
    );
    let (status, _) = admin.text("/databases/shop").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let rows: Vec<_> = app
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action.starts_with("db."))
        .collect();
    let summary: Vec<(&str, &str, Option<&str>)> = rows
        .iter()
        .map(|r| (r.action.as_str(), r.outcome.as_str(), r.database_name.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            ("db.create", "success", Some("shop")),
            ("db.update", "success", Some("shop")),
            ("db.delete", "success", Some("shop")),
        ]
    );
}

#[tokio::test]
async fn the_api_manages_the_registry_for_admins() {
    let app = TestApp::spawn().await;
    let bot = app.token_for("bot", Role::Admin).await;
    let http = reqwest::Client::new();
    let file = app.data_dir.path().join("api.db");
    sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", file.display()))
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let res = http
        .post(app.url("/api/v1/databases"))
        .bearer_auth(&bot)
        .json(&serde_json::json!({"name": "api-db", "url": format!("sqlite://{}", file.display()), "rpo_s": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v = app.checked(&bot, "api-db").await;
    assert_eq!(
        (v["reachable"].as_bool(), v["rpo_s"].as_i64()),
        (Some(true), Some(3600))
    );

    let res = http
        .put(app.url("/api/v1/databases/api-db"))
        .bearer_auth(&bot)
        .json(&serde_json::json!({"rto_s": 600}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (v["rpo_s"].as_i64(), v["rto_s"].as_i64()),
        (Some(3600), Some(600)),
        "fields left out are kept"
    );

    let list: serde_json::Value = api_get(&app, &bot, "/api/v1/databases")
        .await
        .json()
        .await
        .unwrap();
    let keys: Vec<&String> = list[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["engine", "error", "name", "reachable", "size_bytes", "version"],
        "DESIGN.md's shape"
    );

    let res = http
        .delete(app.url("/api/v1/databases/api-db"))
        .bearer_auth(&bot)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let list: serde_json::Value = api_get(&app, &bot, "/api/v1/databases")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, serde_json::json!([]));
}
