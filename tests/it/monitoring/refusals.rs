//! Bad alert input refused (thresholds, silences, unknown rules and ids)
//! with nothing stored, and webhook URLs that stay secret.

use custodian::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::add_webhook;
use crate::helpers::{TestApp, api_post};

#[tokio::test]
async fn bad_alert_input_is_refused_and_webhook_urls_stay_secret() {
    let app = TestApp::spawn().await;
    app.register("quiet", "postgres://postgres@127.0.0.1:1/quiet")
        .await;
    let admin = app.signed_in("root", Role::Admin).await;
    let operator_token = app.token_for("dba", Role::Operator).await;
    let rules = "/databases/quiet/monitoring/rules";
    for (fields, why) in [
        (
            vec![("rule", "long_query"), ("threshold", "soon")],
            "a threshold that is not a number",
        ),
        (
            vec![("rule", "long_query"), ("threshold", "-5")],
            "a negative threshold",
        ),
        (
            vec![("rule", "long_query"), ("threshold", "")],
            "a missing threshold",
        ),
        (
            vec![("rule", "drop_tables"), ("threshold", "1")],
            "an unknown rule",
        ),
        (
            vec![("rule", "long_query"), ("threshold", "5"), ("for_seconds", "1e9")],
            "a 'for' that is not whole seconds",
        ),
        (
            vec![
                ("rule", "long_query"),
                ("threshold", "5"),
                ("for_seconds", "99999999"),
            ],
            "a 'for' longer than a week",
        ),
    ] {
        let res = admin.post(rules, &fields).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
        // The tab again with the reason beside the rules, not an error page.
        let html = res.text().await.unwrap();
        assert!(
            html.contains("field-error") && html.contains("Alert rules"),
            "{why}: {html}"
        );
    }
    let res = admin
        .post("/databases/nosuch/monitoring/rules", &[("rule", "long_query")])
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Nothing was stored: the defaults still hold.
    let stored = custodian::store::alerts::rules(app.state.store.pool(), "quiet")
        .await
        .unwrap();
    assert!(stored.is_empty(), "{stored:?}");

    for (body, why) in [
        (json!({"duration": "forever"}), "a duration that is not one"),
        (json!({"duration": "90d"}), "longer than 30 days"),
        (json!({"duration": "0s"}), "no time at all"),
        (json!({"duration": "500ms"}), "less than a minute"),
        (json!({"duration": "1h", "rule": "nosuch"}), "an unknown rule"),
        (
            json!({"duration": "1h", "reason": "x".repeat(501)}),
            "a reason too long",
        ),
    ] {
        let res = api_post(&app, &operator_token, "/api/v1/databases/quiet/silences", body).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
        let v: Value = res.json().await.unwrap();
        assert!(v["error"].is_string(), "{v}");
    }
    let res = api_post(
        &app,
        &operator_token,
        "/api/v1/databases/nosuch/silences",
        json!({"duration": "1h"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = api_post(&app, &operator_token, "/api/v1/alerts/0/ack", json!({})).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(
        custodian::store::alerts::silences(app.state.store.pool(), 0)
            .await
            .unwrap()
            .is_empty(),
        "no silence was made"
    );

    for (url, why) in [
        ("javascript:alert(1)", "not http"),
        ("ftp://example.com/hook", "not http"),
        ("hooks.slack.com/services/x", "no scheme"),
    ] {
        let res = admin
            .post(
                "/alerts/webhooks",
                &[("name", "bad"), ("url", url), ("format", "json")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
        // The alerts page again, the reason beside the form, what was typed kept.
        let html = res.text().await.unwrap();
        assert!(
            html.contains("id=\"webhook-refused\"")
                && html.contains("name=\"name\" required maxlength=\"64\" value=\"bad\""),
            "{why}: {html}"
        );
    }
    let res = admin
        .post(
            "/alerts/webhooks",
            &[
                ("name", "bad"),
                ("url", "https://example.com/"),
                ("format", "xml"),
            ],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "an unknown format"
    );

    // A Slack URL carries its secret in the path: it is sealed in the store
    // and shown nowhere, not on the page and not in the audit log.
    let secret = "T000/B000/XXXXsecretXXXX";
    let url = format!("https://hooks.slack.example/services/{secret}");
    add_webhook(&admin, "team", &url, "slack").await;
    let res = admin
        .post(
            "/alerts/webhooks",
            &[("name", "team"), ("url", &url), ("format", "slack")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT, "the name is taken");
    let (_, html) = admin.text("/alerts").await;
    assert!(html.contains("hooks.slack.example"), "the host is shown");
    assert!(!html.contains(secret), "the secret path is not");
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|r| r.action == "webhook.create" && r.outcome == "success")
    );
    assert!(
        audit
            .iter()
            .all(|r| !r.detail.contains(secret) && !r.target.contains(secret))
    );
    let stored = custodian::store::webhooks::webhooks(app.state.store.pool())
        .await
        .unwrap();
    assert!(stored.iter().all(|w| !w.url_sealed.contains(secret)));
}
