//! The demo database: a newcomer's first start shows real data.

use custodian::domain::Role;
use reqwest::StatusCode;
use sqlx::Connection;

use crate::helpers::{StoreChoice, TestApp, api_get};

#[tokio::test]
async fn first_start_registers_a_real_demo_database_once() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| c.demo = true).await;
    let token = app.token_for("bot", Role::Admin).await;
    let v = app.checked(&token, "demo").await;
    assert_eq!(v["reachable"], true, "{v}");
    assert_eq!(v["engine"], "sqlite");
    assert_eq!(v["rpo_s"], 86_400);

    // Real rows, and a migrations folder with applied and pending files.
    let file = app.data_dir.path().join("demo/demo.sqlite");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let (customers, orders): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders)")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(
        customers > 100 && orders > 1000,
        "{customers} customers, {orders} orders"
    );
    let applied: Vec<String> =
        sqlx::query_scalar("SELECT version FROM custodian_schema_history ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(applied, ["1", "2", "3"]);
    let dir = v["migrations_dir"].as_str().unwrap();
    assert!(std::path::Path::new(dir).is_absolute(), "{dir}");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 5, "three applied, two pending: {files:?}");
    // And the migrations area reads them the same way.
    let m: serde_json::Value = api_get(&app, &token, "/api/v1/databases/demo/migrations")
        .await
        .json()
        .await
        .unwrap();
    let versions = |key: &str| -> Vec<String> {
        m[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["version"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(versions("applied"), ["1", "2", "3"], "{m}");
    assert_eq!(versions("pending"), ["4", "5"], "{m}");
    assert_eq!(m["drift"].as_array().map(Vec::len), Some(0), "{m}");

    // Removed by its admin, it stays removed across restarts.
    let res = reqwest::Client::new()
        .delete(app.url("/api/v1/databases/demo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let config = custodian::config::Config {
        data_dir: app.data_dir.path().to_path_buf(),
        demo: true,
        ..Default::default()
    };
    let again = custodian::server::prepare(config).await.unwrap();
    assert!(
        again.state.registry.list().await.unwrap().is_empty(),
        "not recreated"
    );
}

#[tokio::test]
async fn no_demo_means_no_demo() {
    let app = TestApp::spawn().await; // tests start with demo = false, like --no-demo
    assert!(app.state.registry.list().await.unwrap().is_empty());
    assert!(!app.data_dir.path().join("demo").exists());
}
