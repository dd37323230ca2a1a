//! The role matrix: every route, for anonymous, viewer, operator and admin,
//! with the status each must get. `every_route_is_in_the_matrix` reads the
//! router source, so a new route without a row here fails the suite.

use std::collections::BTreeSet;

use custodian::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{Client, StoreChoice, TestApp, api_get};

#[derive(Clone, Copy, Debug)]
enum M {
    Get,
    Post,
    Put,
    Delete,
}

impl M {
    fn name(self) -> &'static str {
        match self {
            M::Get => "GET",
            M::Post => "POST",
            M::Put => "PUT",
            M::Delete => "DELETE",
        }
    }
}

/// (method, path, anonymous, viewer, operator, admin). POSTs carry a valid
/// CSRF token and an empty or harmless body: a role that may use the route
/// gets past the role check (then 4xx for the empty input), one that may not
/// gets 403. 303 for anonymous pages is the redirect to sign-in; an
/// anonymous POST is refused (403) before any role check, since a visitor
/// has no session and so no session CSRF token (only the sign-in and setup
/// forms take the stateless one).
#[rustfmt::skip]
const PAGES: &[(M, &str, u16, u16, u16, u16)] = &[
    (M::Get, "/healthz", 200, 200, 200, 200),
    (M::Get, "/static/app.css", 200, 200, 200, 200),
    (M::Get, "/static/vendor/htmx/htmx.min.js", 200, 200, 200, 200),
    (M::Get, "/static/favicon.svg", 200, 200, 200, 200),
    (M::Get, "/favicon.ico", 200, 200, 200, 200),
    (M::Get, "/login", 200, 303, 303, 303),
    (M::Post, "/login", 422, 422, 422, 422),
    (M::Get, "/setup", 404, 404, 404, 404),
    (M::Post, "/setup", 404, 404, 404, 404),
    (M::Get, "/", 303, 200, 200, 200),
    (M::Get, "/databases", 303, 200, 200, 200),
    (M::Get, "/servers", 303, 200, 200, 200),
    (M::Get, "/backups", 303, 200, 200, 200),
    (M::Post, "/backups/removed/nope~1/prune", 403, 403, 403, 404),
    (M::Get, "/databases/demo/migrations", 303, 200, 200, 200),
    (M::Post, "/databases/demo/migrations/requests", 403, 403, 422, 422),
    (M::Post, "/databases/demo/migrations/rollback", 403, 403, 422, 422),
    (M::Post, "/databases/demo/migrations/settings", 403, 403, 403, 422),
    (M::Post, "/databases/demo/migrations/requests/999/decide", 403, 422, 422, 422),
    (M::Post, "/databases/demo/migrations/requests/999/apply", 403, 403, 404, 404),
    (M::Get, "/databases/demo/backups", 303, 200, 200, 200),
    (M::Post, "/databases/demo/backups", 403, 403, 303, 303),
    (M::Post, "/databases/demo/backups/999/verify", 403, 403, 404, 404),
    (M::Get, "/databases/demo/backups/999/restore", 303, 403, 403, 404),
    (M::Post, "/databases/demo/backups/999/restore", 403, 403, 403, 404),
    (M::Get, "/jobs", 303, 200, 200, 200),
    (M::Get, "/account", 303, 200, 200, 200),
    (M::Post, "/account/password", 403, 422, 422, 422),
    (M::Post, "/account/tokens", 403, 422, 422, 422),
    (M::Post, "/account/tokens/999999/revoke", 403, 404, 404, 404),
    (M::Get, "/audit", 303, 403, 200, 200),
    (M::Get, "/users", 303, 403, 403, 200),
    (M::Post, "/users", 403, 403, 403, 422),
    (M::Post, "/users/nobody/role", 403, 403, 403, 422),
    (M::Post, "/users/nobody/disable", 403, 403, 403, 404),
    (M::Post, "/users/nobody/enable", 403, 403, 403, 404),
    (M::Post, "/users/nobody/password", 403, 403, 403, 422),
    (M::Get, "/databases", 303, 200, 200, 200),
    (M::Get, "/databases/new", 303, 403, 403, 200),
    (M::Post, "/databases", 403, 403, 403, 422),
    (M::Post, "/databases/test-connection", 403, 403, 403, 422),
    (M::Get, "/databases/demo", 303, 200, 200, 200),
    (M::Get, "/databases/demo/edit", 303, 403, 403, 200),
    (M::Post, "/databases/demo/check", 403, 403, 303, 303),
    // The demo is SQLite: no sessions, so the page explains and actions refuse.
    (M::Get, "/databases/demo/activity", 303, 200, 200, 200),
    (M::Post, "/databases/demo/activity/1/cancel", 403, 403, 422, 422),
    (
        M::Post,
        "/databases/demo/activity/1/terminate",
        403,
        403,
        422,
        422,
    ),
    (M::Get, "/databases/demo/activity/top", 303, 200, 200, 200),
    (M::Post, "/databases/demo/activity/top/reset", 403, 403, 403, 422),
    (M::Get, "/databases/demo/maintenance", 303, 200, 200, 200),
    (M::Post, "/databases/demo/maintenance", 403, 403, 422, 422),
    (M::Get, "/backups", 303, 200, 200, 200),
    (M::Get, "/databases/demo/backups", 303, 200, 200, 200),
    (M::Post, "/databases/demo/backups", 403, 403, 303, 303),
    (M::Post, "/databases/demo/backups/999/verify", 403, 403, 404, 404),
    (M::Get, "/databases/demo/backups/999/restore", 303, 403, 403, 404),
    (M::Post, "/databases/demo/backups/999/restore", 403, 403, 403, 404),
    (M::Get, "/jobs", 303, 200, 200, 200),
    (M::Get, "/jobs/999", 303, 404, 404, 404),
    (M::Post, "/jobs/999/cancel", 403, 403, 404, 404),
    (M::Get, "/alerts", 303, 200, 200, 200),
    (M::Post, "/alerts/999/ack", 403, 403, 404, 404),
    (M::Post, "/alerts/silences", 403, 403, 422, 422),
    (M::Post, "/alerts/silences/999/end", 403, 403, 404, 404),
    (M::Post, "/alerts/webhooks", 403, 403, 403, 422),
    (M::Post, "/alerts/webhooks/999/delete", 403, 403, 403, 404),
    // Point-in-time recovery: the demo has no pgBackRest stanza (422 once the role is enough).
    (M::Post, "/databases/demo/recovery/backups", 403, 403, 422, 422),
    (M::Post, "/databases/demo/recovery/stanza-create", 403, 403, 422, 422),
    (M::Post, "/databases/demo/recovery/check", 403, 403, 422, 422),
    (M::Post, "/databases/demo/recovery/verify", 403, 403, 422, 422),
    (M::Post, "/databases/demo/recovery/drills", 403, 403, 422, 422),
    (M::Get, "/databases/demo/recovery/timeline", 303, 422, 422, 422),
    (M::Get, "/databases/demo/recovery/restore", 303, 403, 403, 422),
    (M::Post, "/databases/demo/recovery/restores", 403, 403, 403, 422),
    (M::Post, "/recovery-restores/999/discard", 403, 403, 403, 404),
    (M::Get, "/databases/demo/monitoring", 303, 200, 200, 200),
    (M::Post, "/databases/demo/monitoring/rules", 403, 403, 403, 422),
    // Prometheus: a bearer token or an allowed address, never a session.
    (M::Get, "/metrics", 401, 401, 401, 401),
    // An empty form keeps the URL and clears the targets: a valid update.
    (M::Post, "/databases/demo", 403, 403, 403, 303),
    (M::Post, "/databases/demo/delete", 403, 403, 403, 303),
    // Last: it ends the session.
    (M::Post, "/logout", 403, 303, 303, 303),
];

/// The API, with bearer tokens instead of sessions; anonymous sends none.
#[rustfmt::skip]
const API: &[(M, &str, u16, u16, u16, u16)] = &[
    (M::Get, "/api/v1/me", 401, 200, 200, 200),
    (M::Get, "/api/v1/users", 401, 403, 403, 200),
    (M::Post, "/api/v1/users", 401, 403, 403, 422),
    (M::Post, "/api/v1/users/nobody/disable", 401, 403, 403, 404),
    (M::Post, "/api/v1/users/nobody/password", 401, 403, 403, 422),
    (M::Get, "/api/v1/audit", 401, 403, 200, 200),
    (M::Get, "/api/v1/databases", 401, 200, 200, 200),
    (M::Post, "/api/v1/databases", 401, 403, 403, 422),
    (M::Get, "/api/v1/servers", 401, 200, 200, 200),
    (M::Get, "/api/v1/removed-databases", 401, 200, 200, 200),
    (M::Post, "/api/v1/removed-databases/nope~1/prune", 401, 403, 403, 422),
    (M::Get, "/api/v1/databases/demo", 401, 200, 200, 200),
    (M::Get, "/api/v1/databases/demo/migrations", 401, 200, 200, 200),
    (M::Get, "/api/v1/databases/demo/recovery", 401, 422, 422, 422),
    (M::Post, "/api/v1/databases/demo/recovery/backups", 401, 403, 422, 422),
    (M::Get, "/api/v1/databases/demo/recovery/timeline", 401, 422, 422, 422),
    (M::Post, "/api/v1/databases/demo/recovery/restores", 401, 403, 403, 422),
    (M::Post, "/api/v1/databases/demo/recovery/drills", 401, 403, 422, 422),
    (M::Post, "/api/v1/databases/demo/recovery/stanza-create", 401, 403, 422, 422),
    (M::Post, "/api/v1/databases/demo/recovery/check", 401, 403, 422, 422),
    (M::Post, "/api/v1/databases/demo/recovery/verify", 401, 403, 422, 422),
    (M::Get, "/api/v1/recovery-restores/999", 401, 404, 404, 404),
    (M::Post, "/api/v1/recovery-restores/999/discard", 401, 403, 403, 404),
    (M::Get, "/api/v1/databases/demo/migrations/requests", 401, 200, 200, 200),
    (M::Post, "/api/v1/databases/demo/migrations/requests", 401, 403, 422, 422),
    (M::Post, "/api/v1/databases/demo/migrations/rollback", 401, 403, 422, 422),
    (M::Post, "/api/v1/databases/demo/migrations/files", 401, 403, 422, 422),
    (M::Get, "/api/v1/databases/demo/migrations/settings", 401, 200, 200, 200),
    (M::Put, "/api/v1/databases/demo/migrations/settings", 401, 403, 403, 422),
    (M::Get, "/api/v1/migration-requests/999", 401, 404, 404, 404),
    (M::Get, "/api/v1/migration-requests/999/gate", 401, 404, 404, 404),
    (M::Post, "/api/v1/migration-requests/999/approve", 401, 404, 404, 404),
    (M::Post, "/api/v1/migration-requests/999/reject", 401, 404, 404, 404),
    (M::Post, "/api/v1/migration-requests/999/apply", 401, 403, 404, 404),
    (M::Put, "/api/v1/databases/demo", 401, 403, 403, 200),
    (M::Delete, "/api/v1/databases/nosuch", 401, 403, 403, 404),
    (M::Get, "/api/v1/databases/demo/activity", 401, 409, 409, 409),
    (
        M::Post,
        "/api/v1/databases/demo/activity/1/cancel",
        401,
        403,
        422,
        422,
    ),
    (
        M::Post,
        "/api/v1/databases/demo/activity/1/terminate",
        401,
        403,
        422,
        422,
    ),    (M::Post, "/api/v1/databases/demo/maintenance", 401, 403, 422, 422),
    (M::Get, "/api/v1/databases/demo/backups", 401, 200, 200, 200),
    (M::Post, "/api/v1/databases/demo/backups", 401, 403, 202, 202),
    (M::Post, "/api/v1/backups/999/verify", 401, 403, 404, 404),
    (M::Get, "/api/v1/jobs/999", 401, 404, 404, 404),
    (M::Get, "/api/v1/alerts", 401, 200, 200, 200),
    (M::Post, "/api/v1/alerts/999/ack", 401, 403, 404, 404),
    (M::Post, "/api/v1/databases/demo/silences", 401, 403, 422, 422),
    (M::Get, "/api/v1/databases/demo/samples", 401, 200, 200, 200),
    (M::Post, "/api/v1/jobs/999/cancel", 401, 403, 404, 404),
];

fn expected(row: &(M, &str, u16, u16, u16, u16), who: Option<Role>) -> u16 {
    match who {
        None => row.2,
        Some(Role::Viewer) => row.3,
        Some(Role::Operator) => row.4,
        Some(Role::Admin) => row.5,
    }
}

#[tokio::test]
async fn every_page_route_enforces_its_role() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| c.demo = true).await;
    let mut anonymous = app.client();
    anonymous.refresh_csrf().await;
    let who: Vec<(Option<Role>, Client)> = vec![
        (None, anonymous),
        (Some(Role::Viewer), app.signed_in("v", Role::Viewer).await),
        (Some(Role::Operator), app.signed_in("o", Role::Operator).await),
        (Some(Role::Admin), app.signed_in("a", Role::Admin).await),
    ];
    let mut failures = Vec::new();
    for (role, client) in &who {
        for row in PAGES {
            let res = match row.0 {
                M::Get => client.get(row.1).await,
                M::Post => client.post(row.1, &[]).await,
                other => panic!("pages use GET and POST, not {other:?}"),
            };
            let want = expected(row, *role);
            if res.status().as_u16() != want {
                failures.push(format!(
                    "{:?} {:?} {}: got {}, want {want}",
                    role,
                    row.0,
                    row.1,
                    res.status()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "role matrix mismatches:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn every_api_route_enforces_its_role() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| c.demo = true).await;
    let tokens = [
        (Some(Role::Viewer), app.token_for("v", Role::Viewer).await),
        (Some(Role::Operator), app.token_for("o", Role::Operator).await),
        (Some(Role::Admin), app.token_for("a", Role::Admin).await),
    ];
    let http = reqwest::Client::new();
    let mut failures = Vec::new();
    for row in API {
        let mut cases: Vec<(Option<Role>, Option<&str>)> = vec![(None, None)];
        cases.extend(tokens.iter().map(|(r, t)| (*r, Some(t.as_str()))));
        for (role, token) in cases {
            let mut req = match row.0 {
                M::Get => http.get(app.url(row.1)),
                M::Post => http.post(app.url(row.1)).json(&serde_json::json!({})),
                M::Put => http.put(app.url(row.1)).json(&serde_json::json!({})),
                M::Delete => http.delete(app.url(row.1)),
            };
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap();
            let want = expected(row, role);
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            if status != want {
                failures.push(format!(
                    "{role:?} {:?} {}: got {status}, want {want}",
                    row.0, row.1
                ));
            }
            if status >= 400 && !body["error"].is_string() {
                failures.push(format!(
                    "{role:?} {:?} {}: error body is not {{\"error\"}}: {body}",
                    row.0, row.1
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "API role matrix mismatches:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn forbidden_page_names_the_role_needed() {
    let app = TestApp::spawn().await;
    let viewer = app.signed_in("v", Role::Viewer).await;
    let (status, html) = viewer.text("/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("This needs the admin role."), "{html}");
    let res = viewer
        .post(
            "/users",
            &[("name", "x"), ("password", "long-enough-pw"), ("role", "admin")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(app.user("x").await.is_none(), "a viewer cannot create users");
    let denied = app.audit().await.pop().unwrap();
    assert_eq!(
        (denied.action.as_str(), denied.outcome.as_str()),
        ("access.denied", "denied")
    );
    assert_eq!(denied.target, "/users");
}

#[tokio::test]
async fn a_bad_or_missing_token_gets_401_json() {
    let app = TestApp::spawn().await;
    let res = api_get(&app, "cust_not-a-real-token", "/api/v1/me").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"].is_string());
}

/// Routes as the router source declares them: (method, path). The
/// robustness fuzz draws its routes from here too.
pub(crate) fn declared_routes() -> BTreeSet<(String, String)> {
    let root = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src/web"));
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let mut found = BTreeSet::new();
    for path in files {
        let src = std::fs::read_to_string(&path).unwrap();
        // Routers under web/api/ are nested at /api/v1.
        let prefix = if path.to_string_lossy().contains("/web/api/") {
            "/api/v1"
        } else {
            ""
        };
        for chunk in src.split(".route(\"").skip(1) {
            let route = &chunk[..chunk.find('"').unwrap()];
            let call = &chunk[..chunk.find(".route(").unwrap_or(chunk.len())];
            let call = &call[..call.find("\n}").unwrap_or(call.len())];
            for (needle, method) in [
                ("get(", "GET"),
                ("post(", "POST"),
                ("put(", "PUT"),
                ("delete(", "DELETE"),
            ] {
                if call.contains(needle) {
                    found.insert((method.to_string(), format!("{prefix}{route}")));
                }
            }
        }
    }
    found
}

/// A matrix path with concrete values matches a declared `{param}` path.
fn matches(declared: &str, concrete: &str) -> bool {
    let (d, c): (Vec<_>, Vec<_>) = (declared.split('/').collect(), concrete.split('/').collect());
    if declared.ends_with("{*path}") {
        return concrete.starts_with(declared.trim_end_matches("{*path}"));
    }
    d.len() == c.len() && d.iter().zip(&c).all(|(d, c)| d.starts_with('{') || d == c)
}

#[test]
fn every_route_is_in_the_matrix() {
    let declared = declared_routes();
    assert!(declared.len() >= 20, "the source scan found routes: {declared:?}");
    let listed: Vec<(&str, &str)> = PAGES.iter().chain(API).map(|r| (r.0.name(), r.1)).collect();
    let missing: Vec<_> = declared
        .iter()
        .filter(|(m, p)| !listed.iter().any(|(lm, lp)| lm == m && matches(p, lp)))
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from the role matrix: {missing:?}"
    );
}
