//! Active queries on real servers: sessions appear, cancel and terminate
//! really stop them, blocking chains are right, and fifty viewers cost the
//! database one sample.

use std::time::Duration;

use custodian::domain::Role;
use reqwest::StatusCode;
use sqlx::Connection;

use crate::helpers::{Client, TestApp, TestDb, api_get, eventually};
use crate::registry::add_in_browser;

/// A panel with the database registered and checked, an operator signed in,
/// and an operator API token.
async fn watched(db: &TestDb, name: &str) -> (TestApp, Client, String) {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    add_in_browser(&admin, name, &db.url).await;
    let token = app.token_for("bot", Role::Operator).await;
    let v = app.checked(&token, name).await;
    assert_eq!(v["reachable"], true, "{v}");
    let operator = app.signed_in("olive", Role::Operator).await;
    (app, operator, token)
}

/// Wait until the activity API lists `pid` running a query containing `text`.
async fn appears(app: &TestApp, token: &str, name: &str, pid: i64, text: &str) -> serde_json::Value {
    eventually(&format!("pid {pid} to show {text:?}"), || async {
        let v: serde_json::Value = api_get(app, token, &format!("/api/v1/databases/{name}/activity"))
            .await
            .json()
            .await
            .ok()?;
        v["sessions"]
            .as_array()?
            .iter()
            .find(|s| s["pid"] == pid && s["query"].as_str().is_some_and(|q| q.contains(text)))
            .cloned()
    })
    .await
}

/// A connection of its own running `sql` in the background; its pid and the
/// statement's result.
async fn run_pg(url: &str, sql: &'static str) -> (i64, tokio::task::JoinHandle<Result<(), sqlx::Error>>) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let task = tokio::spawn(async move { sqlx::query(sql).execute(&mut conn).await.map(|_| ()) });
    (i64::from(pid), task)
}

fn sqlstate(result: Result<(), sqlx::Error>) -> Option<String> {
    match result {
        Err(sqlx::Error::Database(e)) => e.code().map(|c| c.into_owned()),
        _ => None,
    }
}

#[tokio::test]
async fn a_running_query_is_shown_cancelled_and_terminated_from_the_page() {
    let pg = TestDb::postgres().await;
    let (app, operator, token) = watched(&pg, "shop").await;

    let (pid, sleeper) = run_pg(&pg.url, "SELECT pg_sleep(600)").await;
    appears(&app, &token, "shop", pid, "pg_sleep(600)").await;
    let (status, page) = operator.text("/databases/shop/activity").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("pg_sleep(600)") && page.contains(&format!("data-pid=\"{pid}\"")));

    let res = operator
        .post(
            &format!("/databases/shop/activity/{pid}/cancel"),
            &[("back", "state=active")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()["location"],
        "/databases/shop/activity?state=active",
        "back to the same view"
    );
    let result = tokio::time::timeout(Duration::from_secs(30), sleeper)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        sqlstate(result).as_deref(),
        Some("57014"),
        "the statement was cancelled"
    );
    let (_, page) = operator.text("/databases/shop/activity?state=active").await;
    assert!(
        page.contains(&format!("Cancelled the query on pid {pid}.")),
        "the result in plain words"
    );

    // Terminate asks on its own page, showing the query, for the pid typed;
    // a wrong one changes nothing.
    let (pid, sleeper) = run_pg(&pg.url, "SELECT pg_sleep(600)").await;
    appears(&app, &token, "shop", pid, "pg_sleep(600)").await;
    let (status, confirm) = operator
        .text(&format!(
            "/databases/shop/activity/{pid}/terminate?back=state%3Dactive"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("pg_sleep(600)") && confirm.contains(&format!("Type the pid, {pid}")));
    let res = operator
        .post(
            &format!("/databases/shop/activity/{pid}/terminate"),
            &[("confirm", "12345")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let again = res.text().await.unwrap();
    // The form again, with the error beside it and what was typed.
    assert!(
        again.contains(&format!("action=\"/databases/shop/activity/{pid}/terminate\""))
            && again.contains("name=\"confirm\" value=\"12345\""),
        "{again}"
    );
    assert!(again.contains(&format!("Type the pid ({pid})")));
    assert!(!sleeper.is_finished());
    let res = operator
        .post(
            &format!("/databases/shop/activity/{pid}/terminate"),
            &[("confirm", &pid.to_string())],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let result = tokio::time::timeout(Duration::from_secs(30), sleeper)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_err(), "the connection was closed under the query");
    let gone: i64 = {
        let mut c = sqlx::PgConnection::connect(&pg.url).await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = $1")
            .bind(pid as i32)
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    assert_eq!(gone, 0, "the session is gone");

    // Both attempts are audited with the query that was running.
    let rows: Vec<_> = app
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action.starts_with("session."))
        .collect();
    let seen: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.action.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(
        seen,
        [("session.cancel", "success"), ("session.terminate", "success")]
    );
    assert!(
        rows.iter()
            .all(|r| r.detail.contains("pg_sleep(600)") && r.database_name.as_deref() == Some("shop"))
    );
    assert_eq!(rows[0].actor, "olive");
}

#[tokio::test]
async fn the_api_cancels_and_terminates_too() {
    let pg = TestDb::postgres().await;
    let (app, _, token) = watched(&pg, "shop").await;
    let http = reqwest::Client::new();

    let (pid, sleeper) = run_pg(&pg.url, "SELECT pg_sleep(600)").await;
    appears(&app, &token, "shop", pid, "pg_sleep").await;
    let res = http
        .post(app.url(&format!("/api/v1/databases/shop/activity/{pid}/cancel")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["ok"], true, "{body}");
    let result = tokio::time::timeout(Duration::from_secs(30), sleeper)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sqlstate(result).as_deref(), Some("57014"));

    let (pid, sleeper) = run_pg(&pg.url, "SELECT pg_sleep(600)").await;
    let session = appears(&app, &token, "shop", pid, "pg_sleep").await;
    assert_eq!(session["state"], "active");
    assert!(session["query_age_s"].as_f64().is_some());
    let keys: Vec<&String> = session.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "application",
            "blocked_by",
            "client",
            "pid",
            "query",
            "query_age_s",
            "state",
            "user",
            "wait_event",
            "xact_age_s"
        ],
        "DESIGN.md's shape"
    );
    let res = http
        .post(app.url(&format!("/api/v1/databases/shop/activity/{pid}/terminate")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["ok"], true, "{body}");
    let result = tokio::time::timeout(Duration::from_secs(30), sleeper)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_err());

    // Cancelling an idle session says there was nothing to cancel.
    let mut idle = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    let idle_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut idle)
        .await
        .unwrap();
    let res = http
        .post(app.url(&format!("/api/v1/databases/shop/activity/{idle_pid}/cancel")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["ok"], false);
    assert!(
        body["message"].as_str().unwrap().contains("already finished"),
        "{body}"
    );
}

#[tokio::test]
async fn a_waiter_shows_blocked_by_the_holder_and_the_tree_starts_at_the_root() {
    let pg = TestDb::postgres().await;
    let mut setup = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE accounts (id int PRIMARY KEY, balance int); INSERT INTO accounts VALUES (1, 100)",
    )
    .execute(&mut setup)
    .await
    .unwrap();
    let (app, operator, token) = watched(&pg, "bank").await;

    let mut holder = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut holder)
        .await
        .unwrap();
    // Its last query takes 3 s: it then sits idle in its transaction.
    sqlx::raw_sql("BEGIN; UPDATE accounts SET balance = 0 WHERE id = 1; SELECT pg_sleep(3)")
        .execute(&mut holder)
        .await
        .unwrap();
    let (waiter_pid, waiter) = run_pg(&pg.url, "UPDATE accounts SET balance = 50 WHERE id = 1").await;

    let session = eventually("the waiter to show as blocked", || async {
        let v: serde_json::Value = api_get(&app, &token, "/api/v1/databases/bank/activity")
            .await
            .json()
            .await
            .ok()?;
        v["sessions"]
            .as_array()?
            .iter()
            .find(|s| s["pid"] == waiter_pid && s["blocked_by"].as_array().is_some_and(|b| !b.is_empty()))
            .cloned()
    })
    .await;
    assert_eq!(session["blocked_by"], serde_json::json!([holder_pid]));
    assert!(
        session["wait_event"].as_str().unwrap().starts_with("Lock"),
        "{session}"
    );

    let (_, page) = operator.text("/databases/bank/activity").await;
    let tree = &page[page.find("<ul class=\"tree\">").expect("a blocking tree")..];
    let root = tree
        .find(&format!("pid {holder_pid}</strong>"))
        .expect("the holder is in the tree");
    let child = tree
        .find(&format!("pid {waiter_pid}</strong>"))
        .expect("the waiter is in the tree");
    assert!(root < child, "the tree starts at the root blocker");
    assert!(tree[root..child].contains("root blocker"));
    // The root blocker's age is its transaction's.
    assert!(
        tree[root..child].contains("in its transaction for "),
        "{}",
        &tree[root..child]
    );
    // Its row says how long it has sat idle in its transaction: 3 s less
    // than the transaction, whose first 3 s were its last query.
    let row = &page[page
        .find(&format!("data-pid=\"{holder_pid}\""))
        .expect("the holder's row")..];
    let row = &row[..row.find("</tr>").unwrap()];
    let cell = |label: &str| -> String {
        let at = row.find(&format!("data-label=\"{label}\">")).unwrap() + label.len() + 14;
        row[at..at + row[at..].find("</td>").unwrap()].trim().to_string()
    };
    let (xact, age) = (cell("Xact"), cell("Age"));
    let idle = age
        .strip_prefix("idle ")
        .unwrap_or_else(|| panic!("the age cell says {age:?}"));
    let secs = |t: &str| t.strip_suffix('s').and_then(|n| n.parse::<i64>().ok());
    if let (Some(x), Some(i)) = (secs(&xact), secs(idle)) {
        assert!(x - i >= 2, "idle {i}s of a {x}s transaction");
    }
    assert!(tree[child..].contains("ShareLock"), "the lock mode waited for");

    // The root blocker runs no query: cancel would do nothing, and says so.
    let res = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/databases/bank/activity/{holder_pid}/cancel")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["ok"], false);
    assert!(
        body["message"].as_str().unwrap().contains("Terminate it"),
        "{body}"
    );
    assert!(
        tree[root..child].contains("Terminate…"),
        "the tree offers terminate for it"
    );

    // Ending the root blocker's transaction frees the waiter.
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn refusals_are_clear_and_audited() {
    let pg = TestDb::postgres().await;
    let (app, operator, token) = watched(&pg, "shop").await;
    let viewer = app.signed_in("vera", Role::Viewer).await;
    let (pid, sleeper) = run_pg(&pg.url, "SELECT pg_sleep(600)").await;
    appears(&app, &token, "shop", pid, "pg_sleep").await;

    let res = viewer
        .post(&format!("/databases/shop/activity/{pid}/cancel"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "viewers cannot cancel");
    let res = operator
        .post_raw(&format!("/databases/shop/activity/{pid}/cancel"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "no CSRF token");
    assert!(!sleeper.is_finished(), "nothing was cancelled");

    let res = operator.post("/databases/shop/activity/999999/cancel", &[]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("There is no session with pid 999999.")
    );
    let res = operator
        .post("/databases/shop/activity/not-a-pid/cancel", &[])
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // A session in another database on the same server.
    let (other_pid, other) = run_pg(&crate::helpers::pg_admin_url(), "SELECT pg_sleep(600)").await;
    let res = operator
        .post(&format!("/databases/shop/activity/{other_pid}/cancel"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.text().await.unwrap().contains("belongs to another database"));
    assert!(!other.is_finished());
    other.abort();

    // The panel's own connection.
    let own: i32 = {
        let mut c = sqlx::PgConnection::connect(&pg.url).await.unwrap();
        sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'custodian' AND datname = current_database() LIMIT 1",
        )
        .fetch_one(&mut c)
        .await
        .unwrap()
    };
    let res = operator
        .post(
            &format!("/databases/shop/activity/{own}/terminate"),
            &[("confirm", &own.to_string())],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("own connections"));
    // Not listed by default (nor counted), listed when asked for: marked,
    // with no buttons.
    let (_, page) = operator.text("/databases/shop/activity").await;
    assert!(!page.contains(&format!("data-pid=\"{own}\"")));
    assert!(
        page.contains("of the panel&#x27;s own") || page.contains("of the panel's own"),
        "counted apart"
    );
    let (_, page) = operator.text("/databases/shop/activity?own=true").await;
    let row = &page[page.find(&format!("data-pid=\"{own}\"")).unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains(">panel<") && !row.contains("Terminate"),
        "marked, and no buttons"
    );

    let outcomes: Vec<(String, String)> = app
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action.starts_with("session.") || r.action == "access.denied")
        .map(|r| (r.action, r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("access.denied".to_string(), "denied".to_string()),
            ("session.cancel".into(), "failure".into()),
            ("session.cancel".into(), "failure".into()),
            ("session.terminate".into(), "denied".into()),
        ],
        "every attempt is audited, but a malformed pid, refused before it names a session"
    );
    sleeper.abort();
}

#[tokio::test]
async fn fifty_viewers_cost_the_database_one_sample() {
    let pg = TestDb::postgres().await;
    let app = TestApp::spawn_with(crate::helpers::StoreChoice::Sqlite, |c| {
        c.activity_sample_ttl = Duration::from_secs(3600);
    })
    .await;
    let admin = app.signed_in("root", Role::Admin).await;
    add_in_browser(&admin, "shop", &pg.url).await;
    let token = app.token_for("bot", Role::Viewer).await;
    app.checked(&token, "shop").await;
    let member = app
        .state
        .fleet
        .get(&custodian::domain::DatabaseName::parse("shop").unwrap())
        .unwrap();
    let before = member.activity.samples_taken();
    let requests = (0..50).map(|_| {
        let url = app.url("/api/v1/databases/shop/activity");
        let token = token.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        })
    });
    for r in requests.collect::<Vec<_>>() {
        assert_eq!(r.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(
        member.activity.samples_taken() - before,
        1,
        "one catalog query for fifty viewers"
    );
}

#[tokio::test]
async fn mariadb_sleep_appears_and_kill_query_stops_it() {
    let my = TestDb::mariadb().await;
    let (app, operator, token) = watched(&my, "maria").await;
    let mut conn = sqlx::MySqlConnection::connect(&my.url).await.unwrap();
    let id: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let sleeper = tokio::spawn(async move {
        let r: Result<i64, _> = sqlx::query_scalar("SELECT SLEEP(600)").fetch_one(&mut conn).await;
        (r, conn)
    });
    let session = appears(&app, &token, "maria", id, "SLEEP(600)").await;
    assert_eq!(session["state"], "active");

    let res = operator
        .post(&format!("/databases/maria/activity/{id}/cancel"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (result, mut conn) = tokio::time::timeout(Duration::from_secs(30), sleeper)
        .await
        .unwrap()
        .unwrap();
    // KILL QUERY interrupts SLEEP(): it returns 1 over the text protocol,
    // or fails with ER_QUERY_INTERRUPTED (1317) as a prepared statement.
    match result {
        Ok(v) => assert_eq!(v, 1, "the sleep was interrupted"),
        Err(sqlx::Error::Database(e)) => assert!(e.message().contains("interrupted"), "{e}"),
        Err(e) => panic!("unexpected: {e}"),
    }
    let still: i64 = sqlx::query_scalar("SELECT 7").fetch_one(&mut conn).await.unwrap();
    assert_eq!(still, 7, "KILL QUERY leaves the connection open");
}

#[tokio::test]
async fn mariadb_lock_waits_show_who_blocks_whom() {
    let my = TestDb::mariadb().await;
    let mut setup = sqlx::MySqlConnection::connect(&my.url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE accounts (id INT PRIMARY KEY, balance INT) ENGINE=InnoDB")
        .execute(&mut setup)
        .await
        .unwrap();
    sqlx::raw_sql("INSERT INTO accounts VALUES (1, 100)")
        .execute(&mut setup)
        .await
        .unwrap();
    let (app, _, token) = watched(&my, "maria").await;

    let mut holder = sqlx::MySqlConnection::connect(&my.url).await.unwrap();
    let holder_id: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
        .fetch_one(&mut holder)
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::raw_sql("UPDATE accounts SET balance = 0 WHERE id = 1")
        .execute(&mut holder)
        .await
        .unwrap();
    let mut waiter = sqlx::MySqlConnection::connect(&my.url).await.unwrap();
    let waiter_id: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
        .fetch_one(&mut waiter)
        .await
        .unwrap();
    let blocked = tokio::spawn(async move {
        sqlx::query("UPDATE accounts SET balance = 50 WHERE id = 1")
            .execute(&mut waiter)
            .await
            .map(|_| ())
    });

    let session = eventually("the waiter to show as blocked", || async {
        let v: serde_json::Value = api_get(&app, &token, "/api/v1/databases/maria/activity")
            .await
            .json()
            .await
            .ok()?;
        v["sessions"]
            .as_array()?
            .iter()
            .find(|s| s["pid"] == waiter_id && s["blocked_by"].as_array().is_some_and(|b| !b.is_empty()))
            .cloned()
    })
    .await;
    assert_eq!(session["blocked_by"], serde_json::json!([holder_id]));
    let holder_row = {
        let v: serde_json::Value = api_get(&app, &token, "/api/v1/databases/maria/activity")
            .await
            .json()
            .await
            .unwrap();
        v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["pid"] == holder_id)
            .cloned()
            .unwrap()
    };
    assert_eq!(holder_row["state"], "idle in transaction");
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), blocked)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn top_statements_come_from_pg_stat_statements_and_reset() {
    // Without the extension: a note on how to enable it.
    let pg = TestDb::postgres().await;
    let (app, operator, _) = watched(&pg, "shop").await;
    let (status, page) = operator.text("/databases/shop/activity/top").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("pg_stat_statements is not installed") && page.contains("shared_preload_libraries")
    );
    drop(app);

    // With it, on a server of the test's own.
    let server = crate::helpers::ThrowawayPg::start(&["shared_preload_libraries=pg_stat_statements"]);
    let mut conn = sqlx::PgConnection::connect(&server.url).await.unwrap();
    sqlx::raw_sql("CREATE EXTENSION pg_stat_statements")
        .execute(&mut conn)
        .await
        .unwrap();
    for _ in 0..7 {
        sqlx::raw_sql("SELECT count(*) FROM generate_series(1, 20000) AS custodian_marker")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    add_in_browser(&admin, "own", &server.url).await;
    let token = app.token_for("bot", Role::Viewer).await;
    app.checked(&token, "own").await;

    let (status, page) = admin.text("/databases/own/activity/top?order=calls").await;
    assert_eq!(status, StatusCode::OK);
    let row = &page[page.find("custodian_marker").expect("the statement is listed")..];
    let calls = row
        .split("<td>")
        .nth(1)
        .and_then(|c| c.split('<').next())
        .unwrap();
    assert_eq!(calls, "7", "its calls are counted");

    let res = admin.post("/databases/own/activity/top/reset", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, page) = admin.text("/databases/own/activity/top").await;
    assert!(!page.contains("custodian_marker"), "reset clears the statistics");
    let row = app.audit().await.pop().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("statements.reset", "success")
    );
    drop(admin);
    drop(app);
}
