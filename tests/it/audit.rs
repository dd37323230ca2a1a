//! The audit log: one row per mutating action, readable and filterable,
//! and impossible to change.

use custodian::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{StoreChoice, TestApp, password_of};
use crate::on_both_stores;

/// Run one action and check it appended exactly one row with this action
/// and outcome.
macro_rules! one_row {
    ($app:expr, $action:expr, $outcome:expr, $body:expr) => {{
        let before = $app.audit().await.len();
        let result = $body;
        let rows = $app.audit().await;
        assert_eq!(rows.len(), before + 1, "{} wrote exactly one audit row", $action);
        let row = rows.last().unwrap();
        assert_eq!(
            (row.action.as_str(), row.outcome.as_str()),
            ($action, $outcome),
            "row: {row:?}"
        );
        result
    }};
}

async fn each_mutating_action_writes_exactly_one_row(store: StoreChoice) {
    let app = TestApp::spawn_on(store).await;
    app.create_user("root", Role::Admin).await;
    let mut admin = app.client();
    let res = one_row!(
        app,
        "login",
        "success",
        admin.login("root", &password_of("root")).await
    );
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    admin.refresh_csrf().await;

    let res = one_row!(
        app,
        "user.create",
        "success",
        admin
            .post(
                "/users",
                &[
                    ("name", "mia"),
                    ("password", "mia-password-1"),
                    ("role", "viewer")
                ]
            )
            .await
    );
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let row = app.audit().await.pop().unwrap();
    assert_eq!(
        (row.actor.as_str(), row.target.as_str(), row.via.as_str()),
        ("root", "user:mia", "web")
    );
    assert_eq!(row.client_addr, "127.0.0.1");
    assert!(!row.detail.contains("mia-password"), "no password in the log");

    // A refused action is one row too, with its outcome.
    let res = one_row!(
        app,
        "user.create",
        "failure",
        admin
            .post(
                "/users",
                &[
                    ("name", "mia"),
                    ("password", "mia-password-1"),
                    ("role", "viewer")
                ]
            )
            .await
    );
    assert_eq!(res.status(), StatusCode::CONFLICT);

    one_row!(
        app,
        "user.role",
        "success",
        admin
            .post("/users/mia/role", &[("role", "operator"), ("approver", "on")])
            .await
    );
    let mia = app.user("mia").await.unwrap();
    assert_eq!((mia.role, mia.can_approve), (Role::Operator, true));
    one_row!(
        app,
        "user.disable",
        "success",
        admin.post("/users/mia/disable", &[]).await
    );
    one_row!(
        app,
        "user.enable",
        "success",
        admin.post("/users/mia/enable", &[]).await
    );
    one_row!(
        app,
        "user.password",
        "success",
        admin
            .post("/users/mia/password", &[("password", "mia-new-password")])
            .await
    );
    let res = app.client().login("mia", "mia-new-password").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "the reset password works");

    let res = one_row!(
        app,
        "token.create",
        "success",
        admin.post("/account/tokens", &[("name", "ci")]).await
    );
    assert_eq!(res.status(), StatusCode::OK);
    let root = app.user("root").await.unwrap();
    let token = custodian::service::tokens::list(&app.state.store, &root)
        .await
        .unwrap()[0]
        .id;
    one_row!(
        app,
        "token.revoke",
        "success",
        admin.post(&format!("/account/tokens/{token}/revoke"), &[]).await
    );

    one_row!(
        app,
        "account.password",
        "success",
        admin
            .post(
                "/account/password",
                &[
                    ("current", &password_of("root")),
                    ("password", "root-new-pass"),
                    ("confirm", "root-new-pass")
                ]
            )
            .await
    );
    // Reading pages writes nothing.
    let before = app.audit().await.len();
    for page in ["/", "/users", "/audit", "/account", "/databases", "/jobs"] {
        admin.get(page).await;
    }
    assert_eq!(app.audit().await.len(), before, "GET pages are not audited");

    let api = app.token_for("bot", Role::Admin).await;
    let http = reqwest::Client::new();
    let res = one_row!(
        app,
        "user.create",
        "success",
        http.post(app.url("/api/v1/users"))
            .bearer_auth(&api)
            .json(&serde_json::json!({"name": "nia", "password": "nia-password-1", "role": "viewer"}))
            .send()
            .await
            .unwrap()
    );
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(app.audit().await.pop().unwrap().via, "api");
    one_row!(
        app,
        "user.disable",
        "success",
        http.post(app.url("/api/v1/users/nia/disable"))
            .bearer_auth(&api)
            .send()
            .await
            .unwrap()
    );

    admin.refresh_csrf().await;
    one_row!(app, "logout", "success", admin.post("/logout", &[]).await);
}
on_both_stores!(each_mutating_action_writes_exactly_one_row);

async fn the_log_cannot_be_changed(store: StoreChoice) {
    let app = TestApp::spawn_on(store).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let before = app.audit().await;
    assert!(!before.is_empty());

    // No route changes it: other methods on the audit routes are refused.
    let api = app.token_for("bot", Role::Admin).await;
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
        reqwest::Method::DELETE,
    ] {
        let res = admin
            .http
            .request(method.clone(), app.url("/audit"))
            .header("x-csrf-token", &admin.csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} /audit");
        let res = reqwest::Client::new()
            .request(method.clone(), app.url("/api/v1/audit"))
            .bearer_auth(&api)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} /api/v1/audit"
        );
    }
    let after = app.audit().await;
    assert_eq!(
        before
            .iter()
            .map(|r| (r.id, r.action.clone(), r.outcome.clone()))
            .collect::<Vec<_>>(),
        after[..before.len()]
            .iter()
            .map(|r| (r.id, r.action.clone(), r.outcome.clone()))
            .collect::<Vec<_>>()
    );

    // And the store itself refuses, even to someone with SQL access.
    let pool = app.state.store.pool();
    let update = "UPDATE audit_log SET outcome = 'success'";
    let delete = "DELETE FROM audit_log";
    match pool {
        custodian::store::Pool::Sqlite(p) => {
            assert!(sqlx::query(update).execute(p).await.is_err());
            assert!(sqlx::query(delete).execute(p).await.is_err());
        }
        custodian::store::Pool::Postgres(p) => {
            assert!(sqlx::query(update).execute(p).await.is_err());
            assert!(sqlx::query(delete).execute(p).await.is_err());
            assert!(sqlx::query("TRUNCATE audit_log").execute(p).await.is_err());
        }
    }
    assert_eq!(app.audit().await.len(), after.len());
}
on_both_stores!(the_log_cannot_be_changed);

#[tokio::test]
async fn the_audit_page_filters_and_pages() {
    let app = TestApp::spawn().await;
    let operator = app.signed_in("olga", Role::Operator).await;
    // 120 failed sign-ins by a known user from the CLI's view: write rows directly.
    let pete = app.create_user("pete", Role::Viewer).await;
    let actor = custodian::service::Actor {
        user_id: Some(pete.id),
        name: "pete".into(),
        role: Some(Role::Viewer),
        via: custodian::service::Via::Web,
        client: "10.0.0.9".into(),
    };
    for i in 0..120 {
        let target = format!("thing-{i}");
        let event = custodian::service::audit::Event {
            action: custodian::domain::AuditAction::TokenCreate,
            target: &target,
            database: None,
            detail: "",
        };
        custodian::service::audit::record(
            &app.state.store,
            &actor,
            event,
            custodian::service::audit::Outcome::Success,
        )
        .await
        .unwrap();
    }

    let (status, html) = operator.text("/audit?user=pete").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        html.matches("<td data-label=\"Who\">pete ").count(),
        50,
        "one page of 50"
    );
    assert!(
        html.contains("thing-119") && !html.contains("thing-69<"),
        "newest first"
    );
    let older = html
        .split("href=\"")
        .find(|s| s.contains("before="))
        .expect("an Older link");
    let older = older[..older.find('"').unwrap()].replace("&#38;", "&");
    assert!(older.contains("user=pete"), "paging keeps the filter: {older}");

    let (_, page2) = operator.text(&older).await;
    assert_eq!(page2.matches("<td data-label=\"Who\">pete ").count(), 50);
    assert!(page2.contains("thing-69<") && page2.contains("thing-20<") && !page2.contains("thing-70<"));
    let newer = page2
        .split("href=\"")
        .find(|s| s.contains("after="))
        .expect("a Newer link");
    let newer = newer[..newer.find('"').unwrap()].replace("&#38;", "&");
    let (_, back) = operator.text(&newer).await;
    assert!(
        back.contains("thing-119") && back.contains("thing-70<"),
        "Newer returns to the first page"
    );
    assert!(!back.contains("after="), "no newer page than the newest");

    // Filters: action, and a date range that excludes everything.
    let (_, html) = operator.text("/audit?action=login").await;
    assert!(html.contains("olga") && !html.contains("thing-"));
    let (_, html) = operator.text("/audit?user=pete&to=2000-01-01").await;
    assert!(html.contains("No audit entries match."));
    let (status, _) = operator.text("/audit?from=yesterday").await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a bad date is a clear 422"
    );

    // The same through the API.
    let token = app.token_for("api-op", Role::Operator).await;
    let res = crate::helpers::api_get(&app, &token, "/api/v1/audit?user=pete").await;
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["entries"].as_array().unwrap().len(), 50);
    assert_eq!(body["entries"][0]["target"], "thing-119");
    assert!(
        body["entries"][0]["at"].as_str().unwrap().ends_with('Z'),
        "RFC 3339 times"
    );
    assert!(body["older_before"].is_i64());
}
