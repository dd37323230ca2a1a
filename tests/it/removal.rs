//! Removing a database forgets it: what the panel kept belongs to the
//! registration, not the name. Its backups stay listed as a removed
//! database's until an admin deletes them; a database registered later
//! under the same name starts clean.

use custodian::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{StoreChoice, TestApp, TestDb, api_get, api_post};

async fn api_delete(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .delete(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Where a backup's file is, from its `location` (a file:// URL).
fn file_of(_app: &TestApp, location: &str) -> std::path::PathBuf {
    url::Url::parse(location)
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .unwrap_or_else(|| panic!("{location:?} is not a file:// URL"))
}

async fn removal_story(store: StoreChoice) {
    let app = TestApp::spawn_on(store).await;
    let token = app.token_for("boss", Role::Admin).await;
    let old = TestDb::postgres().await;
    old.exec("CREATE TABLE orders (id int primary key); INSERT INTO orders VALUES (1), (2)")
        .await;
    app.register("pg", &old.url).await;
    app.checked(&token, "pg").await;

    // The old database's history: a good backup and a silence.
    let res = api_post(&app, &token, "/api/v1/databases/pg/backups", json!({})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let job = res.json::<serde_json::Value>().await.unwrap()["job_id"]
        .as_i64()
        .unwrap();
    assert_eq!(app.job_finished(&token, job).await["state"], "succeeded");
    let res = api_post(
        &app,
        &token,
        "/api/v1/databases/pg/silences",
        json!({"duration": "1h"}),
    )
    .await;
    assert!(res.status().is_success(), "{}", res.status());
    let backups: Vec<serde_json::Value> = api_get(&app, &token, "/api/v1/databases/pg/backups")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(backups.len(), 1);
    let file = file_of(&app, backups[0]["location"].as_str().unwrap());
    assert!(file.exists(), "{file:?}");

    let res = api_delete(&app, &token, "/api/v1/databases/pg").await;
    assert!(res.status().is_success(), "{}", res.status());

    // A different database under the same name starts clean.
    let new = TestDb::postgres().await;
    app.register("pg", &new.url).await;
    app.checked(&token, "pg").await;
    let backups: Vec<serde_json::Value> = api_get(&app, &token, "/api/v1/databases/pg/backups")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        backups.is_empty(),
        "the old database's backups are not the new one's: {backups:?}"
    );
    let alerts: serde_json::Value = api_get(&app, &token, "/api/v1/alerts")
        .await
        .json()
        .await
        .unwrap();
    let silences = alerts["silences"].as_array().unwrap();
    assert!(
        silences.iter().all(|s| s["database"] != "pg"),
        "the old database's silence is not the new one's: {silences:?}"
    );

    // The old backups are listed under removed databases, with when.
    let removed: Vec<serde_json::Value> = api_get(&app, &token, "/api/v1/removed-databases")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(removed[0]["name"], "pg");
    assert!(removed[0]["removed_at"].as_str().unwrap().starts_with("20"));
    assert_eq!(removed[0]["backups"].as_array().unwrap().len(), 1);
    assert_eq!(removed[0]["backups"][0]["state"], "good");
    let key = removed[0]["key"].as_str().unwrap().to_string();
    let admin = app.signed_in("root", Role::Admin).await;
    let (status, page) = admin.text("/backups").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Removed databases") && page.contains("removed"),
        "{page}"
    );

    // Deleting them asks for the name, and only admins may.
    let operator = app.token_for("op", Role::Operator).await;
    let path = format!("/api/v1/removed-databases/{key}/prune");
    let res = api_post(&app, &operator, &path, json!({"confirm": "pg"})).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = api_post(&app, &token, &path, json!({"confirm": "orders"})).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(file.exists(), "a refused prune deletes nothing");
    let res = api_post(&app, &token, &path, json!({"confirm": "pg"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["pruned"], 1);
    assert!(!file.exists(), "the backup file is deleted");
    let removed: Vec<serde_json::Value> = api_get(&app, &token, "/api/v1/removed-databases")
        .await
        .json()
        .await
        .unwrap();
    assert!(removed.is_empty(), "{removed:?}");
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|r| r.action == "backup.prune_removed" && r.outcome == "success"),
        "the prune is audited"
    );
}

#[tokio::test]
async fn a_removed_database_leaves_its_backups_listed_and_a_new_one_starts_clean_sqlite_store() {
    removal_story(StoreChoice::Sqlite).await;
}

#[tokio::test]
async fn a_removed_database_leaves_its_backups_listed_and_a_new_one_starts_clean_postgres_store() {
    removal_story(StoreChoice::Postgres).await;
}
