//! Every state-changing browser request needs the session's CSRF token:
//! without it, or with a wrong one, the answer is 403 and nothing changes.

use custodian::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{TestApp, password_of};

/// Each POST route with a body that would succeed if the token were right.
fn posts(token_id: i64) -> Vec<(String, Vec<(&'static str, String)>)> {
    vec![
        (
            "/users".into(),
            vec![
                ("name", "newbie".into()),
                ("password", "newbie-password".into()),
                ("role", "viewer".into()),
            ],
        ),
        ("/users/target/role".into(), vec![("role", "admin".into())]),
        ("/users/target/disable".into(), vec![]),
        ("/users/target/enable".into(), vec![]),
        (
            "/users/target/password".into(),
            vec![("password", "another-password".into())],
        ),
        (
            "/account/password".into(),
            vec![
                ("current", password_of("root")),
                ("password", "changed-password".into()),
                ("confirm", "changed-password".into()),
            ],
        ),
        ("/account/tokens".into(), vec![("name", "sneaky".into())]),
        (format!("/account/tokens/{token_id}/revoke"), vec![]),
        (
            "/databases".into(),
            vec![("name", "sneaky".into()), ("url", "sqlite:///tmp/x.db".into())],
        ),
        (
            "/databases/test-connection".into(),
            vec![("url", "sqlite:///tmp/x.db".into())],
        ),
        ("/databases/demo".into(), vec![("rpo", "1h".into())]),
        ("/databases/demo/check".into(), vec![]),
        ("/databases/demo/activity/1/cancel".into(), vec![]),
        (
            "/databases/demo/activity/1/terminate".into(),
            vec![("confirm", "1".into())],
        ),
        ("/databases/demo/activity/top/reset".into(), vec![]),
        (
            "/databases/demo/maintenance".into(),
            vec![("action", "vacuum".into()), ("whole", "on".into())],
        ),
        ("/jobs/1/cancel".into(), vec![]),
        ("/databases/demo/backups".into(), vec![]),
        ("/databases/demo/backups/1/verify".into(), vec![]),
        (
            "/databases/demo/backups/1/restore".into(),
            vec![("into", "new".into()), ("new_name", "x".into())],
        ),
        (
            "/databases/demo/migrations/requests".into(),
            vec![("versions", "4 5".into())],
        ),
        (
            "/databases/demo/migrations/rollback".into(),
            vec![("version", "3".into()), ("confirm", "3".into())],
        ),
        (
            "/databases/demo/migrations/requests/1/decide".into(),
            vec![("decision", "approve".into())],
        ),
        ("/databases/demo/migrations/requests/1/apply".into(), vec![]),
        (
            "/databases/demo/migrations/settings".into(),
            vec![
                ("approvals_required", "0".into()),
                ("lock_timeout_ms", "1000".into()),
                ("statement_timeout_ms", "60000".into()),
            ],
        ),
        ("/alerts/1/ack".into(), vec![]),
        (
            "/alerts/silences".into(),
            vec![("database", "demo".into()), ("duration", "1h".into())],
        ),
        ("/alerts/silences/1/end".into(), vec![]),
        (
            "/alerts/webhooks".into(),
            vec![("name", "x".into()), ("url", "http://127.0.0.1:9/".into())],
        ),
        ("/alerts/webhooks/1/delete".into(), vec![]),
        (
            "/databases/demo/monitoring/rules".into(),
            vec![("rule", "long_query".into()), ("threshold", "5".into())],
        ),
        ("/databases/demo/delete".into(), vec![]),
        (
            "/backups/removed/demo~1/prune".into(),
            vec![("confirm", "demo".into())],
        ),
        ("/logout".into(), vec![]),
        (
            "/login".into(),
            vec![("name", "root".into()), ("password", password_of("root"))],
        ),
        ("/setup".into(), vec![("token", "x".into()), ("name", "y".into())]),
    ]
}

#[tokio::test]
async fn every_state_changing_route_refuses_a_missing_or_wrong_token() {
    let app = TestApp::spawn_with(crate::helpers::StoreChoice::Sqlite, |c| c.demo = true).await;
    let admin = app.signed_in("root", Role::Admin).await;
    app.create_user("target", Role::Viewer).await;
    let res = admin.post("/account/tokens", &[("name", "keep")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let token_id = custodian::service::tokens::list(&app.state.store, &app.user("root").await.unwrap())
        .await
        .unwrap()[0]
        .id;

    let users_before = custodian::service::users::list(&app.state.store).await.unwrap();
    let registry_before = app.state.registry.list().await.unwrap();
    let audit_before = app.audit().await.len();
    for (path, fields) in posts(token_id) {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = admin.post_raw(&path, &fields).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "POST {path} without a token");
        let html = res.text().await.unwrap();
        assert!(html.contains("CSRF"), "POST {path}: the page says why");

        let mut wrong = fields.clone();
        wrong.push(("csrf_token", "forged-token"));
        let res = admin.post_raw(&path, &wrong).await;
        assert_eq!(
            res.status(),
            StatusCode::FORBIDDEN,
            "POST {path} with a wrong token"
        );

        // The htmx header with a wrong value is refused too.
        let res = admin
            .http
            .post(format!("{}{path}", admin.base))
            .header("x-csrf-token", "forged-token")
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::FORBIDDEN,
            "POST {path} with a wrong header"
        );
    }
    assert_eq!(
        custodian::service::users::list(&app.state.store).await.unwrap(),
        users_before,
        "no user changed"
    );
    assert_eq!(
        app.audit().await.len(),
        audit_before,
        "no action ran, so nothing was audited"
    );
    assert_eq!(
        app.state.registry.list().await.unwrap(),
        registry_before,
        "the registry is unchanged"
    );
    assert!(
        app.state.jobs.list(None, None, 10).await.unwrap().is_empty(),
        "no job was started"
    );
    assert_eq!(
        admin.text("/users").await.0,
        StatusCode::OK,
        "still signed in: logout did not run"
    );
    let tokens = custodian::service::tokens::list(&app.state.store, &app.user("root").await.unwrap())
        .await
        .unwrap();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].revoked_at.is_none(), "the token was not revoked");
}

#[tokio::test]
async fn the_htmx_header_is_accepted_in_place_of_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let res = admin
        .http
        .post(format!("{}/users", admin.base))
        .header("x-csrf-token", &admin.csrf)
        .form(&[
            ("name", "via-htmx"),
            ("password", "a-long-password"),
            ("role", "viewer"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(app.user("via-htmx").await.is_some());
}

#[tokio::test]
async fn a_token_from_another_session_does_not_work() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let other = app.signed_in("other", Role::Admin).await;
    let res = admin
        .post_raw(
            "/users",
            &[
                ("csrf_token", &other.csrf),
                ("name", "cross"),
                ("password", "a-long-password"),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(app.user("cross").await.is_none());
}

/// POST /users as `admin`'s browser, with this Origin header (or none).
async fn create_user_with_origin(
    admin: &crate::helpers::Client,
    name: &str,
    origin: Option<&str>,
) -> StatusCode {
    let mut req = admin.http.post(format!("{}/users", admin.base)).form(&[
        ("csrf_token", admin.csrf.as_str()),
        ("name", name),
        ("password", "a-long-password"),
        ("role", "viewer"),
    ]);
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    req.send().await.unwrap().status()
}

#[tokio::test]
async fn a_cross_site_origin_is_refused_even_with_the_right_token() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let audit_before = app.audit().await.len();
    for origin in [
        "https://evil.example",
        "http://evil.example",
        "null",
        "http://127.0.0.1.evil.example",
        &format!("http://{}.evil.example", app.addr),
        &format!("http://127.0.0.1:{}", app.addr.port() + 1),
        &format!("ftp://{}", app.addr),
        "not a url",
    ] {
        assert_eq!(
            create_user_with_origin(&admin, "cross-origin", Some(origin)).await,
            StatusCode::FORBIDDEN,
            "Origin: {origin}"
        );
    }
    assert!(app.user("cross-origin").await.is_none(), "nothing changed");
    assert_eq!(app.audit().await.len(), audit_before, "nothing ran");

    // The panel's own origin, and no Origin at all, are fine.
    let own = format!("http://{}", app.addr);
    assert_eq!(
        create_user_with_origin(&admin, "same-origin", Some(&own)).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        create_user_with_origin(&admin, "no-origin", None).await,
        StatusCode::SEE_OTHER
    );
    assert!(app.user("same-origin").await.is_some() && app.user("no-origin").await.is_some());
}

#[tokio::test]
async fn the_public_url_is_the_panels_origin_behind_a_proxy() {
    let app = TestApp::spawn_with(crate::helpers::StoreChoice::Sqlite, |c| {
        c.public_url = Some("https://custodian.example.com/".into());
    })
    .await;
    let admin = app.signed_in("root", Role::Admin).await;
    assert_eq!(
        create_user_with_origin(&admin, "via-proxy", Some("https://custodian.example.com")).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        create_user_with_origin(&admin, "via-other", Some("https://other.example.com")).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn sign_in_from_another_site_is_refused() {
    let app = TestApp::spawn().await;
    app.create_user("lou", Role::Admin).await;
    let mut browser = app.client();
    let (_, html) = browser.text("/login").await;
    browser.csrf = crate::helpers::csrf_in(&html).unwrap();
    let res = browser
        .http
        .post(format!("{}/login", browser.base))
        .header("origin", "https://evil.example")
        .form(&[
            ("csrf_token", browser.csrf.as_str()),
            ("name", "lou"),
            ("password", &password_of("lou")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        app.audit().await.iter().all(|r| r.action != "login"),
        "no attempt ran"
    );
}

#[tokio::test]
async fn the_sign_in_token_belongs_to_the_browser_that_loaded_the_form() {
    let app = TestApp::spawn().await;
    app.create_user("max", Role::Viewer).await;
    let form = |token: String| {
        vec![
            ("csrf_token", token),
            ("name", "max".to_string()),
            ("password", password_of("max")),
        ]
    };
    // A token fetched by an attacker, replayed from a victim's browser
    // (login CSRF), does not work there.
    let (_, html) = app.client().text("/login").await;
    let attackers = crate::helpers::csrf_in(&html).unwrap();
    let victim = app.client();
    victim.text("/login").await;
    let res = victim
        .post_raw("/login", &as_refs(&form(attackers.clone())))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "another browser's token");
    let res = app.client().post_raw("/login", &as_refs(&form(attackers))).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "a token without its cookie");

    // Tampered tokens fail; the browser's own one works.
    let (_, html) = victim.text("/login").await;
    let own = crate::helpers::csrf_in(&html).unwrap();
    for forged in [
        String::new(),
        "x".into(),
        format!("{own}x"),
        own.replacen(|c: char| c.is_ascii_digit(), "9", 1),
        own.chars().rev().collect(),
    ] {
        if forged == own {
            continue;
        }
        let res = victim.post_raw("/login", &as_refs(&form(forged.clone()))).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "forged token {forged:?}");
    }
    assert!(
        app.audit().await.iter().all(|r| r.action != "login"),
        "no attempt ran"
    );
    let res = victim.post_raw("/login", &as_refs(&form(own))).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

fn as_refs<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn the_sign_in_forms_token_is_no_session_token() {
    let app = TestApp::spawn().await;
    let mut admin = app.signed_in("root", Role::Admin).await;
    // The sign-in form's token is no session token: it cannot create a user.
    let (_, html) = app.client().text("/login").await;
    let login_token = crate::helpers::csrf_in(&html).unwrap();
    let res = admin
        .post_raw(
            "/users",
            &[
                ("csrf_token", &login_token),
                ("name", "sneaky"),
                ("password", "a-long-password"),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(app.user("sneaky").await.is_none());
    admin.refresh_csrf().await;
    assert_eq!(admin.text("/users").await.0, StatusCode::OK);
}
