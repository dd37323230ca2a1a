//! Alert rules on live sessions (PostgreSQL, MariaDB), and who may silence
//! and acknowledge. Bad input refused is in `refusals`.

use std::sync::atomic::Ordering;

use custodian::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use super::{Receiver, add_webhook, alert_in, fast_panel, set_rule};
use crate::helpers::{TestDb, api_get, api_post, eventually};

#[tokio::test]
async fn a_long_query_fires_its_alert_notifies_and_resolves_after_cancel() {
    let app = fast_panel().await;
    let db = TestDb::postgres().await;
    app.register("orders", &db.url).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("dba", Role::Operator).await;
    let json_hook = Receiver::start(0).await;
    let slack_hook = Receiver::start(0).await;
    add_webhook(&admin, "pager", &json_hook.url, "json").await;
    add_webhook(&admin, "slack", &slack_hook.url, "slack").await;
    set_rule(&admin, "orders", "long_query", "2", "0").await;

    let mut sleeper = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut sleeper)
        .await
        .unwrap();
    let running = tokio::spawn(async move {
        sqlx::query("SELECT pg_sleep(120)")
            .execute(&mut sleeper)
            .await
            .map(|_| ())
    });

    let firing = alert_in(&app, &token, "orders", "long_query", "firing").await;
    assert!(
        firing["message"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {pid}")),
        "the alert names the session: {firing}"
    );
    assert!(
        firing["query"].as_str().unwrap().contains("pg_sleep(120)"),
        "the page and API show the statement: {firing}"
    );
    let sent = json_hook
        .received("the firing notification", |b| {
            b["event"] == "firing" && b["rule"] == "long_query"
        })
        .await;
    assert_eq!(sent["database"], "orders");
    assert_eq!(sent["rule"], "long_query");
    assert_eq!(sent["alert_id"], firing["id"]);
    let slack = slack_hook
        .received("the Slack-style firing message", |b| {
            b["text"]
                .as_str()
                .is_some_and(|t| t.contains("FIRING") && t.contains("Query running longer than"))
        })
        .await;
    assert!(slack["text"].as_str().unwrap().contains("orders"), "{slack}");
    // SQL can carry secrets: notifications name the pid, never the statement.
    assert!(!sent.to_string().contains("pg_sleep"), "{sent}");
    assert!(!slack.to_string().contains("pg_sleep"), "{slack}");

    // Cancel it through the API, as a DBA would: the query really stops...
    let res = api_post(
        &app,
        &token,
        &format!("/api/v1/databases/orders/activity/{pid}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let outcome = running.await.unwrap();
    let err = outcome.expect_err("the sleep was cancelled");
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("57014")
    );
    // ...and the alert resolves, with a notification.
    let resolved = alert_in(&app, &token, "orders", "long_query", "resolved").await;
    assert_eq!(resolved["id"], firing["id"]);
    assert!(resolved["resolved_at"].is_string());
    json_hook
        .received("the resolved notification", |b| {
            b["event"] == "resolved" && b["alert_id"] == firing["id"]
        })
        .await;

    // The page shows it in the history, and deliveries as delivered.
    let viewer = app.signed_in("manager", Role::Viewer).await;
    let (status, html) = viewer.text("/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Query running longer than"), "{html}");
    assert!(html.contains("delivered"), "{html}");
}

#[tokio::test]
async fn an_idle_transaction_fires_its_rule_until_it_ends() {
    let app = fast_panel().await;
    let db = TestDb::postgres().await;
    app.register("billing", &db.url).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("v", Role::Viewer).await;
    set_rule(&admin, "billing", "idle_in_transaction", "1", "0").await;

    let mut idle = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut idle)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut idle).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut idle).await.unwrap();

    let firing = alert_in(&app, &token, "billing", "idle_in_transaction", "firing").await;
    let message = firing["message"].as_str().unwrap();
    assert!(message.contains(&format!("pid {pid}")), "{message}");
    assert!(message.contains("idle in transaction"), "{message}");

    sqlx::query("ROLLBACK").execute(&mut idle).await.unwrap();
    alert_in(&app, &token, "billing", "idle_in_transaction", "resolved").await;
}

#[tokio::test]
async fn viewers_see_alerts_but_only_operators_silence_and_silences_are_audited() {
    let app = fast_panel().await;
    app.register("quiet", "postgres://postgres@127.0.0.1:1/quiet")
        .await;
    let admin = app.signed_in("root", Role::Admin).await;
    let hook = Receiver::start(0).await;
    add_webhook(&admin, "pager", &hook.url, "json").await;

    let viewer = app.signed_in("manager", Role::Viewer).await;
    let operator = app.signed_in("dba", Role::Operator).await;
    let silence = [
        ("database", "quiet"),
        ("rule", "unreachable"),
        ("duration", "4h"),
        ("reason", "decommissioning"),
    ];
    let res = viewer.post("/alerts/silences", &silence).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let viewer_token = app.token_for("manager2", Role::Viewer).await;
    let res = api_post(
        &app,
        &viewer_token,
        "/api/v1/databases/quiet/silences",
        json!({"duration": "1h"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = operator.post("/alerts/silences", &silence).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = operator
        .post(
            "/alerts/silences",
            &[("database", "quiet"), ("duration", "forever")],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a bad duration is refused"
    );

    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|r| r.action == "access.denied" && r.target == "/alerts/silences" && r.actor == "manager"),
        "the viewer's attempt is audited as denied"
    );
    let rows: Vec<_> = audit.iter().filter(|r| r.action == "alert.silence").collect();
    let outcomes: Vec<&str> = rows.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        ["success"],
        "one silence made (the bad duration never reached the service)"
    );
    let ok = rows[0];
    assert_eq!(ok.actor, "dba");
    assert!(
        ok.detail.contains("unreachable for 4h: decommissioning"),
        "{}",
        ok.detail
    );

    // Only now may it fire at once.
    set_rule(&admin, "quiet", "unreachable", "", "0").await;
    // The alert fires and shows as silenced; no notification is queued,
    // even after further samples have been judged.
    let token = app.token_for("v", Role::Viewer).await;
    let firing = alert_in(&app, &token, "quiet", "unreachable", "firing").await;
    assert!(firing["silenced_until"].is_string(), "{firing}");
    let id = firing["id"].as_i64().unwrap();
    eventually("a later sample to be judged", || async {
        let a = custodian::store::alerts::get(app.state.store.pool(), id)
            .await
            .ok()??;
        (a.updated_at > a.fired_at?).then_some(())
    })
    .await;
    let (_, html) = viewer.text("/alerts").await;
    assert!(html.contains("silenced for"), "{html}");
    let queued = custodian::service::monitoring::notify::deliveries(&app.state.monitor, 10)
        .await
        .unwrap();
    assert!(
        queued.is_empty(),
        "silenced alerts notify nobody: {}",
        queued.len()
    );
    assert_eq!(hook.requests.load(Ordering::SeqCst), 0);

    // Acknowledging is an operator's, and audited.
    let res = viewer.post(&format!("/alerts/{id}/ack"), &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = operator.post(&format!("/alerts/{id}/ack"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let acked = alert_in(&app, &token, "quiet", "unreachable", "firing").await;
    assert_eq!(acked["acknowledged_by"], "dba");
    assert!(
        app.audit()
            .await
            .iter()
            .any(|r| r.action == "alert.ack" && r.outcome == "success" && r.actor == "dba")
    );
}

#[tokio::test]
async fn mariadb_is_sampled_and_its_long_queries_and_idle_transactions_alert() {
    let app = fast_panel().await;
    let db = TestDb::mariadb().await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB").await;
    app.register("maria", &db.url).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("v", Role::Viewer).await;
    set_rule(&admin, "maria", "long_query", "2", "0").await;
    set_rule(&admin, "maria", "idle_in_transaction", "1", "0").await;

    let mut sleeper = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
    let sleeper_id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
        .fetch_one(&mut sleeper)
        .await
        .unwrap();
    let running = tokio::spawn(async move {
        let _ = sqlx::query("SELECT SLEEP(8)").execute(&mut sleeper).await;
    });
    let mut idle = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
    let idle_id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
        .fetch_one(&mut idle)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut idle).await.unwrap();
    sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&mut idle)
        .await
        .unwrap();

    let long = alert_in(&app, &token, "maria", "long_query", "firing").await;
    assert!(
        long["message"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {sleeper_id}")),
        "{long}"
    );
    let idle_alert = alert_in(&app, &token, "maria", "idle_in_transaction", "firing").await;
    assert!(
        idle_alert["message"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {idle_id}")),
        "{idle_alert}"
    );
    // The stored figures match the server: two of this schema's sessions,
    // one of them in a transaction; the schema's size is InnoDB's.
    // A point averages the samples of its bucket, some taken before the
    // transaction began (buckets are 30 s): wait for one that saw it
    // throughout.
    let mut last = Value::Null;
    for _ in 0..80 {
        let v: Value = api_get(&app, &token, "/api/v1/databases/maria/samples?range=1h")
            .await
            .json()
            .await
            .unwrap();
        last = v["points"].as_array().unwrap().last().unwrap().clone();
        if last["idle_in_transaction"].as_f64().unwrap_or(0.0) >= 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(last["idle_in_transaction"].as_f64().unwrap() >= 1.0, "{last}");
    assert!(last["size_bytes"].as_f64().unwrap() > 0.0, "{last}");
    assert!(last["max_connections"].as_f64().unwrap() > 0.0, "{last}");

    sqlx::query("ROLLBACK").execute(&mut idle).await.unwrap();
    running.await.unwrap();
    alert_in(&app, &token, "maria", "long_query", "resolved").await;
    alert_in(&app, &token, "maria", "idle_in_transaction", "resolved").await;
}
