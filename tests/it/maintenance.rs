//! Maintenance on real servers: health figures, VACUUM / ANALYZE / REINDEX
//! as jobs that change what the catalog says, cancel, hostile names, and
//! jobs interrupted by a dying panel.

use custodian::domain::Role;
use reqwest::StatusCode;
use sqlx::{Connection, PgConnection};

use crate::helpers::{Client, StoreChoice, TestApp, TestDb, api_get, eventually, served_get, served_post};
use crate::on_both_stores;
use crate::registry::add_in_browser;

/// A panel watching `db` as `name`, an operator signed in, an operator token.
async fn watched(db_url: &str, name: &str) -> (TestApp, Client, String) {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    add_in_browser(&admin, name, db_url).await;
    let token = app.token_for("bot", Role::Operator).await;
    let v = app.checked(&token, name).await;
    assert_eq!(v["reachable"], true, "{v}");
    let operator = app.signed_in("otto", Role::Operator).await;
    (app, operator, token)
}

/// The job id a maintenance form's redirect points at.
fn job_of(res: &reqwest::Response) -> i64 {
    let location = res.headers()["location"].to_str().unwrap();
    location.strip_prefix("/jobs/").unwrap().parse().unwrap()
}

async fn stat(conn: &mut PgConnection, table: &str) -> (i64, Option<f64>, Option<f64>) {
    sqlx::query_as(
        "SELECT n_dead_tup, extract(epoch FROM last_vacuum)::float8, extract(epoch FROM last_analyze)::float8 \
         FROM pg_stat_user_tables WHERE relname = $1",
    )
    .bind(table)
    .fetch_one(conn)
    .await
    .unwrap()
}

async fn oid(conn: &mut PgConnection, relation: &str) -> i64 {
    sqlx::query_scalar("SELECT $1::regclass::oid::int8")
        .bind(relation)
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn vacuum_analyze_from_the_page_clears_dead_tuples_and_sets_last_vacuum() {
    let pg = TestDb::postgres().await;
    let mut direct = PgConnection::connect(&pg.url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE orders (id int PRIMARY KEY, note text); \
         INSERT INTO orders SELECT g, repeat('x', 50) FROM generate_series(1, 20000) g; \
         DELETE FROM orders WHERE id > 5000; \
         ALTER TABLE orders SET (autovacuum_enabled = false)",
    )
    .execute(&mut direct)
    .await
    .unwrap();
    let (app, operator, token) = watched(&pg.url, "shop").await;

    // The dead tuples show, with the flag, once the statistics arrive.
    let page = eventually("dead tuples on the page", || async {
        let (_, page) = operator.text("/databases/shop/maintenance?sort=dead").await;
        page.contains("15000").then_some(page)
    })
    .await;
    assert!(page.contains("needs vacuum"), "flagged past its threshold");
    assert!(page.contains("never analyzed"));
    assert!(
        page.contains(
            "title=\"autovacuum_enabled = false on this table: only manual VACUUM cleans it\">autovacuum off<"
        ),
        "the table's own autovacuum_enabled = false is flagged"
    );
    let (dead, last_vacuum, _) = stat(&mut direct, "orders").await;
    assert_eq!((dead, last_vacuum), (15000, None));

    let table = oid(&mut direct, "orders").await;
    let res = operator
        .post(
            "/databases/shop/maintenance",
            &[("action", "vacuum_analyze"), ("tables", &format!("oid:{table}"))],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let id = job_of(&res);
    let (status, job_page) = operator.text(&format!("/jobs/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(job_page.contains("public.orders"));
    let job = app.job_finished(&token, id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["progress"], 1.0);

    let (dead, last_vacuum, last_analyze) = eventually("the statistics to show the vacuum", || async {
        let mut c = PgConnection::connect(&pg.url).await.ok()?;
        let s = stat(&mut c, "orders").await;
        s.1.is_some().then_some(s)
    })
    .await;
    assert_eq!(dead, 0, "dead tuples are gone");
    assert!(
        last_vacuum.is_some() && last_analyze.is_some(),
        "VACUUM ANALYZE set both"
    );
    let (_, page) = operator.text("/databases/shop/maintenance").await;
    assert!(!page.contains("needs vacuum"), "the page's figures refreshed");

    let (_, log_page) = operator.text(&format!("/jobs/{id}")).await;
    assert!(
        log_page.contains("done: VACUUM ANALYZE public.orders: 15000 dead tuples removed"),
        "the log says what happened: {log_page}"
    );
    // The server's own words (VERBOSE), and the sizes around the statement.
    assert!(log_page.contains("tuples: 15000 removed"), "{log_page}");
    assert!(
        log_page.contains("public.orders: ") && log_page.contains(" → "),
        "{log_page}"
    );
    let rows: Vec<_> = app
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action.starts_with("job."))
        .collect();
    let seen: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.action.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(seen, [("job.start", "success"), ("job.end", "success")]);
    assert!(rows[0].detail.contains("vacuum_analyze public.orders"));
}

#[tokio::test]
async fn analyze_reindex_and_index_findings() {
    let pg = TestDb::postgres().await;
    let mut direct = PgConnection::connect(&pg.url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE items (id int PRIMARY KEY, a int, b int, dup int); \
         INSERT INTO items SELECT g, g % 100, g % 7, g % 3 FROM generate_series(1, 3000) g; \
         CREATE INDEX items_a ON items (a); \
         CREATE INDEX items_a_b ON items (a, b);",
    )
    .execute(&mut direct)
    .await
    .unwrap();
    // A failed CONCURRENTLY build leaves an invalid index behind.
    let failed = sqlx::raw_sql("CREATE UNIQUE INDEX CONCURRENTLY items_dup ON items (dup)")
        .execute(&mut direct)
        .await;
    assert!(failed.is_err());
    let (app, operator, token) = watched(&pg.url, "shop").await;

    let http = reqwest::Client::new();
    let start = |body: serde_json::Value| {
        let http = http.clone();
        let url = app.url("/api/v1/databases/shop/maintenance");
        let token = token.clone();
        async move {
            let res = http
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::ACCEPTED);
            res.json::<serde_json::Value>().await.unwrap()["job_id"]
                .as_i64()
                .unwrap()
        }
    };

    let id = start(serde_json::json!({"action": "analyze", "tables": ["public.items"]})).await;
    assert_eq!(app.job_finished(&token, id).await["state"], "succeeded");
    let last_analyze = eventually("last_analyze", || async {
        let mut c = PgConnection::connect(&pg.url).await.ok()?;
        stat(&mut c, "items").await.2
    })
    .await;
    assert!(last_analyze > 0.0);

    let before = oid(&mut direct, "items_a_b").await;
    let id = start(serde_json::json!({"action": "reindex", "index": "public.items_a_b"})).await;
    let job = app.job_finished(&token, id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let after = oid(&mut direct, "items_a_b").await;
    assert_ne!(before, after, "REINDEX CONCURRENTLY built a new index");

    let (_, page) = operator.text("/databases/shop/maintenance?tab=indexes").await;
    let row = |name: &str| {
        let at = page
            .find(&format!(">public.{name}<"))
            .unwrap_or_else(|| panic!("{name} listed"));
        page[at..at + page[at..].find("</tr>").unwrap()].to_string()
    };
    assert!(
        row("items_dup").contains(">invalid<"),
        "the failed build is invalid"
    );
    let a = row("items_a");
    assert!(
        a.contains(">duplicate<") && a.contains("covered by items_a_b"),
        "{a}"
    );
    assert!(a.contains(">unused<"));
    let pkey = row("items_pkey");
    assert!(!pkey.contains(">unused<"), "a primary key is never 'unused'");
}

#[tokio::test]
async fn a_blocked_vacuum_full_is_cancelled_from_the_job_page() {
    let pg = TestDb::postgres().await;
    let mut direct = PgConnection::connect(&pg.url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE big AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 50000) g",
    )
    .execute(&mut direct)
    .await
    .unwrap();
    let (app, operator, token) = watched(&pg.url, "shop").await;
    // Someone reads the table in an open transaction: VACUUM FULL waits for
    // its ACCESS EXCLUSIVE lock, as long as that transaction lasts.
    let mut reader = PgConnection::connect(&pg.url).await.unwrap();
    sqlx::raw_sql("BEGIN; SELECT count(*) FROM big")
        .execute(&mut reader)
        .await
        .unwrap();

    let table = oid(&mut direct, "big").await;
    let res = operator
        .post(
            "/databases/shop/maintenance",
            &[
                ("action", "vacuum_full"),
                ("tables", &format!("oid:{table}")),
                ("confirm", "wrong"),
            ],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "VACUUM FULL wants the name typed"
    );
    let html = res.text().await.unwrap();
    assert!(html.contains("locks the table against reads and writes"));
    // The form comes back as it was sent: the table still selected, the
    // action still chosen, the typed text still there.
    assert!(
        html.contains(&format!(
            "value=\"oid:{table}\" aria-label=\"Select public.big\" checked"
        )),
        "the selection is kept"
    );
    assert!(
        html.contains("<option value=\"vacuum_full\" selected>"),
        "the action is kept"
    );
    assert!(
        html.contains("name=\"confirm\" value=\"wrong\""),
        "the typed text is kept"
    );
    let res = operator
        .post(
            "/databases/shop/maintenance",
            &[
                ("action", "vacuum_full"),
                ("tables", &format!("oid:{table}")),
                ("confirm", "big"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let id = job_of(&res);
    eventually("VACUUM FULL to be waiting in the database", || async {
        let mut c = PgConnection::connect(&pg.url).await.ok()?;
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'VACUUM (FULL%' AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut c)
        .await
        .ok()?;
        (n == 1).then_some(())
    })
    .await;
    // The job says what it waits on, and behind whom.
    let reader_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    let page = eventually("the job page to name the blocker", || async {
        let (_, page) = operator.text(&format!("/jobs/{id}")).await;
        (page.contains(&format!("for a lock held by pid {reader_pid}"))
            && page.contains("VACUUM FULL public.big: waiting"))
        .then_some(page)
    })
    .await;
    assert!(page.contains("<pre class=\"log\">"), "{page}");

    let res = operator.post(&format!("/jobs/{id}/cancel"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let job = app.job_finished(&token, id).await;
    assert_eq!(job["state"], "cancelled", "{job}");
    eventually("the VACUUM FULL backend to be gone", || async {
        let mut c = PgConnection::connect(&pg.url).await.ok()?;
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'VACUUM (FULL%'")
                .fetch_one(&mut c)
                .await
                .ok()?;
        (n == 0).then_some(())
    })
    .await;
    sqlx::raw_sql("ROLLBACK").execute(&mut reader).await.unwrap();
    let res = operator.post(&format!("/jobs/{id}/cancel"), &[]).await;
    assert_eq!(
        res.status(),
        StatusCode::CONFLICT,
        "an ended job cannot be cancelled again"
    );
    let cancels: Vec<_> = app
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "job.cancel")
        .collect();
    assert_eq!(cancels.len(), 2);
    assert_eq!(
        (cancels[0].outcome.as_str(), cancels[1].outcome.as_str()),
        ("success", "failure")
    );
}

#[tokio::test]
async fn hostile_table_names_vacuum_the_right_table_and_nothing_else() {
    let pg = TestDb::postgres().await;
    let mut direct = PgConnection::connect(&pg.url).await.unwrap();
    let names = [
        "x\"; DROP TABLE y; --",
        "Ünïcödé Tàble",
        "MixedCase",
        "semi;colon",
        "quote'd",
    ];
    sqlx::raw_sql("CREATE SCHEMA \"we\"\"ird\"; CREATE TABLE y (id int); CREATE TABLE \"Y\" (id int)")
        .execute(&mut direct)
        .await
        .unwrap();
    for name in names {
        let quoted = format!("\"we\"\"ird\".\"{}\"", name.replace('"', "\"\""));
        sqlx::raw_sql(&format!(
            "CREATE TABLE {quoted} (id int); INSERT INTO {quoted} VALUES (1)"
        ))
        .execute(&mut direct)
        .await
        .unwrap();
    }
    let (app, _, token) = watched(&pg.url, "shop").await;
    let tables: Vec<String> = names.iter().map(|n| format!("we\"ird.{n}")).collect();
    let res = reqwest::Client::new()
        .post(app.url("/api/v1/databases/shop/maintenance"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"action": "vacuum", "tables": tables}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let id = res.json::<serde_json::Value>().await.unwrap()["job_id"]
        .as_i64()
        .unwrap();
    let job = app.job_finished(&token, id).await;
    assert_eq!(job["state"], "succeeded", "{job}");

    let vacuumed: Vec<(String, String)> = eventually("the vacuums to show", || async {
        let mut c = PgConnection::connect(&pg.url).await.ok()?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT schemaname::text, relname::text FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL ORDER BY 2",
        )
        .fetch_all(&mut c)
        .await
        .ok()?;
        (rows.len() >= names.len()).then_some(rows)
    })
    .await;
    let mut expected: Vec<(String, String)> = names
        .iter()
        .map(|n| ("we\"ird".to_string(), n.to_string()))
        .collect();
    expected.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(vacuumed, expected, "exactly these tables, and not y or Y");
    let still: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename IN ('y', 'Y')")
        .fetch_one(&mut direct)
        .await
        .unwrap();
    assert_eq!(still, 2, "nothing was dropped");

    // A table that is not there is a clear error, and starts nothing.
    let res = reqwest::Client::new()
        .post(app.url("/api/v1/databases/shop/maintenance"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"action": "vacuum", "tables": ["public.nope"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("There is no table \"public.nope\""),
        "{body}"
    );
}

#[tokio::test]
async fn a_job_running_when_the_panel_dies_is_interrupted_at_the_next_start() {
    let pg = TestDb::postgres().await;
    let mut direct = PgConnection::connect(&pg.url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE t (id int)")
        .execute(&mut direct)
        .await
        .unwrap();
    // A reader's lock keeps the VACUUM FULL running.
    let mut reader = PgConnection::connect(&pg.url).await.unwrap();
    sqlx::raw_sql("BEGIN; SELECT * FROM t")
        .execute(&mut reader)
        .await
        .unwrap();

    let panel = crate::helpers::Binary::new();
    let token = panel.operator_token();
    panel.cli(&["db", "add", "shop", "--url", &pg.url], "");
    let (mut server, base) = panel.serve();
    let job_id = eventually("the job to start", || async {
        let body = serde_json::json!({"action": "vacuum_full", "tables": ["public.t"], "confirm": "t"});
        let (status, v) = served_post(&base, &token, "/api/v1/databases/shop/maintenance", body).await?;
        (status == StatusCode::ACCEPTED)
            .then(|| v["job_id"].as_i64())
            .flatten()
    })
    .await;
    let job_path = format!("/api/v1/jobs/{job_id}");
    let job = |base: String| {
        let (token, path) = (token.clone(), job_path.clone());
        async move { served_get(&base, &token, &path).await }
    };
    eventually("the job to be running", || async {
        (job(base.clone()).await?["state"] == "running").then_some(())
    })
    .await;

    // The panel dies without a word.
    server.kill().unwrap();
    server.wait().unwrap();
    let (mut server, base) = panel.serve();
    let ended = eventually("the job to show interrupted", || async {
        let v = job(base.clone()).await?;
        (v["state"] != "running").then_some(v)
    })
    .await;
    assert_eq!(ended["state"], "interrupted", "never succeeded: {ended}");
    assert!(ended["error"].as_str().unwrap().contains("panel stopped"));
    server.kill().unwrap();
    server.wait().unwrap();
    sqlx::raw_sql("ROLLBACK").execute(&mut reader).await.unwrap();
}

#[tokio::test]
async fn a_vacuum_killed_with_the_panel_is_interrupted_and_the_page_says_the_server_may_have_done_it() {
    let pg = TestDb::postgres().await;
    let mut direct = PgConnection::connect(&pg.url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000); DELETE FROM t WHERE id % 2 = 0",
    )
    .execute(&mut direct)
    .await
    .unwrap();
    // A lock VACUUM waits for: the job runs (waiting) when the panel dies.
    let mut holder = PgConnection::connect(&pg.url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE t IN SHARE UPDATE EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();

    let panel = crate::helpers::Binary::new();
    let token = panel.operator_token();
    panel.cli(&["db", "add", "shop", "--url", &pg.url], "");
    let (mut server, base) = panel.serve();
    let job_id = eventually("the job to start", || async {
        let body = serde_json::json!({"action": "vacuum", "tables": ["public.t"]});
        let (status, v) = served_post(&base, &token, "/api/v1/databases/shop/maintenance", body).await?;
        (status == StatusCode::ACCEPTED)
            .then(|| v["job_id"].as_i64())
            .flatten()
    })
    .await;
    let watch = sqlx::PgPool::connect(&pg.url).await.unwrap();
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                   AND query LIKE 'VACUUM%' AND wait_event_type = 'Lock'";
    eventually("the VACUUM to wait for the lock", || async {
        let n: i64 = sqlx::query_scalar(waiting).fetch_one(&watch).await.ok()?;
        (n == 1).then_some(())
    })
    .await;

    // The panel dies; the server still has the VACUUM, and finishes it once
    // the lock is free.
    server.kill().unwrap();
    server.wait().unwrap();
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
    eventually("the server to finish the VACUUM", || async {
        let done: bool =
            sqlx::query_scalar("SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 't'")
                .fetch_one(&watch)
                .await
                .ok()?;
        done.then_some(())
    })
    .await;

    let (mut server, base) = panel.serve();
    let job_path = format!("/api/v1/jobs/{job_id}");
    let job = |base: String| {
        let (token, path) = (token.clone(), job_path.clone());
        async move { served_get(&base, &token, &path).await }
    };
    let ended = eventually("the job to show interrupted", || async {
        let v = job(base.clone()).await?;
        (v["state"] != "running").then_some(v)
    })
    .await;
    assert_eq!(ended["state"], "interrupted", "never succeeded: {ended}");
    let error = ended["error"].as_str().unwrap();
    assert!(
        error.contains("panel stopped") && error.contains("server may have completed it"),
        "{ended}"
    );

    // The job page says so, and where to check, rather than implying that
    // nothing happened.
    let mut ops = Client::new(&base);
    assert_eq!(
        ops.login("ops", "ops-password-1").await.status(),
        StatusCode::SEE_OTHER
    );
    let (status, html) = ops.text(&format!("/jobs/{job_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("interrupted — the server may have completed it"),
        "{html}"
    );
    assert!(
        html.contains("last vacuum") && html.contains("href=\"/databases/shop/maintenance\""),
        "the page says what to check and where: {html}"
    );
    let (_, list) = ops.text("/jobs").await;
    assert!(
        list.contains("the server may have completed it"),
        "the list says it too"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test]
async fn mariadb_optimize_and_sqlite_vacuum_run_as_jobs() {
    let my = TestDb::mariadb().await;
    let mut direct = sqlx::MySqlConnection::connect(&my.url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE logs (id INT PRIMARY KEY, msg VARCHAR(200)) ENGINE=InnoDB")
        .execute(&mut direct)
        .await
        .unwrap();
    sqlx::raw_sql("INSERT INTO logs SELECT seq, REPEAT('m', 150) FROM seq_1_to_3000")
        .execute(&mut direct)
        .await
        .unwrap();
    let (app, operator, token) = watched(&my.url, "maria").await;
    let (_, page) = operator.text("/databases/maria/maintenance").await;
    assert!(
        page.contains("InnoDB") && page.contains(".logs"),
        "tables with their engine"
    );
    let res = operator
        .post(
            "/databases/maria/maintenance",
            &[("action", "optimize"), ("tables", &format!("{}.logs", my.name))],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let job = app.job_finished(&token, job_of(&res)).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let res = operator
        .post(
            "/databases/maria/maintenance",
            &[("action", "vacuum"), ("tables", &format!("{}.logs", my.name))],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "MariaDB has no VACUUM"
    );

    // SQLite: a file with free pages; VACUUM gives them back.
    let file = app.data_dir.path().join("notes.db");
    let mut lite = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", file.display()))
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
         INSERT INTO notes SELECT i, hex(randomblob(200)) FROM n; DELETE FROM notes;",
    )
    .execute(&mut lite)
    .await
    .unwrap();
    let free_before: i64 = sqlx::query_scalar("PRAGMA freelist_count")
        .fetch_one(&mut lite)
        .await
        .unwrap();
    assert!(free_before > 0);
    lite.close().await.unwrap();
    let admin = app.signed_in("root2", Role::Admin).await;
    add_in_browser(&admin, "notes", &format!("sqlite://{}", file.display())).await;
    app.checked(&token, "notes").await;
    let (_, page) = operator.text("/databases/notes/maintenance?tab=database").await;
    assert!(page.contains("Freelist pages"), "SQLite's page counts");
    let res = operator
        .post("/databases/notes/maintenance", &[("action", "vacuum")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let job = app.job_finished(&token, job_of(&res)).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let mut lite = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let free_after: i64 = sqlx::query_scalar("PRAGMA freelist_count")
        .fetch_one(&mut lite)
        .await
        .unwrap();
    assert_eq!(free_after, 0, "VACUUM reclaimed the free pages");
    let res = operator
        .post("/databases/notes/maintenance", &[("action", "integrity_check")])
        .await;
    let job = app.job_finished(&token, job_of(&res)).await;
    assert_eq!(job["state"], "succeeded", "{job}");
}

#[tokio::test]
async fn viewers_cannot_start_or_cancel_jobs() {
    let pg = TestDb::postgres().await;
    let mut direct = PgConnection::connect(&pg.url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE t (id int)")
        .execute(&mut direct)
        .await
        .unwrap();
    let (app, _, token) = watched(&pg.url, "shop").await;
    let viewer = app.signed_in("vic", Role::Viewer).await;
    let res = viewer
        .post(
            "/databases/shop/maintenance",
            &[("action", "vacuum"), ("tables", "public.t")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let jobs: serde_json::Value = api_get(&app, &token, "/api/v1/jobs/1")
        .await
        .json()
        .await
        .unwrap();
    assert!(jobs["error"].is_string(), "no job was started: {jobs}");
    let (status, page) = viewer.text("/databases/shop/maintenance").await;
    assert_eq!(status, StatusCode::OK, "viewers see the figures");
    assert!(!page.contains("Run on the selected tables"), "but get no actions");
}

#[tokio::test]
async fn the_tables_list_pages_and_sorts_on_the_server() {
    let pg = TestDb::postgres().await;
    let mut direct = PgConnection::connect(&pg.url).await.unwrap();
    sqlx::raw_sql(
        "DO $$ BEGIN FOR i IN 1..120 LOOP EXECUTE format('CREATE TABLE t_%s (id int)', lpad(i::text, 3, '0')); END LOOP; END $$",
    )
    .execute(&mut direct)
    .await
    .unwrap();
    let (_app, operator, _) = watched(&pg.url, "shop").await;
    let (_, page) = operator
        .text("/databases/shop/maintenance?sort=name&dir=asc")
        .await;
    assert!(page.contains("120 tables") && page.contains("page 1 of 3"));
    assert!(page.contains("public.t_001") && !page.contains("public.t_051<"));
    let (_, page) = operator
        .text("/databases/shop/maintenance?sort=name&dir=asc&page=3")
        .await;
    assert!(page.contains("public.t_120") && !page.contains("public.t_001<"));
    let (_, page) = operator
        .text("/databases/shop/maintenance?sort=name&dir=desc")
        .await;
    let (first, last) = (
        page.find("public.t_120").unwrap(),
        page.find("public.t_071").unwrap(),
    );
    assert!(first < last, "descending by name");
    let (_, page) = operator.text("/databases/shop/maintenance?q=t_05").await;
    assert!(page.contains("10 tables"), "search filters on the server");
}

/// A job whose kind this panel does not know (written by a newer version
/// sharing the store, or by hand) is a clear error when read, naming the
/// value; the API answers an opaque 500; nothing panics.
async fn an_unknown_job_kind_in_the_store_is_an_error_not_a_panic(store: StoreChoice) {
    let app = TestApp::spawn_on(store).await;
    let token = app.token_for("olga", Role::Operator).await;
    app.store_exec(
        "INSERT INTO jobs (kind, target, requested_by, state, created_at, heartbeat_at) \
         VALUES ('defragment', 't', 'olga', 'succeeded', 0, 0)",
    )
    .await;
    let id = app.store_i64("SELECT MAX(id) FROM jobs").await;
    let err = app.state.jobs.get(id).await.unwrap_err();
    let said = format!("{err:?}");
    assert!(said.contains(r#"unknown job kind "defragment""#), "{said}");
    let answer = api_get(&app, &token, &format!("/api/v1/jobs/{id}")).await;
    assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !answer.text().await.unwrap().contains("defragment"),
        "the cause stays in the log"
    );
}
on_both_stores!(an_unknown_job_kind_in_the_store_is_an_error_not_a_panic);

#[tokio::test]
async fn bloat_is_estimated_and_wraparound_and_settings_read_in_words() {
    let pg = TestDb::postgres().await;
    let mut direct = PgConnection::connect(&pg.url).await.unwrap();
    // Nine rows in ten deleted and vacuumed: the space stays in the file
    // (VACUUM only truncates empty pages at the end), which only VACUUM
    // FULL or pg_repack gives back.
    sqlx::raw_sql(
        "CREATE TABLE events (id int PRIMARY KEY, pad text); \
         INSERT INTO events SELECT g, repeat('x', 80) FROM generate_series(1, 100000) g; \
         CREATE TABLE fresh (id int PRIMARY KEY, pad text); \
         INSERT INTO fresh SELECT g, repeat('x', 80) FROM generate_series(1, 100000) g; \
         DELETE FROM events WHERE id % 10 <> 0",
    )
    .execute(&mut direct)
    .await
    .unwrap();
    for sql in ["VACUUM ANALYZE events", "VACUUM ANALYZE fresh"] {
        sqlx::raw_sql(sql).execute(&mut direct).await.unwrap();
    }
    let (truth,): (i64,) = sqlx::query_as("SELECT pg_relation_size('events')")
        .fetch_one(&mut direct)
        .await
        .unwrap();
    let (_app, operator, _) = watched(&pg.url, "shop").await;
    let (_, page) = operator
        .text("/databases/shop/maintenance?sort=name&dir=asc")
        .await;
    let row = |name: &str| {
        let at = page
            .find(&format!(">public.{name}"))
            .unwrap_or_else(|| panic!("{name} listed: {page}"));
        let end = page[at..].find("</tr>").unwrap() + at;
        page[at..end].to_string()
    };
    let events = row("events");
    let fresh = row("fresh");
    assert!(events.contains(">bloated<"), "{events}");
    assert!(!fresh.contains(">bloated<"), "{fresh}");
    // The estimate: about 90% of the file (between 80 and 95%).
    let bloat = events.split("data-label=\"Bloat (est.)\">").nth(1).unwrap();
    let pct: f64 = bloat
        .split('(')
        .nth(1)
        .unwrap()
        .split('%')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((80.0..=95.0).contains(&pct), "{bloat} of {truth} bytes");

    let (_, db) = operator.text("/databases/shop/maintenance?tab=database").await;
    assert!(
        db.contains("Share of the limit") && db.contains("<meter"),
        "xid age as a share"
    );
    assert!(
        db.contains("uses maintenance_work_mem"),
        "autovacuum_work_mem = -1 in words"
    );
}

#[tokio::test]
async fn a_vacuum_the_server_skips_fails_the_job_and_says_why() {
    let pg = TestDb::postgres().await;
    // The panel connects as a role that does not own the table: PostgreSQL
    // answers VACUUM with a WARNING ("skipping … only table or database
    // owner can vacuum it") and succeeds having done nothing.
    let role = format!("custodian_nonowner_{}", &pg.name[pg.name.len() - 8..]);
    pg.exec(&format!(
        "CREATE TABLE owned (id int); INSERT INTO owned SELECT generate_series(1, 100); \
         CREATE ROLE {role} LOGIN; GRANT SELECT ON owned TO {role}"
    ))
    .await;
    let url = pg.url.replacen("postgres@", &format!("{role}@"), 1);
    let app = TestApp::spawn().await;
    app.register("shop", &url).await;
    let token = app.token_for("bot", Role::Operator).await;
    let res = reqwest::Client::new()
        .post(app.url("/api/v1/databases/shop/maintenance"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"action": "vacuum", "tables": ["public.owned"]}))
        .send()
        .await
        .unwrap();
    let started: serde_json::Value = res.json().await.unwrap();
    let id = started["job_id"].as_i64().expect("a job id");
    let job = app.job_finished(&token, id).await;
    pg.exec(&format!("DROP OWNED BY {role}; DROP ROLE {role}")).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap_or_default()
            .contains("the server did not do it"),
        "{job}"
    );
    assert!(
        job["log"].as_str().unwrap_or_default().contains("WARNING:"),
        "{job}"
    );
}
