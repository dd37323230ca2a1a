//! The benchmark driver that `bench/run` starts. It runs the real panel
//! binary against a throwaway PostgreSQL and measures, side by side in one
//! run, what docs/BENCHMARKS.md reports. Not a test: it asserts nothing, it
//! measures and writes the table (and says which targets were met).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

mod monitoring;

const SAMPLES: usize = 400;
const EXTRA_CONNECTIONS: usize = 200;
const VIEWER_WINDOW: Duration = Duration::from_secs(20);
const POLL_EVERY: Duration = Duration::from_secs(2);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run bench/run"))
}

/// A panel process on its own data dir and port.
struct Panel {
    child: Child,
    base: String,
    cookie: String,
}

impl Drop for Panel {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn custodian(data: &str) -> Command {
    let mut cmd = Command::new(env("BENCH_CUSTODIAN"));
    cmd.arg("--data-dir").arg(data).env("RUST_LOG", "warn");
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_panel(name: &str, db_url: &str, sample_ttl: &str) -> Panel {
    let data = format!("{}/{name}", env("BENCH_WORK"));
    let mut add = custodian(&data)
        .args(["user", "add", "bench", "--role", "operator", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"bench-password-1\n")
        .unwrap();
    assert!(add.wait().unwrap().success());
    let ok = custodian(&data)
        .args(["db", "add", "shop", "--url", db_url])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let port = free_port();
    let child = custodian(&data)
        .args(["serve", "--no-demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("CUSTODIAN_ACTIVITY_SAMPLE_TTL", sample_ttl)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the panel did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Sign in like a browser: the login form's CSRF token and the cookie it
    // is bound to (the sign-in page stores no session), then the session.
    let login = http.get(format!("{base}/login")).send().await.unwrap();
    let pre = cookie_of(&login, "custodian_signin");
    let html = login.text().await.unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let csrf = &html[start..start + html[start..].find('"').unwrap()];
    let res = http
        .post(format!("{base}/login"))
        .header("cookie", format!("custodian_signin={pre}"))
        .form(&[
            ("csrf_token", csrf),
            ("name", "bench"),
            ("password", "bench-password-1"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    let cookie = cookie_of(&res, "custodian_session");
    let panel = Panel { child, base, cookie };
    // Wait for the first status check so the activity page has its database.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = fragment(&http, &panel).await;
        if res.0 == 200 && res.1.contains("Sessions here") {
            break;
        }
        assert!(Instant::now() < deadline, "the activity fragment never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panel
}

fn cookie_of(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")).map(str::to_string))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("a {name} cookie"))
}

async fn fragment(http: &reqwest::Client, panel: &Panel) -> (u16, String) {
    let res = http
        .get(format!("{}/databases/shop/activity", panel.base))
        .header("cookie", format!("custodian_session={}", panel.cookie))
        .header("hx-request", "true")
        .header("hx-target", "activity")
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// (median, p99) in milliseconds.
fn summary(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(|a, b| a.total_cmp(b));
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Calls of the activity query recorded by pg_stat_statements.
async fn activity_calls(admin: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(calls), 0)::int8 FROM pg_stat_statements \
         WHERE query LIKE '%pg_blocking_pids%' AND query NOT LIKE '%pg_stat_statements%'",
    )
    .fetch_one(admin)
    .await
    .unwrap()
}

/// `n` viewers each polling the fragment every POLL_EVERY for the window;
/// returns activity queries per second that reached PostgreSQL, and errors.
async fn viewers(panel: &Panel, n: usize, admin: &mut PgConnection) -> (f64, usize) {
    let before = activity_calls(admin).await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let base = panel.base.clone();
            let cookie = panel.cookie.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                // Spread the viewers over the interval, as real ones would be.
                tokio::time::sleep(POLL_EVERY.mul_f64(i as f64 / n as f64)).await;
                let mut errors = 0;
                while started.elapsed() < VIEWER_WINDOW {
                    let ok = http
                        .get(format!("{base}/databases/shop/activity"))
                        .header("cookie", format!("custodian_session={cookie}"))
                        .header("hx-request", "true")
                        .header("hx-target", "activity")
                        .send()
                        .await
                        .map(|r| r.status().is_success())
                        .unwrap_or(false);
                    if !ok {
                        errors += 1;
                    }
                    tokio::time::sleep(POLL_EVERY).await;
                }
                errors
            })
        })
        .collect();
    let mut errors = 0;
    for t in tasks {
        errors += t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    // pg_stat_statements counts at statement end; give the last ones a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = activity_calls(admin).await;
    ((after - before) as f64 / elapsed, errors)
}

struct Wrk {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    errors: u64,
}

fn parse_ms(v: &str) -> f64 {
    let v = v.trim();
    if let Some(x) = v.strip_suffix("us") {
        x.parse::<f64>().unwrap() / 1000.0
    } else if let Some(x) = v.strip_suffix("ms") {
        x.parse().unwrap()
    } else if let Some(x) = v.strip_suffix('s') {
        x.parse::<f64>().unwrap() * 1000.0
    } else {
        f64::NAN
    }
}

fn wrk(panel: &Panel, connections: usize, seconds: u64) -> Wrk {
    let child = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-H",
            &format!("Cookie: custodian_session={}", panel.cookie),
            "-H",
            "HX-Request: true",
            "-H",
            "HX-Target: activity",
            &format!("{}/databases/shop/activity", panel.base),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("wrk");
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .map(|l| l.trim_start()[prefix.len()..].trim().to_string())
    };
    let rps = field("Requests/sec:").and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let p50 = field("50%").map(|v| parse_ms(&v)).unwrap_or(f64::NAN);
    let p99 = field("99%").map(|v| parse_ms(&v)).unwrap_or(f64::NAN);
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let non_2xx: u64 = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let socket: u64 = field("Socket errors:")
        .map(|v| {
            v.split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Wrk {
        rps,
        p50_ms: p50,
        p99_ms: p99,
        requests,
        errors: non_2xx + socket,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let admin_url = env("BENCH_PG_URL");
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    for sql in ["DROP DATABASE IF EXISTS bench", "CREATE DATABASE bench"] {
        sqlx::raw_sql(sql).execute(&mut admin).await.unwrap();
    }
    let db_url = {
        let mut u = url::Url::parse(&admin_url).unwrap();
        u.set_path("/bench");
        u.to_string()
    };
    let mut stats = PgConnection::connect(&db_url).await.unwrap();
    sqlx::raw_sql("CREATE EXTENSION pg_stat_statements")
        .execute(&mut stats)
        .await
        .unwrap();
    let server_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut stats)
        .await
        .unwrap();

    println!("==> opening {EXTRA_CONNECTIONS} extra client connections");
    let mut extra = Vec::new();
    for _ in 0..EXTRA_CONNECTIONS {
        let mut c = PgConnection::connect(&db_url).await.unwrap();
        sqlx::query("SELECT 1").execute(&mut c).await.unwrap();
        extra.push(c);
    }

    // Two panels: one takes a fresh sample for every request (the full
    // cost of a view), one shares a sample per polling interval (how it runs).
    let fresh = start_panel("fresh", &db_url, "0s").await;
    let shared = start_panel("shared", &db_url, "2s").await;
    let idle_rss = rss_kib(shared.child.id(), "VmRSS:");

    println!("==> latency: raw query vs the panel's fragment ({SAMPLES} each, interleaved)");
    let http = reqwest::Client::new();
    let mut raw = PgConnection::connect(&db_url).await.unwrap();
    let (mut raw_ms, mut fresh_ms, mut shared_ms, mut page_ms) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut rows = 0;
    for _ in 0..SAMPLES {
        let t = Instant::now();
        rows = sqlx::query(custodian::engine::POSTGRES_ACTIVITY_SQL)
            .fetch_all(&mut raw)
            .await
            .unwrap()
            .len();
        raw_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let (status, _) = fragment(&http, &fresh).await;
        fresh_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 200);
        let t = Instant::now();
        let (status, _) = fragment(&http, &shared).await;
        shared_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 200);
        // The fixed cost of any signed-in page: session, user, render, HTTP.
        let t = Instant::now();
        let status = http
            .get(format!("{}/jobs", shared.base))
            .header("cookie", format!("custodian_session={}", shared.cookie))
            .send()
            .await
            .unwrap()
            .status();
        page_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 200);
    }
    let (raw_p50, raw_p99) = summary(raw_ms);
    let (fresh_p50, fresh_p99) = summary(fresh_ms);
    let (shared_p50, shared_p99) = summary(shared_ms);
    let (page_p50, page_p99) = summary(page_ms);

    println!(
        "==> catalog queries reaching PostgreSQL: 1 viewer, then 50 (each {}s)",
        VIEWER_WINDOW.as_secs()
    );
    let (qps_1, err_1) = viewers(&shared, 1, &mut stats).await;
    let (qps_50, err_50) = viewers(&shared, 50, &mut stats).await;

    println!("==> load: wrk, 50 connections, 20 s");
    let rss_before_load = rss_kib(shared.child.id(), "VmRSS:");
    let load = wrk(&shared, 50, 20);
    let peak_rss = rss_kib(shared.child.id(), "VmHWM:");
    let load_fresh = wrk(&fresh, 50, 10);

    let ratio = fresh_p50 / raw_p50;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let yes = |b: bool| if b { "met" } else { "NOT met" };

    let report = format!(
        "# Benchmarks\n\
\n\
Written by `bench/run` (do not edit by hand). Every figure below comes from one run, measured side by side on \
the same machine: {cores} cores (shared with PostgreSQL, the load tool and the panel), PostgreSQL {server_version} \
(a throwaway server with max_connections=300 and pg_stat_statements), release build of commit `{commit}`, {date}.\n\
\n\
## Activity page (issue 4)\n\
\n\
The activity fragment is what the page's htmx polling fetches: `GET /databases/shop/activity` with \
`HX-Target: activity`, signed in as an operator. {EXTRA_CONNECTIONS} extra idle client connections are open on the \
database, so every sample has {rows} sessions to read and render.\n\
\n\
| measurement | median | p99 |\n\
|---|---|---|\n\
| raw catalog query over a plain connection ({SAMPLES} runs) | {raw_p50:.2} ms | {raw_p99:.2} ms |\n\
| panel fragment, fresh sample per request (`activity_sample_ttl = 0s`) | {fresh_p50:.2} ms | {fresh_p99:.2} ms |\n\
| panel fragment, shared sample (`activity_sample_ttl = 2s`, the default) | {shared_p50:.2} ms | {shared_p99:.2} ms |\n\
| for scale: a small signed-in page with no database work (`GET /jobs`) | {page_p50:.2} ms | {page_p99:.2} ms |\n\
\n\
As the panel runs (shared sample), a viewer's refresh takes **{shared_ratio:.2}×** the raw query's median: \
{target_shared}. Taking a fresh sample for every request, the fragment takes **{ratio:.2}×** the raw query \
({target_latency} for the whole response under 1.5× the query; the time the panel adds, {added:.2} ms, is \
{added_ratio:.2}× the query). The fresh path pays the same query through the pool plus decoding, building and \
rendering {rows} rows, and HTTP on a machine whose {cores} cores also run PostgreSQL and the client.\n\
\n\
| viewers polling every {poll}s for {window}s | activity queries reaching PostgreSQL per second | failed requests |\n\
|---|---|---|\n\
| 1 | {qps_1:.2} | {err_1} |\n\
| 50 | {qps_50:.2} | {err_50} |\n\
\n\
Counted by pg_stat_statements on the server. Fifty viewers cost the database {qps_ratio:.2}× what one does \
(target: the same, one query per `activity_sample_ttl` at most: {target_share}).\n\
\n\
| load (wrk, 2 threads, 50 connections) | requests/s | median | p99 | requests | errors |\n\
|---|---|---|---|---|---|\n\
| shared sample, 20 s | {rps:.0} | {lp50:.1} ms | {lp99:.1} ms | {lreq} | {lerr} |\n\
| fresh sample per request, 10 s | {frps:.0} | {fp50:.1} ms | {fp99:.1} ms | {freq} | {ferr} |\n\
\n\
No errors under load: {target_errors}.\n\
\n\
| panel resident memory | |\n\
|---|---|\n\
| idle (after start, one database registered) | {idle_mib:.1} MiB |\n\
| before the load (after the latency and viewer runs) | {before_mib:.1} MiB |\n\
| peak during the load (VmHWM) | {peak_mib:.1} MiB |\n",
        target_latency = yes(ratio < 1.5),
        shared_ratio = shared_p50 / raw_p50,
        target_shared = if shared_p50 / raw_p50 < 1.5 {
            "under 1.5×, met"
        } else {
            "over 1.5×, NOT met"
        },
        added = fresh_p50 - raw_p50,
        added_ratio = (fresh_p50 - raw_p50) / raw_p50,
        poll = POLL_EVERY.as_secs(),
        window = VIEWER_WINDOW.as_secs(),
        qps_ratio = if qps_1 > 0.0 { qps_50 / qps_1 } else { f64::NAN },
        target_share = yes(qps_50 <= 1.1 * qps_1),
        rps = load.rps,
        lp50 = load.p50_ms,
        lp99 = load.p99_ms,
        lreq = load.requests,
        lerr = load.errors,
        frps = load_fresh.rps,
        fp50 = load_fresh.p50_ms,
        fp99 = load_fresh.p99_ms,
        freq = load_fresh.requests,
        ferr = load_fresh.errors,
        target_errors = yes(load.errors == 0 && load_fresh.errors == 0 && err_1 == 0 && err_50 == 0),
        idle_mib = idle_rss as f64 / 1024.0,
        before_mib = rss_before_load as f64 / 1024.0,
        peak_mib = peak_rss as f64 / 1024.0,
    );
    drop(extra);
    let report = format!("{report}\n{}", backups(&admin_url, &shared).await);
    let report = format!("{report}\n{}", monitoring::report(&shared, "shared").await);
    std::fs::write(env("BENCH_OUT"), &report).unwrap();
    println!("{report}");
}

/// A command's wall-clock seconds; panics if it fails.
fn timed(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let out = cmd.output().expect("run a tool");
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64()
}

/// Wait for a job through the API; its final JSON.
async fn job_done(panel: &Panel, token: &str, id: i64) -> serde_json::Value {
    let http = reqwest::Client::new();
    loop {
        let v: serde_json::Value = http
            .get(format!("{}/api/v1/jobs/{id}", panel.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !matches!(v["state"].as_str(), Some("queued" | "running")) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Issue 6: the panel's backup and verification against raw pg_dump -Fc
/// and pg_restore, on pgbench -i -s 30, in one run.
async fn backups(admin_url: &str, panel: &Panel) -> String {
    println!("==> backups: pgbench -i -s 30");
    let mut admin = PgConnection::connect(admin_url).await.unwrap();
    for sql in [
        "DROP DATABASE IF EXISTS pgb",
        "CREATE DATABASE pgb",
        "DROP DATABASE IF EXISTS pgb_raw_restore",
    ] {
        sqlx::raw_sql(sql).execute(&mut admin).await.unwrap();
    }
    let url = {
        let mut u = url::Url::parse(admin_url).unwrap();
        u.set_path("/pgb");
        u.to_string()
    };
    let pg_bin =
        |tool: &str| custodian::engine::tools::find(&[tool]).unwrap_or_else(|| panic!("{tool} not found"));
    timed(Command::new(pg_bin("pgbench")).args(["-i", "-s", "30", "-q", &url]));
    let work = env("BENCH_WORK");

    println!("==> raw pg_dump -Fc and pg_restore");
    let raw_file = format!("{work}/raw.dump");
    let raw_dump_s = timed(Command::new(pg_bin("pg_dump")).args(["-Fc", "-f", &raw_file, "-d", &url]));
    let raw_bytes = std::fs::metadata(&raw_file).unwrap().len();
    sqlx::raw_sql("CREATE DATABASE pgb_raw_restore")
        .execute(&mut admin)
        .await
        .unwrap();
    let restore_url = url.replace("/pgb", "/pgb_raw_restore");
    let raw_restore_s = timed(Command::new(pg_bin("pg_restore")).args(["-d", &restore_url, &raw_file]));
    sqlx::raw_sql("DROP DATABASE pgb_raw_restore WITH (FORCE)")
        .execute(&mut admin)
        .await
        .unwrap();

    println!("==> the panel's backup and verification");
    // The bench user is an operator: a token for the API, made with the CLI.
    let data = format!("{work}/shared");
    let token = String::from_utf8(
        custodian(&data)
            .args(["token", "create", "bench", "--name", "bench"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let ok = custodian(&data)
        .args(["db", "add", "pgb", "--url", &url])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let http = reqwest::Client::new();
    // The running panel picks the new database up within its poll interval.
    let started = loop {
        let res = http
            .post(format!("{}/api/v1/databases/pgb/backups", panel.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if res.status().as_u16() == 202 {
            break res.json::<serde_json::Value>().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let t = Instant::now();
    let job = job_done(panel, &token, started["job_id"].as_i64().unwrap()).await;
    let panel_backup_s = t.elapsed().as_secs_f64();
    assert_eq!(job["state"], "succeeded", "{job}");
    let backup_id = started["backup_id"].as_i64().unwrap();
    let list: Vec<serde_json::Value> = http
        .get(format!("{}/api/v1/databases/pgb/backups", panel.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let panel_bytes = list.iter().find(|b| b["id"] == backup_id).unwrap()["bytes"]
        .as_i64()
        .unwrap() as u64;
    let res: serde_json::Value = http
        .post(format!("{}/api/v1/backups/{backup_id}/verify", panel.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = Instant::now();
    let job = job_done(panel, &token, res["job_id"].as_i64().unwrap()).await;
    let panel_verify_s = t.elapsed().as_secs_f64();
    assert_eq!(job["state"], "succeeded", "{job}");
    let rows: i64 = {
        let mut c = PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM pgbench_accounts")
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    let db_bytes: i64 = sqlx::query_scalar("SELECT pg_database_size('pgb')")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let yes = |b: bool| if b { "met" } else { "NOT met" };
    format!(
        "## Backups (issue 6)\n\
\n\
`pgbench -i -s 30`: {rows} rows in pgbench_accounts, {db_mib:.0} MiB on disk. Raw tools at their defaults against the \
panel through its API (a job: snapshot export, row counts of every table, `pg_dump -Fc -Z0` streamed through zstd \
level 3 and SHA-256 into the backup directory; verification: SHA-256 check, restore into a scratch database with \
`pg_restore`, row counts compared, scratch dropped).\n\
\n\
| | time | size |\n\
|---|---|---|\n\
| raw `pg_dump -Fc` | {raw_dump_s:.2} s | {raw_mib:.1} MiB |\n\
| panel backup (whole job) | {panel_backup_s:.2} s | {panel_mib:.1} MiB |\n\
| raw `pg_restore` into an empty database | {raw_restore_s:.2} s | |\n\
| panel verification (whole job) | {panel_verify_s:.2} s | |\n\
\n\
Backup: {backup_ratio:.2}× the raw tool's time (target ≤ 1.05: {backup_target}), {size_ratio:.2}× its size. \
Verification: {verify_ratio:.2}× a bare `pg_restore` (target ≤ 1.05: {verify_target}); it also checks the checksum, \
counts every table and drops the scratch database.\n",
        db_mib = mib(db_bytes as u64),
        raw_mib = mib(raw_bytes),
        panel_mib = mib(panel_bytes),
        backup_ratio = panel_backup_s / raw_dump_s,
        size_ratio = panel_bytes as f64 / raw_bytes as f64,
        verify_ratio = panel_verify_s / raw_restore_s,
        backup_target = yes(panel_backup_s / raw_dump_s <= 1.05),
        verify_target = yes(panel_verify_s / raw_restore_s <= 1.05),
    )
}
