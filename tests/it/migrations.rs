//! Migrations status on real servers: pending files listed with their lint
//! findings, drift (an edited file, a vanished file) reported, and the
//! histories other tools keep (Flyway, Alembic) shown read-only.

use std::os::unix::fs::PermissionsExt;

use custodian::domain::Role;
use custodian::service::migrations::checksum;

use serde_json::json;

use crate::helpers::{TestApp, TestDb, api_get, api_post};

const V1: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint);\n";
const V2: &str = "ALTER TABLE orders ADD COLUMN note text;\n";
const V3: &str = "CREATE INDEX orders_customer_idx ON orders (customer_id);\n";
/// V3 with its lint error disabled in the file, as a team does for a small
/// table: a request may be made for it.
const V3_ALLOWED: &str = "-- squawk-ignore require-concurrent-index-creation\nCREATE INDEX orders_customer_idx ON orders (customer_id);\n";

fn history_row(version: &str, description: &str, sql: &str) -> String {
    format!(
        "INSERT INTO custodian_schema_history VALUES ('{version}', '{description}', '{}', 'alice', \
         '2026-11-01 10:00:00', 42, true);",
        checksum(sql)
    )
}

#[tokio::test]
async fn status_lists_pending_with_findings_drift_and_foreign_histories() {
    let app = TestApp::spawn().await;
    let pg = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("V1__create_orders.sql"), V1).unwrap();
    // V2 was applied as one text and the file now says another.
    std::fs::write(
        dir.path().join("V2__add_note.sql"),
        "ALTER TABLE orders ADD COLUMN note varchar(10);\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("V10__index_orders.sql"), V3).unwrap();
    std::fs::write(
        dir.path().join("U10__index_orders.sql"),
        "DROP INDEX CONCURRENTLY orders_customer_idx;\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.sql"), "-- not a migration\n").unwrap();
    pg.exec(&format!(
        "{}; {V1} {V2} {} {} {}",
        custodian::service::demo::HISTORY_TABLE_SQL,
        history_row("1", "create orders", V1),
        history_row("2", "add note", V2),
        // Applied, and its file is gone.
        history_row("3", "add totals", "ALTER TABLE orders ADD COLUMN total numeric;"),
    ))
    .await;
    // What Flyway and Alembic leave behind, in their own shapes.
    pg.exec(
        "CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50), \
           description varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL, \
           checksum int, installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(), \
           execution_time int NOT NULL, success boolean NOT NULL);
         INSERT INTO flyway_schema_history VALUES
           (1, '1', 'legacy baseline', 'SQL', 'V1__legacy_baseline.sql', 12345, 'flyway_ci', '2025-01-02 03:04:05', 77, true),
           (2, NULL, 'refresh views', 'SQL', 'R__refresh_views.sql', 999, 'flyway_ci', '2025-01-03 03:04:05', 5, true);
         CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
         INSERT INTO alembic_version VALUES ('ae1027a6acf');",
    )
    .await;
    app.register_with_migrations("shop", &pg.url, Some(dir.path()))
        .await;
    let token = app.token_for("viewer1", Role::Viewer).await;

    let res = api_get(&app, &token, "/api/v1/databases/shop/migrations").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();

    let applied: Vec<(String, String)> = body["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["tool"].as_str().unwrap().to_string(),
                a["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let pairs: Vec<(&str, &str)> = applied.iter().map(|(t, v)| (t.as_str(), v.as_str())).collect();
    assert_eq!(
        pairs,
        [
            ("custodian", "1"),
            ("custodian", "2"),
            ("custodian", "3"),
            ("flyway", "1"),
            ("alembic", "ae1027a6acf")
        ],
        "Custodian's history, then Flyway's versioned rows (not repeatables), then Alembic's revision"
    );
    let flyway = &body["applied"][3];
    assert_eq!(flyway["applied_by"], "flyway_ci");
    assert_eq!(flyway["execution_ms"], 77);
    assert_eq!(flyway["success"], true);
    assert_eq!(body["applied"][0]["applied_by"], "alice");

    let pending = body["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["version"], "10");
    assert_eq!(pending[0]["checksum"], checksum(V3));
    assert_eq!(pending[0]["has_down"], true);
    assert_eq!(pending[0]["sql"], V3);
    let finding = pending[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "require-concurrent-index-creation")
        .expect("the index is linted");
    assert_eq!(finding["severity"], "error");
    assert_eq!(
        finding["message"],
        "CREATE INDEX without CONCURRENTLY locks writes on orders"
    );

    let drift: Vec<(String, String)> = body["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_string(),
                d["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        drift.contains(&("checksum_changed".into(), "2".into())),
        "{drift:?}"
    );
    assert!(drift.contains(&("file_missing".into(), "3".into())), "{drift:?}");
    assert_eq!(drift.len(), 2, "{drift:?}");
    assert!(
        body["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().starts_with("notes.sql"))
    );

    let res = api_get(&app, &token, "/api/v1/databases/nosuch/migrations").await;
    assert_eq!(res.status(), 404);

    // The page a team lead opens: drift loud, the finding on the pending file.
    let viewer = app.signed_in("viewer2", Role::Viewer).await;
    let (status, html) = viewer.text("/databases/shop/migrations").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Drift: the database and the files disagree"),
        "{html}"
    );
    assert!(html.contains("version 2 was changed after it was applied"));
    assert!(html.contains("version 3 is applied but its file is gone"));
    assert!(html.contains("CREATE INDEX without CONCURRENTLY locks writes on orders"));
    assert!(
        html.contains(
            "<span class=\"line error\"><span class=\"ln\">1</span>CREATE INDEX orders_customer_idx"
        ),
        "the line is marked"
    );
    assert!(
        html.contains("flyway_ci") && html.contains("ae1027a6acf"),
        "foreign histories shown"
    );
}

#[tokio::test]
async fn a_database_without_history_or_directory_says_so() {
    let app = TestApp::spawn().await;
    let my = TestDb::mariadb().await;
    my.exec("CREATE TABLE schema_migrations (version varchar(255) PRIMARY KEY); INSERT INTO schema_migrations VALUES ('20240101120000');").await;
    app.register("shop", &my.url).await;
    let token = app.token_for("viewer1", Role::Viewer).await;
    let body: serde_json::Value = api_get(&app, &token, "/api/v1/databases/shop/migrations")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["applied"][0]["tool"], "rails", "{body}");
    assert_eq!(body["applied"][0]["version"], "20240101120000");
    assert_eq!(body["pending"].as_array().map(Vec::len), Some(0));
    assert!(
        body["problems"][0]
            .as_str()
            .unwrap()
            .contains("no migrations directory"),
        "{body}"
    );
}

/// A PostgreSQL database with one applied and two pending migrations.
async fn shop_with_pending(app: &TestApp) -> (TestDb, tempfile::TempDir) {
    let pg = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("V1__create_orders.sql"), V1).unwrap();
    std::fs::write(dir.path().join("V2__add_note.sql"), V2).unwrap();
    std::fs::write(dir.path().join("V3__index_orders.sql"), V3_ALLOWED).unwrap();
    pg.exec(&format!(
        "{}; {V1} {}",
        custodian::service::demo::HISTORY_TABLE_SQL,
        history_row("1", "create orders", V1)
    ))
    .await;
    app.register_with_migrations("shop", &pg.url, Some(dir.path()))
        .await;
    (pg, dir)
}

#[tokio::test]
async fn an_error_level_finding_blocks_a_request_until_it_is_disabled_in_the_file() {
    let app = TestApp::spawn().await;
    let (_pg, dir) = shop_with_pending(&app).await;
    std::fs::write(dir.path().join("V3__index_orders.sql"), V3).unwrap();
    let operator = app.token_for("oscar", Role::Operator).await;
    let requests = "/api/v1/databases/shop/migrations/requests";
    let res = api_post(&app, &operator, requests, json!({"versions": ["2", "3"]})).await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("version 3 has 1 lint error(s)") && body.contains("require-concurrent-index-creation"),
        "{body}"
    );

    // In the browser: the button is disabled and says why; a request sent
    // anyway gets the tab again with the reason beside the form.
    let web = app.signed_in("otto", Role::Operator).await;
    let (_, html) = web.text("/databases/shop/migrations").await;
    assert!(html.contains("lint errors, which block a request"), "{html}");
    let res = web
        .post("/databases/shop/migrations/requests", &[("versions", "2 3")])
        .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("field-error") && html.contains("version 3 has 1 lint error(s)"));
    assert!(
        html.contains("<h2>Pending (2)</h2>"),
        "the tab, not an error page"
    );

    // A request bound to such a file some other way (made before this
    // rule, or by a direct write) cannot be approved, by the API either.
    let files = json!([{"version": "3", "checksum": checksum(V3)}]).to_string();
    let sneaked = custodian::store::migrations::insert(
        app.state.store.pool(),
        "shop",
        custodian::store::migrations::RequestAction::Apply,
        &files,
        "oscar",
    )
    .await
    .unwrap();
    let lead = app.approver_token("lena", Role::Viewer).await;
    let res = api_post(
        &app,
        &lead,
        &format!("/api/v1/migration-requests/{sneaked}/approve"),
        json!({"comment": "looks fine"}),
    )
    .await;
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("lint error"));

    // Disabled in the file: the request goes through.
    std::fs::write(dir.path().join("V3__index_orders.sql"), V3_ALLOWED).unwrap();
    let res = api_post(&app, &operator, requests, json!({"versions": ["2", "3"]})).await;
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn a_request_needs_an_approval_from_someone_else_and_is_bound_to_its_files() {
    let app = TestApp::spawn().await;
    let (_pg, dir) = shop_with_pending(&app).await;
    // The operator who asks is an approver too: still not for their own request.
    let requester = app.approver_token("oscar", Role::Operator).await;
    let lead = app.approver_token("lena", Role::Viewer).await;
    let plain = app.token_for("victor", Role::Viewer).await;

    let res = api_post(
        &app,
        &plain,
        "/api/v1/databases/shop/migrations/requests",
        json!({"versions": ["2"]}),
    )
    .await;
    assert_eq!(res.status(), 403, "a viewer cannot request");
    let res = api_post(
        &app,
        &requester,
        "/api/v1/databases/shop/migrations/requests",
        json!({"versions": ["1"]}),
    )
    .await;
    assert_eq!(res.status(), 422, "an applied version is not pending");
    let res = api_post(
        &app,
        &requester,
        "/api/v1/databases/shop/migrations/requests",
        json!({"versions": ["3", "2"]}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();

    let approve = format!("/api/v1/migration-requests/{id}/approve");
    let res = api_post(&app, &requester, &approve, json!({"comment": "lgtm"})).await;
    assert_eq!(res.status(), 403, "never one's own request");
    let res = api_post(&app, &plain, &approve, json!({"comment": "lgtm"})).await;
    assert_eq!(res.status(), 403, "only approvers approve");

    let member = app
        .state
        .fleet
        .get(&custodian::domain::DatabaseName::parse("shop").unwrap())
        .unwrap();
    let ready = custodian::service::migrations::requests::ready(&app.state.store, &member, id).await;
    assert!(
        ready.unwrap_err().to_string().contains("0 of the 1 approvals"),
        "not approved yet"
    );

    let res = api_post(
        &app,
        &lead,
        &approve,
        json!({"comment": "index is concurrent? fine for now"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = api_post(&app, &lead, &approve, json!({})).await;
    assert_eq!(res.status(), 409, "one decision per approver");
    let request: serde_json::Value = api_get(&app, &plain, &format!("/api/v1/migration-requests/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(request["approvals"], 1, "{request}");
    assert_eq!(request["decisions"][0]["approver"], "lena");
    assert_eq!(
        request["decisions"][0]["comment"],
        "index is concurrent? fine for now"
    );
    let versions: Vec<&str> = request["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["2", "3"], "in version order");
    assert_eq!(request["files"][0]["checksum"], checksum(V2));
    let ready = custodian::service::migrations::requests::ready(&app.state.store, &member, id).await;
    assert!(ready.is_ok(), "{ready:?}");

    // The file changes after approval: the approval is void.
    std::fs::write(
        dir.path().join("V3__index_orders.sql"),
        "CREATE INDEX CONCURRENTLY i ON orders (customer_id);\n",
    )
    .unwrap();
    let ready = custodian::service::migrations::requests::ready(&app.state.store, &member, id).await;
    let err = ready.unwrap_err().to_string();
    assert!(
        err.contains("version 3 changed after the request was made"),
        "{err}"
    );
    let request: serde_json::Value = api_get(&app, &plain, &format!("/api/v1/migration-requests/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(request["state"], "void");
    let res = api_post(&app, &lead, &approve, json!({})).await;
    assert_eq!(res.status(), 409, "a void request cannot be approved again");

    // A rejection closes a request, with its comment.
    let res = api_post(
        &app,
        &requester,
        "/api/v1/databases/shop/migrations/requests",
        json!({"versions": ["3"]}),
    )
    .await;
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let res = api_post(
        &app,
        &lead,
        &format!("/api/v1/migration-requests/{id}/reject"),
        json!({"comment": "split it"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let request: serde_json::Value = api_get(&app, &plain, &format!("/api/v1/migration-requests/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(request["state"], "rejected");

    let audit: Vec<(String, String, String)> = app
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action.starts_with("migration."))
        .map(|r| (r.actor.clone(), r.action.clone(), r.outcome.clone()))
        .collect();
    let has = |who: &str, action: &str, outcome: &str| {
        audit
            .iter()
            .any(|(a, b, c)| a == who && b == action && c == outcome)
    };
    assert!(has("oscar", "migration.request", "success"), "{audit:?}");
    assert!(has("oscar", "migration.approve", "denied"), "{audit:?}");
    assert!(has("lena", "migration.approve", "success"), "{audit:?}");
    assert!(has("lena", "migration.reject", "success"), "{audit:?}");
}

/// Files V1 (applied) plus `pending` (version, sql), registered as "shop";
/// returns the database, the directory and an approved request's id for
/// every pending version, with the operator's and a viewer's tokens.
async fn approved(
    app: &TestApp,
    pending: &[(&str, &str)],
) -> (TestDb, tempfile::TempDir, i64, String, String) {
    let pg = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("V1__create_orders.sql"), V1).unwrap();
    for (version, sql) in pending {
        std::fs::write(dir.path().join(format!("V{version}__step.sql")), sql).unwrap();
    }
    pg.exec(&format!(
        "{}; {V1} {}",
        custodian::service::demo::HISTORY_TABLE_SQL,
        history_row("1", "create orders", V1)
    ))
    .await;
    app.register_with_migrations("shop", &pg.url, Some(dir.path()))
        .await;
    let operator = app.token_for("oscar", Role::Operator).await;
    let lead = app.approver_token("lena", Role::Viewer).await;
    let versions: Vec<&str> = pending.iter().map(|(v, _)| *v).collect();
    let res = api_post(
        app,
        &operator,
        "/api/v1/databases/shop/migrations/requests",
        json!({"versions": versions}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let res = api_post(
        app,
        &lead,
        &format!("/api/v1/migration-requests/{id}/approve"),
        json!({"comment": "ok"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    (pg, dir, id, operator, lead)
}

async fn pg_scalar(pg: &TestDb, sql: &str) -> Option<String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    let v: Option<Option<String>> = sqlx::query_scalar(sql).fetch_optional(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    v.flatten()
}

async fn apply(app: &TestApp, token: &str, id: i64) -> serde_json::Value {
    let res = api_post(
        app,
        token,
        &format!("/api/v1/migration-requests/{id}/apply"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 202, "{:?}", res.text().await);
    let job = res.json::<serde_json::Value>().await.unwrap()["job_id"]
        .as_i64()
        .unwrap();
    app.job_finished(token, job).await
}

#[tokio::test]
async fn an_approved_request_applies_and_writes_history() {
    let app = TestApp::spawn().await;
    let (pg, _dir, id, operator, lead) = approved(&app, &[("2", V2), ("3", V3_ALLOWED)]).await;
    let res = api_post(
        &app,
        &lead,
        &format!("/api/v1/migration-requests/{id}/apply"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 403, "approvers who are viewers do not apply");
    let job = apply(&app, &operator, id).await;
    assert_eq!(job["state"], "succeeded", "{job}");

    assert_eq!(
        pg_scalar(&pg, "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note'").await.as_deref(),
        Some("note"),
        "the schema changed"
    );
    assert!(pg_scalar(&pg, "SELECT indexrelid::regclass::text FROM pg_index WHERE indexrelid = 'orders_customer_idx'::regclass").await.is_some());
    let history = pg_scalar(
        &pg,
        "SELECT string_agg(version || ':' || applied_by || ':' || success::text || ':' || checksum, ',' ORDER BY version) FROM custodian_schema_history",
    )
    .await
    .unwrap();
    assert_eq!(
        history,
        format!(
            "1:alice:true:{},2:oscar:true:{},3:oscar:true:{}",
            checksum(V1),
            checksum(V2),
            checksum(V3_ALLOWED)
        )
    );
    let request: serde_json::Value = api_get(&app, &operator, &format!("/api/v1/migration-requests/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(request["state"], "done");
    let status: serde_json::Value = api_get(&app, &operator, "/api/v1/databases/shop/migrations")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["pending"].as_array().map(Vec::len), Some(0), "{status}");
    let res = api_post(
        &app,
        &operator,
        &format!("/api/v1/migration-requests/{id}/apply"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 409, "a request applies once");
    assert!(
        app.audit()
            .await
            .iter()
            .any(|r| r.action == "migration.apply" && r.actor == "oscar" && r.outcome == "success")
    );
}

#[tokio::test]
async fn a_migration_failing_halfway_leaves_nothing_and_stops() {
    let app = TestApp::spawn().await;
    let broken = "ALTER TABLE orders ADD COLUMN half text;\nSELECT no_such_column FROM orders;\n";
    let (pg, _dir, id, operator, _) = approved(&app, &[("2", broken), ("3", V3_ALLOWED)]).await;
    let job = apply(&app, &operator, id).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("version 2 failed"),
        "{job}"
    );
    assert!(
        job["error"].as_str().unwrap().contains("no_such_column"),
        "the database's error is shown: {job}"
    );
    assert_eq!(
        pg_scalar(&pg, "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'half'").await,
        None,
        "the first statement was rolled back"
    );
    assert_eq!(
        pg_scalar(
            &pg,
            "SELECT success::text FROM custodian_schema_history WHERE version = '2'"
        )
        .await
        .as_deref(),
        Some("false"),
        "the failure is recorded"
    );
    assert_eq!(
        pg_scalar(
            &pg,
            "SELECT version FROM custodian_schema_history WHERE version = '3'"
        )
        .await,
        None,
        "later migrations are not applied"
    );
    assert_eq!(
        pg_scalar(&pg, "SELECT to_regclass('orders_customer_idx')::text").await,
        None
    );
    let request: serde_json::Value = api_get(&app, &operator, &format!("/api/v1/migration-requests/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(request["state"], "failed");
    assert!(request["error"].as_str().unwrap().contains("version 2 failed"));
}

#[tokio::test]
async fn create_index_concurrently_applies_outside_a_transaction() {
    let app = TestApp::spawn().await;
    let concurrent =
        "SET lock_timeout = '5s';\nCREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);\n";
    let (pg, _dir, id, operator, _) = approved(&app, &[("2", concurrent)]).await;
    let job = apply(&app, &operator, id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        pg_scalar(
            &pg,
            "SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'orders_customer_idx'::regclass"
        )
        .await
        .as_deref(),
        Some("true"),
        "a valid index, built concurrently"
    );
    assert_eq!(
        pg_scalar(
            &pg,
            "SELECT success::text FROM custodian_schema_history WHERE version = '2'"
        )
        .await
        .as_deref(),
        Some("true")
    );
}

#[tokio::test]
async fn two_concurrent_applies_apply_each_migration_once() {
    let app = TestApp::spawn().await;
    // Not idempotent: a second run would fail on the existing table.
    let create = "CREATE TABLE refunds (id bigint PRIMARY KEY);\nSELECT pg_sleep(0.3);\n";
    let (pg, _dir, _id, _, _) = approved(&app, &[("2", create)]).await;
    let member = app
        .state
        .fleet
        .get(&custodian::domain::DatabaseName::parse("shop").unwrap())
        .unwrap();
    let run = custodian::engine::history::MigrationRun {
        version: "2".into(),
        description: "refunds".into(),
        checksum: checksum(create),
        sql: create.into(),
        applied_by: "panel-a".into(),
        applied_at: "now".into(),
        lock_timeout_ms: 5000,
        statement_timeout_ms: 60_000,
        rollback: false,
    };
    // Two panels (two pools) on the same database.
    let servers = custodian::engine::Servers::new(4);
    let other = custodian::engine::connect(&custodian::config::SecretUrl::new(&pg.url), &servers).unwrap();
    let db = member.db().unwrap();
    let (a, b) = tokio::join!(db.apply_migration(&run), other.apply_migration(&run));
    let done = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Ok(custodian::engine::history::RunOutcome::Done { .. })))
        .count();
    assert_eq!(done, 1, "exactly one applies: {a:?} {b:?}");
    for r in [&a, &b] {
        match r {
            Ok(_) => {}
            Err(e) => assert!(
                e.to_string().contains("another migration is being applied"),
                "{e}"
            ),
        }
    }
    assert_eq!(
        pg_scalar(
            &pg,
            "SELECT count(*)::text FROM custodian_schema_history WHERE version = '2' AND success"
        )
        .await
        .as_deref(),
        Some("1")
    );
    // Run again later: it is already applied and nothing runs.
    assert_eq!(
        other.apply_migration(&run).await.unwrap(),
        custodian::engine::history::RunOutcome::AlreadyApplied
    );
    other.close().await;
}

/// Request every pending version of `name`, approve it as someone else and
/// apply it; the finished job.
async fn request_approve_apply(app: &TestApp, name: &str) -> serde_json::Value {
    let operator = app.token_for("olga", Role::Operator).await;
    let lead = app.approver_token("lars", Role::Viewer).await;
    let status: serde_json::Value = api_get(app, &operator, &format!("/api/v1/databases/{name}/migrations"))
        .await
        .json()
        .await
        .unwrap();
    let versions: Vec<String> = status["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["version"].as_str().unwrap().to_string())
        .collect();
    assert!(!versions.is_empty(), "{status}");
    let res = api_post(
        app,
        &operator,
        &format!("/api/v1/databases/{name}/migrations/requests"),
        json!({"versions": versions}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let res = api_post(
        app,
        &lead,
        &format!("/api/v1/migration-requests/{id}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 200);
    apply(app, &operator, id).await
}

#[tokio::test]
async fn mariadb_applies_statement_by_statement_and_records_history() {
    let app = TestApp::spawn().await;
    let my = TestDb::mariadb().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("V1__orders.sql"),
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, note TEXT);\nINSERT INTO orders VALUES (1, 'a; b');\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("V2__total.sql"),
        "ALTER TABLE orders ADD COLUMN total DECIMAL(12,2) NULL;\n",
    )
    .unwrap();
    app.register_with_migrations("shop", &my.url, Some(dir.path()))
        .await;
    let job = request_approve_apply(&app, "shop").await;
    assert_eq!(job["state"], "succeeded", "{job}");
    use sqlx::Connection;
    let mut conn = sqlx::MySqlConnection::connect(&my.url).await.unwrap();
    let note: String = sqlx::query_scalar("SELECT note FROM orders WHERE id = 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(note, "a; b", "a ; inside a string is not a statement break");
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'orders' AND column_name = 'total'").fetch_one(&mut conn).await.unwrap();
    assert_eq!(total, 1);
    let history: Vec<(String, bool)> =
        sqlx::query_as("SELECT version, success FROM custodian_schema_history ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(history, [("1".to_string(), true), ("2".to_string(), true)]);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn the_demo_database_applies_its_pending_migrations() {
    let app = TestApp::spawn_with(crate::helpers::StoreChoice::Sqlite, |c| c.demo = true).await;
    let job = request_approve_apply(&app, "demo").await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let token = app.token_for("vera", Role::Viewer).await;
    let status: serde_json::Value = api_get(&app, &token, "/api/v1/databases/demo/migrations")
        .await
        .json()
        .await
        .unwrap();
    let applied: Vec<&str> = status["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["version"].as_str().unwrap())
        .collect();
    assert_eq!(applied, ["1", "2", "3", "4", "5"], "{status}");
    assert_eq!(status["pending"].as_array().map(Vec::len), Some(0));
    use sqlx::Connection;
    let file = app.data_dir.path().join("demo/demo.sqlite");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let phone: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pragma_table_info('customers') WHERE name = 'phone'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(phone, 1, "V4 added the phone column");
}

#[tokio::test]
async fn rollback_runs_the_down_file_after_approval_and_is_refused_without_one() {
    let app = TestApp::spawn().await;
    let (pg, dir, id, operator, lead) = approved(&app, &[("2", V2), ("3", V3_ALLOWED)]).await;
    std::fs::write(
        dir.path().join("U3__step.sql"),
        "DROP INDEX CONCURRENTLY orders_customer_idx;\n",
    )
    .unwrap();
    assert_eq!(apply(&app, &operator, id).await["state"], "succeeded");

    let rollback = "/api/v1/databases/shop/migrations/rollback";
    let res = api_post(&app, &operator, rollback, json!({"version": "3", "confirm": "2"})).await;
    assert_eq!(res.status(), 422, "the typed confirmation must match");
    let res = api_post(&app, &operator, rollback, json!({"version": "2", "confirm": "2"})).await;
    assert_eq!(res.status(), 422, "only the newest applied version");
    let res = api_post(&app, &operator, rollback, json!({"version": "3", "confirm": "3"})).await;
    assert_eq!(res.status(), 201);
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let res = api_post(
        &app,
        &operator,
        &format!("/api/v1/migration-requests/{id}/apply"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 409, "a rollback needs approval too");
    let res = api_post(
        &app,
        &lead,
        &format!("/api/v1/migration-requests/{id}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let job = apply(&app, &operator, id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        pg_scalar(&pg, "SELECT to_regclass('orders_customer_idx')::text").await,
        None,
        "the index is gone"
    );
    assert_eq!(
        pg_scalar(
            &pg,
            "SELECT version FROM custodian_schema_history WHERE version = '3'"
        )
        .await,
        None
    );
    let status: serde_json::Value = api_get(&app, &operator, "/api/v1/databases/shop/migrations")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["pending"][0]["version"], "3", "pending again: {status}");

    // Version 2 has no undo file: refused, saying why.
    let res = api_post(&app, &operator, rollback, json!({"version": "2", "confirm": "2"})).await;
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("version 2 has no undo file"),
        "{body}"
    );
    assert!(pg_scalar(&pg, "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note'").await.is_some(), "nothing undone");
}

#[tokio::test]
async fn migration_settings_set_approvals_and_timeouts_per_database() {
    // No retries: the first lock timeout ends the job (retries have a test
    // of their own).
    let app = TestApp::spawn_with(crate::helpers::StoreChoice::Sqlite, |c| c.lock_retries = 0).await;
    let (pg, _dir, id, operator, _) = approved(&app, &[("2", V2)]).await;
    let admin = app.token_for("ada", Role::Admin).await;
    let path = "/api/v1/databases/shop/migrations/settings";
    let current: serde_json::Value = api_get(&app, &operator, path).await.json().await.unwrap();
    assert_eq!(
        current,
        json!({"approvals_required": 1, "lock_timeout_ms": 5000, "statement_timeout_ms": 1800000})
    );
    // The page says them in units people read.
    let (_, page) = app
        .signed_in("reader", Role::Viewer)
        .await
        .text("/databases/shop/migrations")
        .await;
    assert!(
        page.contains("lock timeout 5 s · statement timeout 30 min"),
        "{page}"
    );
    let put = |body: serde_json::Value| {
        let (url, admin) = (app.url(path), admin.clone());
        async move {
            reqwest::Client::new()
                .put(url)
                .bearer_auth(admin)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let res =
        put(json!({"approvals_required": -1, "lock_timeout_ms": 5000, "statement_timeout_ms": 60000})).await;
    assert_eq!(res.status(), 422);
    // Two approvals now: the request approved once may not run.
    let res =
        put(json!({"approvals_required": 2, "lock_timeout_ms": 100, "statement_timeout_ms": 60000})).await;
    assert_eq!(res.status(), 200);
    let res = api_post(
        &app,
        &operator,
        &format!("/api/v1/migration-requests/{id}/apply"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("1 of the 2 approvals"));

    // With one approval again, the 100 ms lock timeout applies: a held lock
    // makes the migration give up instead of queueing every query.
    let res =
        put(json!({"approvals_required": 1, "lock_timeout_ms": 100, "statement_timeout_ms": 60000})).await;
    assert_eq!(res.status(), 200);
    use sqlx::Connection;
    let mut holder = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("LOCK TABLE orders IN ACCESS SHARE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let job = apply(&app, &operator, id).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(job["error"].as_str().unwrap().contains("lock timeout"), "{job}");
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    assert!(
        app.audit()
            .await
            .iter()
            .any(|r| r.action == "db.update" && r.actor == "ada" && r.detail.contains("lock_timeout_ms=100"))
    );
}

#[tokio::test]
async fn ci_submits_a_migration_file_through_the_api() {
    let app = TestApp::spawn().await;
    let (_pg, dir) = shop_with_pending(&app).await;
    let ci = app.token_for("ci", Role::Operator).await;
    let viewer = app.token_for("vic", Role::Viewer).await;
    let path = "/api/v1/databases/shop/migrations/files";
    let sql = "CREATE INDEX orders_note_idx ON orders (note);\n";

    let res = api_post(
        &app,
        &viewer,
        path,
        json!({"name": "V4__note_index.sql", "sql": sql}),
    )
    .await;
    assert_eq!(res.status(), 403);
    for bad in [
        "../V4__escape.sql",
        "V4__x.txt",
        "notes.sql",
        ".V4__hidden.sql",
        "V4__a/b.sql",
    ] {
        let res = api_post(&app, &ci, path, json!({"name": bad, "sql": sql})).await;
        assert_eq!(res.status(), 422, "{bad}");
    }
    assert!(!dir.path().parent().unwrap().join("V4__escape.sql").exists());

    let res = api_post(&app, &ci, path, json!({"name": "V4__note_index.sql", "sql": sql})).await;
    assert_eq!(res.status(), 201);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["checksum"], checksum(sql));
    assert_eq!(
        body["findings"][0]["rule"], "require-concurrent-index-creation",
        "{body}"
    );
    // The panel applies with the database's lock and statement timeouts:
    // the lint does not ask the file for its own.
    let rules: Vec<&str> = body["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert!(
        !rules.contains(&"require-lock-timeout") && !rules.contains(&"require-statement-timeout"),
        "{rules:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("V4__note_index.sql")).unwrap(),
        sql
    );
    // A retry of the same file is fine; a different file under that name or version is not.
    let res = api_post(&app, &ci, path, json!({"name": "V4__note_index.sql", "sql": sql})).await;
    assert_eq!(res.status(), 200);
    let res = api_post(
        &app,
        &ci,
        path,
        json!({"name": "V4__note_index.sql", "sql": "SELECT 1;"}),
    )
    .await;
    assert_eq!(res.status(), 409);
    let res = api_post(
        &app,
        &ci,
        path,
        json!({"name": "V4__other.sql", "sql": "SELECT 1;"}),
    )
    .await;
    assert_eq!(res.status(), 409);
    let status: serde_json::Value = api_get(&app, &ci, "/api/v1/databases/shop/migrations")
        .await
        .json()
        .await
        .unwrap();
    let pending: Vec<&str> = status["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["version"].as_str().unwrap())
        .collect();
    assert_eq!(pending, ["2", "3", "4"]);
    assert!(
        app.audit()
            .await
            .iter()
            .any(|r| r.action == "migration.submit" && r.actor == "ci" && r.outcome == "success")
    );
}

/// 16 CI jobs submit at once; (status, checksum in the answer) of each.
async fn submit_at_once(app: &TestApp, token: &str, files: Vec<(String, String)>) -> Vec<(u16, String)> {
    let mut writers = tokio::task::JoinSet::new();
    for (name, sql) in files {
        let url = app.url("/api/v1/databases/race/migrations/files");
        let token = token.to_string();
        writers.spawn(async move {
            let res = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&json!({"name": name, "sql": sql}))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            (status, body["checksum"].as_str().unwrap_or_default().to_string())
        });
    }
    writers.join_all().await
}

// Several worker threads, as the real server has: on one thread the
// handlers' file work could never interleave.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submissions_of_one_new_file_create_it_once() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("race.sqlite");
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    // A project's history, as a real migrations directory has one.
    for i in 0..300 {
        let name = format!("V{}__existing_{i}.sql", 1000 + i);
        std::fs::write(migrations.join(name), format!("SELECT {i};\n")).unwrap();
    }
    // A group-writable project directory (and, carelessly, world-writable).
    std::fs::set_permissions(&migrations, std::fs::Permissions::from_mode(0o777)).unwrap();
    app.register_with_migrations("race", &format!("sqlite://{}", db.display()), Some(&migrations))
        .await;
    let ci = app.token_for("ci", Role::Operator).await;

    // The same new name, different SQL from each writer: one wins.
    for round in 1..=8 {
        let name = format!("V{round}__race.sql");
        let files = (0..16)
            .map(|w| (name.clone(), format!("SELECT {round}{w:02};\n")))
            .collect();
        let answers = submit_at_once(&app, &ci, files).await;
        let created: Vec<&(u16, String)> = answers.iter().filter(|a| a.0 == 201).collect();
        assert_eq!(created.len(), 1, "round {round}: exactly one 201: {answers:?}");
        assert!(
            answers.iter().filter(|a| a.0 != 201).all(|a| a.0 == 409),
            "round {round}: the others are conflicts: {answers:?}"
        );
        let on_disk = std::fs::read_to_string(migrations.join(&name)).unwrap();
        assert_eq!(
            checksum(&on_disk),
            created[0].1,
            "round {round}: the winner's file survives"
        );
        let mode = std::fs::metadata(migrations.join(&name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o664, "the directory's mode, never world-writable");
    }

    // One new version under sixteen names: one wins too.
    for round in 1..=4 {
        let version = 100 + round;
        let files = (0..16)
            .map(|w| (format!("V{version}__writer_{w}.sql"), format!("SELECT {w};\n")))
            .collect();
        let answers = submit_at_once(&app, &ci, files).await;
        assert_eq!(
            answers.iter().filter(|a| a.0 == 201).count(),
            1,
            "version {version}: exactly one 201: {answers:?}"
        );
        assert!(answers.iter().all(|a| a.0 == 201 || a.0 == 409), "{answers:?}");
        let taken = std::fs::read_dir(&migrations)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with(&format!("V{version}__"))
            })
            .count();
        assert_eq!(taken, 1, "version {version}: one file on disk");
    }
    // Nothing half-written is left behind.
    let leftovers: Vec<String> = std::fs::read_dir(&migrations)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".sql"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn the_live_gate_names_the_session_in_the_way_and_a_blocked_one_needs_an_override() {
    let app = TestApp::spawn_with(crate::helpers::StoreChoice::Sqlite, |c| {
        c.gate_max_xact_age = std::time::Duration::from_secs(2);
    })
    .await;
    let (pg, _dir, id, operator, _) = approved(&app, &[("2", V2)]).await;
    let gate = format!("/api/v1/migration-requests/{id}/gate");
    let v: serde_json::Value = api_get(&app, &operator, &gate).await.json().await.unwrap();
    assert_eq!(v["verdict"], "go", "{v}");
    assert_eq!(v["statements"][0]["lock"], "ACCESS EXCLUSIVE", "{v}");
    assert_eq!(v["statements"][0]["table"], "public.orders", "{v}");
    assert_eq!(v["statements"][0]["migration"], "2", "{v}");
    assert_eq!(v["statements"][0]["line"], 1, "{v}");
    assert!(v["statements"][0]["table_bytes"].as_i64().is_some(), "{v}");

    // Someone updates a row and leaves the transaction open: the ALTER
    // would wait for them, and every query on orders behind the ALTER.
    let (mut other, pid) = holding_a_row_lock_on_orders(&pg).await;
    let v: serde_json::Value = api_get(&app, &operator, &gate).await.json().await.unwrap();
    assert_ne!(v["verdict"], "go", "{v}");
    let blockers = v["statements"][0]["blockers"].as_array().unwrap();
    assert!(blockers.iter().any(|b| b["pid"] == pid), "{v}");
    assert!(
        v["reasons"][0].as_str().unwrap().contains(&format!("pid {pid} ")),
        "the reason names the pid: {v}"
    );

    // Idle in its transaction past gate_max_xact_age: waiting will not end
    // it. Blocked, and apply refuses without an override.
    let v = crate::helpers::eventually("the gate to say blocked", || async {
        let v: serde_json::Value = api_get(&app, &operator, &gate).await.json().await.ok()?;
        (v["verdict"] == "blocked").then_some(v)
    })
    .await;
    assert!(
        v["reasons"][0]
            .as_str()
            .unwrap()
            .contains("idle in a transaction"),
        "{v}"
    );
    let apply_url = format!("/api/v1/migration-requests/{id}/apply");
    let res = api_post(&app, &operator, &apply_url, json!({})).await;
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("the live gate says blocked"));
    let (app_name_in_page, page) = {
        let web = app.signed_in("otto", Role::Operator).await;
        let (_, page) = web.text("/databases/shop/migrations").await;
        (page.contains("Live gate"), page)
    };
    assert!(app_name_in_page && page.contains("override_reason"), "{page}");

    // Overridden with a reason (audited); the blocker ends, the ALTER runs.
    let res = api_post(
        &app,
        &operator,
        &apply_url,
        json!({"override_reason": "the batch job is ours; ending it now"}),
    )
    .await;
    assert_eq!(res.status(), 202);
    sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
    let job = res.json::<serde_json::Value>().await.unwrap()["job_id"]
        .as_i64()
        .unwrap();
    assert_eq!(app.job_finished(&operator, job).await["state"], "succeeded");
    let audit = app.audit().await;
    assert!(
        audit.iter().any(|r| r.action == "migration.apply"
            && r.detail.contains("live gate overridden: the batch job is ours")),
        "the override is in the audit log"
    );
}

#[tokio::test]
async fn an_apply_that_keeps_losing_the_lock_retries_then_stops_cleanly_naming_the_blocker() {
    use sqlx::Connection;
    let app = TestApp::spawn_with(crate::helpers::StoreChoice::Sqlite, |c| {
        c.lock_retries = 2;
    })
    .await;
    let (pg, _dir, id, operator, _) = approved(&app, &[("2", V2)]).await;
    let admin = app.token_for("root", Role::Admin).await;
    let res = reqwest::Client::new()
        .put(app.url("/api/v1/databases/shop/migrations/settings"))
        .bearer_auth(&admin)
        .json(&json!({"approvals_required": 1, "lock_timeout_ms": 200, "statement_timeout_ms": 60000}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());

    let (mut other, pid) = holding_a_row_lock_on_orders(&pg).await;
    let res = api_post(
        &app,
        &operator,
        &format!("/api/v1/migration-requests/{id}/apply"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 202, "the gate says wait, not blocked");
    let job = res.json::<serde_json::Value>().await.unwrap()["job_id"]
        .as_i64()
        .unwrap();
    let done = app.job_finished(&operator, job).await;
    assert_eq!(done["state"], "failed", "{done}");
    let error = done["error"].as_str().unwrap();
    assert!(error.contains("gave up after 3 attempt(s)"), "{error}");
    assert!(
        error.contains(&format!("pid {pid} (postgres)")),
        "the blocker, named: {error}"
    );
    let log = done["log"].as_str().unwrap();
    assert_eq!(
        log.matches("timed out waiting for a lock").count(),
        2,
        "each retry in the log: {log}"
    );

    // Nothing half-applied: no column, no failed history row.
    let (columns, failed): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note'), \
                (SELECT count(*) FROM custodian_schema_history WHERE version = '2')",
    )
    .fetch_one(&mut sqlx::PgConnection::connect(&pg.url).await.unwrap())
    .await
    .unwrap();
    assert_eq!((columns, failed), (0, 0));
    sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
}

/// A session that updated a row of orders and left its transaction open,
/// and its pid: every lock stronger than ROW EXCLUSIVE waits for it.
async fn holding_a_row_lock_on_orders(pg: &TestDb) -> (sqlx::PgConnection, i64) {
    use sqlx::Connection;
    let mut other = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    sqlx::raw_sql("INSERT INTO orders VALUES (1, 1); BEGIN; UPDATE orders SET customer_id = 2 WHERE id = 1")
        .execute(&mut other)
        .await
        .unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut other)
        .await
        .unwrap();
    (other, pid.into())
}
