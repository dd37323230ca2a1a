//! Test fixtures: `TestApp` runs the real server on port 0 with its own store
//! (a temporary SQLite file, or a fresh database on the local PostgreSQL);
//! `Client` is a browser-like HTTP client with a cookie jar and the page's
//! CSRF token; `TestDb` creates a uniquely named database on the real
//! PostgreSQL or MariaDB server and drops it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use custodian::config::{Config, SecretUrl};
use custodian::domain::{Password, Role, Username};
use custodian::server;
use custodian::service::users::{self, NewUser, User};
use custodian::service::{Actor, tokens};
use custodian::store::audit::{AuditRow, Filter};
use custodian::web::AppState;
use reqwest::StatusCode;
use reqwest::cookie::Jar;
use reqwest::redirect::Policy;
use tokio::sync::oneshot;

/// Which store the panel under test uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreChoice {
    Sqlite,
    Postgres,
}

/// URL of the PostgreSQL server tests may create databases on.
pub fn pg_admin_url() -> String {
    std::env::var("CUSTODIAN_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// URL of the MariaDB server tests may create databases on.
pub fn mysql_admin_url() -> String {
    std::env::var("CUSTODIAN_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/mysql".into())
}

/// A test database server.
#[derive(Clone, Copy, Debug)]
pub enum Server {
    Postgres,
    Mariadb,
}

impl Server {
    fn admin_url(self) -> String {
        match self {
            Server::Postgres => pg_admin_url(),
            Server::Mariadb => mysql_admin_url(),
        }
    }

    /// Run one administrative statement on the server.
    async fn admin(self, sql: &str) -> Result<(), sqlx::Error> {
        self.run(&self.admin_url(), sql).await
    }

    /// Run SQL (one or more statements) at `url`.
    async fn run(self, url: &str, sql: &str) -> Result<(), sqlx::Error> {
        use sqlx::Connection;
        let url = url.to_string();
        match self {
            Server::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                sqlx::raw_sql(sql).execute(&mut conn).await?;
                conn.close().await
            }
            Server::Mariadb => {
                let mut conn = sqlx::MySqlConnection::connect(&url).await?;
                sqlx::raw_sql(sql).execute(&mut conn).await?;
                conn.close().await
            }
        }
    }

    fn quote(self, name: &str) -> String {
        match self {
            Server::Postgres => format!("\"{name}\""),
            Server::Mariadb => format!("`{name}`"),
        }
    }
}

/// A uniquely named database on a test server, dropped (on PostgreSQL with
/// FORCE, so open pools do not block it) when this value is dropped.
pub struct TestDb {
    pub server: Server,
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// Run SQL in this database (setting up what a test needs).
    pub async fn exec(&self, sql: &str) {
        self.server
            .run(&self.url, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub async fn postgres() -> TestDb {
        Self::create(Server::Postgres).await
    }

    pub async fn mariadb() -> TestDb {
        Self::create(Server::Mariadb).await
    }

    async fn create(server: Server) -> TestDb {
        let name = format!("custodian_test_{}", uuid::Uuid::new_v4().simple());
        server
            .admin(&format!("CREATE DATABASE {}", server.quote(&name)))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot create a test database on {server:?} at {}: {e}",
                    server.admin_url()
                )
            });
        let mut url = url::Url::parse(&server.admin_url()).expect("the test server URL is a URL");
        url.set_path(&format!("/{name}"));
        TestDb {
            server,
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (server, name) = (self.server, self.name.clone());
        let force = match server {
            Server::Postgres => " WITH (FORCE)",
            Server::Mariadb => "",
        };
        let sql = format!("DROP DATABASE IF EXISTS {}{force}", server.quote(&name));
        // Drop runs inside the test's runtime; use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(server.admin(&sql)).ok()
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// GET `path` from a served binary at `base` with an API token: the JSON
/// answer, or `None` while it does not answer (it may be starting).
pub async fn served_get(base: &str, token: &str, path: &str) -> Option<serde_json::Value> {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// POST `body` to a served binary: the status and JSON answer, or `None`
/// while it does not answer.
pub async fn served_post(
    base: &str,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> Option<(reqwest::StatusCode, serde_json::Value)> {
    let res = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .ok()?;
    let status = res.status();
    Some((status, res.json().await.ok()?))
}

/// Wait (polling, up to 30 s) until `check` returns `Some`; panic with
/// `what` otherwise. For conditions a background task brings about.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The real panel, serving on a random port.
pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub setup_token: Option<String>,
    pub data_dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    // Declared last: dropped after the server has been told to stop.
    _pg: Option<TestDb>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(StoreChoice::Sqlite, |_| {}).await
    }

    pub async fn spawn_on(store: StoreChoice) -> TestApp {
        Self::spawn_with(store, |_| {}).await
    }

    /// Start with a store and a chance to adjust the configuration.
    pub async fn spawn_with(store: StoreChoice, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let pg = match store {
            StoreChoice::Sqlite => None,
            StoreChoice::Postgres => Some(TestDb::postgres().await),
        };
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.path().to_path_buf(),
            store_url: pg.as_ref().map(|pg| SecretUrl::new(pg.url.clone())),
            // Tests that want the demo database turn it on.
            demo: false,
            ..Config::default()
        };
        adjust(&mut config);
        let prepared = server::prepare(config).await.expect("the panel starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let app = prepared.app;
        let limits = server::Limits::of(&prepared.state.config);
        tokio::spawn(async move {
            server::serve(listener, app, limits, async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        TestApp {
            addr,
            state: prepared.state,
            setup_token: prepared.setup_token,
            data_dir,
            shutdown: Some(tx),
            _pg: pg,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A browser-like client with an empty cookie jar.
    pub fn client(&self) -> Client {
        Client::new(&self.url(""))
    }

    /// A browser-like client whose requests say (in X-Forwarded-For) that
    /// they come from `addr`; the panel believes it with `trust_proxy_headers`.
    pub fn client_from(&self, addr: &str) -> Client {
        Client::from_address(&self.url(""), addr)
    }

    /// Run a `SELECT COUNT(*) …`-like query on the panel's own store.
    pub async fn store_i64(&self, sql: &str) -> i64 {
        match self.state.store.pool() {
            custodian::store::Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
            custodian::store::Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Run one statement on the panel's own store (to move its clocks).
    pub async fn store_exec(&self, sql: &str) {
        match self.state.store.pool() {
            custodian::store::Pool::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
            custodian::store::Pool::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The ids of every row in the session table (tower-sessions' own).
    pub async fn stored_session_ids(&self) -> Vec<String> {
        match self.state.store.pool() {
            custodian::store::Pool::Sqlite(p) => sqlx::query_scalar("SELECT id FROM tower_sessions")
                .fetch_all(p)
                .await
                .unwrap(),
            custodian::store::Pool::Postgres(p) => {
                sqlx::query_scalar("SELECT id FROM tower_sessions.session")
                    .fetch_all(p)
                    .await
                    .unwrap()
            }
        }
    }

    /// Create a user directly through the service layer (as the CLI would).
    pub async fn create_user(&self, name: &str, role: Role) -> User {
        let new = NewUser {
            name: Username::parse(name).unwrap(),
            password: Password::new(password_of(name)).unwrap(),
            role,
            can_approve: false,
        };
        users::create(&self.state.store, &Actor::cli(), new)
            .await
            .expect("create user")
    }

    /// A new user of `role`, signed in through the real form.
    pub async fn signed_in(&self, name: &str, role: Role) -> Client {
        self.create_user(name, role).await;
        let mut client = self.client();
        let res = client.login(name, &password_of(name)).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "sign-in of {name} succeeds");
        client.refresh_csrf().await;
        client
    }

    /// An API token for a new approver (can_approve) of `role`.
    pub async fn approver_token(&self, name: &str, role: Role) -> String {
        let token = self.token_for(name, role).await;
        let user = self.user(name).await.expect("just created");
        custodian::store::users::set_role(self.state.store.pool(), user.id, role, true)
            .await
            .expect("make an approver");
        token
    }

    /// An API token for a new user of `role`.
    pub async fn token_for(&self, name: &str, role: Role) -> String {
        let user = self.create_user(name, role).await;
        tokens::create(&self.state.store, &Actor::cli(), &user, "test")
            .await
            .expect("create token")
            .secret
    }

    /// Every audit row, oldest first.
    pub async fn audit(&self) -> Vec<AuditRow> {
        let mut all = Vec::new();
        let mut filter = Filter::default();
        loop {
            let page = custodian::service::audit::search(&self.state.store, filter.clone())
                .await
                .unwrap();
            all.extend(page.rows);
            match page.older {
                Some(before) => filter.before_id = Some(before),
                None => break,
            }
        }
        all.reverse();
        all
    }

    /// Register a database as the CLI would, and bring the fleet up to date.
    pub async fn register(&self, name: &str, url: &str) {
        self.register_with_migrations(name, url, None).await
    }

    /// Register a database whose migrations live in `dir`.
    pub async fn register_with_migrations(&self, name: &str, url: &str, dir: Option<&std::path::Path>) {
        let new = custodian::service::registry::NewDatabase {
            name: custodian::domain::DatabaseName::parse(name).unwrap(),
            url: SecretUrl::new(url),
            migrations_dir: dir.map(|d| d.display().to_string()),
            rpo: None,
            rto: None,
            schedules: Default::default(),
            pitr: Default::default(),
        };
        self.state
            .registry
            .add(&Actor::cli(), new)
            .await
            .expect("register a database");
        self.state.fleet.refresh(&self.state.registry).await;
    }

    /// Wait for a job to end; its final JSON (GET /api/v1/jobs/{id}).
    pub async fn job_finished(&self, token: &str, id: i64) -> serde_json::Value {
        // The last answer, so a job that never ends says where it stood.
        let last = std::sync::Mutex::new(serde_json::Value::Null);
        let waited = tokio::time::timeout(
            Duration::from_secs(29),
            eventually(&format!("job {id} to end"), || async {
                let v: serde_json::Value = api_get(self, token, &format!("/api/v1/jobs/{id}"))
                    .await
                    .json()
                    .await
                    .ok()?;
                *last.lock().unwrap() = v.clone();
                (!matches!(v["state"].as_str(), Some("queued" | "running"))).then_some(v)
            }),
        )
        .await;
        match waited {
            Ok(v) => v,
            Err(_) => {
                let row = custodian::store::jobs::get(self.state.store.pool(), id).await;
                panic!(
                    "job {id} never ended; last seen: {}; in the store: {row:?}",
                    last.lock().unwrap()
                )
            }
        }
    }

    /// A database's JSON detail through the API, as an admin bot sees it.
    pub async fn db_json(&self, token: &str, name: &str) -> serde_json::Value {
        api_get(self, token, &format!("/api/v1/databases/{name}"))
            .await
            .json()
            .await
            .unwrap()
    }

    /// Wait until the poller has an answer about `name` (reachable or not).
    pub async fn checked(&self, token: &str, name: &str) -> serde_json::Value {
        eventually(&format!("{name} to be checked"), || async {
            let v = self.db_json(token, name).await;
            (!v["reachable"].is_null()).then_some(v)
        })
        .await
    }

    pub async fn user(&self, name: &str) -> Option<User> {
        users::by_name(&self.state.store, &Username::parse(name).unwrap())
            .await
            .ok()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Each test user's password.
pub fn password_of(name: &str) -> String {
    format!("pw-{name}-long-enough")
}

/// An HTTP client that behaves like one browser tab: cookies, no automatic
/// redirects (tests assert them), and the CSRF token of the last page read.
pub struct Client {
    pub http: reqwest::Client,
    jar: Arc<Jar>,
    pub base: String,
    pub csrf: String,
}

/// The `csrf_token` hidden field of a page.
pub fn csrf_in(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

impl Client {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .expect("GET")
    }

    pub async fn text(&self, path: &str) -> (StatusCode, String) {
        let res = self.get(path).await;
        let status = res.status();
        (status, res.text().await.unwrap())
    }

    /// Read the CSRF token from a page that has forms.
    pub async fn refresh_csrf(&mut self) {
        let (_, html) = self.text("/account").await;
        if let Some(t) = csrf_in(&html) {
            self.csrf = t;
            return;
        }
        let (_, html) = self.text("/login").await;
        self.csrf = csrf_in(&html).expect("the login page has a CSRF token");
    }

    /// POST a form with the CSRF token, as the page's form would.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", &self.csrf)];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// POST a form exactly as given (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{}", self.base, path))
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    /// Sign in through the login form (fetching it first for its token).
    pub async fn login(&mut self, name: &str, password: &str) -> reqwest::Response {
        let (_, html) = self.text("/login").await;
        self.csrf = csrf_in(&html).expect("login form has a CSRF token");
        self.post("/login", &[("name", name), ("password", password), ("next", "/")])
            .await
    }

    /// The session cookie's current value.
    pub fn session_cookie(&self) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = self.base.parse().ok()?;
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split(';')
            .map(str::trim)
            .find_map(|c| c.strip_prefix("custodian_session="))
            .map(str::to_string)
    }

    /// A client for the panel at `base`, with an empty cookie jar.
    pub fn new(base: &str) -> Client {
        Client::with_jar(base, Arc::new(Jar::default()))
    }

    /// A new client that presents `cookie` as its session cookie.
    pub fn with_session_cookie(base: &str, cookie: &str) -> Client {
        let jar = Arc::new(Jar::default());
        jar.add_cookie_str(&format!("custodian_session={cookie}"), &base.parse().unwrap());
        Client::with_jar(base, jar)
    }

    /// A new client whose requests carry `X-Forwarded-For: addr`.
    pub fn from_address(base: &str, addr: &str) -> Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", addr.parse().expect("an address"));
        Client::build(base, Arc::new(Jar::default()), headers)
    }

    fn with_jar(base: &str, jar: Arc<Jar>) -> Client {
        Client::build(base, jar, reqwest::header::HeaderMap::new())
    }

    fn build(base: &str, jar: Arc<Jar>, headers: reqwest::header::HeaderMap) -> Client {
        Client {
            http: reqwest::Client::builder()
                .default_headers(headers)
                .cookie_provider(jar.clone())
                .redirect(Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            jar,
            base: base.to_string(),
            csrf: String::new(),
        }
    }
}

/// A request with a bearer token.
pub async fn api_get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("API GET")
}

/// A JSON POST with a bearer token.
pub async fn api_post(app: &TestApp, token: &str, path: &str, body: serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("API POST")
}

/// Run `story` against the panel on both store engines.
#[macro_export]
macro_rules! on_both_stores {
    ($story:ident) => {
        mod $story {
            #[tokio::test]
            async fn sqlite_store() {
                super::$story($crate::helpers::StoreChoice::Sqlite).await;
            }
            #[tokio::test]
            async fn postgres_store() {
                super::$story($crate::helpers::StoreChoice::Postgres).await;
            }
        }
    };
}

/// A PostgreSQL server of the test's own, from this machine's installation,
/// for what the shared server cannot give (here: pg_stat_statements, which
/// needs shared_preload_libraries and a restart). Stopped on drop.
pub struct ThrowawayPg {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    pub url: String,
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

/// A PostgreSQL server program; as root, run as the postgres account
/// (PostgreSQL refuses to run as root).
fn pg_program(program: &std::path::Path) -> std::process::Command {
    if running_as_root() {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        std::process::Command::new(program)
    }
}

impl ThrowawayPg {
    pub fn start(settings: &[&str]) -> ThrowawayPg {
        Self::start_in(tempfile::tempdir().unwrap(), settings)
    }

    /// Its directory (the data directory is `data` inside).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A cluster archiving its WAL into a pgBackRest repository of its own
    /// (stanza `main`, config `pgbackrest.conf` in its directory), with the
    /// stanza created. For point-in-time recovery stories.
    pub fn with_pgbackrest() -> ThrowawayPg {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let config = format!(
            "[global]\nrepo1-path={d}/repo\nlog-path={d}/log\nlock-path={d}/lock\nrepo1-retention-full=4\n\
             archive-async=n\n[main]\npg1-path={d}/data\npg1-socket-path={d}\n"
        );
        std::fs::write(dir.path().join("pgbackrest.conf"), config).unwrap();
        for sub in ["repo", "log", "lock", "restores"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        if running_as_root() {
            std::process::Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
        }
        let archive = format!(
            "archive_command='pgbackrest --config={d}/pgbackrest.conf --stanza=main archive-push %p'"
        );
        let pg = Self::start_in(dir, &["wal_level=replica", "archive_mode=on", &archive]);
        let port = url::Url::parse(&pg.url).unwrap().port().unwrap();
        let conf = format!("{d}/pgbackrest.conf");
        let mut create = pg_program(std::path::Path::new("/usr/bin/pgbackrest"));
        create.args([
            &format!("--config={conf}"),
            "--stanza=main",
            &format!("--pg1-port={port}"),
            "stanza-create",
        ]);
        let out = create.output().expect("pgbackrest (scripts/test installs it)");
        assert!(
            out.status.success(),
            "stanza-create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        // The port is the cluster's: write it into the config for the panel.
        let text = std::fs::read_to_string(&conf).unwrap();
        std::fs::write(&conf, format!("{text}pg1-port={port}\n")).unwrap();
        pg
    }

    /// The pgBackRest config file of [`ThrowawayPg::with_pgbackrest`].
    pub fn pgbackrest_config(&self) -> String {
        self.dir.path().join("pgbackrest.conf").display().to_string()
    }

    fn start_in(dir: tempfile::TempDir, settings: &[&str]) -> ThrowawayPg {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|dirs| {
                let mut versions: Vec<std::path::PathBuf> =
                    dirs.filter_map(|d| Some(d.ok()?.path().join("bin"))).collect();
                versions.sort();
                versions.pop()
            })
            .filter(|b| b.join("initdb").exists())
            .expect("PostgreSQL's server programs (initdb, pg_ctl): scripts/test installs them");
        if running_as_root() {
            std::process::Command::new("chmod")
                .arg("755")
                .arg(dir.path())
                .status()
                .unwrap();
            std::process::Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .unwrap();
        }
        let data = dir.path().join("data");
        let run = |program: &str, args: &[&str]| {
            let out = pg_program(&bin.join(program)).args(args).output().unwrap();
            assert!(
                out.status.success(),
                "{program}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(
            "initdb",
            &["-D", data.to_str().unwrap(), "-A", "trust", "-U", "postgres"],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            dir.path().display()
        );
        for s in settings {
            options.push_str(&format!(" -c {s}"));
        }
        let log = dir.path().join("server.log");
        run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
        ThrowawayPg {
            dir,
            bin,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        }
    }
}

impl Drop for ThrowawayPg {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = pg_program(&self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

/// The real `custodian` binary on a data directory of its own, for stories
/// that need a process to die (SIGKILL) and come back.
pub struct Binary {
    pub data: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Binary {
    pub fn new() -> Binary {
        let dir = tempfile::tempdir().unwrap();
        Binary {
            data: dir.path().join("data"),
            _dir: dir,
        }
    }

    /// Run a CLI command with `stdin`; its stdout. Panics if it fails.
    pub fn cli(&self, args: &[&str], stdin: &str) -> String {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_custodian"))
            .arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let _ = std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "custodian {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// An operator and their API token.
    pub fn operator_token(&self) -> String {
        self.cli(
            &["user", "add", "ops", "--role", "operator", "--password-stdin"],
            "ops-password-1\n",
        );
        self.cli(&["token", "create", "ops", "--name", "t"], "")
            .trim()
            .to_string()
    }

    /// Start `serve` on a free port; the child and its base URL.
    pub fn serve(&self) -> (std::process::Child, String) {
        self.serve_with(&[])
    }

    /// [`Binary::serve`] with environment variables (`CUSTODIAN_*` settings).
    pub fn serve_with(&self, env: &[(&str, &str)]) -> (std::process::Child, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_custodian"))
            .arg("--data-dir")
            .arg(&self.data)
            .args(["serve", "--no-demo", "--listen", &format!("127.0.0.1:{port}")])
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        (child, format!("http://127.0.0.1:{port}"))
    }
}
