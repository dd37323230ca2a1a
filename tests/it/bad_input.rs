//! Bad input gets a clear 4xx page or JSON error, never a 500, and changes
//! nothing.

use custodian::domain::Role;
use reqwest::StatusCode;

use crate::helpers::TestApp;

#[tokio::test]
async fn malformed_forms_get_clear_pages_not_500s() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let users_before = custodian::service::users::list(&app.state.store).await.unwrap();
    let long = "x".repeat(10_000);
    // (path, form fields, expected status, what the page says)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "/users",
            vec![
                ("name", "Bad Name"),
                ("password", "long-enough-pw"),
                ("role", "viewer"),
            ],
            422,
            "user name may use",
        ),
        (
            "/users",
            vec![
                ("name", &long),
                ("password", "long-enough-pw"),
                ("role", "viewer"),
            ],
            422,
            "longer than 64",
        ),
        (
            "/users",
            vec![("name", "ok-name"), ("password", "short"), ("role", "viewer")],
            422,
            "at least 10",
        ),
        (
            "/users",
            vec![("name", "ok-name"), ("password", &long), ("role", "viewer")],
            422,
            "at most 256",
        ),
        (
            "/users",
            vec![
                ("name", "ok-name"),
                ("password", "long-enough-pw"),
                ("role", "superuser"),
            ],
            422,
            "role must be",
        ),
        ("/users/root/role", vec![("role", "god")], 422, "role must be"),
        ("/users/Not%20A%20User/disable", vec![], 404, "no such user"),
        (
            "/users/root/disable",
            vec![],
            409,
            "cannot disable your own account",
        ),
        (
            "/users/root/role",
            vec![("role", "viewer")],
            409,
            "no enabled admin",
        ),
        ("/account/tokens", vec![("name", &long)], 422, "at most 64"),
        ("/account/tokens/abc/revoke", vec![], 404, "no such live token"),
        (
            "/account/password",
            vec![
                ("current", "wrong-password"),
                ("password", "new-password-1"),
                ("confirm", "new-password-1"),
            ],
            422,
            "current password is wrong",
        ),
    ];
    for (path, fields, want, says) in cases {
        let res = admin.post(path, &fields).await;
        let status = res.status().as_u16();
        let html = res.text().await.unwrap();
        assert_eq!(status, want, "POST {path} {fields:?}");
        assert!(html.contains(says), "POST {path}: page should say {says:?}");
        assert!(html.contains("<title>"), "POST {path}: a full styled page");
    }
    assert_eq!(
        custodian::service::users::list(&app.state.store).await.unwrap(),
        users_before,
        "nothing changed"
    );

    // A body that is not a form at all, and one with the wrong content type.
    let res = admin
        .http
        .post(app.url("/users"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-csrf-token", &admin.csrf)
        .body("%%%=%%%&name")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "garbage form: {}", res.status());
    let res = admin
        .http
        .post(app.url("/users"))
        .header("content-type", "application/json")
        .header("x-csrf-token", &admin.csrf)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(res.text().await.unwrap().contains("<title>"));

    // A body past the limit.
    let huge = "a".repeat(200_000);
    let res = admin.post("/users", &[("name", &huge)]).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn malformed_json_gets_json_errors() {
    let app = TestApp::spawn().await;
    let token = app.token_for("bot", Role::Admin).await;
    let http = reqwest::Client::new();
    let cases: Vec<(&str, &str, u16)> = vec![
        ("{not json", "application/json", 400),
        ("[]", "application/json", 422),
        (r#"{"name":"x"}"#, "application/json", 422),
        (
            r#"{"name":"ok","password":"long-enough-pw","role":"viewer","extra":1}"#,
            "application/json",
            422,
        ),
        (
            r#"{"name":"BAD NAME","password":"long-enough-pw","role":"viewer"}"#,
            "application/json",
            422,
        ),
        (
            r#"{"name":"ok","password":"long-enough-pw","role":"root"}"#,
            "application/json",
            422,
        ),
        (
            r#"{"name":"ok","password":"long-enough-pw","role":"viewer"}"#,
            "text/plain",
            415,
        ),
    ];
    for (body, ct, want) in cases {
        let res = http
            .post(app.url("/api/v1/users"))
            .bearer_auth(&token)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), want, "{body}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let err: serde_json::Value = res.json().await.unwrap();
        assert!(
            err["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}: {err}"
        );
    }
    assert!(app.user("ok").await.is_none());
    let res = http
        .post(app.url("/api/v1/users"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "ok", "password": "long-enough-pw", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "the same request, well-formed, works"
    );
    let res = http
        .post(app.url("/api/v1/users"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "ok", "password": "long-enough-pw", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CONFLICT,
        "a duplicate name is a conflict"
    );
}

#[tokio::test]
async fn unknown_routes_are_404_pages_or_json() {
    let app = TestApp::spawn().await;
    let viewer = app.signed_in("val", Role::Viewer).await;
    let (status, html) = viewer.text("/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        html.contains("There is no page at this address.") && html.contains("Overview"),
        "styled, with navigation"
    );

    let token = app.token_for("bot", Role::Viewer).await;
    let res = crate::helpers::api_get(&app, &token, "/api/v1/no-such-thing").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"].is_string());

    let (status, _) = viewer.text("/static/../Cargo.toml").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = viewer.text("/audit?before=not-a-number").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "role first, for a viewer");
    let op = app.signed_in("op", Role::Operator).await;
    let (status, html) = op.text("/audit?before=not-a-number").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("<title>"));
}

#[tokio::test]
async fn a_refused_user_form_comes_back_with_the_reason_and_what_was_typed() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let res = admin
        .post(
            "/users",
            &[
                ("name", "Bad Name"),
                ("password", "long-enough-pw"),
                ("role", "operator"),
                ("approver", "on"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"create-refused\""), "{html}");
    assert!(html.contains("value=\"Bad Name\""), "the typed name is kept");
    assert!(
        html.contains("<option value=\"operator\" selected>"),
        "the role is kept"
    );
    assert!(!html.contains("long-enough-pw"), "never the password");
    assert!(html.contains("<h1>Users</h1>"), "the page, not an error page");

    // Your own password: the account page again, the reason beside the form.
    let res = admin
        .post(
            "/account/password",
            &[
                ("current", "not-my-password"),
                ("password", "another-long-pw"),
                ("confirm", "another-long-pw"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("id=\"password-refused\"") && html.contains("the current password is wrong"),
        "{html}"
    );
    assert!(!html.contains("not-my-password"), "never a password");
}

#[tokio::test]
async fn htmx_requests_get_a_fragment_for_the_flash_area() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("root", Role::Admin).await;
    let res = admin
        .http
        .post(app.url("/users"))
        .header("hx-request", "true")
        .header("x-csrf-token", &admin.csrf)
        .form(&[
            ("name", "Bad Name"),
            ("password", "long-enough-pw"),
            ("role", "viewer"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.headers()["hx-retarget"], "#flash");
    let html = res.text().await.unwrap();
    assert!(
        html.contains("class=\"flash error\"") && !html.contains("<html"),
        "{html}"
    );

    // An htmx request whose session ended is sent to sign in.
    let res = app
        .client()
        .http
        .get(app.url("/users"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["hx-redirect"], "/login?next=%2Fusers");
}

#[tokio::test]
async fn security_headers_are_on_every_response() {
    let app = TestApp::spawn().await;
    for path in ["/login", "/healthz", "/nope", "/static/app.css"] {
        let res = app.client().get(path).await;
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(h.contains_key("referrer-policy"), "{path}");
        assert!(h.contains_key("x-request-id"), "{path}");
    }
    let (_, html) = app.client().text("/login").await;
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );
}

#[tokio::test]
async fn a_broken_store_gives_an_opaque_500_page_and_a_failing_healthz() {
    let app = TestApp::spawn().await;
    let viewer = app.signed_in("vic", Role::Viewer).await;
    let token = app.token_for("bot", Role::Viewer).await;
    app.state.store.close().await;

    let (status, html) = viewer.text("/").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(html.contains("Something went wrong on our side"), "{html}");
    assert!(
        !html.to_lowercase().contains("pool"),
        "no driver error in the page: {html}"
    );

    let res = crate::helpers::api_get(&app, &token, "/api/v1/me").await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["error"],
        "Something went wrong on our side. It has been logged."
    );

    let res = app.client().get("/healthz").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}
