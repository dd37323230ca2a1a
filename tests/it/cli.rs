//! The CLI works on the same store as the server: users and tokens made on
//! the command line work in the panel, and are audited as `cli:<user>`.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::StatusCode;

use custodian::domain::Role;

use crate::helpers::{StoreChoice, TestApp, api_get};

fn custodian(data_dir: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_custodian"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("CUSTODIAN_CONFIG")
        .env_remove("CUSTODIAN_STORE_URL")
        .env("USER", "ci-runner")
        .current_dir(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run custodian");
    // A command refused before it reads stdin closes the pipe: that is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn users_and_tokens_from_the_cli_work_in_the_panel() {
    let app = TestApp::spawn().await;
    let dir = app.data_dir.path();

    let (ok, out, err) = custodian(
        dir,
        &[
            "user",
            "add",
            "wendy",
            "--role",
            "admin",
            "--approver",
            "--password-stdin",
        ],
        "wendy-password-1\n",
    );
    assert!(ok, "user add: {err}");
    assert!(out.contains("created wendy (admin, approver)"), "{out}");

    let (ok, _, err) = custodian(
        dir,
        &["user", "add", "Wendy!", "--role", "admin", "--password-stdin"],
        "wendy-password-1\n",
    );
    assert!(
        !ok && err.contains("user name may use"),
        "a bad name is refused: {err}"
    );
    let (ok, _, err) = custodian(
        dir,
        &["user", "add", "xavi", "--role", "root", "--password-stdin"],
        "xavi-password-1\n",
    );
    assert!(!ok && err.contains("role must be"), "{err}");
    let (ok, _, err) = custodian(
        dir,
        &["user", "add", "xavi", "--role", "viewer", "--password-stdin"],
        "short\n",
    );
    assert!(!ok && err.contains("at least 10"), "{err}");

    // The server sees the CLI's user at once: same store.
    let res = app.client().login("wendy", "wendy-password-1").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let (ok, out, _) = custodian(dir, &["user", "list"], "");
    assert!(ok && out.contains("wendy") && out.contains("admin"), "{out}");

    let (ok, token, err) = custodian(dir, &["token", "create", "wendy", "--name", "bootstrap"], "");
    assert!(ok, "{err}");
    let token = token.trim();
    assert!(token.starts_with("cust_"), "{token}");
    assert!(err.contains("shown once"));
    assert_eq!(api_get(&app, token, "/api/v1/me").await.status(), StatusCode::OK);

    let (ok, out, err) = custodian(
        dir,
        &["user", "passwd", "wendy", "--password-stdin"],
        "wendy-password-2\n",
    );
    assert!(ok, "{err}");
    assert!(out.contains("password changed"));
    let res = app.client().login("wendy", "wendy-password-2").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let (ok, _, err) = custodian(dir, &["user", "disable", "wendy"], "");
    assert!(
        !ok && err.contains("no enabled admin"),
        "the last admin stays: {err}"
    );
    let (ok, _, _) = custodian(
        dir,
        &["user", "add", "yuri", "--role", "viewer", "--password-stdin"],
        "yuri-password-1\n",
    );
    assert!(ok);
    let (ok, out, err) = custodian(dir, &["user", "disable", "yuri"], "");
    assert!(ok && out.contains("disabled yuri"), "{err}");

    let cli_rows: Vec<_> = app.audit().await.into_iter().filter(|r| r.via == "cli").collect();
    let actions: Vec<&str> = cli_rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "user.create",
            "token.create",
            "user.password",
            "user.disable",
            "user.create",
            "user.disable"
        ],
        "each CLI change is audited once (input errors change nothing)"
    );
    assert!(cli_rows.iter().all(|r| r.actor == "cli:ci-runner"));
}

#[tokio::test]
async fn check_prints_the_configuration_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("custodian.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:9999\"\nstore_url = \"postgres://panel:s3cret-pw@127.0.0.1:1/none\"\n",
    )
    .unwrap();
    let (ok, out, err) = custodian(dir.path(), &["--config", config.to_str().unwrap(), "check"], "");
    assert!(!ok, "the store is unreachable, so check fails");
    assert!(out.contains("127.0.0.1:9999"), "{out}");
    assert!(out.contains("postgres://panel:***@127.0.0.1:1/none"), "{out}");
    assert!(
        !out.contains("s3cret") && !err.contains("s3cret"),
        "no password printed: {out} {err}"
    );

    std::fs::write(&config, "listen = \"not an address\"\n").unwrap();
    let (ok, _, err) = custodian(dir.path(), &["--config", config.to_str().unwrap(), "check"], "");
    assert!(!ok && err.contains("invalid configuration"), "{err}");
    std::fs::write(&config, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let (ok, _, err) = custodian(dir.path(), &["--config", config.to_str().unwrap(), "check"], "");
    assert!(!ok && err.contains("lisen"), "a typo'd key is named: {err}");

    std::fs::remove_file(&config).unwrap();
    let (ok, out, err) = custodian(dir.path(), &["check"], "");
    assert!(ok, "{err}");
    assert!(
        out.contains("127.0.0.1:8080") && out.contains("custodian.db"),
        "defaults: {out}"
    );
}

#[tokio::test]
async fn serve_starts_on_nothing_prints_the_setup_link_and_stops_on_sigterm() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_custodian"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("CUSTODIAN_CONFIG")
        .env_remove("CUSTODIAN_STORE_URL")
        .env_remove("CUSTODIAN_DATA_DIR")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Read stdout to its end in a thread (a closed pipe would be a
    // different test) and hand over the first link it prints.
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in stdout.lines().map_while(Result::ok) {
            if line.trim().starts_with("http://")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(line.trim().to_string());
            }
        }
    });
    let link = rx.await.expect("the server prints a setup link");
    assert!(link.contains("/setup?token="), "{link}");
    assert!(
        dir.path().join("custodian-data/custodian.db").exists(),
        "the default store was created"
    );

    let base = &link[..link.find("/setup").unwrap()];
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let setup = reqwest::get(&link).await.unwrap();
    assert_eq!(
        setup.status(),
        StatusCode::OK,
        "the printed link opens the setup page"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "a clean exit on SIGTERM: {status:?}");
}

#[tokio::test]
async fn databases_from_the_cli_appear_in_the_panel() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        c.poll_interval = std::time::Duration::from_secs(1)
    })
    .await;
    let dir = app.data_dir.path();
    let pg = crate::helpers::TestDb::postgres().await;
    let mut url = url::Url::parse(&pg.url).unwrap();
    url.set_password(Some("cli-secret-pw")).unwrap();

    let (ok, out, err) = custodian(
        dir,
        &["db", "add", "reports", "--url", url.as_str(), "--rpo", "24h"],
        "",
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("added reports (PostgreSQL") && out.contains("connected: version"),
        "{out}"
    );
    assert!(!out.contains("cli-secret-pw"), "{out}");

    let (ok, _, err) = custodian(dir, &["db", "add", "reports", "--url", url.as_str()], "");
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = custodian(dir, &["db", "add", "bad", "--url", "ftp://x"], "");
    assert!(!ok && err.contains("unknown engine"), "{err}");

    let (ok, out, _) = custodian(dir, &["db", "list"], "");
    assert!(
        ok && out.contains("reports") && out.contains("postgres:***@"),
        "{out}"
    );
    assert!(!out.contains("cli-secret-pw"));

    // The running server picks up the CLI's change on its own.
    let token = app.token_for("bot", Role::Viewer).await;
    let v = app.checked(&token, "reports").await;
    assert_eq!(v["reachable"], true, "{v}");

    let (ok, out, _) = custodian(dir, &["db", "remove", "reports"], "");
    assert!(ok && out.contains("removed reports"));
    crate::helpers::eventually("the server to drop reports", || async {
        let res = api_get(&app, &token, "/api/v1/databases/reports").await;
        (res.status() == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
}

#[tokio::test]
async fn migrate_apply_respects_approvals_and_status_shows_the_result() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |_| {}).await;
    let dir = app.data_dir.path();
    let pg = crate::helpers::TestDb::postgres().await;
    let migrations = tempfile::tempdir().unwrap();
    std::fs::write(
        migrations.path().join("V1__orders.sql"),
        "CREATE TABLE orders (id bigint PRIMARY KEY);\n",
    )
    .unwrap();
    let (ok, _, err) = custodian(
        dir,
        &[
            "db",
            "add",
            "shop",
            "--url",
            &pg.url,
            "--migrations-dir",
            migrations.path().to_str().unwrap(),
        ],
        "",
    );
    assert!(ok, "{err}");

    let (ok, out, _) = custodian(dir, &["migrate", "status", "shop"], "");
    assert!(ok);
    assert!(
        out.contains("pending (1):") && out.contains("V1__orders.sql"),
        "{out}"
    );

    // One approval needed and none given: nothing runs.
    let (ok, _, err) = custodian(dir, &["migrate", "apply", "shop"], "");
    assert!(!ok);
    assert!(err.contains("no approved request"), "{err}");
    let (_, out, _) = custodian(dir, &["migrate", "status", "shop", "--format", "json"], "");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        status["pending"].as_array().map(Vec::len),
        Some(1),
        "still pending"
    );

    // A development database: no approvals needed.
    let (ok, out, err) = custodian(dir, &["migrate", "approvals", "shop", "0"], "");
    assert!(ok, "{err}");
    assert!(out.contains("0 approval(s)"), "{out}");
    let (ok, out, err) = custodian(dir, &["migrate", "apply", "shop"], "");
    assert!(ok, "{err}");
    assert!(out.contains("applied 1 (orders)"), "{out}");
    let (_, out, _) = custodian(dir, &["migrate", "status", "shop", "--format", "json"], "");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["pending"].as_array().map(Vec::len), Some(0), "{status}");
    assert_eq!(status["applied"][0]["applied_by"], "cli:ci-runner", "{status}");
    let (ok, out, _) = custodian(dir, &["migrate", "apply", "shop"], "");
    assert!(ok);
    assert!(out.contains("nothing pending"), "{out}");

    // CI submits the next migration from its own checkout.
    let ci = tempfile::tempdir().unwrap();
    let file = ci.path().join("V2__customer.sql");
    std::fs::write(&file, "ALTER TABLE orders ADD COLUMN customer_id bigint;\n").unwrap();
    let (ok, out, err) = custodian(dir, &["migrate", "submit", "shop", file.to_str().unwrap()], "");
    assert!(ok, "{err}");
    assert!(out.contains("V2__customer.sql: submitted"), "{out}");
    assert!(migrations.path().join("V2__customer.sql").exists());
    // The live gate for what is pending: the ALTER's lock on orders, go.
    let (ok, out, err) = custodian(dir, &["migrate", "gate", "shop", "--format", "json"], "");
    assert!(ok, "{out} {err}");
    let gate: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(gate["verdict"], "go", "{gate}");
    assert_eq!(gate["statements"][0]["lock"], "ACCESS EXCLUSIVE", "{gate}");
    assert_eq!(gate["statements"][0]["table"], "public.orders", "{gate}");
    let (ok, out, _) = custodian(dir, &["migrate", "apply", "shop"], "");
    assert!(ok && out.contains("applied 2"), "{out}");
}
