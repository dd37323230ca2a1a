//! Backups on real servers: taken, verified by restoring, restored,
//! damaged and caught, cancelled and interrupted without leftovers,
//! scheduled, pruned, and judged against RPO/RTO.

use std::time::Duration;

use custodian::domain::Role;
use reqwest::StatusCode;
use sqlx::{Connection, PgConnection};

use crate::helpers::{Client, StoreChoice, TestApp, TestDb, api_get, eventually, served_get, served_post};
use crate::registry::add_in_browser;

async fn watched_with(
    db_url: &str,
    name: &str,
    adjust: impl FnOnce(&mut custodian::config::Config),
) -> (TestApp, Client, String) {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, adjust).await;
    let admin = app.signed_in("root", Role::Admin).await;
    add_in_browser(&admin, name, db_url).await;
    let token = app.token_for("bot", Role::Admin).await;
    let v = app.checked(&token, name).await;
    assert_eq!(v["reachable"], true, "{v}");
    (app, admin, token)
}

/// Start a backup through the API; (job id, backup id).
async fn backup(app: &TestApp, token: &str, name: &str) -> (i64, i64) {
    let res = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/databases/{name}/backups")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let v: serde_json::Value = res.json().await.unwrap();
    (v["job_id"].as_i64().unwrap(), v["backup_id"].as_i64().unwrap())
}

async fn verify(app: &TestApp, token: &str, id: i64) -> serde_json::Value {
    let res = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/backups/{id}/verify")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let job = res.json::<serde_json::Value>().await.unwrap()["job_id"]
        .as_i64()
        .unwrap();
    app.job_finished(token, job).await
}

async fn catalog(app: &TestApp, token: &str, name: &str) -> Vec<serde_json::Value> {
    api_get(app, token, &format!("/api/v1/databases/{name}/backups"))
        .await
        .json::<Vec<serde_json::Value>>()
        .await
        .unwrap()
}

/// The file behind a backup's `location`: a file:// URL to the very file,
/// so a DBA finds it without knowing the panel's layout.
fn file_of(app: &TestApp, location: &str) -> std::path::PathBuf {
    let url = url::Url::parse(location).unwrap_or_else(|e| panic!("{location:?} is not a URL: {e}"));
    assert_eq!(url.scheme(), "file", "{location}");
    let path = url.to_file_path().unwrap();
    assert!(
        path.starts_with(app.data_dir.path().join("backups")),
        "{location} is in the backup directory"
    );
    path
}

async fn seed_pg(url: &str) -> PgConnection {
    let mut c = PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE customers (id int PRIMARY KEY, name text); \
         INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 1234) g; \
         CREATE SCHEMA sales; \
         CREATE TABLE sales.orders (id int PRIMARY KEY, customer int REFERENCES customers, total numeric); \
         INSERT INTO sales.orders SELECT g, 1 + g % 1234, g * 1.5 FROM generate_series(1, 5000) g; \
         CREATE TABLE \"Odd Name\" (v text); INSERT INTO \"Odd Name\" VALUES ('a'), ('b');",
    )
    .execute(&mut c)
    .await
    .unwrap();
    c
}

#[tokio::test]
async fn a_postgres_backup_is_verified_by_a_real_restore_and_restores_into_a_new_database() {
    let pg = TestDb::postgres().await;
    let mut direct = seed_pg(&pg.url).await;
    let (app, admin, token) = watched_with(&pg.url, "shop", |_| {}).await;

    let (job, id) = backup(&app, &token, "shop").await;
    let done = app.job_finished(&token, job).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let list = catalog(&app, &token, "shop").await;
    let b = &list[0];
    assert_eq!((b["id"].as_i64(), b["state"].as_str()), (Some(id), Some("good")));
    let file = file_of(&app, b["location"].as_str().unwrap());
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(b["bytes"].as_i64(), Some(bytes.len() as i64));
    let sha: String = {
        use sha2::{Digest, Sha256};
        Sha256::digest(&bytes)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect()
    };
    assert_eq!(
        b["sha256"].as_str(),
        Some(sha.as_str()),
        "the catalog's checksum is the file's"
    );

    let v = verify(&app, &token, id).await;
    assert_eq!(v["state"], "succeeded", "{v}");
    let b = &catalog(&app, &token, "shop").await[0];
    assert_eq!(b["verify_ok"], true);
    let leftover: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname LIKE 'custodian_verify_%'")
            .fetch_one(&mut direct)
            .await
            .unwrap();
    assert_eq!(leftover, 0, "the scratch database was dropped");
    let (_, page) = admin.text("/databases/shop/backups").await;
    assert!(
        page.contains("restored") && page.contains("3</td>"),
        "three tables' counts, verified"
    );

    // Restore into a new database and compare contents.
    let restored = format!("{}_copy", pg.name);
    let res = admin
        .post(
            &format!("/databases/shop/backups/{id}/restore"),
            &[("into", "new"), ("new_name", &restored)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{:?}", res.text().await);
    let job: i64 = res.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("/jobs/")
        .parse()
        .unwrap();
    let done = app.job_finished(&token, job).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let copy_url = pg.url.replace(&format!("/{}", pg.name), &format!("/{restored}"));
    let mut copy = PgConnection::connect(&copy_url).await.unwrap();
    let original: Vec<(i32, String)> = sqlx::query_as("SELECT id, name FROM customers ORDER BY id")
        .fetch_all(&mut direct)
        .await
        .unwrap();
    let restored_rows: Vec<(i32, String)> = sqlx::query_as("SELECT id, name FROM customers ORDER BY id")
        .fetch_all(&mut copy)
        .await
        .unwrap();
    assert_eq!(
        original, restored_rows,
        "the restored table has the same contents"
    );
    let odd: i64 = sqlx::query_scalar("SELECT count(*) FROM \"Odd Name\"")
        .fetch_one(&mut copy)
        .await
        .unwrap();
    assert_eq!(odd, 2);
    copy.close().await.unwrap();
    sqlx::query(&format!("DROP DATABASE \"{restored}\" WITH (FORCE)"))
        .execute(&mut direct)
        .await
        .unwrap();

    // A restore into a database that exists is refused; over the original needs its name.
    let res = admin
        .post(
            &format!("/databases/shop/backups/{id}/restore"),
            &[("into", "new"), ("new_name", &pg.name)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let res = admin
        .post(
            &format!("/databases/shop/backups/{id}/restore"),
            &[("into", "original"), ("confirm", "nope")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The form again, the reason beside it, the choice and the typed name kept.
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"restore-refused\""), "{html}");
    assert!(html.contains("value=\"original\" checked"), "{html}");
    assert!(html.contains("value=\"nope\""), "{html}");
    // The restore test's whole time beside the restore's.
    let (_, page) = admin.text("/databases/shop/backups").await;
    assert!(page.contains("(the test took "), "{page}");

    let actions: Vec<String> = app
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "job.start")
        .map(|r| r.detail)
        .collect();
    assert!(
        actions.iter().any(|d| d.starts_with("backup")) && actions.iter().any(|d| d.starts_with("verify"))
    );
    assert!(
        actions.iter().any(|d| d.starts_with("restore")),
        "restores are audited: {actions:?}"
    );
}

#[tokio::test]
async fn a_flipped_byte_fails_verification_and_flags_the_backup() {
    let pg = TestDb::postgres().await;
    let _direct = seed_pg(&pg.url).await;
    let (app, admin, token) = watched_with(&pg.url, "shop", |_| {}).await;
    let (job, id) = backup(&app, &token, "shop").await;
    assert_eq!(app.job_finished(&token, job).await["state"], "succeeded");
    let b = &catalog(&app, &token, "shop").await[0];
    let file = file_of(&app, b["location"].as_str().unwrap());
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&file, bytes).unwrap();

    let v = verify(&app, &token, id).await;
    assert_eq!(v["state"], "failed");
    assert!(v["error"].as_str().unwrap().contains("checksum mismatch"), "{v}");
    let b = &catalog(&app, &token, "shop").await[0];
    assert_eq!(b["verify_ok"], false, "the backup is flagged");
    let (_, page) = admin.text("/backups").await;
    assert!(
        page.contains("the last verification failed: checksum mismatch"),
        "the manager sees why"
    );
}

#[tokio::test]
async fn a_cancelled_backup_leaves_no_good_backup_and_no_partial_file() {
    let pg = TestDb::postgres().await;
    let mut direct = seed_pg(&pg.url).await;
    sqlx::raw_sql("CREATE MATERIALIZED VIEW totals AS SELECT count(*) FROM sales.orders")
        .execute(&mut direct)
        .await
        .unwrap();
    let (app, _, token) = watched_with(&pg.url, "shop", |_| {}).await;
    // A refresh in an open transaction holds the view: pg_dump waits on it.
    let mut holder = PgConnection::connect(&pg.url).await.unwrap();
    sqlx::raw_sql("BEGIN; REFRESH MATERIALIZED VIEW totals")
        .execute(&mut holder)
        .await
        .unwrap();

    let (job, _) = backup(&app, &token, "shop").await;
    let dir = app.data_dir.path().join("backups/shop");
    eventually("pg_dump to be writing its partial file", || async {
        let partial = std::fs::read_dir(&dir)
            .ok()?
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().ends_with(".partial"));
        partial.then_some(())
    })
    .await;
    let res = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/jobs/{job}/cancel")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let done = app.job_finished(&token, job).await;
    assert_eq!(done["state"], "cancelled", "{done}");
    let b = &catalog(&app, &token, "shop").await[0];
    assert_eq!(b["state"], "cancelled", "never good");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.is_empty(), "no file left behind: {files:?}");
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
}

#[tokio::test]
async fn a_backup_location_that_cannot_be_written_fails_clearly() {
    let pg = TestDb::postgres().await;
    let _direct = seed_pg(&pg.url).await;
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let bad = blocker.path().join("backups");
    let (app, _, token) = watched_with(&pg.url, "shop", |c| c.backup_dir = Some(bad.clone())).await;
    let (job, _) = backup(&app, &token, "shop").await;
    let done = app.job_finished(&token, job).await;
    assert_eq!(done["state"], "failed");
    let error = done["error"].as_str().unwrap();
    assert!(
        error.contains("cannot write the backup to") && error.contains("backups"),
        "{error}"
    );
    let b = &catalog(&app, &token, "shop").await[0];
    assert_eq!(b["state"], "failed");
}

#[tokio::test]
async fn mariadb_and_sqlite_backups_verify() {
    let my = TestDb::mariadb().await;
    let mut direct = sqlx::MySqlConnection::connect(&my.url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50)) ENGINE=InnoDB")
        .execute(&mut direct)
        .await
        .unwrap();
    sqlx::raw_sql("INSERT INTO items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_777")
        .execute(&mut direct)
        .await
        .unwrap();
    let (app, admin, token) = watched_with(&my.url, "maria", |_| {}).await;
    let (job, id) = backup(&app, &token, "maria").await;
    let done = app.job_finished(&token, job).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let v = verify(&app, &token, id).await;
    assert_eq!(v["state"], "succeeded", "{v}");
    let leftover: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'custodian_verify_%'",
    )
    .fetch_one(&mut direct)
    .await
    .unwrap();
    assert_eq!(leftover, 0);

    let file = app.data_dir.path().join("notes.db");
    let mut lite = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", file.display()))
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 321) INSERT INTO notes SELECT i, 'n' || i FROM n;",
    )
    .execute(&mut lite)
    .await
    .unwrap();
    lite.close().await.unwrap();
    add_in_browser(&admin, "notes", &format!("sqlite://{}", file.display())).await;
    app.checked(&token, "notes").await;
    let (job, id) = backup(&app, &token, "notes").await;
    let done = app.job_finished(&token, job).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let v = verify(&app, &token, id).await;
    assert_eq!(v["state"], "succeeded", "{v}");
    let scratch: Vec<_> = std::fs::read_dir(app.data_dir.path().join("tmp"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(scratch.is_empty(), "no scratch files left: {scratch:?}");
}

#[tokio::test]
async fn rpo_status_turns_red_when_the_last_backup_is_too_old() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut lite = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.path().display()))
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE t (id INTEGER)")
        .execute(&mut lite)
        .await
        .unwrap();
    lite.close().await.unwrap();
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("bot", Role::Admin).await;
    let res = admin
        .post(
            "/databases",
            &[
                ("name", "tiny"),
                ("url", &format!("sqlite://{}", file.path().display())),
                ("rpo", "3s"),
                ("rto", "1h"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    app.checked(&token, "tiny").await;
    let (_, page) = admin.text("/backups").await;
    assert!(page.contains("no good backup"), "red before any backup");

    let (job, id) = backup(&app, &token, "tiny").await;
    assert_eq!(app.job_finished(&token, job).await["state"], "succeeded");
    assert_eq!(verify(&app, &token, id).await["state"], "succeeded");
    let (_, page) = admin.text("/backups").await;
    assert!(
        page.contains("level green"),
        "green right after a verified backup: {page}"
    );
    // Three seconds later the RPO is missed.
    let page = eventually("the status to turn red", || async {
        let (_, page) = admin.text("/backups").await;
        page.contains("level red").then_some(page)
    })
    .await;
    assert!(page.contains("RPO is 3s"), "and it says why");
}

#[tokio::test]
async fn a_due_schedule_runs_and_retention_prunes_the_oldest() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut lite = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.path().display()))
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1)")
        .execute(&mut lite)
        .await
        .unwrap();
    lite.close().await.unwrap();
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| c.poll_interval = Duration::from_secs(1)).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("bot", Role::Admin).await;
    // The schedule was last run an hour ago: the next minute has passed, so it is due.
    custodian::store::settings::put(
        app.state.store.pool(),
        "schedule:backup:nightly",
        &(custodian::store::now() - 3600).to_string(),
    )
    .await
    .unwrap();
    let res = admin
        .post(
            "/databases",
            &[
                ("name", "nightly"),
                ("url", &format!("sqlite://{}", file.path().display())),
                ("backup_schedule", "0 * * * *"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let first = eventually("the scheduled backup to run", || async {
        let list = catalog(&app, &token, "nightly").await;
        list.into_iter().find(|b| b["state"] == "good")
    })
    .await;
    let starts: Vec<_> = app
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "job.start")
        .collect();
    assert_eq!(starts[0].actor, "custodian", "the panel ran it on its schedule");
    assert_eq!(
        catalog(&app, &token, "nightly").await.len(),
        1,
        "once, not on every tick"
    );

    // Three more, then keep the last two.
    let mut ids = vec![first["id"].as_i64().unwrap()];
    for _ in 0..3 {
        let (job, id) = backup(&app, &token, "nightly").await;
        assert_eq!(app.job_finished(&token, job).await["state"], "succeeded");
        ids.push(id);
    }
    let res = admin
        .post(
            "/databases/nightly",
            &[
                ("url", ""),
                ("backup_schedule", "0 * * * *"),
                ("retention", "last=2"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let list = eventually("retention to prune", || async {
        let list = catalog(&app, &token, "nightly").await;
        (list.iter().filter(|b| b["state"] == "pruned").count() == 2).then_some(list)
    })
    .await;
    let state_of = |id: i64| {
        list.iter().find(|b| b["id"] == id).unwrap()["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        ids.iter().map(|i| state_of(*i)).collect::<Vec<_>>(),
        ["pruned", "pruned", "good", "good"],
        "the two newest are kept"
    );
    for b in &list {
        let exists = file_of(&app, b["location"].as_str().unwrap()).exists();
        assert_eq!(exists, b["state"] == "good", "files follow the catalog: {b}");
    }
    let prunes: Vec<_> = app
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "job.start" && r.detail.starts_with("prune"))
        .collect();
    assert_eq!(prunes.len(), 1, "pruning ran as an audited job");

    // Bad schedules are refused with a clear message.
    let res = admin
        .post(
            "/databases/nightly",
            &[("url", ""), ("backup_schedule", "every night")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("5-field cron line"));
}

#[tokio::test]
async fn viewers_see_backup_status_but_cannot_act() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut lite = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.path().display()))
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE t (id INTEGER)")
        .execute(&mut lite)
        .await
        .unwrap();
    lite.close().await.unwrap();
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    add_in_browser(&admin, "lite", &format!("sqlite://{}", file.path().display())).await;
    let token = app.token_for("bot", Role::Admin).await;
    app.checked(&token, "lite").await;
    let (job, id) = backup(&app, &token, "lite").await;
    assert_eq!(app.job_finished(&token, job).await["state"], "succeeded");

    let viewer = app.signed_in("vic", Role::Viewer).await;
    let (status, page) = viewer.text("/databases/lite/backups").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Recovery status") && !page.contains("Back up now") && !page.contains("Restore…"));
    assert_eq!(viewer.text("/backups").await.0, StatusCode::OK);
    assert_eq!(
        viewer.post("/databases/lite/backups", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        viewer
            .post(&format!("/databases/lite/backups/{id}/verify"), &[])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let operator = app.signed_in("olaf", Role::Operator).await;
    assert_eq!(
        operator
            .text(&format!("/databases/lite/backups/{id}/restore"))
            .await
            .0,
        StatusCode::FORBIDDEN,
        "restore is for admins"
    );
    assert_eq!(
        catalog(&app, &token, "lite").await.len(),
        1,
        "nothing new was started"
    );
}

#[tokio::test]
async fn a_backup_running_when_the_panel_dies_is_interrupted_and_its_file_removed() {
    let pg = TestDb::postgres().await;
    let mut direct = seed_pg(&pg.url).await;
    sqlx::raw_sql("CREATE MATERIALIZED VIEW totals AS SELECT count(*) FROM sales.orders")
        .execute(&mut direct)
        .await
        .unwrap();
    let mut holder = PgConnection::connect(&pg.url).await.unwrap();
    sqlx::raw_sql("BEGIN; REFRESH MATERIALIZED VIEW totals")
        .execute(&mut holder)
        .await
        .unwrap();

    let panel = crate::helpers::Binary::new();
    let token = panel.operator_token();
    panel.cli(&["db", "add", "shop", "--url", &pg.url], "");
    let (mut server, base) = panel.serve();
    let backup_id = eventually("the backup to start", || async {
        let body = serde_json::json!({});
        served_post(&base, &token, "/api/v1/databases/shop/backups", body)
            .await?
            .1["backup_id"]
            .as_i64()
    })
    .await;
    let shelf = panel.data.join("backups/shop");
    eventually("the partial file to appear", || async {
        let found = std::fs::read_dir(&shelf)
            .ok()?
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().ends_with(".partial"));
        found.then_some(())
    })
    .await;
    server.kill().unwrap();
    server.wait().unwrap();

    let (mut server, base) = panel.serve();
    let b = eventually("the backup to show interrupted", || async {
        let list = served_get(&base, &token, "/api/v1/databases/shop/backups").await?;
        list.as_array()?
            .iter()
            .find(|b| b["id"] == backup_id && b["state"] != "running")
            .cloned()
    })
    .await;
    assert_eq!(b["state"], "interrupted", "never good: {b}");
    let left: Vec<_> = std::fs::read_dir(&shelf)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "the partial file is gone: {left:?}");
    server.kill().unwrap();
    server.wait().unwrap();
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
}

#[tokio::test]
async fn parallel_directory_dumps_verify_and_restore() {
    let pg = TestDb::postgres().await;
    let mut direct = seed_pg(&pg.url).await;
    let (app, admin, token) = watched_with(&pg.url, "shop", |c| c.backup_parallel_jobs = 2).await;
    let (job, id) = backup(&app, &token, "shop").await;
    let done = app.job_finished(&token, job).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let b = &catalog(&app, &token, "shop").await[0];
    assert!(b["location"].as_str().unwrap().ends_with(".dir.tar.zst"), "{b}");
    let v = verify(&app, &token, id).await;
    assert_eq!(v["state"], "succeeded", "{v}");

    let restored = format!("{}_par", pg.name);
    let res = admin
        .post(
            &format!("/databases/shop/backups/{id}/restore"),
            &[("into", "new"), ("new_name", &restored)],
        )
        .await;
    let job: i64 = res.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("/jobs/")
        .parse()
        .unwrap();
    assert_eq!(app.job_finished(&token, job).await["state"], "succeeded");
    let mut copy = PgConnection::connect(&pg.url.replace(&format!("/{}", pg.name), &format!("/{restored}")))
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sales.orders")
        .fetch_one(&mut copy)
        .await
        .unwrap();
    assert_eq!(n, 5000);
    copy.close().await.unwrap();
    sqlx::query(&format!("DROP DATABASE \"{restored}\" WITH (FORCE)"))
        .execute(&mut direct)
        .await
        .unwrap();
    let work: Vec<_> = std::fs::read_dir(app.data_dir.path().join("tmp"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(work.is_empty(), "no dump directories or tarballs left: {work:?}");
}
