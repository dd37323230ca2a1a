//! The registry's guards: bad input saves nothing, databases declared in
//! the configuration stay read-only, and a wrong secret key stops start-up.

use std::time::Duration;

use custodian::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{StoreChoice, TestApp};
use crate::registry::add_in_browser;

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
async fn databases_declared_in_config_are_read_only_and_say_what_is_missing() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        c.databases = vec![custodian::config::DeclaredDatabase {
            name: "declared".into(),
            url_env: Some("CUSTODIAN_TEST_SURELY_UNSET_VAR".into()),
            url: None,
            migrations_dir: None,
            rpo: Some(Duration::from_secs(3600)),
            rto: None,
            backup_schedule: None,
            verify_schedule: None,
            retention: None,
            pgbackrest_stanza: None,
            pgbackrest_config: None,
            pgbackrest_schedule: None,
            recovery_drill_schedule: None,
            recovery_proof_sql: None,
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

/// The registry's names with their RPO and RTO in seconds.
async fn targets(app: &TestApp) -> Vec<(String, Option<u64>, Option<u64>)> {
    app.state
        .registry
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.name.to_string(),
                e.rpo.map(|d| d.as_secs()),
                e.rto.map(|d| d.as_secs()),
            )
        })
        .collect()
}

#[tokio::test]
async fn recovery_targets_past_ten_years_are_refused_in_the_api_the_form_and_the_cli() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let bot = app.token_for("bot", Role::Admin).await;
    let sqlite = format!("sqlite://{}", app.data_dir.path().join("x.db").display());
    let http = reqwest::Client::new();
    let ten_years: u64 = 10 * 365 * 86_400;

    // The API: 2^63 and up used to be stored wrapped (and shown as 0).
    for secs in [1u64 << 63, u64::MAX, i64::MAX as u64, ten_years + 1, 0] {
        for field in ["rpo_s", "rto_s"] {
            let res = http
                .post(app.url("/api/v1/databases"))
                .bearer_auth(&bot)
                .json(&serde_json::json!({"name": "big", "url": sqlite, field: secs}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{field} = {secs}");
            let body: serde_json::Value = res.json().await.unwrap();
            assert!(
                body["error"]
                    .as_str()
                    .unwrap()
                    .contains(&field[..3].to_uppercase()),
                "{field} = {secs}: {body}"
            );
        }
    }
    assert!(targets(&app).await.is_empty(), "nothing was registered");
    let res = http
        .post(app.url("/api/v1/databases"))
        .bearer_auth(&bot)
        .json(&serde_json::json!({"name": "big", "url": sqlite, "rpo_s": ten_years, "rto_s": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "ten years is the most, and allowed"
    );
    let res = http
        .put(app.url("/api/v1/databases/big"))
        .bearer_auth(&bot)
        .json(&serde_json::json!({"rto_s": 1u64 << 63}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let kept = vec![("big".to_string(), Some(ten_years), Some(3600))];
    assert_eq!(
        targets(&app).await,
        kept,
        "an update past the limit changes nothing"
    );

    // The form.
    for (rpo, says) in [
        ("300000000000y", "at most"),
        ("11y", "at most"),
        ("0s", "longer than zero"),
    ] {
        let res = admin
            .post(
                "/databases",
                &[("name", "form-db"), ("url", &sqlite), ("rpo", rpo)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "rpo {rpo}");
        let html = res.text().await.unwrap();
        assert!(
            html.contains(says) && html.contains("<form"),
            "rpo {rpo}: the form again, saying {says:?}"
        );
        let res = admin.post("/databases/big", &[("rto", rpo)]).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "edit rto {rpo}");
    }
    assert_eq!(targets(&app).await, kept);

    // The CLI.
    let panel = crate::helpers::Binary::new();
    for flag in ["--rpo", "--rto"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_custodian"))
            .arg("--data-dir")
            .arg(&panel.data)
            .args(["db", "add", "cli-db", "--url", &sqlite, flag, "300000000000y"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag} past ten years is refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("at most"), "{flag}: {err}");
    }
    let listed = panel.cli(&["db", "list"], "");
    assert!(!listed.contains("cli-db"), "{listed}");
}

#[tokio::test]
async fn a_name_in_a_path_is_taken_exactly_or_not_found() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let bot = app.token_for("bot", Role::Admin).await;
    app.create_user("vic", Role::Viewer).await;
    let sqlite = format!("sqlite://{}", app.data_dir.path().join("pg.db").display());
    app.register("pg", &sqlite).await;
    let http = reqwest::Client::new();

    for bad in ["%20pg", "pg%20", "%09pg", "pg%0A", "PG", "pg%00", "%C2%A0pg"] {
        let api = |method: reqwest::Method, path: String| {
            http.request(method, app.url(&path)).bearer_auth(&bot).send()
        };
        for (method, path) in [
            (reqwest::Method::DELETE, format!("/api/v1/databases/{bad}")),
            (reqwest::Method::GET, format!("/api/v1/databases/{bad}")),
            (reqwest::Method::GET, format!("/api/v1/databases/{bad}/backups")),
            (reqwest::Method::POST, format!("/api/v1/databases/{bad}/backups")),
            (
                reqwest::Method::GET,
                format!("/api/v1/databases/{bad}/migrations"),
            ),
            (
                reqwest::Method::POST,
                format!("/api/v1/users/{}/disable", bad.replace("pg", "vic")),
            ),
        ] {
            let res = api(method.clone(), path.clone()).await.unwrap();
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{method} {path}");
        }
        for path in [format!("/databases/{bad}"), format!("/databases/{bad}/backups")] {
            assert_eq!(
                admin.get(&path).await.status(),
                StatusCode::NOT_FOUND,
                "GET {path}"
            );
        }
        for path in [
            format!("/databases/{bad}/delete"),
            format!("/databases/{bad}/backups"),
            format!("/users/{}/disable", bad.replace("pg", "vic")),
        ] {
            let res = admin.post(&path, &[]).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "POST {path}");
        }
    }
    assert_eq!(targets(&app).await.len(), 1, "pg is still registered");
    assert!(
        app.state.jobs.list(None, None, 10).await.unwrap().is_empty(),
        "no backup started"
    );
    assert!(!app.user("vic").await.unwrap().disabled, "vic is still enabled");
    // The exact name still works.
    let res = api_delete(&app, &bot, "/api/v1/databases/pg").await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn api_delete(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .delete(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}
