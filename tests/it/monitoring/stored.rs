//! Alert rows as the store holds them: a rule key this panel does not know
//! (written by a newer panel on the same store, or a retired rule) is
//! skipped with a log line, never a failed page or a panic.

use custodian::domain::Role;
use custodian::store::alerts::{self as rows, AlertState, RuleKey};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{StoreChoice, TestApp, api_get};
use crate::on_both_stores;

async fn rows_naming_an_unknown_rule_are_skipped(store: StoreChoice) {
    let app = TestApp::spawn_on(store).await;
    let t = custodian::store::now();
    for sql in [
        format!(
            "INSERT INTO alerts (database_name, rule, state, message, started_at, fired_at, updated_at) \
             VALUES ('ghost', 'retired_rule', 'firing', 'from a newer panel', {t}, {t}, {t})"
        ),
        format!(
            "INSERT INTO alerts (database_name, rule, state, message, started_at, fired_at, updated_at) \
             VALUES ('ghost', 'xid_age', 'firing', 'xid age is high', {t}, {t}, {t})"
        ),
        "INSERT INTO alert_rules (database_name, rule, enabled, threshold, for_seconds) \
         VALUES ('ghost', 'retired_rule', TRUE, 1, 0)"
            .to_string(),
        format!(
            "INSERT INTO alert_silences (database_name, rule, until_at, reason, created_by, created_at) \
             VALUES ('ghost', 'retired_rule', {}, '', 'x', {t})",
            t + 3600
        ),
    ] {
        app.store_exec(&sql).await;
    }
    // The sampler may close the unregistered database's alert meanwhile:
    // read the alerts that fired, whatever their state now.
    let pool = app.state.store.pool();
    let fired = rows::recent(pool, None, 10).await.unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].rule, RuleKey::XidAge);
    assert_ne!(fired[0].state, AlertState::Pending);
    assert!(rows::rules(pool, "ghost").await.unwrap().is_empty());
    assert!(rows::silences(pool, t).await.unwrap().is_empty());

    let viewer = app.signed_in("v", Role::Viewer).await;
    let (status, html) = viewer.text("/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("xid age is high"), "{html}");
    assert!(!html.contains("from a newer panel"), "{html}");
    let token = app.token_for("bot", Role::Viewer).await;
    let res = api_get(&app, &token, "/api/v1/alerts").await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    let listed: Vec<&Value> = ["open", "history"]
        .iter()
        .flat_map(|k| v[k].as_array().into_iter().flatten())
        .collect();
    assert!(listed.iter().all(|a| a["rule"] == "xid_age"), "{v}");
    assert!(!listed.is_empty(), "{v}");
}
on_both_stores!(rows_naming_an_unknown_rule_are_skipped);
