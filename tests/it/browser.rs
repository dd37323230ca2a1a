//! The flows users click, in headless chromium driven through chromedriver.
//! Needs /usr/bin/chromium and /usr/bin/chromedriver (scripts/test installs
//! them); fails, rather than skips, when they are missing.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use custodian::domain::Role;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{TestApp, password_of};

/// A chromedriver process on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
        let bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {bin} ({e}); run scripts/test, which installs chromium-driver")
            });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(res) = reqwest::get(format!("{url}/status")).await {
                let ready = res
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["value"]["ready"].as_bool());
                if ready == Some(true) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver { child, url }
    }

    async fn browser(&self) -> Client {
        let chrome = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chrome,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900"
                ]
            }
        });
        let caps = caps.as_object().unwrap().clone().into_iter().collect();
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_for_text(browser: &Client, css: &str, text: &str) {
    // Generous: a loaded two-core machine runs several browsers at once.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = String::new();
    loop {
        if let Ok(el) = browser.find(Locator::Css(css)).await
            && let Ok(t) = el.text().await
        {
            if t.contains(text) {
                return;
            }
            seen = t;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never showed {text:?}; it last showed {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of the element at `css`, read again when htmx swapped it
/// between finding and reading (a stale element).
async fn text_of(browser: &Client, css: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(el) = browser.find(Locator::Css(css)).await
            && let Ok(text) = el.text().await
        {
            return text;
        }
        assert!(Instant::now() < deadline, "{css} could not be read");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn fill_in(browser: &Client, css: &str, text: &str) {
    let field = browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.send_keys(text).await.unwrap();
}

async fn click(browser: &Client, css: &str) {
    let el = browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    el.click().await.unwrap();
}

#[tokio::test]
async fn a_user_signs_in_through_the_form_and_sees_the_overview() {
    let app = TestApp::spawn().await;
    app.create_user("zoe", Role::Operator).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;

    browser.goto(&app.url("/")).await.unwrap();
    // Sent to sign in first.
    wait_for_text(&browser, "h1", "Sign in").await;
    assert!(
        browser
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("/login?next=%2F")
    );

    fill_in(&browser, "input[name=name]", "zoe").await;
    fill_in(&browser, "input[name=password]", "wrong password").await;
    click(&browser, "button[type=submit].primary").await;
    wait_for_text(&browser, ".flash.error", "Wrong user name or password.").await;

    // The form kept the name; type the right password.
    fill_in(&browser, "input[name=password]", &password_of("zoe")).await;
    click(&browser, "button[type=submit].primary").await;
    wait_for_text(&browser, "h1", "Overview").await;
    wait_for_text(&browser, ".session", "zoe").await;
    let nav = browser
        .find(Locator::Css("nav.nav"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(nav.contains("Audit"), "operators see the audit link: {nav}");
    assert!(!nav.contains("Users"), "only admins see the users link: {nav}");

    // The stylesheet and htmx loaded under the CSP (no inline code needed).
    let loaded = browser
        .execute(
            "return [typeof window.htmx, getComputedStyle(document.body).margin];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(loaded, json!(["object", "0px"]), "htmx and app.css are active");

    // Sign out through the real button.
    sign_out(&browser).await;
    wait_for_text(&browser, "h1", "Sign in").await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn an_admin_creates_a_user_and_disables_them_with_a_confirm() {
    let app = TestApp::spawn().await;
    app.create_user("root", Role::Admin).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.goto(&app.url("/login?next=%2Fusers")).await.unwrap();
    fill_in(&browser, "input[name=name]", "root").await;
    fill_in(&browser, "input[name=password]", &password_of("root")).await;
    click(&browser, "button[type=submit].primary").await;
    wait_for_text(&browser, "h1", "Users").await;

    fill_in(&browser, "form[action='/users'] input[name=name]", "newcomer").await;
    fill_in(
        &browser,
        "form[action='/users'] input[name=password]",
        "newcomer-password",
    )
    .await;
    click(&browser, "form[action='/users'] button[type=submit]").await;
    wait_for_text(&browser, "#flash", "Created newcomer (viewer).").await;
    assert!(app.user("newcomer").await.is_some());

    // Disable asks first (htmx hx-confirm); accept the dialog.
    click(&browser, "form[action='/users/newcomer/disable'] button").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = browser.get_alert_text().await {
            assert!(text.contains("Disable newcomer?"), "{text}");
            browser.accept_alert().await.unwrap();
            break;
        }
        assert!(Instant::now() < deadline, "no confirm dialog");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_text(&browser, "#flash", "Disabled newcomer").await;
    assert!(
        app.user("newcomer").await.unwrap().disabled,
        "really disabled in the store"
    );
    browser.close().await.unwrap();
}

#[tokio::test]
async fn a_newcomer_sees_the_demo_and_adds_their_postgres() {
    let app = TestApp::spawn_with(crate::helpers::StoreChoice::Sqlite, |c| c.demo = true).await;
    app.create_user("root", Role::Admin).await;
    let pg = crate::helpers::TestDb::postgres().await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.goto(&app.url("/login")).await.unwrap();
    fill_in(&browser, "input[name=name]", "root").await;
    fill_in(&browser, "input[name=password]", &password_of("root")).await;
    click(&browser, "button[type=submit].primary").await;
    wait_for_text(&browser, "h1", "Overview").await;
    wait_for_text(&browser, "#fleet", "demo").await;
    wait_for_text(&browser, "#fleet", "SQLite").await;
    // A manager on a phone sees each database's backup verdict.
    at_both_sizes(&browser, "overview", "#fleet", &["#fleet td.verdict .level"]).await;

    browser.goto(&app.url("/databases/new")).await.unwrap();
    fill_in(&browser, "input[name=name]", "local-pg").await;
    fill_in(&browser, "input[name=url]", &pg.url).await;
    // htmx posts the form to "Test connection" and shows the answer in place.
    click(&browser, "button[formaction='/databases/test-connection']").await;
    wait_for_text(&browser, "#test-result", "Connected: PostgreSQL").await;
    click(&browser, "button[type=submit].primary").await;

    wait_for_text(&browser, "h1", "local-pg").await;
    // The status card refreshes itself until the first check is in.
    wait_for_text(&browser, "#db-status", "reachable").await;
    let card = text_of(&browser, "#db-status").await;
    let version: String = {
        use sqlx::Connection;
        let mut direct = sqlx::PgConnection::connect(&pg.url).await.unwrap();
        sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut direct)
            .await
            .unwrap()
    };
    assert!(card.contains(&version), "the server's version is shown: {card}");
    assert!(
        card.contains(" kB") || card.contains(" MB"),
        "a size is shown: {card}"
    );
    assert!(card.contains(" / "), "connections used / max: {card}");
    // So do the schemas, without a reload, saying how old they are.
    wait_for_text(&browser, "#db-schemas", "public").await;
    wait_for_text(&browser, "#db-schemas .as-of", "as of").await;
    at_both_sizes(&browser, "database", "#db-figures", &["#db-status"]).await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn a_dba_cancels_a_runaway_query_in_two_clicks() {
    use sqlx::Connection;
    let pg = crate::helpers::TestDb::postgres().await;
    let app = TestApp::spawn().await;
    app.create_user("dba", Role::Operator).await;
    app.register("shop", &pg.url).await;
    let mut conn = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let runaway = tokio::spawn(async move { sqlx::query("SELECT pg_sleep(600)").execute(&mut conn).await });

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser
        .goto(&app.url("/login?next=%2Fdatabases%2Fshop%2Factivity%3Fevery%3D2"))
        .await
        .unwrap();
    fill_in(&browser, "input[name=name]", "dba").await;
    fill_in(&browser, "input[name=password]", &password_of("dba")).await;
    click(&browser, "button[type=submit].primary").await;
    let row = format!("tr[data-pid='{pid}']");
    wait_for_text(&browser, &row, "pg_sleep(600)").await;
    // In an incident the row's buttons are on screen, on a laptop and a phone.
    at_both_sizes(
        &browser,
        "activity",
        &row,
        &[
            &format!("{row} form[action$='/cancel'] button"),
            &format!("{row} a[href*='/terminate']"),
        ],
    )
    .await;

    // A mistyped confirmation shows the form again, the error beside it and
    // what was typed still in the box.
    click(&browser, &format!("{row} a[href*='/terminate']")).await;
    wait_for_text(&browser, "h1", &format!("Terminate session {pid}?")).await;
    fill_in(&browser, "input[name=confirm]", "1").await;
    click(&browser, "button[type=submit].danger").await;
    wait_for_text(&browser, ".flash.error", &format!("Type the pid ({pid})")).await;
    let typed = value_of(&browser, "input[name=confirm]").await;
    assert_eq!(typed.as_deref(), Some("1"), "the typed value is kept");
    click(&browser, "a[href^='/databases/shop/activity']").await;
    wait_for_text(&browser, &row, "pg_sleep(600)").await;

    click(&browser, &format!("{row} form[action$='/cancel'] button")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = browser.get_alert_text().await {
            assert!(text.contains(&format!("pid {pid}")), "{text}");
            browser.accept_alert().await.unwrap();
            break;
        }
        assert!(Instant::now() < deadline, "no confirm dialog");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_text(&browser, "#flash", &format!("Cancelled the query on pid {pid}.")).await;
    let result = tokio::time::timeout(Duration::from_secs(30), runaway)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_err(), "the query was really cancelled");
    // The live table drops it at its next refresh.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        // The refresh swaps the table: an element read mid-swap is stale,
        // and is read again.
        let text = match browser.find(Locator::Css("#activity")).await {
            Ok(el) => el.text().await.ok(),
            Err(_) => None,
        };
        if text.is_some_and(|t| !t.contains("pg_sleep(600)")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cancelled query stayed in the table"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.close().await.unwrap();
}

#[tokio::test]
async fn a_dba_runs_vacuum_analyze_and_watches_it_finish() {
    use sqlx::Connection;
    let pg = crate::helpers::TestDb::postgres().await;
    let mut direct = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE orders AS SELECT g AS id, repeat('x', 80) AS pad FROM generate_series(1, 30000) g; \
         DELETE FROM orders WHERE id % 2 = 0",
    )
    .execute(&mut direct)
    .await
    .unwrap();
    let app = TestApp::spawn().await;
    app.create_user("dba", Role::Operator).await;
    app.register("shop", &pg.url).await;

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser
        .goto(&app.url("/login?next=%2Fdatabases%2Fshop%2Fmaintenance"))
        .await
        .unwrap();
    fill_in(&browser, "input[name=name]", "dba").await;
    fill_in(&browser, "input[name=password]", &password_of("dba")).await;
    click(&browser, "button[type=submit].primary").await;
    wait_for_text(&browser, "table.maint", "public.orders").await;

    at_both_sizes(
        &browser,
        "maintenance",
        "table.maint",
        &["form.maint-form button[type=submit].primary"],
    )
    .await;
    // The VACUUM FULL warning and confirmation show only once it is chosen.
    let warning = "form.maint-form .vacuum-full-warning";
    let shown = |b: &Client, css: &'static str| {
        let b = b.clone();
        async move {
            b.find(Locator::Css(css))
                .await
                .unwrap()
                .is_displayed()
                .await
                .unwrap()
        }
    };
    assert!(
        !shown(&browser, warning).await,
        "no VACUUM FULL warning for other actions"
    );
    click(&browser, "input[name=tables][aria-label='Select public.orders']").await;
    let action = browser.find(Locator::Css("select[name=action]")).await.unwrap();
    action.select_by_value("vacuum_full").await.unwrap();
    assert!(
        shown(&browser, warning).await,
        "the warning once VACUUM FULL is chosen"
    );
    // A wrong name: the page again, the reason beside the form, the table
    // still selected and the typed name still there.
    fill_in(&browser, "input[name=confirm]", "order").await;
    click(&browser, "form.maint-form button[type=submit].primary").await;
    wait_for_text(&browser, "#maint-refused", "type \"orders\" to confirm").await;
    let typed = value_of(&browser, "input[name=confirm]").await;
    assert_eq!(typed.as_deref(), Some("order"));
    let still = browser
        .find(Locator::Css(
            "input[name=tables][aria-label='Select public.orders']",
        ))
        .await
        .unwrap()
        .prop("checked")
        .await
        .unwrap();
    assert_eq!(still.as_deref(), Some("true"), "the selection is kept");
    assert!(shown(&browser, warning).await);
    let action = browser.find(Locator::Css("select[name=action]")).await.unwrap();
    action.select_by_value("vacuum_analyze").await.unwrap();
    click(&browser, "form.maint-form button[type=submit].primary").await;
    wait_for_text(&browser, "h1", "Job").await;
    wait_for_text(&browser, "#job .state", "succeeded").await;
    wait_for_text(&browser, "#job .percent", "100%").await;
    wait_for_text(&browser, "#job pre.log", "done: VACUUM ANALYZE public.orders").await;
    // What VACUUM did, in the server's words and in the job's result.
    wait_for_text(&browser, "#job pre.log", "tuples: 15000 removed").await;
    wait_for_text(&browser, "#job .job-head", "15000 dead tuples removed").await;
    at_both_sizes(&browser, "job", "#job", &["#job pre.log"]).await;
    let job_url = browser.current_url().await.unwrap();

    // The audit log says what the job was and links to it.
    browser.goto(&app.url("/audit")).await.unwrap();
    wait_for_text(&browser, "table.audit", "VACUUM ANALYZE public.orders on shop").await;
    let link = browser
        .find(Locator::Css("table.audit td.target a[href^='/jobs/']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link, job_url.path());
    at_both_sizes(&browser, "audit", "table.audit", &["table.audit td.detail"]).await;
    browser.close().await.unwrap();
}

/// At a phone (390×844) and a laptop (1366×768) size: the page never
/// scrolls sideways (wide tables scroll inside their own box), and each of
/// `must_see` lies within the window's width (not past a table's edge).
/// With CUSTODIAN_SCREENSHOTS=DIR, what shows with `at` scrolled into view
/// is saved as DIR/NAME-WIDTH.png for a person to look at. The window is
/// left at the laptop size.
async fn at_both_sizes(browser: &Client, name: &str, at: &str, must_see: &[&str]) {
    let dir = std::env::var("CUSTODIAN_SCREENSHOTS").ok();
    for (w, h) in [(390, 844), (1366, 768)] {
        browser.set_window_size(w, h).await.unwrap();
        // The layout settles after a resize (and after htmx swaps): measure
        // until the page fits, for a few seconds.
        let settle = Instant::now() + Duration::from_secs(5);
        let (page, view) = loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let widths = browser
                .execute(
                    "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]",
                    vec![],
                )
                .await
                .unwrap();
            let (page, view) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
            if page <= view || Instant::now() > settle {
                break (page, view);
            }
        };
        if page > view {
            // Name what sticks out, for whoever reads the failure.
            let wide = browser
                .execute(
                    "const w = document.documentElement.clientWidth; \
                     return [...document.querySelectorAll('body *')] \
                       .filter(e => e.getBoundingClientRect().right > w + 0.5 && (e.matches('.table-wrap, nav.tabs, nav.nav') || !e.closest('.table-wrap, nav.tabs, nav.nav'))) \
                       .slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + ' in ' + e.parentElement.tagName + '.' + e.parentElement.className);",
                    vec![],
                )
                .await
                .unwrap();
            if let Ok(dir) = std::env::var("CUSTODIAN_SCREENSHOTS") {
                let _ = std::fs::create_dir_all(&dir);
                if let Ok(png) = browser.screenshot().await {
                    let _ = std::fs::write(format!("{dir}/{name}-{w}-FAILED.png"), png);
                }
            }
            panic!("{name} at {w} px scrolls sideways: {page} px wide in {view}: {wide}");
        }
        for css in must_see {
            let edges = browser
                .execute(
                    "const r = document.querySelector(arguments[0]).getBoundingClientRect(); \
                     const box = document.querySelector(arguments[0]).closest('.table-wrap'); \
                     const b = box ? box.getBoundingClientRect() : {left: 0, right: document.documentElement.clientWidth}; \
                     return [r.left, r.right, Math.max(0, b.left), Math.min(b.right, document.documentElement.clientWidth)]",
                    vec![json!(css)],
                )
                .await
                .unwrap();
            let e: Vec<f64> = edges
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert!(
                e[0] >= e[2] - 0.5 && e[1] <= e[3] + 0.5,
                "{name} at {w} px: {css} spans {:.0}–{:.0} px, outside the visible {:.0}–{:.0}",
                e[0],
                e[1],
                e[2],
                e[3]
            );
        }
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).unwrap();
            browser
                .execute(
                    "document.querySelector(arguments[0]).scrollIntoView()",
                    vec![json!(at)],
                )
                .await
                .unwrap();
            let png = browser.screenshot().await.unwrap();
            std::fs::write(format!("{dir}/{name}-{w}.png"), png).unwrap();
        }
    }
}

/// Sign out and wait for the sign-in page: a navigation started before the
/// sign-out's answer arrives would race it (and land signed in as the
/// previous user, or signed out after the next sign-in).
async fn sign_out(browser: &Client) {
    click(browser, "form[action='/logout'] button").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let at_login = browser.current_url().await.is_ok_and(|u| u.path() == "/login");
        if at_login && browser.find(Locator::Css("input[name=password]")).await.is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "signing out never reached /login");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What an input holds now (typed, or put back by the server).
async fn value_of(browser: &Client, css: &str) -> Option<String> {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
}

async fn sign_in(browser: &Client, app: &TestApp, name: &str, next: &str) {
    browser
        .goto(&app.url(&format!("/login?next={}", next.replace('/', "%2F"))))
        .await
        .unwrap();
    fill_in(browser, "input[name=name]", name).await;
    fill_in(browser, "input[name=password]", &password_of(name)).await;
    click(browser, "button[type=submit].primary").await;
}

#[tokio::test]
async fn a_lead_approves_a_migration_and_an_operator_applies_it() {
    let pg = crate::helpers::TestDb::postgres().await;
    pg.exec("CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint)")
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("V1__index_orders.sql"),
        "CREATE INDEX orders_customer_idx ON orders (customer_id);\n",
    )
    .unwrap();
    let app = TestApp::spawn().await;
    app.create_user("omar", Role::Operator).await;
    let lead = app.create_user("lina", Role::Viewer).await;
    custodian::store::users::set_role(app.state.store.pool(), lead.id, Role::Viewer, true)
        .await
        .unwrap();
    app.register_with_migrations("shop", &pg.url, Some(dir.path()))
        .await;
    let page = "/databases/shop/migrations";

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    // The operator finds the pending migration blocked by its lint error.
    sign_in(&browser, &app, "omar", page).await;
    wait_for_text(&browser, "h2", "Pending (1)").await;
    wait_for_text(
        &browser,
        ".request-form .blocked",
        "lint errors, which block a request",
    )
    .await;
    let button = browser
        .find(Locator::Css("form[action$='/migrations/requests'] button"))
        .await
        .unwrap();
    assert!(
        !button.is_enabled().await.unwrap(),
        "an error-level finding blocks the request"
    );
    // The team fixes the file (CONCURRENTLY), adding a table in the same
    // file: a warning is left, and the page says how apply will run it.
    std::fs::write(
        dir.path().join("V1__index_orders.sql"),
        "CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);\n\
         CREATE TABLE order_notes (id int PRIMARY KEY, note text);\n",
    )
    .unwrap();
    browser.refresh().await.unwrap();
    wait_for_text(&browser, ".outside-tx", "Applied outside a transaction").await;
    click(&browser, "form[action$='/migrations/requests'] button").await;
    wait_for_text(&browser, ".flash.ok", "an approver must approve it").await;
    assert!(
        browser.find(Locator::Css("form.decide")).await.is_err(),
        "no approve button on one's own request"
    );
    sign_out(&browser).await;

    // The lead reads the finding and approves with a comment.
    sign_in(&browser, &app, "lina", page).await;
    // The request card shows the lint summary beside Approve.
    wait_for_text(
        &browser,
        "article.request .lint-summary",
        "Lint: 0 error(s), 1 warning(s)",
    )
    .await;
    wait_for_text(
        &browser,
        "article.request .lint-summary",
        "prefer-bigint-over-int",
    )
    .await;
    fill_in(
        &browser,
        "form.decide input[name=comment]",
        "ok for this small table",
    )
    .await;
    click(&browser, "form.decide button[value=approve]").await;
    wait_for_text(&browser, ".flash.ok", "approved").await;
    wait_for_text(
        &browser,
        "ul.decisions",
        "Approved by lina: “ok for this small table”",
    )
    .await;
    // It says what it is now, and offers lina no second approval.
    wait_for_text(
        &browser,
        "article.request h3",
        "approved — ready to apply (by lina)",
    )
    .await;
    assert!(
        browser.find(Locator::Css("form.decide")).await.is_err(),
        "no decision left for lina"
    );
    assert!(
        browser
            .find(Locator::Css("form[action$='/apply']"))
            .await
            .is_err(),
        "a viewer cannot apply"
    );
    sign_out(&browser).await;

    // The operator applies it and watches the job finish.
    sign_in(&browser, &app, "omar", page).await;
    wait_for_text(&browser, "form[action$='/apply'] button", "Apply now").await;
    click(&browser, "form[action$='/apply'] button").await;
    wait_for_text(&browser, "#job .state", "succeeded").await;
    wait_for_text(&browser, "#job pre.log", "applied 1").await;
    browser.goto(&app.url(page)).await.unwrap();
    wait_for_text(&browser, "h2", "Pending (0)").await;
    wait_for_text(&browser, "span.state", "done").await;
    browser.close().await.unwrap();

    let actions: Vec<(String, String)> = app
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action.starts_with("migration.") && r.outcome == "success")
        .map(|r| (r.actor, r.action))
        .collect();
    assert_eq!(
        actions,
        [
            ("omar".to_string(), "migration.request".to_string()),
            ("lina".to_string(), "migration.approve".to_string()),
            ("omar".to_string(), "migration.apply".to_string()),
        ],
        "all in the audit log"
    );
}

#[tokio::test]
async fn a_dba_acknowledges_and_silences_an_alert_then_reads_a_weeks_charts() {
    use custodian::service::Actor;
    use custodian::service::monitoring::{alerts, rules::Setting};
    let pg = crate::helpers::TestDb::postgres().await;
    let app = TestApp::spawn_with(crate::helpers::StoreChoice::Sqlite, |c| {
        c.sample_interval = Duration::from_secs(1);
    })
    .await;
    app.create_user("dba", Role::Operator).await;
    app.register("shop", &pg.url).await;
    app.register("legacy", "postgres://postgres@127.0.0.1:1/legacy")
        .await;
    let legacy = custodian::domain::DatabaseName::parse("legacy").unwrap();
    let now_please = Setting {
        enabled: true,
        threshold: None,
        for_seconds: 0,
    };
    alerts::set_rule(
        &app.state.store,
        &Actor::cli(),
        &legacy,
        "unreachable",
        now_please,
    )
    .await
    .unwrap();
    let store = app.state.store.clone();
    crate::helpers::eventually(
        "legacy's unreachable alert to fire, and shop to have samples",
        || async {
            let open = custodian::store::alerts::open(store.pool()).await.ok()?;
            let (raw, _) = custodian::store::metrics::count(store.pool(), "shop")
                .await
                .ok()?;
            (open.iter().any(|a| {
                a.database_name == "legacy" && a.state == custodian::store::alerts::AlertState::Firing
            }) && raw >= 3)
                .then_some(())
        },
    )
    .await;

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &app, "dba", "/").await;
    wait_for_text(&browser, "#fleet", "1 firing").await;
    click(&browser, "#fleet a[href='/alerts']").await;
    wait_for_text(&browser, "table.alerts", "Database unreachable").await;
    wait_for_text(&browser, "table.alerts", "legacy does not answer").await;
    // In an incident, on a phone too: Acknowledge is on screen.
    at_both_sizes(
        &browser,
        "alerts",
        "table.alerts",
        &["table.alerts form[action$='/ack'] button"],
    )
    .await;

    click(&browser, "table.alerts form[action$='/ack'] button").await;
    wait_for_text(&browser, "#flash", "Acknowledged").await;
    wait_for_text(&browser, "table.alerts", "dba,").await;

    let length = browser
        .find(Locator::Css(
            "table.alerts form[action='/alerts/silences'] select[name=duration]",
        ))
        .await
        .unwrap();
    length.select_by_value("4h").await.unwrap();
    click(&browser, "table.alerts form[action='/alerts/silences'] button").await;
    wait_for_text(&browser, "#flash", "silenced for 4h").await;
    wait_for_text(&browser, "table.alerts", "silenced for").await;
    assert!(
        app.audit()
            .await
            .iter()
            .any(|r| r.action == "alert.silence" && r.actor == "dba" && r.outcome == "success")
    );

    // A week of shop's figures: the range picker changes the charts' span.
    browser
        .goto(&app.url("/databases/shop/monitoring"))
        .await
        .unwrap();
    wait_for_text(&browser, "figure.chart figcaption", "Connections by state").await;
    // A few seconds of samples: it opens on the hour, the x-axis starting
    // at the first sample, lines drawn, and no axis reading "0s / 0s / 0s".
    wait_for_text(&browser, "nav.ranges a[aria-current='page']", "1h").await;
    let drawn = browser
        .find_all(Locator::Css("svg.chart g.series polyline"))
        .await
        .unwrap();
    assert!(!drawn.is_empty(), "three samples draw lines, not dots");
    // Every chart's three y-axis labels differ.
    let axes = browser
        .execute(
            "return [...document.querySelectorAll('svg.chart')].map(svg => \
               [svg.getAttribute('aria-label'), \
                [...svg.querySelectorAll('g.axis text.y')].map(t => t.textContent)])",
            vec![],
        )
        .await
        .unwrap();
    for chart in axes.as_array().unwrap() {
        let labels: std::collections::BTreeSet<&str> = chart[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert_eq!(labels.len(), 3, "{chart}");
    }
    at_both_sizes(&browser, "monitoring", ".charts", &["figure.chart"]).await;
    click(&browser, "nav.ranges a[href$='range=7d']").await;
    wait_for_text(&browser, "nav.ranges a[aria-current='page']", "7d").await;
    let charts = browser.find_all(Locator::Css("svg.chart")).await.unwrap();
    assert!(
        charts.len() >= 4,
        "connections, TPS, cache, size at least: {}",
        charts.len()
    );
    let lines = browser
        .find_all(Locator::Css("svg.chart g.series polyline"))
        .await
        .unwrap();
    assert!(!lines.is_empty(), "the charts draw lines");
    browser.close().await.unwrap();
}

#[tokio::test]
async fn an_admin_finds_the_drop_on_the_timeline_and_restores_to_just_before_it() {
    use crate::recovery::{archive_now, backup, count_on, panel, recovery, register, restored_url, sql};
    let pg = crate::helpers::ThrowawayPg::with_pgbackrest();
    let app = panel(&pg).await;
    let admin = app.token_for("bot", Role::Admin).await;
    register(&app, &admin, &pg, "shop", json!({})).await;
    sql(
        &pg,
        "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 250)",
    )
    .await;
    backup(&app, &admin, "shop", "full").await;
    sql(&pg, "INSERT INTO orders SELECT generate_series(251, 300)").await;
    sql(&pg, "DROP TABLE orders").await;
    archive_now(&pg).await;

    app.create_user("root", Role::Admin).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser
        .goto(&app.url("/login?next=%2Fdatabases%2Fshop%2Fbackups"))
        .await
        .unwrap();
    fill_in(&browser, "input[name=name]", "root").await;
    fill_in(&browser, "input[name=password]", &password_of("root")).await;
    click(&browser, "button[type=submit].primary").await;
    wait_for_text(&browser, "#pitr h2", "Point-in-time recovery").await;
    wait_for_text(&browser, "#pitr .archiving", "archiving works").await;

    click(&browser, ".timeline-form button[type=submit]").await;
    wait_for_text(&browser, "table.timeline tr.event.drop", "public.orders").await;
    at_both_sizes(&browser, "pitr-backups-tab", "#pitr", &[]).await;
    click(&browser, "table.timeline tr.event.drop a.button").await;
    wait_for_text(&browser, "h1", "Restore shop into a new server").await;
    wait_for_text(&browser, "main", "Just before: drop public.orders").await;
    at_both_sizes(
        &browser,
        "pitr-restore-form",
        "h1",
        &["button[type=submit].danger"],
    )
    .await;
    fill_in(&browser, "input[name=confirm]", "shop").await;
    click(&browser, "button[type=submit].danger").await;
    wait_for_text(&browser, ".job-head", "succeeded").await;
    let phase = text_of(&browser, ".job-head").await;
    assert!(phase.contains("restored into shop-pitr-"), "{phase}");

    let s = recovery(&app, &admin, "shop").await;
    let r = &s["restores"][0];
    assert_eq!(r["state"], "ready", "{s}");
    let url = restored_url(&pg, r["port"].as_i64().unwrap());
    assert_eq!(count_on(&url, "SELECT count(*) FROM orders").await, 300);
    // The restored server is a database of the panel: its tables are browsed there.
    browser.goto(&app.url("/databases/shop/backups")).await.unwrap();
    wait_for_text(&browser, "table.restores", "ready").await;
    at_both_sizes(
        &browser,
        "pitr-restored",
        "table.restores",
        &["table.restores form[action$='/discard'] button"],
    )
    .await;
    click(&browser, "table.restores a[href^='/databases/shop-pitr-']").await;
    wait_for_text(&browser, "h1", "shop-pitr-").await;
    let restored_page = browser.current_url().await.unwrap();
    browser
        .goto(&format!(
            "{}/maintenance",
            restored_page.as_str().trim_end_matches('/')
        ))
        .await
        .unwrap();
    wait_for_text(&browser, "main", "orders").await;
    browser.goto(&app.url("/databases/shop/backups")).await.unwrap();
    wait_for_text(&browser, "table.restores", "ready").await;
    click(&browser, "table.restores form[action$='/discard'] button").await;
    wait_for_text(&browser, ".job-head", "succeeded").await;
    browser.close().await.unwrap();
}

/// Every page a signed-in admin can open, at a phone and a laptop size: none
/// scrolls sideways, and with CUSTODIAN_SCREENSHOTS set each is saved for a
/// person to look at (scripts/test leaves them in target/screenshots).
#[tokio::test]
async fn every_page_fits_a_phone_and_a_laptop() {
    let pg = crate::helpers::TestDb::postgres().await;
    pg.exec(
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, note text); \
         CREATE INDEX orders_customer_idx ON orders (customer_id); \
         INSERT INTO orders SELECT g, g % 100, repeat('x', 40) FROM generate_series(1, 5000) g",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("V1__notes.sql"),
        "CREATE TABLE order_notes (id bigint PRIMARY KEY, body text);\n",
    )
    .unwrap();
    let app = TestApp::spawn_with(crate::helpers::StoreChoice::Sqlite, |c| c.demo = true).await;
    app.create_user("root", Role::Admin).await;
    app.register_with_migrations("shop", &pg.url, Some(dir.path()))
        .await;
    let token = app.token_for("bot", Role::Operator).await;
    let res = crate::helpers::api_post(
        &app,
        &token,
        "/api/v1/databases/shop/maintenance",
        json!({"action": "analyze", "tables": ["public.orders"]}),
    )
    .await;
    assert!(res.status().is_success(), "{}", res.status());
    let job: serde_json::Value = res.json().await.unwrap();
    let job = job["job_id"].as_i64().expect("a job id");
    app.job_finished(&token, job).await;

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &app, "root", "/").await;
    wait_for_text(&browser, "h1", "Overview").await;
    let pages: &[(&str, &str)] = &[
        ("page-overview", "/"),
        ("page-databases", "/databases"),
        ("page-servers", "/servers"),
        ("page-database-new", "/databases/new"),
        ("page-database", "/databases/shop"),
        ("page-database-edit", "/databases/shop/edit"),
        ("page-activity", "/databases/shop/activity"),
        ("page-top-queries", "/databases/shop/activity/top"),
        ("page-maintenance-tables", "/databases/shop/maintenance"),
        (
            "page-maintenance-indexes",
            "/databases/shop/maintenance?tab=indexes",
        ),
        (
            "page-maintenance-database",
            "/databases/shop/maintenance?tab=database",
        ),
        ("page-database-backups", "/databases/shop/backups"),
        ("page-monitoring", "/databases/shop/monitoring"),
        ("page-migrations", "/databases/shop/migrations"),
        ("page-demo", "/databases/demo"),
        ("page-demo-maintenance", "/databases/demo/maintenance"),
        ("page-backups", "/backups"),
        ("page-alerts", "/alerts"),
        ("page-jobs", "/jobs"),
        ("page-audit", "/audit"),
        ("page-users", "/users"),
        ("page-account", "/account"),
    ];
    let job_page = format!("/jobs/{job}");
    for (name, path) in pages.iter().copied().chain([("page-job", job_page.as_str())]) {
        browser.goto(&app.url(path)).await.unwrap();
        browser
            .wait()
            .for_element(Locator::Css("h1"))
            .await
            .unwrap_or_else(|e| panic!("{path} has no heading: {e}"));
        at_both_sizes(&browser, name, "h1", &[]).await;
    }
    sign_out(&browser).await;
    at_both_sizes(&browser, "page-login", "h1", &["button[type=submit]"]).await;
    browser.close().await.unwrap();
}
