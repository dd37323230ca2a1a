//! A registered URL's password appears nowhere: not in any page, API
//! answer, log line (the real binary at trace level), audit row, or the
//! store's files.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;

use crate::helpers::{Client, TestDb, csrf_in};

const PASSWORD: &str = "Zq7-very-secret-pw";

fn custodian(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custodian"));
    cmd.arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("CUSTODIAN_CONFIG")
        .env_remove("CUSTODIAN_STORE_URL")
        .env("RUST_LOG", "trace")
        .current_dir(dir);
    cmd
}

#[tokio::test]
async fn a_registered_password_appears_in_no_page_answer_log_or_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut add = custodian(dir.path())
        .args(["user", "add", "root", "--role", "admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(b"root-password-1\n").unwrap();
    assert!(add.wait().unwrap().success());
    let token = custodian(dir.path())
        .args(["token", "create", "root", "--name", "bot"])
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();

    let mut server = custodian(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--no-demo"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let logs = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let reader = {
        let logs = logs.clone();
        let stderr = server.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on http://") {
                    let addr = line[i + "listening on ".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr.to_string());
                    }
                }
                let mut l = logs.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        })
    };
    let base = rx.await.expect("the server says where it listens");

    let pg = TestDb::postgres().await;
    // Trust authentication accepts any password, so the URL still works.
    let mut url = url::Url::parse(&pg.url).unwrap();
    url.set_password(Some(PASSWORD)).unwrap();

    let mut admin = Client::new(&base);
    let (_, html) = admin.text("/login").await;
    admin.csrf = csrf_in(&html).unwrap();
    let res = admin
        .post("/login", &[("name", "root"), ("password", "root-password-1")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    admin.refresh_csrf().await;

    let mut outputs = Vec::new();
    let res = admin
        .post(
            "/databases/test-connection",
            &[("name", "shop"), ("url", url.as_str())],
        )
        .await;
    outputs.push(res.text().await.unwrap());
    assert!(outputs[0].contains("Connected"), "{}", outputs[0]);
    let res = admin
        .post(
            "/databases",
            &[("name", "shop"), ("url", url.as_str()), ("rpo", "24h")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // A second, bad submission with the password: the form comes back without it.
    let res = admin
        .post(
            "/databases",
            &[("name", "shop"), ("url", url.as_str()), ("rpo", "whenever")],
        )
        .await;
    outputs.push(res.text().await.unwrap());

    let api = |path: &str| {
        reqwest::Client::new()
            .get(format!("{base}{path}"))
            .bearer_auth(&token)
            .send()
    };
    crate::helpers::eventually("shop to be checked", || async {
        let v: serde_json::Value = api("/api/v1/databases/shop").await.ok()?.json().await.ok()?;
        (v["reachable"] == true).then_some(())
    })
    .await;
    // Check again on demand: another round of connecting and logging.
    admin.post("/databases/shop/check", &[]).await;

    for path in [
        "/",
        "/databases",
        "/databases/shop",
        "/databases/shop/edit",
        "/databases/new",
        "/audit",
        "/audit?database=shop",
        "/users",
        "/account",
        "/jobs",
    ] {
        let (status, html) = admin.text(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        outputs.push(html);
    }
    for path in [
        "/api/v1/databases",
        "/api/v1/databases/shop",
        "/api/v1/audit",
        "/api/v1/me",
    ] {
        let res = api(path).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        outputs.push(res.text().await.unwrap());
    }
    let (_, detail) = admin.text("/databases/shop").await;
    assert!(
        detail.contains("***"),
        "the page shows the URL with the password masked"
    );
    let audit: serde_json::Value = api("/api/v1/audit?database=shop")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !audit["entries"].as_array().unwrap().is_empty(),
        "the change was audited"
    );

    // The CLI's listing too.
    let list = custodian(dir.path()).args(["db", "list"]).output().unwrap();
    outputs.push(String::from_utf8_lossy(&list.stdout).into_owned());

    for (i, out) in outputs.iter().enumerate() {
        assert!(!out.contains(PASSWORD), "output {i} shows the password");
    }

    assert!(
        Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    server.wait().unwrap();
    reader.join().unwrap();
    let logs = logs.lock().unwrap().clone();
    assert!(
        logs.contains("/databases/shop") && logs.contains("TRACE"),
        "trace logs were captured"
    );
    assert!(!logs.contains(PASSWORD), "a log line shows the password");

    let data = dir.path().join("data");
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let found = bytes.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes());
            assert!(!found, "{} holds the password in the clear", path.display());
        }
    }
}
