//! The sign-in throttle as an attacker probes it: it must not tell which
//! names exist, must not let one address lock a user out of every other,
//! must hold across instances sharing a store, and a flood of refused or
//! anonymous requests must not grow the store.

use custodian::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{Client, StoreChoice, TestApp, password_of};
use crate::on_both_stores;

fn behind_proxy(c: &mut custodian::config::Config) {
    c.trust_proxy_headers = true;
}

/// One sign-in attempt: status, the form's message, and Retry-After.
async fn attempt(client: &mut Client, name: &str, password: &str) -> (StatusCode, String, Option<String>) {
    let res = client.login(name, password).await;
    let status = res.status();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let html = res.text().await.unwrap();
    let message = html
        .split("role=\"alert\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or("")
        .to_string();
    (status, message, retry)
}

async fn known_and_unknown_names_get_the_same_answers(store: StoreChoice) {
    let app = TestApp::spawn_with(store, behind_proxy).await;
    app.create_user("erin", Role::Admin).await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    let mut a = app.client_from("10.0.0.1");
    let mut b = app.client_from("10.0.0.2");
    for _ in 0..8 {
        known.push(attempt(&mut a, "erin", "guess-guess-guess").await);
        unknown.push(attempt(&mut b, "erik", "guess-guess-guess").await);
    }
    let statuses: Vec<_> = known.iter().map(|(s, _, _)| s.as_u16()).collect();
    // The waits may differ by the second that passed between the two.
    let alike = |answers: &[(StatusCode, String, Option<String>)]| -> Vec<(StatusCode, String, bool)> {
        answers
            .iter()
            .map(|(s, m, r)| (*s, m.replace(|c: char| c.is_ascii_digit(), "#"), r.is_some()))
            .collect()
    };
    assert_eq!(
        alike(&known),
        alike(&unknown),
        "a real name and an unknown one are answered alike"
    );
    assert!(
        statuses.contains(&429),
        "repeated failures are throttled: {statuses:?}"
    );
    for (status, _, retry) in &known {
        assert_eq!(
            *status == StatusCode::TOO_MANY_REQUESTS,
            retry.is_some(),
            "a 429 says when to come back, nothing else does"
        );
    }
}
on_both_stores!(known_and_unknown_names_get_the_same_answers);

#[tokio::test]
async fn a_user_failing_from_one_address_can_still_sign_in_from_another() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, behind_proxy).await;
    app.create_user("fay", Role::Admin).await;
    let mut attacker = app.client_from("203.0.113.7");
    for _ in 0..10 {
        attempt(&mut attacker, "fay", "guess-guess-guess").await;
    }
    let (status, _, _) = attempt(&mut attacker, "fay", &password_of("fay")).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the guessing address is held back, even with the right password"
    );
    let mut office = app.client_from("198.51.100.20");
    let res = office.login("fay", &password_of("fay")).await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "fay signs in from her own address"
    );
}

#[tokio::test]
async fn the_delay_grows_with_each_failure_and_a_success_clears_it() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, behind_proxy).await;
    app.create_user("gus", Role::Viewer).await;
    let mut browser = app.client_from("10.1.1.1");
    for _ in 0..custodian::service::throttle::FREE_FAILURES {
        let (status, _, _) = attempt(&mut browser, "gus", "guess-guess-guess").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let mut waits = Vec::new();
    for _ in 0..4 {
        let (status, _, retry) = attempt(&mut browser, "gus", "guess-guess-guess").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        waits.push(retry.unwrap().parse::<i64>().unwrap());
        // Let the wait pass (in the store, not by sleeping), then fail again.
        app.store_exec("UPDATE login_throttle SET next_at = 0").await;
        let (status, _, _) = attempt(&mut browser, "gus", "guess-guess-guess").await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "one more try after the wait"
        );
    }
    assert!(
        waits.windows(2).all(|w| w[1] > w[0]),
        "each failure doubles the wait: {waits:?}"
    );
    assert!(
        *waits.last().unwrap() <= custodian::service::throttle::MAX_DELAY_SECS,
        "capped: {waits:?}"
    );
    app.store_exec("UPDATE login_throttle SET next_at = 0").await;
    let res = browser.login("gus", &password_of("gus")).await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "the right password after the wait"
    );
    let (status, _, _) = attempt(&mut app.client_from("10.1.1.1"), "gus", "one-typo").await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a success starts the count again"
    );
}

#[tokio::test]
async fn the_throttle_holds_across_instances_sharing_a_store() {
    let key = "ab".repeat(32);
    let first = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        behind_proxy(c);
        c.secret_key = Some(key.clone().into());
    })
    .await;
    first.create_user("hal", Role::Viewer).await;
    let store_url = format!(
        "sqlite://{}",
        first.data_dir.path().join("custodian.db").display()
    );
    let second = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        behind_proxy(c);
        c.secret_key = Some(key.clone().into());
        c.store_url = Some(custodian::config::SecretUrl::new(store_url));
    })
    .await;
    let mut on_first = first.client_from("10.2.2.2");
    for _ in 0..custodian::service::throttle::FREE_FAILURES {
        attempt(&mut on_first, "hal", "guess-guess-guess").await;
    }
    let mut on_second = second.client_from("10.2.2.2");
    let (status, _, _) = attempt(&mut on_second, "hal", &password_of("hal")).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the other instance knows about the failures"
    );
}

#[tokio::test]
async fn many_failures_from_one_address_hold_back_every_name_from_it() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, behind_proxy).await;
    app.create_user("ida", Role::Viewer).await;
    let mut browser = app.client_from("192.0.2.9");
    for i in 0..custodian::service::throttle::MAX_FAILURES_PER_CLIENT {
        let (status, _, _) = attempt(&mut browser, &format!("nobody{i}"), "x").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (status, _, retry) = attempt(&mut browser, "ida", &password_of("ida")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some());
    let res = app
        .client_from("192.0.2.10")
        .login("ida", &password_of("ida"))
        .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "other addresses are not affected"
    );
}

#[tokio::test]
async fn typed_names_never_reach_the_store_in_clear() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, behind_proxy).await;
    let mut browser = app.client_from("10.3.3.3");
    for _ in 0..6 {
        attempt(&mut browser, "Correct-Horse-Battery", "whatever").await;
    }
    // Every byte the store holds on disk, free pages and the WAL included.
    let mut bytes = Vec::new();
    for file in ["custodian.db", "custodian.db-wal"] {
        if let Ok(b) = std::fs::read(app.data_dir.path().join(file)) {
            bytes.extend(b);
        }
    }
    let text = String::from_utf8_lossy(&bytes).to_lowercase();
    assert!(text.contains("audit_log"), "these are the store's bytes");
    assert!(!text.contains("correct-horse"), "the typed name is not stored");
}

/// Store rows that a flood could add: audit rows and session rows.
async fn rows(app: &TestApp) -> (i64, i64) {
    (
        app.store_i64("SELECT COUNT(*) FROM audit_log").await,
        app.stored_session_ids().await.len() as i64,
    )
}

async fn a_flood_of_refused_sign_ins_writes_one_audit_row_per_window(store: StoreChoice) {
    let app = TestApp::spawn_with(store, behind_proxy).await;
    app.create_user("jo", Role::Viewer).await;
    let mut browser = app.client_from("198.18.0.1");
    for i in 0..20 {
        attempt(&mut browser, &format!("nobody{i}"), "x").await;
    }
    let before = rows(&app).await;
    for _ in 0..40 {
        let (status, _, _) = attempt(&mut browser, "jo", "guess").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    let after = rows(&app).await;
    assert_eq!(
        after.0 - before.0,
        1,
        "one audit row for the refusals of this window"
    );
    assert_eq!(after.1, before.1, "and no session row");
    let row = app.audit().await.pop().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("login", "throttled")
    );
    assert_eq!(row.client_addr, "198.18.0.1");

    // When the window ends, the rest are written as one row with the count.
    let window_end = custodian::store::now() + custodian::service::throttle::THROTTLE_WINDOW_SECS;
    let written = app
        .state
        .throttle
        .flush_due(&app.state.store, window_end)
        .await
        .unwrap();
    assert_eq!(written, 1);
    let row = app.audit().await.pop().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("login", "throttled")
    );
    assert!(row.detail.contains("refused 39 more"), "{row:?}");
    assert_eq!(rows(&app).await.0 - after.0, 1);
    // Nothing is left to write.
    assert_eq!(
        app.state
            .throttle
            .flush_due(&app.state.store, window_end)
            .await
            .unwrap(),
        0
    );
}
on_both_stores!(a_flood_of_refused_sign_ins_writes_one_audit_row_per_window);

#[tokio::test]
async fn anonymous_visitors_store_no_session() {
    let app = TestApp::spawn().await;
    app.create_user("kim", Role::Viewer).await;
    for i in 0..10 {
        let mut browser = app.client();
        assert_eq!(browser.text("/login").await.0, StatusCode::OK);
        assert_eq!(browser.text("/login?next=%2Fusers").await.0, StatusCode::OK);
        let (status, _, _) = attempt(&mut browser, &format!("kim{i}"), "wrong-password").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(
        app.stored_session_ids().await.len(),
        0,
        "no row for anyone not signed in"
    );
    let mut browser = app.client();
    assert_eq!(
        browser.login("kim", &password_of("kim")).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(app.stored_session_ids().await.len(), 1, "one row once signed in");
}
