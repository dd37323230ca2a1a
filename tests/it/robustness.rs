//! The standing robustness suite: a seeded fuzz of every route the router
//! declares (read from its source, as the role matrix reads it), HTML forms
//! and the JSON API alike, with malformed and mistyped bodies, huge and
//! unicode fields, hostile identifiers and path traversal, sent over raw TCP
//! so nothing is normalised on the way. Each answer must be below 500, an
//! API error must be JSON and a page error HTML, no answer may carry a
//! stored password, and a refused request must change nothing in the store.
//!
//! The seed is printed with any failure; `CUSTODIAN_FUZZ_SEED=N` replays a
//! run, `CUSTODIAN_FUZZ_REQUESTS=N` changes its length and
//! `CUSTODIAN_FUZZ_LOG=1` prints every request and its answer.

use std::path::Path;
use std::time::Duration;

use custodian::domain::Role;
use custodian::store::Pool;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Client, StoreChoice, TestApp, eventually};

const DEFAULT_REQUESTS: usize = 2000;

/// In a registered (unreachable) database's URL: never in any answer.
const PLANTED_PASSWORD: &str = "fuzz-planted-pw-7731";

/// Names for `{name}` segments: real ones, near misses, hostile ones.
/// Already percent-encoded, as they go into the request line.
const NAMES: &[&str] = &[
    "demo",
    "demo",
    "demo",
    "gone",
    "vic",
    "otto",
    "nobody",
    "nosuch",
    "%20demo",
    "demo%20",
    "%09demo",
    "demo%0a",
    "%C2%A0demo",
    "DEMO",
    "Demo",
    "..",
    "%2e%2e",
    "..%2f..%2fetc%2fpasswd",
    "%2F",
    "a%2Fb",
    "%00",
    "demo%00",
    "%F0%9F%92%A5",
    "d%C3%A9mo",
    "%27%3B%20DROP%20TABLE%20users%3B--",
    "new",
    "test-connection",
    "-x",
    "_x",
    "x-",
    "%ZZ",
    "%",
    "*",
    "~",
    "%E2%80%AE",
    "%FF%FE",
];

/// Values for `{id}` and `{pid}` segments.
const IDS: &[&str] = &[
    "1",
    "2",
    "3",
    "999",
    "0",
    "-1",
    "+1",
    "01",
    "1.5",
    "1e3",
    "0x10",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999999",
    "abc",
    "%20",
    "1%00",
    "%201",
    "1%20",
    "NaN",
    "%E2%91%A0",
];

/// Values for `/static/{*path}`.
const ASSETS: &[&str] = &[
    "app.css",
    "vendor/htmx/htmx.min.js",
    "../Cargo.toml",
    "..%2fCargo.toml",
    "%2e%2e/%2e%2e/etc/passwd",
    "vendor/../../src/main.rs",
    "/etc/passwd",
    "app.css%00.js",
    "nope.css",
    "",
    "vendor/htmx/",
];

/// Form fields and JSON keys the handlers read, and a few they do not.
const FIELDS: &[&str] = &[
    "action",
    "approvals_required",
    "approver",
    "back",
    "backup_schedule",
    "before",
    "comment",
    "confirm",
    "current",
    "database",
    "decision",
    "duration",
    "enabled",
    "files",
    "for_seconds",
    "format",
    "index",
    "into",
    "lock_timeout_ms",
    "migrations_dir",
    "name",
    "new_name",
    "next",
    "password",
    "range",
    "reason",
    "retention",
    "role",
    "rpo",
    "rpo_s",
    "rto",
    "rto_s",
    "rule",
    "sql",
    "statement_timeout_ms",
    "tables",
    "threshold",
    "token",
    "url",
    "verify_schedule",
    "version",
    "versions",
    "whole",
    "whole_database",
    "q",
    "sort",
    "order",
    "page",
    "tab",
    "csrf_token",
    "__proto__",
    "constructor",
    "",
];

/// Values shaped like what the forms expect, so requests get past parsing.
const PLAUSIBLE: &[&str] = &[
    "viewer",
    "operator",
    "admin",
    "on",
    "true",
    "false",
    "1",
    "0",
    "vacuum",
    "vacuum_analyze",
    "analyze",
    "vacuum_full",
    "reindex",
    "optimize",
    "check",
    "integrity_check",
    "approve",
    "reject",
    "new",
    "original",
    "1h",
    "24h",
    "7d",
    "30m",
    "0s",
    "1ns",
    "300000000000y",
    "11y",
    "0 3 * * *",
    "* * * * *",
    "61 25 * * *",
    "last=7 daily=7 weekly=4 monthly=6",
    "last=-1",
    "daily=99999999999999999999",
    "demo",
    "gone",
    "public.items",
    "main.items",
    "items",
    "oid:1",
    "oid:-1",
    "V90__fuzz.sql",
    "U90__fuzz.sql",
    "90_fuzz.up.sql",
    "../V91__escape.sql",
    "SELECT 1;",
    "DROP TABLE items;",
    "CREATE INDEX i ON items (id);",
    "long_query",
    "backup_rpo",
    "json",
    "slack",
    "1 2 3",
    "2 3",
    "long-enough-password",
    "/",
    "/databases",
    "//evil.example",
    "/\t/evil.example",
];

/// The only values a URL field gets: nothing that resolves a host name or
/// writes outside the test's own directories.
const URLS: &[&str] = &[
    "sqlite:///nonexistent-custodian-fuzz-dir/x.db",
    "postgres://u:pw@127.0.0.1:1/x",
    "mysql://root@127.0.0.1:1/x",
    "mariadb://root:pw@127.0.0.1:1/x",
    "http://127.0.0.1:1/hook",
    "postgres://u:pw@[::1",
    "oracle://scott:tiger@127.0.0.1/orcl",
    "sqlite:",
    "file:///etc/passwd",
    "",
    "postgres://127.0.0.1:1/x?sslmode=verify-full&application_name=%00",
];

/// Strings nobody should send.
const HOSTILE: &[&str] = &[
    "",
    " ",
    "\0",
    "'; DROP TABLE users; --",
    "\" OR 1=1 --",
    "`rm -rf /`",
    "$(reboot)",
    "../../../../etc/passwd",
    "..\\..\\windows",
    "%00",
    "%",
    "<script>alert(1)</script>",
    "{{7*7}}",
    "{% include 'base.html' %}",
    "${jndi:ldap://127.0.0.1:1/x}",
    "\u{202e}evil",
    "a\r\nSet-Cookie: x=1",
    "\u{FEFF}",
    "\u{0}\u{1}\u{7f}",
    "💥",
    "Ω≈ç√∫",
    "ﷺ",
    "𝕏",
    "-1",
    "-9223372036854775808",
    "18446744073709551616",
    "1e309",
    "NaN",
    "Infinity",
    "0x7fffffff",
    "null",
    "[]",
    "{}",
    "true",
];

/// A random value for a field of this name.
fn value(rng: &mut StdRng, field: &str) -> String {
    if field == "url" {
        return URLS.choose(rng).unwrap().to_string();
    }
    if field == "migrations_dir" || field == "dir" {
        // Never a directory that exists outside the test (a file submitted
        // there would be written there).
        return [
            "/nonexistent-custodian-fuzz-dir",
            "",
            "\0",
            "relative/nonexistent-fuzz",
        ]
        .choose(rng)
        .unwrap()
        .to_string();
    }
    match rng.gen_range(0..10) {
        0..=3 => PLAUSIBLE.choose(rng).unwrap().to_string(),
        4..=5 => HOSTILE.choose(rng).unwrap().to_string(),
        6 => rng.gen_range(i64::MIN..i64::MAX).to_string(),
        7 => random_text(rng, 40),
        8 => random_text(rng, 2000),
        _ => {
            let c = *["a", "é", "💥", "%", "\0"].choose(rng).unwrap();
            c.repeat(rng.gen_range(1000..20_000))
        }
    }
}

/// Any unicode, control characters and odd planes included.
fn random_text(rng: &mut StdRng, max: usize) -> String {
    let len = rng.gen_range(0..=max);
    (0..len)
        .map(|_| match rng.gen_range(0..4) {
            0 => rng.gen_range(0x20u8..0x7f) as char,
            1 => rng.gen_range(0u8..0x20) as char,
            _ => loop {
                if let Some(c) = char::from_u32(rng.gen_range(0x80..0x11_0000)) {
                    break c;
                }
            },
        })
        .collect()
}

fn json_value(rng: &mut StdRng, field: &str, depth: u32) -> serde_json::Value {
    use serde_json::Value;
    match rng.gen_range(0..12) {
        0..=5 => Value::String(value(rng, field)),
        6 => Value::from(rng.r#gen::<i64>()),
        7 => Value::from(*[u64::MAX, 1 << 63, 0, 1, 315_360_001].choose(rng).unwrap()),
        8 => Value::from(rng.r#gen::<f64>() * 1e12 - 5e11),
        9 => Value::Bool(rng.r#gen()),
        10 if depth < 3 => Value::Array(
            (0..rng.gen_range(0..4))
                .map(|_| json_value(rng, field, depth + 1))
                .collect(),
        ),
        _ => Value::Null,
    }
}

fn percent(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A concrete path for a declared route.
fn path_for(rng: &mut StdRng, template: &str) -> String {
    let mut path: String = template
        .split('/')
        .map(|part| match part {
            "{*path}" => ASSETS.choose(rng).unwrap().to_string(),
            // Half the time a value that exists, to get past the lookup.
            "{id}" | "{pid}" if rng.gen_bool(0.5) => rng.gen_range(1..4).to_string(),
            "{id}" | "{pid}" => IDS.choose(rng).unwrap().to_string(),
            p if p.starts_with('{') && rng.gen_bool(0.5) => "demo".to_string(),
            p if p.starts_with('{') => NAMES.choose(rng).unwrap().to_string(),
            p => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/");
    match rng.gen_range(0..20) {
        0 => path.push('/'),
        1 => path = path.replacen('/', "//", 1),
        2 => path.push_str("/../../../../etc/passwd"),
        3 => path.push_str("/%2e%2e/%2e%2e/users"),
        4 => path = format!("/static/../{}", path.trim_start_matches('/')),
        5 => path.push_str(&"/x".repeat(rng.gen_range(1..400))),
        _ => {}
    }
    if rng.gen_bool(0.3) {
        let pairs: Vec<String> = (0..rng.gen_range(1..4))
            .map(|_| {
                let key = *[
                    "before", "database", "next", "range", "sort", "order", "page", "q", "tab", "rows",
                    "user", "action",
                ]
                .choose(rng)
                .unwrap();
                format!("{key}={}", percent(&value(rng, key)))
            })
            .collect();
        path = format!("{path}?{}", pairs.join("&"));
    }
    path
}

/// One request's body and content type.
fn body_for(rng: &mut StdRng, api: bool, csrf: Option<&str>) -> (Option<&'static str>, Vec<u8>) {
    let mut fields: Vec<(String, String)> = (0..rng.gen_range(0..7))
        .map(|_| {
            let f = FIELDS.choose(rng).unwrap().to_string();
            let v = value(rng, &f);
            (f, v)
        })
        .collect();
    if let Some(token) = csrf {
        fields.push(("csrf_token".into(), token.into()));
    }
    let form = || {
        fields
            .iter()
            .map(|(k, v)| format!("{}={}", percent(k), percent(v)))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes()
    };
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
    const JSON: Option<&str> = Some("application/json");
    let json_object = |rng: &mut StdRng| {
        let mut object = serde_json::Map::new();
        for (k, _) in &fields {
            object.insert(k.clone(), json_value(rng, k, 0));
        }
        serde_json::Value::Object(object).to_string().into_bytes()
    };
    if rng.gen_bool(0.6) {
        // Well-formed, with wrong values: the handlers' own checks.
        return if api {
            (JSON, json_object(rng))
        } else {
            (FORM, form())
        };
    }
    // Malformed or mistyped: the extractors' rejections.
    match rng.gen_range(0..11) {
        0 => (JSON, b"{not json".to_vec()),
        1 => (JSON, "[".repeat(rng.gen_range(1..3000)).into_bytes()),
        2 => (
            JSON,
            br#"{"name": "x", "name": "y", "tables": {"$gt": ""}}"#.to_vec(),
        ),
        3 => (Some("text/plain"), form()),
        4 => (
            Some("multipart/form-data; boundary=x"),
            b"--x\r\n\r\n--x--".to_vec(),
        ),
        5 => (None, form()),
        6 => (FORM, b"%%%=%%%&name&=&&==&csrf_token=%ZZ".to_vec()),
        7 => (FORM, vec![b'a'; rng.gen_range(60_000..70_000)]),
        8 => (JSON, random_text(rng, 200).into_bytes()),
        9 if api => (FORM, form()),
        9 => (JSON, json_object(rng)),
        _ => (
            FORM,
            (0..rng.gen_range(1..200)).map(|_| rng.r#gen::<u8>()).collect(),
        ),
    }
}

/// Who sends a request.
struct Identities {
    admin_cookie: String,
    admin_csrf: String,
    viewer_cookie: String,
    viewer_csrf: String,
    admin_token: String,
    operator_token: String,
    viewer_token: String,
}

/// Build the raw request: method, target, headers for this identity, body.
fn request(rng: &mut StdRng, who: &Identities, method: &str, template: &str) -> (String, String, Vec<u8>) {
    let path = path_for(rng, template);
    let api = template.starts_with("/api/") || template == "/metrics";
    let method = if rng.gen_bool(0.05) {
        [
            "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO",
        ]
        .choose(rng)
        .unwrap()
        .to_string()
    } else {
        method.to_string()
    };
    let mut headers = vec!["Host: panel".to_string(), "Connection: close".to_string()];
    let mut csrf = None;
    if api {
        let token = match rng.gen_range(0..20) {
            0..=13 => Some(who.admin_token.clone()),
            14 => Some(who.operator_token.clone()),
            15 => Some(who.viewer_token.clone()),
            16 => Some("cust_not-a-token".into()),
            17 => Some("x".repeat(10_000)),
            _ => None,
        };
        if let Some(t) = token {
            headers.push(format!("Authorization: Bearer {t}"));
        }
    } else {
        let (cookie, token) = match rng.gen_range(0..20) {
            0..=14 => (Some(&who.admin_cookie), Some(&who.admin_csrf)),
            15..=16 => (Some(&who.viewer_cookie), Some(&who.viewer_csrf)),
            _ => (None, None),
        };
        if let Some(c) = cookie {
            headers.push(format!("Cookie: custodian_session={c}"));
        }
        // Mostly the session's token, as a form field or as htmx sends it.
        match (token, rng.gen_range(0..20)) {
            (Some(t), 0..=8) => csrf = Some(t.as_str()),
            (Some(t), 9..=17) => headers.push(format!("X-CSRF-Token: {t}")),
            (_, 18) => headers.push("X-CSRF-Token: forged".into()),
            _ => {}
        }
        if rng.gen_bool(0.1) {
            headers.push("HX-Request: true".into());
        }
    }
    let (content_type, body) = if matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
        body_for(rng, api, csrf)
    } else {
        (None, Vec::new())
    };
    if let Some(ct) = content_type {
        headers.push(format!("Content-Type: {ct}"));
    }
    if !body.is_empty() || method != "GET" {
        headers.push(format!("Content-Length: {}", body.len()));
    }
    let mut raw = format!("{method} {path} HTTP/1.1\r\n{}\r\n\r\n", headers.join("\r\n")).into_bytes();
    raw.extend_from_slice(&body);
    (method, path, raw)
}

/// Send raw bytes, read the answer to EOF: (status, content type, body).
async fn send(addr: std::net::SocketAddr, raw: &[u8]) -> Result<(u16, String, String), String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(raw).await.map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        // A reset after the answer (the server closing on an unread body)
        // still leaves what was read.
        let _ = stream.read_to_end(&mut answer).await;
        Ok::<_, String>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| "no answer within 30 s".to_string())??;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {:?}", &text[..text.len().min(200)]))?;
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Ok((status, content_type, body.to_string()))
}

/// What a refused request must not change: users, tokens, the registry,
/// jobs and backups people started, migration requests and decisions,
/// alert rules, silences and webhooks. Not the audit log (refusals are
/// audited), sessions, samples or anything background work writes.
async fn digest(app: &TestApp) -> Vec<String> {
    const TABLES: &[(&str, &[&str], &str)] = &[
        (
            "users",
            &[
                "id",
                "name",
                "password_hash",
                "role",
                "can_approve",
                "disabled",
                "password_changed_at",
            ],
            "",
        ),
        (
            "api_tokens",
            &["id", "user_id", "name", "token_hash", "revoked_at"],
            "",
        ),
        ("managed_databases", &["*"], ""),
        (
            "jobs",
            &["id", "kind", "database_name", "target", "requested_by"],
            "WHERE requested_by <> 'custodian'",
        ),
        (
            "backups",
            &["id", "database_name", "job_id"],
            "WHERE job_id IN (SELECT id FROM jobs WHERE requested_by <> 'custodian')",
        ),
        (
            "migration_requests",
            &["id", "database_name", "action", "files", "requested_by"],
            "",
        ),
        ("migration_decisions", &["*"], ""),
        ("alert_rules", &["*"], ""),
        (
            "alert_silences",
            &["id", "database_name", "rule", "until_at", "reason", "created_by"],
            "",
        ),
        (
            "webhooks",
            &["id", "name", "url_sealed", "format", "created_by"],
            "",
        ),
    ];
    let Pool::Sqlite(pool) = app.state.store.pool() else {
        unreachable!("the fuzz runs on a SQLite store")
    };
    let mut lines = Vec::new();
    for (table, columns, filter) in TABLES {
        let columns: Vec<String> = if columns == &["*"] {
            sqlx::query_scalar::<_, String>(&format!(
                "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
            ))
            .fetch_all(pool)
            .await
            .unwrap()
        } else {
            columns.iter().map(|c| c.to_string()).collect()
        };
        let row = columns
            .iter()
            .map(|c| format!("quote({c})"))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let sql = format!("SELECT '{table}: ' || {row} FROM {table} {filter} ORDER BY 1");
        lines.extend(
            sqlx::query_scalar::<_, String>(&sql)
                .fetch_all(pool)
                .await
                .unwrap(),
        );
    }
    lines
}

/// Lines only in `before` and only in `after`.
fn difference(before: &[String], after: &[String]) -> String {
    let gone: Vec<&String> = before.iter().filter(|l| !after.contains(l)).collect();
    let new: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    format!("gone: {gone:#?}\nnew: {new:#?}")
}

/// After a request that changed something: let the jobs it started end and
/// put the demo database back if it was removed or re-pointed.
async fn settle(app: &TestApp, demo_url: &str, demo_migrations: &Path) {
    eventually("the jobs a request started to end", || async {
        let jobs = app.state.jobs.list(None, None, 20).await.ok()?;
        jobs.iter()
            .all(|j| !matches!(j.state.as_str(), "queued" | "running"))
            .then_some(())
    })
    .await;
    let demo = custodian::domain::DatabaseName::parse("demo").unwrap();
    match app.state.registry.get(&demo).await {
        Ok(entry)
            if entry.url_redacted == demo_url
                && entry.migrations_dir.as_deref() == Some(&*demo_migrations.display().to_string()) => {}
        Ok(_) => {
            app.state
                .registry
                .update(
                    &custodian::service::Actor::cli(),
                    &demo,
                    custodian::service::registry::Changes {
                        url: Some(custodian::config::SecretUrl::new(demo_url)),
                        migrations_dir: Some(demo_migrations.display().to_string()),
                        rpo: None,
                        rto: None,
                        schedules: Default::default(),
                        pitr: Default::default(),
                    },
                )
                .await
                .unwrap();
            app.state.fleet.refresh(&app.state.registry).await;
        }
        Err(_) => {
            app.register_with_migrations("demo", demo_url, Some(demo_migrations))
                .await
        }
    }
}

#[tokio::test]
async fn every_route_survives_hostile_input_without_a_5xx_or_a_change_on_refusal() {
    let seed: u64 = std::env::var("CUSTODIAN_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let requests: usize = std::env::var("CUSTODIAN_FUZZ_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_REQUESTS);
    let log = std::env::var_os("CUSTODIAN_FUZZ_LOG").is_some();
    let replay = format!("seed {seed} (replay with CUSTODIAN_FUZZ_SEED={seed})");
    eprintln!("robustness fuzz: {requests} requests, {replay}");
    let mut rng = StdRng::seed_from_u64(seed);

    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| c.demo = true).await;
    let demo_file = app
        .data_dir
        .path()
        .join("demo/demo.sqlite")
        .canonicalize()
        .unwrap();
    let demo_url = format!("sqlite://{}", demo_file.display());
    let demo_migrations = demo_file.parent().unwrap().join("migrations");
    app.register("gone", &format!("postgres://u:{PLANTED_PASSWORD}@127.0.0.1:1/x"))
        .await;
    let admin: Client = app.signed_in("root", Role::Admin).await;
    let viewer: Client = app.signed_in("vic", Role::Viewer).await;
    app.create_user("otto", Role::Operator).await;
    let who = Identities {
        admin_cookie: admin.session_cookie().unwrap(),
        admin_csrf: admin.csrf.clone(),
        viewer_cookie: viewer.session_cookie().unwrap(),
        viewer_csrf: viewer.csrf.clone(),
        admin_token: app.token_for("bot", Role::Admin).await,
        operator_token: app.token_for("opbot", Role::Operator).await,
        viewer_token: app.token_for("viewbot", Role::Viewer).await,
    };

    // Every declared route but sign-out (it would end the fuzzing session;
    // the role matrix covers it).
    let routes: Vec<(String, String)> = crate::roles::declared_routes()
        .into_iter()
        .filter(|(m, p)| !(m == "POST" && p == "/logout"))
        .collect();
    assert!(
        routes.len() > 60,
        "the router source lists the routes: {routes:?}"
    );

    let mut before = digest(&app).await;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut failures = Vec::new();
    for n in 0..requests {
        // Round the routes in turn, so each gets its share whatever the seed.
        let (method, template) = routes[n % routes.len()].clone();
        let (method, path, raw) = request(&mut rng, &who, &method, &template);
        let shown = format!("#{n} {method} {}", &path[..path.len().min(300)]);
        let (status, content_type, body) = match send(app.addr, &raw).await {
            Ok(answer) => answer,
            Err(e) => {
                failures.push(format!("{shown}: {e}"));
                break;
            }
        };
        *statuses.entry(status).or_default() += 1;
        if log {
            // A page's message, or the start of the body.
            let said: String = body
                .split_once("<h1>")
                .map_or(body.as_str(), |(_, rest)| rest)
                .chars()
                .take(200)
                .collect();
            eprintln!("{shown} -> {status} {}", said.replace('\n', " "));
        }
        if status >= 500 {
            failures.push(format!("{shown}: {status}: {}", &body[..body.len().min(500)]));
        }
        if body.contains(PLANTED_PASSWORD) {
            failures.push(format!("{shown}: the answer shows a stored password"));
        }
        // The server's own test (`is_api_path`) on the path it received.
        let bare = path.split('?').next().unwrap_or_default();
        let api = bare == "/api" || bare.starts_with("/api/") || bare == "/metrics";
        if status >= 400 && !body.is_empty() {
            let want = if api { "application/json" } else { "text/html" };
            if !content_type.starts_with(want) {
                failures.push(format!("{shown}: a {status} as {content_type:?}, not {want}"));
            }
        }
        if status >= 400 {
            let after = digest(&app).await;
            if after != before {
                failures.push(format!(
                    "{shown}: refused with {status} but the store changed:\n{}",
                    difference(&before, &after)
                ));
                before = after;
            }
        } else if !matches!(method.as_str(), "GET" | "HEAD") {
            settle(&app, &demo_url, &demo_migrations).await;
            before = digest(&app).await;
        }
        if failures.len() >= 10 {
            break;
        }
    }
    eprintln!("robustness fuzz: answers by status {statuses:?}");
    assert!(
        failures.is_empty(),
        "robustness fuzz, {replay}:\n{}",
        failures.join("\n")
    );
}
