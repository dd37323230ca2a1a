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
