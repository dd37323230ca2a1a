//! Point-in-time recovery on pgBackRest, against a throwaway cluster that
//! archives its WAL into a repository of its own: physical backups, the
//! catalog and window, the timeline, restores into a new server, drills,
//! archiving failures, and the panel dying mid-restore.

use std::time::Duration;

use custodian::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{StoreChoice, TestApp, ThrowawayPg, api_get, api_post, eventually};

/// The panel with its restores beside the cluster (a directory the
/// cluster's OS user can reach), polling every second.
pub(crate) async fn panel(pg: &ThrowawayPg) -> TestApp {
    let restores = pg.dir().join("restores");
    TestApp::spawn_with(StoreChoice::Sqlite, move |c| {
        c.restore_dir = Some(restores);
        c.poll_interval = Duration::from_secs(1);
    })
    .await
}

/// Register `name` with the cluster's stanza through the API.
pub(crate) async fn register(app: &TestApp, admin: &str, pg: &ThrowawayPg, name: &str, extra: Value) {
    let mut body = json!({
        "name": name,
        "url": pg.url,
        "pgbackrest_stanza": "main",
        "pgbackrest_config": pg.pgbackrest_config(),
        "rpo_s": 900,
        "rto_s": 600,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = api_post(app, admin, "/api/v1/databases", body).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
}

pub(crate) async fn sql(pg: &ThrowawayPg, q: &str) -> Vec<sqlx::postgres::PgRow> {
    let mut c = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    let rows = sqlx::raw_sql(q).fetch_all(&mut c).await.unwrap();
    c.close().await.unwrap();
    rows
}

/// Switch to a new WAL segment and wait until the old one is archived.
pub(crate) async fn archive_now(pg: &ThrowawayPg) {
    let mut c = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    let seg: String = sqlx::query_scalar("SELECT pg_walfile_name(pg_switch_wal())")
        .fetch_one(&mut c)
        .await
        .unwrap();
    eventually(&format!("{seg} to be archived"), || {
        let url = pg.url.clone();
        let seg = seg.clone();
        async move {
            let mut c = sqlx::PgConnection::connect(&url).await.ok()?;
            let last: Option<String> = sqlx::query_scalar("SELECT last_archived_wal FROM pg_stat_archiver")
                .fetch_one(&mut c)
                .await
                .ok()?;
            last.filter(|l| *l >= seg).map(|_| ())
        }
    })
    .await;
}

pub(crate) async fn backup(app: &TestApp, token: &str, name: &str, kind: &str) -> Value {
    let r = api_post(
        app,
        token,
        &format!("/api/v1/databases/{name}/recovery/backups"),
        json!({"type": kind}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{}", r.text().await.unwrap());
    let job = r.json::<Value>().await.unwrap()["job_id"].as_i64().unwrap();
    let done = app.job_finished(token, job).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    done
}

pub(crate) async fn recovery(app: &TestApp, token: &str, name: &str) -> Value {
    let r = api_get(app, token, &format!("/api/v1/databases/{name}/recovery")).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// A restore's JSON once its job has ended.
async fn restored(app: &TestApp, token: &str, started: &Value) -> Value {
    let job = started["job_id"].as_i64().unwrap();
    let done = app.job_finished(token, job).await;
    let id = started["restore_id"].as_i64().unwrap();
    let r: Value = api_get(app, token, &format!("/api/v1/recovery-restores/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["state"], "succeeded", "{done} / {r}");
    r
}

pub(crate) async fn count_on(url: &str, q: &str) -> i64 {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let n: i64 = sqlx::query_scalar(q).fetch_one(&mut c).await.unwrap();
    c.close().await.unwrap();
    n
}

pub(crate) fn restored_url(pg: &ThrowawayPg, port: i64) -> String {
    let mut u = url::Url::parse(&pg.url).unwrap();
    u.set_port(Some(port as u16)).unwrap();
    u.to_string()
}

#[tokio::test]
async fn a_dropped_table_is_found_on_the_timeline_and_restored_from_just_before() {
    let pg = ThrowawayPg::with_pgbackrest();
    let app = panel(&pg).await;
    let admin = app.token_for("admin", Role::Admin).await;
    register(&app, &admin, &pg, "shop", json!({})).await;
    sql(&pg, "CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, 'before' FROM generate_series(1, 1000) g; CREATE TABLE events (id int)").await;
    backup(&app, &admin, "shop", "full").await;

    sql(
        &pg,
        "INSERT INTO orders SELECT g, 'after the backup' FROM generate_series(1001, 1500) g; CREATE TABLE late (id int)",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sql(
        &pg,
        "INSERT INTO orders SELECT g, 'after T' FROM generate_series(1501, 1600) g",
    )
    .await;
    sql(&pg, "DROP TABLE orders").await;
    sql(&pg, "INSERT INTO events SELECT generate_series(1, 10)").await;
    sql(&pg, "DROP TABLE late").await;
    archive_now(&pg).await;

    // The timeline lists the drop after T, named.
    let from = t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let timeline: Value = api_get(
        &app,
        &admin,
        &format!("/api/v1/databases/shop/recovery/timeline?from={from}"),
    )
    .await
    .json()
    .await
    .unwrap();
    let events = timeline["events"].as_array().unwrap();
    let drop = events
        .iter()
        .find(|e| e["kind"] == "drop")
        .unwrap_or_else(|| panic!("no drop in {timeline}"));
    assert_eq!(drop["relation"], "public.orders", "{drop}");
    assert!(
        drop["at"].as_str().unwrap() > from.as_str(),
        "{drop} after {from}"
    );
    let xid = drop["xid"].as_i64().unwrap();
    // A table made after the backup is named too: the panel recorded it
    // from its poll, seeing the catalog change.
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "drop" && e["relation"] == "public.late"),
        "{timeline}"
    );

    // Restore to just before it: a new server with the table and every row it had.
    let r = api_post(
        &app,
        &admin,
        "/api/v1/databases/shop/recovery/restores",
        json!({"target_xid": xid, "target_time": null, "confirm": "shop"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{}", r.text().await.unwrap());
    let started: Value = r.json().await.unwrap();
    let done = restored(&app, &admin, &started).await;
    assert_eq!(done["state"], "ready", "{done}");
    assert!(done["rto_s"].as_f64().unwrap() > 0.0, "{done}");
    let new_db = done["database"].as_str().unwrap().to_string();
    assert!(new_db.starts_with("shop-pitr-"), "{done}");
    let url = restored_url(&pg, done["port"].as_i64().unwrap());
    assert_eq!(count_on(&url, "SELECT count(*) FROM orders").await, 1600);
    assert_eq!(
        count_on(&url, "SELECT count(*) FROM events").await,
        0,
        "rows after the drop stay out"
    );
    // It is a managed database the panel can read.
    let detail = app.checked(&admin, &new_db).await;
    assert_eq!(detail["reachable"], true, "{detail}");

    // Restore to T: the rows of T, not those inserted after it.
    let r = api_post(
        &app,
        &admin,
        "/api/v1/databases/shop/recovery/restores",
        json!({"target_time": from, "confirm": "shop"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{}", r.text().await.unwrap());
    let at_t = restored(&app, &admin, &r.json().await.unwrap()).await;
    let url_t = restored_url(&pg, at_t["port"].as_i64().unwrap());
    assert_eq!(count_on(&url_t, "SELECT count(*) FROM orders").await, 1500);
    assert_eq!(
        count_on(&url_t, "SELECT count(*) FROM orders WHERE note = 'after T'").await,
        0
    );
    assert!(at_t["reached"].as_str().unwrap() <= from.as_str(), "{at_t}");

    // Discard: stopped, its directory deleted, unregistered.
    let id = started["restore_id"].as_i64().unwrap();
    let r = api_post(
        &app,
        &admin,
        &format!("/api/v1/recovery-restores/{id}/discard"),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let job = r.json::<Value>().await.unwrap()["job_id"].as_i64().unwrap();
    assert_eq!(app.job_finished(&admin, job).await["state"], "succeeded");
    assert!(!pg.dir().join("restores").join(&new_db).exists());
    let gone = api_get(&app, &admin, &format!("/api/v1/databases/{new_db}")).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert!(
        sqlx::PgConnection::connect(&url).await.is_err(),
        "the restored server is stopped"
    );
    let r: Value = api_get(&app, &admin, &format!("/api/v1/recovery-restores/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["state"], "discarded");
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|a| a.action == "recovery.restore" && a.outcome == "success")
    );
    assert!(audit.iter().any(|a| a.action == "recovery.discard"));
    // Tidy up the other restored server.
    let other = at_t["id"].as_i64().unwrap();
    let r = api_post(
        &app,
        &admin,
        &format!("/api/v1/recovery-restores/{other}/discard"),
        json!({}),
    )
    .await;
    let job = r.json::<Value>().await.unwrap()["job_id"].as_i64().unwrap();
    app.job_finished(&admin, job).await;
}

#[tokio::test]
async fn the_catalog_shows_dependencies_and_targets_outside_the_window_are_refused() {
    let pg = ThrowawayPg::with_pgbackrest();
    let app = panel(&pg).await;
    let admin = app.token_for("admin", Role::Admin).await;
    let operator = app.token_for("op", Role::Operator).await;
    let viewer = app.token_for("viewer", Role::Viewer).await;
    register(&app, &admin, &pg, "shop", json!({})).await;
    sql(
        &pg,
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)",
    )
    .await;
    backup(&app, &operator, "shop", "full").await;
    sql(&pg, "INSERT INTO t SELECT generate_series(1, 100)").await;
    backup(&app, &operator, "shop", "diff").await;
    sql(&pg, "INSERT INTO t SELECT generate_series(1, 100)").await;
    backup(&app, &operator, "shop", "incr").await;

    let s = recovery(&app, &viewer, "shop").await;
    assert_eq!(s["stanza"], "main");
    let backups = s["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 3, "{s}");
    let (full, diff, incr) = (&backups[0], &backups[1], &backups[2]);
    assert_eq!(
        (
            full["type"].as_str(),
            diff["type"].as_str(),
            incr["type"].as_str()
        ),
        (Some("full"), Some("diff"), Some("incr"))
    );
    assert_eq!(full["prior"], Value::Null);
    assert_eq!(diff["prior"], full["label"]);
    assert_eq!(incr["prior"], diff["label"]);
    assert!(full["bytes"].as_i64().unwrap() > 0 && !full["wal_start"].as_str().unwrap().is_empty());
    let from = s["window"]["from"].as_str().unwrap().to_string();
    assert_eq!(from, full["finished_at"].as_str().unwrap());
    assert_eq!(s["archiving"]["ok"], true, "{s}");

    for (target, what) in [
        ("2000-01-01T00:00:00Z", "before"),
        ("2999-01-01T00:00:00Z", "after"),
    ] {
        let r = api_post(
            &app,
            &admin,
            "/api/v1/databases/shop/recovery/restores",
            json!({"target_time": target, "confirm": "shop"}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let e = r.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(e.contains(what) && e.contains("restorable window"), "{e}");
    }
    // Roles: viewers read, operators back up, only admins restore; the name must be typed.
    let r = api_post(
        &app,
        &viewer,
        "/api/v1/databases/shop/recovery/backups",
        json!({"type": "full"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = api_post(
        &app,
        &operator,
        "/api/v1/databases/shop/recovery/restores",
        json!({"confirm": "shop"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = api_post(
        &app,
        &admin,
        "/api/v1/databases/shop/recovery/restores",
        json!({"confirm": "nope"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = api_post(
        &app,
        &admin,
        "/api/v1/databases/shop/recovery/backups",
        json!({"type": "huge"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = api_post(&app, &viewer, "/api/v1/recovery-restores/1/discard", json!({})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = api_get(&app, &viewer, "/api/v1/recovery-restores/999").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = api_get(
        &app,
        &viewer,
        "/api/v1/databases/shop/recovery/timeline?from=yesterday",
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The pages' forms need the CSRF token like every other.
    let browser = app.signed_in("ops", Role::Operator).await;
    let r = browser
        .post_raw("/databases/shop/recovery/backups", &[("kind", "full")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Two databases of one server share its stanza: backups asked for on
    // both at once take turns (pgBackRest would refuse the second).
    register(&app, &admin, &pg, "shop2", json!({})).await;
    let mut jobs = Vec::new();
    for name in ["shop", "shop2"] {
        let r = api_post(
            &app,
            &operator,
            &format!("/api/v1/databases/{name}/recovery/backups"),
            json!({"type": "incr"}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        jobs.push(r.json::<Value>().await.unwrap()["job_id"].as_i64().unwrap());
    }
    for job in jobs {
        let done = app.job_finished(&operator, job).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    let s = recovery(&app, &viewer, "shop2").await;
    assert_eq!(s["backups"].as_array().unwrap().len(), 5, "{s}");
}

#[tokio::test]
async fn broken_archiving_turns_the_database_red_until_it_is_fixed() {
    let pg = ThrowawayPg::with_pgbackrest();
    let app = panel(&pg).await;
    let admin = app.token_for("admin", Role::Admin).await;
    register(&app, &admin, &pg, "shop", json!({})).await;
    backup(&app, &admin, "shop", "full").await;
    // The repository refuses writes: every archive-push fails.
    let repo = pg.dir().join("repo");
    let chmod = |mode: &str| {
        assert!(
            std::process::Command::new("chmod")
                .arg(mode)
                .arg(&repo)
                .status()
                .unwrap()
                .success()
        );
    };
    chmod("000");
    sql(&pg, "CREATE TABLE t (id int); SELECT pg_switch_wal()").await;
    let s = eventually("archiving to fail", || async {
        let s = recovery(&app, &admin, "shop").await;
        (s["archiving"]["failing"] == true).then_some(s)
    })
    .await;
    assert_eq!(s["archiving"]["ok"], false);
    assert!(
        s["archiving"]["message"].as_str().unwrap().contains("failing"),
        "{s}"
    );
    let page = app.signed_in("watcher", Role::Viewer).await;
    let html = eventually("the backups page to turn red", || async {
        let (_, html) = page.text("/backups").await;
        html.contains("WAL archiving is failing").then_some(html)
    })
    .await;
    assert!(html.contains("red"));

    chmod("750");
    archive_now(&pg).await;
    eventually("archiving to work again", || async {
        let s = recovery(&app, &admin, "shop").await;
        (s["archiving"]["ok"] == true && s["archiving"]["failing"] == false).then_some(())
    })
    .await;
    eventually("the red to clear", || async {
        let (_, html) = page.text("/backups").await;
        (!html.contains("WAL archiving is failing")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn drills_run_from_their_schedule_and_a_false_proof_fails() {
    let pg = ThrowawayPg::with_pgbackrest();
    let app = panel(&pg).await;
    let admin = app.token_for("admin", Role::Admin).await;
    register(
        &app,
        &admin,
        &pg,
        "shop",
        json!({
            "recovery_drill_schedule": "* * * * *",
            "recovery_proof_sql": "SELECT count(*) = 100 FROM t",
        }),
    )
    .await;
    register(
        &app,
        &admin,
        &pg,
        "bad",
        json!({
            "recovery_proof_sql": "SELECT count(*) = 5 FROM t",
        }),
    )
    .await;
    sql(
        &pg,
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)",
    )
    .await;
    backup(&app, &admin, "shop", "full").await;
    archive_now(&pg).await;

    // The schedule's first minute boundary starts a drill by itself.
    let deadline = std::time::Instant::now() + Duration::from_secs(150);
    let drill = loop {
        let s = recovery(&app, &admin, "shop").await;
        let found = s["restores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["drill"] == true)
            .cloned();
        if let Some(d) = found.filter(|d| d["state"] != "restoring") {
            break d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled drill within 150 s: {s}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(drill["state"], "passed", "{drill}");
    assert!(drill["rto_s"].as_f64().unwrap() > 0.0, "{drill}");
    assert!(
        drill["proof"].as_str().unwrap().contains("proof query true"),
        "{drill}"
    );
    assert!(drill["error"].is_null());
    // Its server is gone.
    let jobs: Value = api_get(&app, &admin, &format!("/api/v1/jobs/{}", drill["job_id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jobs["kind"], "drill", "{jobs}");
    let page = app.signed_in("watcher", Role::Viewer).await;
    let (_, html) = page.text("/databases/shop/backups").await;
    assert!(
        !html.contains("no recovery drill yet"),
        "the RTO is judged from the drill"
    );

    // A drill whose proof is false fails and turns the database red.
    let r = api_post(&app, &admin, "/api/v1/databases/bad/recovery/drills", json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{}", r.text().await.unwrap());
    let started: Value = r.json().await.unwrap();
    let done = app
        .job_finished(&admin, started["job_id"].as_i64().unwrap())
        .await;
    assert_eq!(done["state"], "failed", "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("instead of true"),
        "{done}"
    );
    let r: Value = api_get(
        &app,
        &admin,
        &format!("/api/v1/recovery-restores/{}", started["restore_id"]),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(r["state"], "failed");
    eventually("the failed drill to turn bad red", || async {
        let (_, html) = page.text("/databases/bad/backups").await;
        (html.contains("the last recovery drill failed") && html.contains("level red")).then_some(())
    })
    .await;
    // Nothing of either drill is left on disk.
    let left: Vec<_> = std::fs::read_dir(pg.dir().join("restores"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_panel_killed_mid_restore_interrupts_it_and_removes_its_directory_at_the_next_start() {
    let pg = ThrowawayPg::with_pgbackrest();
    // Enough data that the restore takes a moment.
    sql(&pg, "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS pad FROM generate_series(1, 1500000) g").await;
    let bin = crate::helpers::Binary::new();
    bin.cli(
        &["user", "add", "root", "--role", "admin", "--password-stdin"],
        "root-password-1\n",
    );
    let admin = bin
        .cli(&["token", "create", "root", "--name", "t"], "")
        .trim()
        .to_string();
    let config = pg.pgbackrest_config();
    bin.cli(
        &[
            "db",
            "add",
            "shop",
            "--url",
            &pg.url,
            "--pgbackrest-stanza",
            "main",
            "--pgbackrest-config",
            &config,
        ],
        "",
    );
    let out = bin.cli(&["recovery", "backup", "shop", "--type", "full"], "");
    // The CLI waits for the retention job its backup started.
    let expire: i64 = out
        .lines()
        .find_map(|l| l.strip_prefix("expire job ")?.split(':').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no expire job in {out:?}"));
    let restores = pg.dir().join("restores").display().to_string();
    let env = [
        ("CUSTODIAN_RESTORE_DIR", restores.as_str()),
        ("CUSTODIAN_POLL_INTERVAL", "1s"),
    ];
    let (mut child, base) = bin.serve_with(&env);
    let expire_path = format!("/api/v1/jobs/{expire}");
    let job = eventually("the served panel to answer", || {
        crate::helpers::served_get(&base, &admin, &expire_path)
    })
    .await;
    assert_eq!(
        (job["kind"].as_str(), job["state"].as_str()),
        (Some("expire"), Some("succeeded")),
        "{job}"
    );
    let started = eventually("the served panel to start a restore", || async {
        crate::helpers::served_post(
            &base,
            &admin,
            "/api/v1/databases/shop/recovery/restores",
            json!({"confirm": "shop"}),
        )
        .await
        .filter(|(status, _)| *status == StatusCode::ACCEPTED)
        .map(|(_, v)| v)
    })
    .await;
    let id = started["restore_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{started}"));
    // Kill it once the restore has written into its new directory.
    let data = eventually("the restore to write files", || async {
        let dirs: Vec<_> = std::fs::read_dir(pg.dir().join("restores"))
            .ok()?
            .filter_map(|e| e.ok())
            .collect();
        let home = dirs
            .into_iter()
            .find(|e| e.file_name().to_string_lossy().starts_with("shop-pitr-"))?;
        let data = home.path().join("data");
        (std::fs::read_dir(&data).ok()?.count() > 0).then_some(home.path())
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        data.exists(),
        "the half-written directory is there while the panel is down"
    );

    let (mut child, base) = bin.serve_with(&env);
    let r = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(r) =
                crate::helpers::served_get(&base, &admin, &format!("/api/v1/recovery-restores/{id}")).await
                && r["state"] == "interrupted"
            {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await
    .expect("the restore marked interrupted within a minute");
    assert!(r["error"].as_str().unwrap().contains("panel stopped"), "{r}");
    assert!(!data.exists(), "its directory is removed");

    // The served panel (its umask closes what it makes) restores to the
    // latest in full, and reads the restored server it registered.
    let (_, started) = crate::helpers::served_post(
        &base,
        &admin,
        "/api/v1/databases/shop/recovery/restores",
        json!({"target_time": null, "target_xid": null, "confirm": "shop"}),
    )
    .await
    .expect("a restore started");
    let id = started["restore_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{started}"));
    let done = tokio::time::timeout(Duration::from_secs(300), async {
        loop {
            if let Some(r) =
                crate::helpers::served_get(&base, &admin, &format!("/api/v1/recovery-restores/{id}")).await
                && r["state"] != "restoring"
            {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await
    .expect("the restore ended within 5 minutes");
    assert_eq!(done["state"], "ready", "{done}");
    let name = done["database"].as_str().unwrap().to_string();
    let db = eventually("the restored database to be checked", || async {
        crate::helpers::served_get(&base, &admin, &format!("/api/v1/databases/{name}"))
            .await
            .filter(|d| d["reachable"] == true)
    })
    .await;
    assert!(db["size_bytes"].as_i64().unwrap_or(0) > 50_000_000, "{db}");
    let (status, _) = crate::helpers::served_post(
        &base,
        &admin,
        &format!("/api/v1/recovery-restores/{id}/discard"),
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::ACCEPTED);
    eventually("the restored server to be discarded", || async {
        crate::helpers::served_get(&base, &admin, &format!("/api/v1/recovery-restores/{id}"))
            .await
            .filter(|r| r["state"] == "discarded")
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
}
