//! API tokens: created in the browser or the CLI, shown once, stored hashed,
//! accepted as Bearer, dead once revoked.

use custodian::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{StoreChoice, TestApp, api_get};
use crate::on_both_stores;

/// The token shown once on the account page after creating it.
fn shown_token(html: &str) -> String {
    let start = html.find("value=\"cust_").expect("the new token is shown") + "value=\"".len();
    let end = html[start..].find('"').unwrap();
    html[start..start + end].to_string()
}

async fn a_token_works_until_revoked_and_is_never_shown_again(store: StoreChoice) {
    let app = TestApp::spawn_on(store).await;
    let browser = app.signed_in("quinn", Role::Operator).await;

    let res = browser.post("/account/tokens", &[("name", "deploy-bot")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let token = shown_token(&res.text().await.unwrap());

    let res = api_get(&app, &token, "/api/v1/me").await;
    assert_eq!(res.status(), StatusCode::OK);
    let me: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("quinn"), Some("operator"))
    );
    // The token carries its user's role: an operator's token is not an admin's.
    assert_eq!(
        api_get(&app, &token, "/api/v1/users").await.status(),
        StatusCode::FORBIDDEN
    );

    // Never shown again, and not stored in the clear.
    let (_, account) = browser.text("/account").await;
    assert!(account.contains("deploy-bot"));
    assert!(
        !account.contains(&token),
        "the account page does not show the token again"
    );
    let stored: Vec<String> = match app.state.store.pool() {
        custodian::store::Pool::Sqlite(p) => sqlx::query_scalar("SELECT token_hash FROM api_tokens")
            .fetch_all(p)
            .await
            .unwrap(),
        custodian::store::Pool::Postgres(p) => sqlx::query_scalar("SELECT token_hash FROM api_tokens")
            .fetch_all(p)
            .await
            .unwrap(),
    };
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(&token[5..]), "only a hash is stored");
    assert!(
        app.audit()
            .await
            .iter()
            .all(|r| !format!("{r:?}").contains(&token[5..])),
        "nor logged"
    );

    let quinn = app.user("quinn").await.unwrap();
    let id = custodian::service::tokens::list(&app.state.store, &quinn)
        .await
        .unwrap()[0]
        .id;
    let res = browser.post(&format!("/account/tokens/{id}/revoke"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        api_get(&app, &token, "/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}
on_both_stores!(a_token_works_until_revoked_and_is_never_shown_again);

#[tokio::test]
async fn a_disabled_users_tokens_stop_working() {
    let app = TestApp::spawn().await;
    let token = app.token_for("rita", Role::Viewer).await;
    assert_eq!(api_get(&app, &token, "/api/v1/me").await.status(), StatusCode::OK);
    let admin = app.token_for("boss", Role::Admin).await;
    let res = reqwest::Client::new()
        .post(app.url("/api/v1/users/rita/disable"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        api_get(&app, &token, "/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn one_user_cannot_revoke_anothers_token() {
    let app = TestApp::spawn().await;
    let victim_token = app.token_for("sam", Role::Viewer).await;
    let sam = app.user("sam").await.unwrap();
    let id = custodian::service::tokens::list(&app.state.store, &sam)
        .await
        .unwrap()[0]
        .id;
    let other = app.signed_in("tom", Role::Operator).await;
    let res = other.post(&format!("/account/tokens/{id}/revoke"), &[]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        api_get(&app, &victim_token, "/api/v1/me").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn cookies_do_not_authenticate_the_api() {
    let app = TestApp::spawn().await;
    let browser = app.signed_in("uma", Role::Admin).await;
    // A signed-in browser session is not an API credential (no CSRF surface).
    assert_eq!(browser.get("/api/v1/me").await.status(), StatusCode::UNAUTHORIZED);
}
