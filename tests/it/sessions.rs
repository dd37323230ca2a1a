//! Signed-in sessions: what the store keeps of them.

use custodian::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{Client, StoreChoice, TestApp};
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

