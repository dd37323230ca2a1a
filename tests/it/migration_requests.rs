//! Migration request states and actions as the store holds them: every word
//! the schema allows reads back as its enum on both stores, and a word the
//! panel does not know is a clear error, not a panic.

use custodian::service::migrations::requests::{self, RequestAction, RequestState};

use crate::helpers::{StoreChoice, TestApp};
use crate::on_both_stores;

async fn every_stored_state_and_action_reads_back(store: StoreChoice) {
    let app = TestApp::spawn_on(store).await;
    let mut ids = Vec::new();
    for (state, action) in RequestState::ALL
        .into_iter()
        .zip(RequestAction::ALL.into_iter().cycle())
    {
        // Written as literal text, as an older panel (or another instance) wrote it.
        app.store_exec(&format!(
            "INSERT INTO migration_requests (database_name, action, files, requested_by, requested_at, state) \
             VALUES ('shop', '{}', '[]', 'rita', 0, '{}')",
            action.as_str(),
            state.as_str()
        ))
        .await;
        ids.push((
            app.store_i64("SELECT MAX(id) FROM migration_requests").await,
            state,
            action,
        ));
    }
    for (id, state, action) in ids {
        let request = requests::get(&app.state.store, id).await.unwrap();
        assert_eq!((request.state, request.action), (state, action));
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["state"], state.as_str(), "the API shows the stored word");
        assert_eq!(json["action"], action.as_str());
    }
}
on_both_stores!(every_stored_state_and_action_reads_back);

#[tokio::test]
async fn an_unknown_stored_state_is_an_error_that_names_it() {
    // Only a newer schema could hold one: drop the CHECK that keeps it out.
    let app = TestApp::spawn_on(StoreChoice::Postgres).await;
    app.store_exec("ALTER TABLE migration_requests DROP CONSTRAINT migration_requests_state_check")
        .await;
    app.store_exec(
        "INSERT INTO migration_requests (database_name, action, files, requested_by, requested_at, state) \
         VALUES ('shop', 'apply', '[]', 'rita', 0, 'paused')",
    )
    .await;
    let id = app.store_i64("SELECT MAX(id) FROM migration_requests").await;
    let err = requests::get(&app.state.store, id).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("unknown migration request state \"paused\""),
        "{err:#}"
    );
    let err = requests::list(&app.state.store, "shop").await.unwrap_err();
    assert!(format!("{err:#}").contains("\"paused\""), "{err:#}");
}
