//! Sign-in, sign-out, throttling, session rotation and session death.

use custodian::domain::Role;
use custodian::service::throttle::FREE_FAILURES;
use reqwest::StatusCode;

use crate::helpers::{Client, StoreChoice, TestApp, password_of};
use crate::on_both_stores;

async fn right_password_signs_in_and_wrong_one_does_not(store: StoreChoice) {
    let app = TestApp::spawn_on(store).await;
    app.create_user("dana", Role::Operator).await;

    let mut browser = app.client();
    let res = browser.login("dana", "not her password").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(html.contains("Wrong user name or password."), "the form says so");
    let (status, _) = browser.text("/").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "still signed out");

    let res = browser.login("dana", &password_of("dana")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/");
    let (status, html) = browser.text("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("dana"), "the navigation names the user");

    let logins: Vec<_> = app
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "login")
        .collect();
    assert_eq!(logins.len(), 2);
    assert_eq!(
        (logins[0].outcome.as_str(), logins[0].detail.as_str()),
        ("failure", "wrong password")
    );
    assert_eq!(logins[1].outcome, "success");
    assert_eq!(logins[1].actor, "dana");
    assert_eq!(logins[1].client_addr, "127.0.0.1");
}
on_both_stores!(right_password_signs_in_and_wrong_one_does_not);

#[tokio::test]
async fn unknown_user_names_are_not_recorded() {
    let app = TestApp::spawn().await;
    let mut browser = app.client();
    // People type passwords into the user box; it must not land in the log.
    let res = browser.login("correct-horse-battery", "whatever").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let row = app.audit().await.pop().unwrap();
    assert_eq!((row.action.as_str(), row.outcome.as_str()), ("login", "failure"));
    assert!(!format!("{row:?}").contains("correct-horse"), "{row:?}");
}

#[tokio::test]
async fn repeated_failures_hold_back_that_name_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    app.create_user("erin", Role::Viewer).await;
    let mut browser = app.client();
    for _ in 0..FREE_FAILURES {
        let res = browser.login("erin", "guess-guess-guess").await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let res = browser.login("erin", &password_of("erin")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    assert!(res.text().await.unwrap().contains("Too many failed sign-ins"));
    let (status, _) = browser.text("/").await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the throttled attempt did not sign in"
    );
    let last = app.audit().await.pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.outcome.as_str()),
        ("login", "throttled")
    );

    // Another user from the same address is not held back by erin's failures.
    app.create_user("fred", Role::Viewer).await;
    let res = app.client().login("fred", &password_of("fred")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn session_id_changes_at_sign_in_and_sign_out_ends_it() {
    let app = TestApp::spawn().await;
    app.create_user("hank", Role::Viewer).await;
    // A session id planted in the browser (fixation) is not the one that
    // signs in: the sign-in page makes no session, sign-in makes a new one.
    let before = "AAAAAAAAAAAAAAAAAAAAAA".to_string();
    let mut browser = Client::with_session_cookie(&app.url(""), &before);
    let res = browser.login("hank", &password_of("hank")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let after = browser.session_cookie().expect("signed-in session");
    assert_ne!(before, after, "a new session id at sign-in (no fixation)");

    // The pre-login id is worthless.
    let (status, _) = Client::with_session_cookie(&browser.base, &before)
        .text("/")
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    browser.refresh_csrf().await;
    let res = browser.post("/logout", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, _) = browser.text("/").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "signed out");
    // Replaying the old cookie does not bring the session back.
    let (status, _) = Client::with_session_cookie(&browser.base, &after).text("/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let last = app.audit().await.pop().unwrap();
    assert_eq!((last.action.as_str(), last.actor.as_str()), ("logout", "hank"));
}

/// The Set-Cookie header for cookie `name` in `res`.
fn set_cookie(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", res.headers()))
}

#[tokio::test]
async fn cookies_are_httponly_and_samesite_strict() {
    for secure in [false, true] {
        let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| c.secure_cookies = secure).await;
        app.create_user("pat", Role::Viewer).await;
        // The sign-in form's cookie (its CSRF nonce), and the session's.
        let form = set_cookie(&app.client().get("/login").await, "custodian_signin");
        let res = app.client().login("pat", &password_of("pat")).await;
        let session = set_cookie(&res, "custodian_session");
        for cookie in [form, session] {
            assert!(cookie.contains("HttpOnly"), "{cookie}");
            assert!(cookie.contains("SameSite=Strict"), "{cookie}");
            assert_eq!(
                cookie.contains("Secure"),
                secure,
                "Secure exactly when secure_cookies is set (plain HTTP on localhost by default): {cookie}"
            );
        }
    }
}

#[tokio::test]
async fn disabled_users_sessions_die_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let victim = app.signed_in("ivan", Role::Operator).await;
    assert_eq!(victim.text("/").await.0, StatusCode::OK);

    let res = admin.post("/users/ivan/disable", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        victim.text("/").await.0,
        StatusCode::SEE_OTHER,
        "the disabled user's session is gone"
    );
    let res = app.client().login("ivan", &password_of("ivan")).await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "and they cannot sign in again"
    );
}

#[tokio::test]
async fn idle_and_absolute_timeouts_end_sessions() {
    // Timeouts of one second: the test waits for them to pass.
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        c.session_idle_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let browser = app.signed_in("jack", Role::Viewer).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(browser.text("/").await.0, StatusCode::SEE_OTHER, "idle too long");

    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| {
        c.session_absolute_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let browser = app.signed_in("kate", Role::Viewer).await;
    assert_eq!(browser.text("/").await.0, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        browser.text("/").await.0,
        StatusCode::SEE_OTHER,
        "past the absolute limit"
    );
}

#[tokio::test]
async fn sign_in_returns_to_the_page_asked_for_but_never_off_site() {
    let app = TestApp::spawn().await;
    app.create_user("lena", Role::Admin).await;
    let mut browser = app.client();
    let res = browser.get("/users").await;
    assert_eq!(res.headers()["location"], "/login?next=%2Fusers");

    let (_, html) = browser.text("/login?next=%2Fusers").await;
    browser.csrf = crate::helpers::csrf_in(&html).unwrap();
    let res = browser
        .post(
            "/login",
            &[
                ("name", "lena"),
                ("password", &password_of("lena")),
                ("next", "/users"),
            ],
        )
        .await;
    assert_eq!(res.headers()["location"], "/users");

    let mut other = app.client();
    let (_, html) = other.text("/login").await;
    other.csrf = crate::helpers::csrf_in(&html).unwrap();
    let res = other
        .post(
            "/login",
            &[
                ("name", "lena"),
                ("password", &password_of("lena")),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(res.headers()["location"], "/", "an off-site next is ignored");
}

/// Targets that browsers would read as another site, or that carry bytes no
/// sane path has. Each must send the user to "/", never elsewhere.
const HOSTILE_NEXTS: &[&str] = &[
    "/\t/evil.example",
    "/\t\t/evil.example/x",
    "/%09/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/%0d%0aSet-Cookie:%20x=y",
    "/\\evil.example",
    "\\\\evil.example",
    "/%5Cevil.example",
    "//evil.example",
    "///evil.example",
    " //evil.example",
    "https://evil.example/",
    "HTTPS://evil.example/",
    "javascript:alert(1)",
    "/\u{0}/evil.example",
    "/\u{7f}/evil.example",
    "/\u{85}/evil.example",
];

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn sign_in_never_redirects_to_a_target_browsers_read_as_another_site() {
    let app = TestApp::spawn().await;
    app.create_user("mona", Role::Viewer).await;
    for next in HOSTILE_NEXTS {
        let mut browser = app.client();
        let (_, html) = browser.text("/login").await;
        browser.csrf = crate::helpers::csrf_in(&html).unwrap();
        let res = browser
            .post(
                "/login",
                &[
                    ("name", "mona"),
                    ("password", &password_of("mona")),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "next {next:?}");
        assert_eq!(location(&res), "/", "next {next:?} is refused");
    }
}

#[tokio::test]
async fn a_signed_in_visit_to_the_login_page_never_redirects_off_site() {
    let app = TestApp::spawn().await;
    let browser = app.signed_in("nina", Role::Viewer).await;
    for next in HOSTILE_NEXTS {
        let query: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
        let res = browser.get(&format!("/login?next={query}")).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "next {next:?}");
        assert_eq!(location(&res), "/", "next {next:?} is refused");
    }
    // The exact request of the report.
    let res = browser.get("/login?next=%2F%09%2Fevil.example").await;
    assert_eq!(location(&res), "/");
}

#[tokio::test]
async fn the_login_form_does_not_carry_a_hostile_next() {
    let app = TestApp::spawn().await;
    let (_, html) = app.client().text("/login?next=%2F%09%2Fevil.example").await;
    assert!(html.contains(r#"name="next" value="/""#), "{html}");
}

#[tokio::test]
async fn paths_of_the_panel_survive_the_round_trip_through_sign_in() {
    let app = TestApp::spawn().await;
    app.create_user("olga", Role::Viewer).await;
    for (next, expected) in [
        ("/users", "/users"),
        (
            "/databases/demo/activity?sort=age&dir=desc",
            "/databases/demo/activity?sort=age&dir=desc",
        ),
        ("/audit?actor=olga#top", "/audit?actor=olga#top"),
        ("/jobs/../users", "/users"),
        ("", "/"),
    ] {
        let mut browser = app.client();
        let (_, html) = browser.text("/login").await;
        browser.csrf = crate::helpers::csrf_in(&html).unwrap();
        let res = browser
            .post(
                "/login",
                &[
                    ("name", "olga"),
                    ("password", &password_of("olga")),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(location(&res), expected, "next {next:?}");
    }
}
