//! First run: the one-time setup link creates the first admin, once.

use custodian::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{StoreChoice, TestApp, csrf_in};
use crate::on_both_stores;

async fn setup_link_creates_the_first_admin_once(store: StoreChoice) {
    let app = TestApp::spawn_on(store).await;
    let token = app
        .setup_token
        .clone()
        .expect("a store with no users prints a setup link");
    let mut browser = app.client();

    let (status, _) = browser.text("/setup?token=not-the-token").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a wrong token opens nothing");

    let (status, html) = browser.text(&format!("/setup?token={token}")).await;
    assert_eq!(status, StatusCode::OK);
    browser.csrf = csrf_in(&html).unwrap();

    // A mistyped confirmation is refused and creates nobody.
    let res = browser
        .post(
            "/setup",
            &[
                ("token", &token),
                ("name", "root"),
                ("password", "first-admin-pw"),
                ("confirm", "other-pw-123"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(app.user("root").await.is_none());

    let res = browser
        .post(
            "/setup",
            &[
                ("token", &token),
                ("name", "root"),
                ("password", "first-admin-pw"),
                ("confirm", "first-admin-pw"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let admin = app.user("root").await.expect("the admin exists");
    assert_eq!(admin.role, Role::Admin);
    assert!(admin.can_approve, "the first admin may approve");

    // Setup signs the new admin in.
    let (status, html) = browser.text("/users").await;
    assert_eq!(status, StatusCode::OK, "the new admin sees the users page");
    assert!(html.contains("root"));

    // The link is spent, for this browser and any other.
    let (status, _) = app.client().text(&format!("/setup?token={token}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mut other = app.client();
    other.refresh_csrf().await;
    let res = other
        .post(
            "/setup",
            &[
                ("token", &token),
                ("name", "intruder"),
                ("password", "intruder-pw-123"),
                ("confirm", "intruder-pw-123"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(app.user("intruder").await.is_none());

    let setups: Vec<_> = app
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "setup")
        .collect();
    let outcomes: Vec<&str> = setups.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        ["failure", "success", "failure"],
        "the mistyped attempt, the setup and the refused reuse are each audited once"
    );
}
on_both_stores!(setup_link_creates_the_first_admin_once);

#[tokio::test]
async fn no_setup_link_once_users_exist() {
    let app = TestApp::spawn().await;
    app.create_user("admin", Role::Admin).await;
    let again = custodian::service::setup::prepare(&app.state.store)
        .await
        .unwrap();
    assert!(again.is_none());
    let token = app.setup_token.clone().unwrap();
    let (status, _) = app.client().text(&format!("/setup?token={token}")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the first-run link died when users appeared"
    );
}
