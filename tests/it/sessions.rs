//! Signed-in sessions: what the store keeps of them, how long they live while
//! in use, that a password change ends the user's other sessions (and, when
//! asked, their API tokens), and that their pages are never cached.

use std::time::Duration;

use custodian::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{Client, StoreChoice, TestApp, api_get, api_post, password_of};
use crate::on_both_stores;

async fn the_store_keeps_a_hash_of_the_session_id_not_the_id(store: StoreChoice) {
    let app = TestApp::spawn_on(store).await;
    let browser = app.signed_in("pia", Role::Viewer).await;
    let cookie = browser.session_cookie().expect("a signed-in session cookie");

    let stored = app.stored_session_ids().await;
    assert!(!stored.is_empty(), "the session is in the store");
    assert!(
        !stored.contains(&cookie),
        "the cookie's id {cookie} is not in the session table: {stored:?}"
    );
    assert_eq!(
        browser.text("/").await.0,
        StatusCode::OK,
        "the session still works"
    );

    // A stolen row id is no cookie: presenting it signs nobody in.
    for id in &stored {
        let thief = Client::with_session_cookie(&browser.base, id);
        assert_eq!(thief.text("/").await.0, StatusCode::SEE_OTHER);
    }

    // Sign-out deletes the row the cookie maps to.
    let mut browser = browser;
    browser.refresh_csrf().await;
    assert_eq!(browser.post("/logout", &[]).await.status(), StatusCode::SEE_OTHER);
    assert!(app.stored_session_ids().await.is_empty(), "no row left behind");
}
on_both_stores!(the_store_keeps_a_hash_of_the_session_id_not_the_id);

#[tokio::test]
async fn an_active_user_outlives_an_idle_timeout_shorter_than_a_minute() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        c.session_idle_timeout = Duration::from_secs(3);
    })
    .await;
    let browser = app.signed_in("quentin", Role::Viewer).await;
    // Six seconds of use, a request each second: twice the idle timeout,
    // never idle for more than a third of it.
    for second in 1..=6 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            browser.text("/").await.0,
            StatusCode::OK,
            "still signed in after {second} s of use"
        );
    }
}

#[tokio::test]
async fn pages_are_never_cached() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| c.demo = true).await;
    let admin = app.signed_in("rita", Role::Admin).await;
    for path in [
        "/",
        "/databases",
        "/databases/demo",
        "/databases/demo/activity",
        "/jobs",
        "/audit",
        "/users",
        "/account",
        "/alerts",
        "/no-such-page",
    ] {
        let res = admin.get(path).await;
        assert_eq!(
            res.headers().get("cache-control").map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "GET {path} ({})",
            res.status()
        );
    }
    let res = app.client().get("/login").await;
    assert_eq!(res.headers()["cache-control"], "no-store", "the sign-in page");
    let res = app.client().get("/static/app.css").await;
    assert_ne!(
        res.headers().get("cache-control").map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "assets keep their own caching"
    );
}

/// Sign `name` in twice (two browsers) and give them an API token.
async fn two_sessions_and_a_token(app: &TestApp, name: &str, role: Role) -> (Client, Client, String) {
    let first = app.signed_in(name, role).await;
    let mut second = app.client();
    assert_eq!(
        second.login(name, &password_of(name)).await.status(),
        StatusCode::SEE_OTHER
    );
    second.refresh_csrf().await;
    let user = app.user(name).await.unwrap();
    let token =
        custodian::service::tokens::create(&app.state.store, &custodian::service::Actor::cli(), &user, "bot")
            .await
            .unwrap()
            .secret;
    (first, second, token)
}

async fn token_works(app: &TestApp, token: &str) -> bool {
    api_get(app, token, "/api/v1/me").await.status() == StatusCode::OK
}

async fn changing_your_password_ends_your_other_sessions(store: StoreChoice) {
    let app = TestApp::spawn_on(store).await;
    let (me, other, token) = two_sessions_and_a_token(&app, "sam", Role::Viewer).await;

    let res = me
        .post(
            "/account/password",
            &[
                ("current", &password_of("sam")),
                ("password", "sams-new-password"),
                ("confirm", "sams-new-password"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        me.text("/account").await.0,
        StatusCode::OK,
        "the changer stays signed in"
    );
    assert_eq!(
        other.text("/account").await.0,
        StatusCode::SEE_OTHER,
        "the other session is signed out"
    );
    assert!(token_works(&app, &token).await, "tokens stay unless asked");
    // And the changer's session keeps working for forms too.
    let res = me.post("/account/tokens", &[("name", "after-change")]).await;
    assert_eq!(res.status(), StatusCode::OK);
}
on_both_stores!(changing_your_password_ends_your_other_sessions);

#[tokio::test]
async fn changing_your_password_can_revoke_your_tokens() {
    let app = TestApp::spawn().await;
    let (me, _other, token) = two_sessions_and_a_token(&app, "tara", Role::Viewer).await;
    let (_, account) = me.text("/account").await;
    assert!(account.contains(r#"name="revoke_tokens""#), "the form offers it");
    let res = me
        .post(
            "/account/password",
            &[
                ("current", &password_of("tara")),
                ("password", "taras-new-password"),
                ("confirm", "taras-new-password"),
                ("revoke_tokens", "on"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(!token_works(&app, &token).await, "the token is revoked");
    assert_eq!(me.text("/account").await.0, StatusCode::OK);
    let row = app.audit().await.pop().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("account.password", "success")
    );
    assert!(row.detail.contains("tokens revoked"), "{row:?}");
}

async fn an_admin_reset_ends_the_users_sessions(store: StoreChoice) {
    let app = TestApp::spawn_on(store).await;
    let (admin, admin_elsewhere, _) = two_sessions_and_a_token(&app, "root", Role::Admin).await;
    let (user, _, token) = two_sessions_and_a_token(&app, "uma", Role::Operator).await;

    let res = admin
        .post("/users/uma/password", &[("password", "umas-new-password")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(user.text("/").await.0, StatusCode::SEE_OTHER, "uma is signed out");
    assert!(token_works(&app, &token).await, "tokens stay unless asked");
    assert_eq!(admin.text("/users").await.0, StatusCode::OK, "the admin is not");
    assert_eq!(
        admin_elsewhere.text("/users").await.0,
        StatusCode::OK,
        "nor the admin's other sessions: their password did not change"
    );

    let res = admin
        .post(
            "/users/uma/password",
            &[("password", "umas-newer-password"), ("revoke_tokens", "on")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(!token_works(&app, &token).await, "revoked when asked");
    let mut again = app.client();
    assert_eq!(
        again.login("uma", "umas-newer-password").await.status(),
        StatusCode::SEE_OTHER,
        "the new password works"
    );
}
on_both_stores!(an_admin_reset_ends_the_users_sessions);

#[tokio::test]
async fn an_admin_resetting_their_own_password_keeps_this_session_only() {
    let app = TestApp::spawn().await;
    let (admin, elsewhere, token) = two_sessions_and_a_token(&app, "root", Role::Admin).await;
    let res = admin
        .post("/users/root/password", &[("password", "roots-new-password")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(admin.text("/users").await.0, StatusCode::OK, "this session stays");
    assert_eq!(
        elsewhere.text("/users").await.0,
        StatusCode::SEE_OTHER,
        "the other ends"
    );
    assert!(token_works(&app, &token).await);
}

#[tokio::test]
async fn an_admin_reset_through_the_api_ends_sessions_and_revokes_tokens_when_asked() {
    let app = TestApp::spawn().await;
    let admin_token = app.token_for("root", Role::Admin).await;
    let (user, other, token) = two_sessions_and_a_token(&app, "vera", Role::Viewer).await;

    let res = api_post(
        &app,
        &admin_token,
        "/api/v1/users/vera/password",
        serde_json::json!({"password": "veras-new-password"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["tokens_revoked"], 0, "{body}");
    assert_eq!(user.text("/").await.0, StatusCode::SEE_OTHER);
    assert_eq!(other.text("/").await.0, StatusCode::SEE_OTHER);
    assert!(token_works(&app, &token).await);

    let res = api_post(
        &app,
        &admin_token,
        "/api/v1/users/vera/password",
        serde_json::json!({"password": "veras-newer-password", "revoke_tokens": true}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["tokens_revoked"], 1, "{body}");
    assert!(!token_works(&app, &token).await);
    assert!(
        token_works(&app, &admin_token).await,
        "the admin's own token stays"
    );

    // Bad input is a clear error, not a 500; a viewer may not do it.
    let res = api_post(
        &app,
        &admin_token,
        "/api/v1/users/vera/password",
        serde_json::json!({"password": "short"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = api_post(
        &app,
        &admin_token,
        "/api/v1/users/nobody/password",
        serde_json::json!({"password": "long-enough-password"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let viewer = app.token_for("walt", Role::Viewer).await;
    let res = api_post(
        &app,
        &viewer,
        "/api/v1/users/vera/password",
        serde_json::json!({"password": "walts-takeover-pw"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let audit = app.audit().await;
    let passwords: Vec<_> = audit
        .iter()
        .filter(|r| r.action == "user.password")
        .map(|r| (r.via.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(
        passwords,
        [("api", "success"), ("api", "success"), ("api", "failure")],
        "a password too short is refused before anything happens"
    );
    let denied = audit.last().unwrap();
    assert_eq!(
        (
            denied.action.as_str(),
            denied.actor.as_str(),
            denied.outcome.as_str()
        ),
        ("access.denied", "walt", "denied")
    );
}

fn cli_passwd(app: &TestApp, args: &[&str], password: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_custodian"))
        .arg("--data-dir")
        .arg(app.data_dir.path())
        .args(["user", "passwd"])
        .args(args)
        .arg("--password-stdin")
        .env_remove("CUSTODIAN_CONFIG")
        .env_remove("CUSTODIAN_STORE_URL")
        .current_dir(app.data_dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn a_password_set_on_the_command_line_ends_sessions_and_revokes_tokens_when_asked() {
    let app = TestApp::spawn().await;
    let (user, other, token) = two_sessions_and_a_token(&app, "xena", Role::Operator).await;

    let (ok, out) = cli_passwd(&app, &["xena"], "xenas-new-password");
    assert!(ok, "{out}");
    assert_eq!(user.text("/").await.0, StatusCode::SEE_OTHER);
    assert_eq!(other.text("/").await.0, StatusCode::SEE_OTHER);
    assert!(token_works(&app, &token).await, "tokens stay unless asked");

    let (ok, out) = cli_passwd(&app, &["xena", "--revoke-tokens"], "xenas-newer-password");
    assert!(ok, "{out}");
    assert!(out.contains("1 API token revoked"), "{out}");
    assert!(!token_works(&app, &token).await);
    let row = app.audit().await.pop().unwrap();
    assert_eq!(
        (row.action.as_str(), row.via.as_str(), row.outcome.as_str()),
        ("user.password", "cli", "success")
    );
    assert!(row.detail.contains("tokens revoked"), "{row:?}");
}
