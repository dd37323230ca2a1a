//! A registered URL's password appears nowhere: not in any page, API
//! answer, log line, audit row, or the store file.

use std::io::Write;
use std::sync::{Arc, Mutex};

use custodian::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{TestApp, TestPg, api_get};

const PASSWORD: &str = "Zq7-very-secret-pw";

/// Log lines written during the test, from this thread's subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_registered_password_appears_in_no_page_answer_log_or_row() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("bot", Role::Admin).await;
    let pg = TestPg::create().await;
    // Trust authentication accepts any password, so the URL still works.
    let mut url = url::Url::parse(&pg.url).unwrap();
    url.set_password(Some(PASSWORD)).unwrap();

    let res = admin
        .post(
            "/databases/test-connection",
            &[("name", "shop"), ("url", url.as_str())],
        )
        .await;
    let tested = res.text().await.unwrap();
    assert!(tested.contains("Connected"), "{tested}");
    let res = admin
        .post(
            "/databases",
            &[("name", "shop"), ("url", url.as_str()), ("rpo", "24h")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    app.checked(&token, "shop").await;
    // A second, bad submission with the password: the form comes back without it.
    let res = admin
        .post(
            "/databases",
            &[("name", "shop"), ("url", url.as_str()), ("rpo", "whenever")],
        )
        .await;
    let refused = res.text().await.unwrap();
    let mut outputs = vec![tested, refused];

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
        let res = api_get(&app, &token, path).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        outputs.push(res.text().await.unwrap());
    }
    let (_, detail) = admin.text("/databases/shop").await;
    assert!(
        detail.contains("***"),
        "the page shows the URL with the password masked"
    );

    for (i, out) in outputs.iter().enumerate() {
        assert!(!out.contains(PASSWORD), "output {i} shows the password");
    }
    for row in app.audit().await {
        assert!(!format!("{row:?}").contains(PASSWORD), "audit row {row:?}");
    }
    let captured = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(captured.contains("request"), "the logs were captured");
    assert!(!captured.contains(PASSWORD), "a log line shows the password");
    for entry in std::fs::read_dir(app.data_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let found = bytes.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes());
            assert!(!found, "{} holds the password in the clear", path.display());
        }
    }
}
