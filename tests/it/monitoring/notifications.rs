//! Webhook deliveries: retries, and firing/resolved pairs whatever the
//! silences.

use std::sync::atomic::Ordering;

use custodian::domain::Role;
use custodian::store::webhooks::{AlertEvent, DeliveryState};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use super::{Receiver, add_webhook, alert_in, fast_panel, fast_panel_on, set_rule};
use crate::helpers::{StoreChoice, TestDb, api_post, eventually};
use crate::on_both_stores;

on_both_stores!(an_unreachable_database_fires_and_a_failing_webhook_is_retried);
async fn an_unreachable_database_fires_and_a_failing_webhook_is_retried(store: StoreChoice) {
    let app = fast_panel_on(store).await;
    // Nothing listens on port 1.
    app.register("gone", "postgres://postgres@127.0.0.1:1/gone").await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("v", Role::Viewer).await;
    // The receiver fails twice, then accepts.
    let hook = Receiver::start(2).await;
    add_webhook(&admin, "flaky", &hook.url, "json").await;
    set_rule(&admin, "gone", "unreachable", "", "0").await;

    let firing = alert_in(&app, &token, "gone", "unreachable", "firing").await;
    assert!(
        firing["message"].as_str().unwrap().contains("does not answer"),
        "{firing}"
    );
    let sent = hook
        .received("the firing notification after retries", |b| {
            b["event"] == "firing" && b["rule"] == "unreachable"
        })
        .await;
    assert_eq!(sent["database"], "gone");
    assert_eq!(
        hook.requests.load(Ordering::SeqCst),
        3,
        "two failures, then the delivery"
    );
    // The delivery's record says so.
    let d = eventually("the delivery to be recorded as delivered", || async {
        custodian::service::monitoring::notify::deliveries(&app.state.monitor, 10)
            .await
            .ok()?
            .into_iter()
            .find(|d| d.row.event == AlertEvent::Firing && d.row.state == DeliveryState::Delivered)
    })
    .await;
    assert_eq!(d.row.attempts, 3);
    assert_eq!(
        d.row.last_error, None,
        "a delivered notification carries no error"
    );
    // The overview counts it.
    let (_, html) = admin.text("/").await;
    assert!(html.contains("1 firing"), "{html}");
}

#[tokio::test]
async fn notifications_come_in_pairs_whatever_the_silences() {
    let app = fast_panel().await;
    let db = TestDb::postgres().await;
    app.register("pairs", &db.url).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let operator = app.signed_in("dba", Role::Operator).await;
    let token = app.token_for("ops", Role::Operator).await;
    let hook = Receiver::start(0).await;
    add_webhook(&admin, "pager", &hook.url, "json").await;
    set_rule(&admin, "pairs", "idle_in_transaction", "1", "0").await;
    let events = |id: &Value| -> Vec<String> {
        hook.bodies()
            .iter()
            .filter(|b| b["alert_id"] == *id)
            .map(|b| b["event"].as_str().unwrap().to_string())
            .collect()
    };
    let mut idle = sqlx::PgConnection::connect(&db.url).await.unwrap();

    // 1. Fired and announced, then silenced: its end is still announced.
    sqlx::raw_sql("BEGIN; SELECT 1").execute(&mut idle).await.unwrap();
    let first = alert_in(&app, &token, "pairs", "idle_in_transaction", "firing").await;
    hook.received("the first firing", |b| b["alert_id"] == first["id"])
        .await;
    let res = api_post(
        &app,
        &token,
        "/api/v1/databases/pairs/silences",
        json!({"duration": "1h", "reason": "looking into it"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let silence: Value = res.json().await.unwrap();
    sqlx::query("ROLLBACK").execute(&mut idle).await.unwrap();
    hook.received("the first resolved, despite the silence", |b| {
        b["alert_id"] == first["id"] && b["event"] == "resolved"
    })
    .await;
    assert_eq!(events(&first["id"]), ["firing", "resolved"]);

    // 2. Fired under the silence: nothing; the silence ends: the firing
    // goes out late, and its end follows.
    sqlx::raw_sql("BEGIN; SELECT 1").execute(&mut idle).await.unwrap();
    let second = alert_in(&app, &token, "pairs", "idle_in_transaction", "firing").await;
    assert!(second["silenced_until"].is_string(), "{second}");
    let res = operator
        .post(&format!("/alerts/silences/{}/end", silence["id"]), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    hook.received("the late firing once the silence ended", |b| {
        b["alert_id"] == second["id"] && b["event"] == "firing"
    })
    .await;
    sqlx::query("ROLLBACK").execute(&mut idle).await.unwrap();
    hook.received("the second resolved", |b| {
        b["alert_id"] == second["id"] && b["event"] == "resolved"
    })
    .await;
    assert_eq!(events(&second["id"]), ["firing", "resolved"]);
    assert!(
        app.audit()
            .await
            .iter()
            .any(|r| r.action == "alert.unsilence" && r.actor == "dba" && r.outcome == "success")
    );
}
