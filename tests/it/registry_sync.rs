//! Stories of the registry changing under a running panel: a database
//! added, edited or removed elsewhere (the CLI, another panel on the same
//! store) is what the next request sees, not what the next poll brings.

use custodian::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Binary, StoreChoice, TestApp, TestDb, api_get, eventually};
use crate::on_both_stores;

/// No poll in the tests' time: only a lookup can bring a change.
const NO_POLL: std::time::Duration = std::time::Duration::from_secs(3600);

#[tokio::test]
async fn a_database_added_with_the_cli_is_served_at_once_by_a_running_binary() {
    let bin = Binary::new();
    let token = bin.operator_token();
    let (mut child, base) = bin.serve();
    let http = reqwest::Client::new();
    eventually("the panel to answer", || async {
        let res = http.get(format!("{base}/healthz")).send().await.ok()?;
        res.status().is_success().then_some(())
    })
    .await;
    let get = |path: &str| http.get(format!("{base}{path}")).bearer_auth(&token).send();
    let res = get("/api/v1/databases/reports").await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let pg = TestDb::postgres().await;
    bin.cli(&["db", "add", "reports", "--url", &pg.url], "");
    // The default poll is 15 s away: the lookup itself finds it.
    let res = get("/api/v1/databases/reports").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "served at once after db add");
    let res = get("/api/v1/databases/reports/backups").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    bin.cli(&["db", "remove", "reports"], "");
    let res = get("/api/v1/databases/reports").await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "gone at once after db remove"
    );

    child.kill().unwrap();
    let _ = child.wait();
}

async fn a_database_added_on_one_panel_is_served_at_once_by_another(store: StoreChoice) {
    let key = "cd".repeat(32);
    let first = TestApp::spawn_with(store, |c| {
        c.secret_key = Some(key.clone().into());
        c.poll_interval = NO_POLL;
    })
    .await;
    let store_url = first.state.config.store_url.clone().unwrap_or_else(|| {
        custodian::config::SecretUrl::new(format!(
            "sqlite://{}",
            first.data_dir.path().join("custodian.db").display()
        ))
    });
    let second = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        c.secret_key = Some(key.clone().into());
        c.store_url = Some(store_url);
        c.poll_interval = NO_POLL;
    })
    .await;
    let admin = first.token_for("root", Role::Admin).await;
    let pg = TestDb::postgres().await;

    let res = api_get(&second, &admin, "/api/v1/databases/shared").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let res = reqwest::Client::new()
        .post(first.url("/api/v1/databases"))
        .bearer_auth(&admin)
        .json(&json!({"name": "shared", "url": pg.url}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = api_get(&second, &admin, "/api/v1/databases/shared").await;
    assert_eq!(res.status(), StatusCode::OK, "the other panel serves it at once");

    let res = reqwest::Client::new()
        .put(first.url("/api/v1/databases/shared"))
        .bearer_auth(&admin)
        .json(&json!({"rpo_s": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: serde_json::Value = api_get(&second, &admin, "/api/v1/databases/shared")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["rpo_s"], 3600, "the edit is seen at once: {v}");

    // A stream of names that are not there answers 404 each time.
    for _ in 0..20 {
        let res = api_get(&second, &admin, "/api/v1/databases/nosuch").await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }

    let res = reqwest::Client::new()
        .delete(first.url("/api/v1/databases/shared"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = api_get(&second, &admin, "/api/v1/databases/shared").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "the removal is seen at once");
    drop(second);
}

on_both_stores!(a_database_added_on_one_panel_is_served_at_once_by_another);

#[tokio::test]
async fn the_migrations_page_title_is_plain_text_for_an_admin() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let sqlite = format!("sqlite://{}", app.data_dir.path().join("shop.db").display());
    app.register("shop", &sqlite).await;
    let (status, html) = admin.text("/databases/shop/migrations").await;
    assert_eq!(status, StatusCode::OK);
    let start = html.find("<title>").unwrap() + "<title>".len();
    let end = html.find("</title>").unwrap();
    let title = &html[start..end];
    assert_eq!(title, "Migrations · shop · Custodian");
    assert!(
        html.contains("action=\"/databases/shop/migrations/settings\""),
        "the admin still gets the settings form"
    );
}

#[tokio::test]
async fn a_store_failure_reading_a_migration_request_is_not_a_404() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let sqlite = format!("sqlite://{}", app.data_dir.path().join("shop.db").display());
    app.register("shop", &sqlite).await;
    let decide = "/databases/shop/migrations/requests/1/decide";
    let res = admin.post(decide, &[("decision", "approve")]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "a real miss");

    // The store loses the table the requests live in.
    app.store_exec("ALTER TABLE migration_requests RENAME TO migration_requests_gone")
        .await;
    let res = admin.post(decide, &[("decision", "approve")]).await;
    assert_eq!(
        res.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "a store that cannot answer is not a missing request"
    );
}
