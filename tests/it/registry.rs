//! The registry and the fleet: databases added in the browser on real
//! PostgreSQL, MariaDB and SQLite; unreachable ones shown, isolated and
//! recovered; URLs' passwords kept out of every output.

use std::net::SocketAddr;
use std::time::Duration;

use custodian::domain::Role;
use reqwest::StatusCode;
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{Client, StoreChoice, TestApp, TestMy, TestPg, api_get, eventually};

/// Add a database through the browser form, as an admin would.
async fn add_in_browser(admin: &Client, name: &str, url: &str) -> reqwest::Response {
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
    let pg = TestPg::create().await;
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
    let my = TestMy::create().await;
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

/// A TCP proxy from `listener` to `upstream`: the "server coming back".
fn forward(listener: TcpListener, upstream: SocketAddr) {
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

#[tokio::test]
async fn an_unreachable_database_is_shown_isolated_and_recovers_without_a_restart() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| c.poll_interval = Duration::from_secs(1)).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("bot", Role::Viewer).await;
    let pg = TestPg::create().await;

    // A port nobody listens on (yet).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut flaky = url::Url::parse(&pg.url).unwrap();
    flaky.set_port(Some(port)).unwrap();
    // A server that accepts connections and never answers.
    let hang = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut hanging = url::Url::parse(&pg.url).unwrap();
    hanging.set_port(Some(hang.local_addr().unwrap().port())).unwrap();
    let steady = app.data_dir.path().join("steady.db");
    sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", steady.display()))
        .await
        .unwrap()
        .close()
        .await
        .unwrap();

    add_in_browser(&admin, "steady", &format!("sqlite://{}", steady.display())).await;
    add_in_browser(&admin, "flaky", flaky.as_str()).await;

    let v = app.checked(&token, "flaky").await;
    assert_eq!(v["reachable"], false);
    let error = v["error"].as_str().unwrap();
    assert!(error.contains("could not connect"), "{error}");

    // The overview answers while "hangs" is still being checked (its check
    // waits out the 5 s connect timeout): pages never wait on a database.
    add_in_browser(&admin, "hangs", hanging.as_str()).await;
    let (status, overview) = admin.text("/").await;
    assert_eq!(status, StatusCode::OK);
    let hangs_now = app.db_json(&token, "hangs").await;
    assert!(
        hangs_now["reachable"].is_null(),
        "the hanging check has not finished: {hangs_now}"
    );
    let (flaky_at, steady_at) = (
        overview.find(">flaky<").unwrap(),
        overview.find(">steady<").unwrap(),
    );
    assert!(flaky_at < steady_at, "problems first");
    assert!(
        overview.contains("could not connect"),
        "the error is on the overview"
    );

    // Other databases keep being checked meanwhile.
    let first = app.db_json(&token, "steady").await["checked_at"].clone();
    eventually("steady to be checked again while hangs hangs", || async {
        let now = app.db_json(&token, "steady").await["checked_at"].clone();
        (now != first && !now.is_null()).then_some(())
    })
    .await;
    assert!(app.db_json(&token, "hangs").await["reachable"].is_null());

    // The server comes back on the same port: the panel notices by itself.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let pg_addr = {
        let u = url::Url::parse(&crate::helpers::pg_admin_url()).unwrap();
        tokio::net::lookup_host((u.host_str().unwrap().to_string(), u.port().unwrap_or(5432)))
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    forward(listener, pg_addr);
    let v = eventually("flaky to recover", || async {
        let v = app.db_json(&token, "flaky").await;
        (v["reachable"] == true).then_some(v)
    })
    .await;
    assert!(v["error"].is_null());
    assert!(v["version"].as_str().unwrap().starts_with(char::is_numeric));
    drop(hang);
}

#[tokio::test]
async fn registry_changes_are_audited_and_editable() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("bot", Role::Viewer).await;
    let pg = TestPg::create().await;
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
async fn bad_registry_input_gets_clear_errors_and_saves_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let sqlite = format!("sqlite://{}", app.data_dir.path().join("x.db").display());
    assert_eq!(
        add_in_browser(&admin, "taken", &sqlite).await.status(),
        StatusCode::SEE_OTHER
    );
    let cases: &[(&str, &str, &str, u16, &str)] = &[
        (
            "bad-url",
            "postgres://user:pw@[::1",
            "",
            422,
            "not a valid PostgreSQL URL",
        ),
        (
            "oracle",
            "oracle://scott:tiger@db/orcl",
            "",
            422,
            "unknown engine",
        ),
        ("no-scheme", "db.example.com:5432", "", 422, "needs a scheme"),
        ("taken", &sqlite, "", 409, "already exists"),
        ("../etc", &sqlite, "", 422, "database name may use"),
        ("a/b", &sqlite, "", 422, "database name may use"),
        ("new", &sqlite, "", 422, "reserved"),
        ("", &sqlite, "", 422, "database name is required"),
        ("empty-url", "", "", 422, "connection URL is required"),
        ("bad-rpo", &sqlite, "soon", 422, "RPO must be a duration"),
    ];
    for (name, url, rpo, want, says) in cases {
        let res = admin
            .post("/databases", &[("name", name), ("url", url), ("rpo", rpo)])
            .await;
        assert_eq!(res.status().as_u16(), *want, "{name} {url}");
        let html = res.text().await.unwrap();
        assert!(html.contains(says), "{name}: should say {says:?}");
        assert!(
            !html.contains("tiger") && !html.contains(":pw@"),
            "{name}: a URL with a password is not echoed"
        );
    }
    let res = admin
        .post(
            "/databases",
            &[
                ("name", "nodir"),
                ("url", &sqlite),
                ("migrations_dir", "/no/such/dir"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let names: Vec<String> = custodian::service::registry::Registry::list(&app.state.registry)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name.to_string())
        .collect();
    assert_eq!(names, ["taken"], "nothing else was saved");

    // The API refuses the same way, in JSON.
    let bot = app.token_for("bot", Role::Admin).await;
    let res = reqwest::Client::new()
        .post(app.url("/api/v1/databases"))
        .bearer_auth(&bot)
        .json(&serde_json::json!({"name": "x", "url": "oracle://a@b/c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("unknown engine"));
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

#[tokio::test]
async fn databases_declared_in_config_are_read_only_and_say_what_is_missing() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        c.databases = vec![custodian::config::DeclaredDatabase {
            name: "declared".into(),
            url_env: Some("CUSTODIAN_TEST_SURELY_UNSET_VAR".into()),
            url: None,
            migrations_dir: None,
            rpo: Some(Duration::from_secs(3600)),
            rto: None,
        }];
    })
    .await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("bot", Role::Viewer).await;
    let v = app.checked(&token, "declared").await;
    assert_eq!(v["managed_by"], "config");
    assert_eq!(v["reachable"], false);
    assert_eq!(
        v["error"],
        "environment variable CUSTODIAN_TEST_SURELY_UNSET_VAR is not set"
    );

    let (status, _) = admin.text("/databases/declared/edit").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let res = admin.post("/databases/declared/delete", &[]).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("declared in the configuration file")
    );
    let res = add_in_browser(&admin, "declared", "sqlite:///tmp/x.db").await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_wrong_secret_key_is_a_clear_start_up_error() {
    let key_a = "a".repeat(64);
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| c.secret_key = Some(key_a.clone().into())).await;
    let admin = app.signed_in("root", Role::Admin).await;
    add_in_browser(&admin, "x", "sqlite:///tmp/custodian-none.db").await;

    let config = custodian::config::Config {
        data_dir: app.data_dir.path().to_path_buf(),
        secret_key: Some("b".repeat(64).into()),
        demo: false,
        ..Default::default()
    };
    let err = match custodian::server::prepare(config).await {
        Ok(_) => panic!("a wrong key must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("is not the one this store's connection URLs were encrypted with"),
        "{err}"
    );

    let config = custodian::config::Config {
        data_dir: app.data_dir.path().to_path_buf(),
        secret_key: Some(key_a.into()),
        demo: false,
        ..Default::default()
    };
    assert!(
        custodian::server::prepare(config).await.is_ok(),
        "the right key starts"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_default_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn().await;
    let key = app.data_dir.path().join("secret.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}
