//! The fleet's poller: a database that is down shows as unreachable with
//! its error, never holds up a page or the other databases, and recovers
//! by itself when its server comes back.

use std::net::SocketAddr;
use std::time::Duration;

use custodian::domain::Role;
use reqwest::StatusCode;
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{StoreChoice, TestApp, TestDb, eventually};
use crate::registry::add_in_browser;

/// A TCP proxy from `listener` to `upstream`: the "server coming back".
fn forward(listener: TcpListener, upstream: SocketAddr) {
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

#[tokio::test]
async fn an_unreachable_database_is_shown_isolated_and_recovers_without_a_restart() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| c.poll_interval = Duration::from_secs(1)).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let token = app.token_for("bot", Role::Viewer).await;
    let pg = TestDb::postgres().await;

    // A port nobody listens on (yet).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut flaky = url::Url::parse(&pg.url).unwrap();
    flaky.set_port(Some(port)).unwrap();
    // A server that accepts connections and never answers.
    let hang = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut hanging = url::Url::parse(&pg.url).unwrap();
    hanging.set_port(Some(hang.local_addr().unwrap().port())).unwrap();
    let steady = app.data_dir.path().join("steady.db");
    sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", steady.display()))
        .await
        .unwrap()
        .close()
        .await
        .unwrap();

    add_in_browser(&admin, "steady", &format!("sqlite://{}", steady.display())).await;
    add_in_browser(&admin, "flaky", flaky.as_str()).await;

    let v = app.checked(&token, "flaky").await;
    assert_eq!(v["reachable"], false);
    let error = v["error"].as_str().unwrap();
    assert!(error.contains("could not connect"), "{error}");

    // The overview answers while "hangs" is still being checked (its check
    // waits out the 5 s connect timeout): pages never wait on a database.
    add_in_browser(&admin, "hangs", hanging.as_str()).await;
    let (status, overview) = admin.text("/").await;
    assert_eq!(status, StatusCode::OK);
    let hangs_now = app.db_json(&token, "hangs").await;
    assert!(
        hangs_now["reachable"].is_null(),
        "the hanging check has not finished: {hangs_now}"
    );
    let (flaky_at, steady_at) = (
        overview.find(">flaky<").unwrap(),
        overview.find(">steady<").unwrap(),
    );
    assert!(flaky_at < steady_at, "problems first");
    assert!(
        overview.contains("could not connect"),
        "the error is on the overview"
    );

    // Other databases keep being checked meanwhile.
    let first = app.db_json(&token, "steady").await["checked_at"].clone();
    eventually("steady to be checked again while hangs hangs", || async {
        let now = app.db_json(&token, "steady").await["checked_at"].clone();
        (now != first && !now.is_null()).then_some(())
    })
    .await;
    assert!(app.db_json(&token, "hangs").await["reachable"].is_null());

    // The server comes back on the same port: the panel notices by itself.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let pg_addr = {
        let u = url::Url::parse(&crate::helpers::pg_admin_url()).unwrap();
        tokio::net::lookup_host((u.host_str().unwrap().to_string(), u.port().unwrap_or(5432)))
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    forward(listener, pg_addr);
    let v = eventually("flaky to recover", || async {
        let v = app.db_json(&token, "flaky").await;
        (v["reachable"] == true).then_some(v)
    })
    .await;
    assert!(v["error"].is_null());
    assert!(v["version"].as_str().unwrap().starts_with(char::is_numeric));
    drop(hang);
}

/// A proxy to `upstream` that can be switched to hang: then it drops the
/// connections it carries and accepts new ones without ever answering, like
/// a server stuck behind a load balancer.
fn switchable(listener: TcpListener, upstream: SocketAddr) -> tokio::sync::watch::Sender<bool> {
    let (hang, watch) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let mut watch = watch.clone();
            tokio::spawn(async move {
                if *watch.borrow() {
                    // Hold the socket open, say nothing.
                    let _ = watch.wait_for(|h| !*h).await;
                    drop(inbound);
                    return;
                }
                if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|h| *h) => {}
                    }
                }
            });
        }
    });
    hang
}

#[tokio::test]
async fn pages_of_a_hanging_database_answer_from_what_is_known() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| c.poll_interval = Duration::from_secs(1)).await;
    let token = app.token_for("bot", Role::Operator).await;
    let viewer = app.signed_in("watcher", Role::Viewer).await;
    let pg = TestDb::postgres().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut proxied = url::Url::parse(&pg.url).unwrap();
    proxied
        .set_port(Some(listener.local_addr().unwrap().port()))
        .unwrap();
    let upstream = {
        let u = url::Url::parse(&crate::helpers::pg_admin_url()).unwrap();
        tokio::net::lookup_host((u.host_str().unwrap().to_string(), u.port().unwrap_or(5432)))
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    let hang = switchable(listener, upstream);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("V1__orders.sql"), "CREATE TABLE orders (id int);").unwrap();
    app.register_with_migrations("shop", proxied.as_str(), Some(dir.path()))
        .await;
    assert_eq!(app.checked(&token, "shop").await["reachable"], true);
    // Read live once: the history is known from now on.
    let live: serde_json::Value = crate::helpers::api_get(&app, &token, "/api/v1/databases/shop/migrations")
        .await
        .json()
        .await
        .unwrap();
    assert!(live["stale"].is_null(), "{live}");
    assert_eq!(live["pending"][0]["version"], "1");

    hang.send(true).unwrap();
    eventually("the poller to find shop down", || async {
        (app.db_json(&token, "shop").await["reachable"] == false).then_some(())
    })
    .await;

    // Every page answers from what is known, saying since when it is down,
    // rather than trying the database and timing out.
    let m: serde_json::Value = crate::helpers::api_get(&app, &token, "/api/v1/databases/shop/migrations")
        .await
        .json()
        .await
        .unwrap();
    let stale = m["stale"].as_str().expect("the history is marked as not live");
    assert!(stale.contains("unreachable since"), "{stale}");
    assert!(m["history_read_at"].is_string(), "{m}");
    assert_eq!(
        m["pending"][0]["version"], "1",
        "the last known comparison is shown: {m}"
    );
    let (status, page) = viewer.text("/databases/shop/migrations").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("unreachable since"), "{page}");
    assert!(
        page.contains("V1__orders.sql") || page.contains("orders"),
        "{page}"
    );
    for path in ["activity", "maintenance", "backups"] {
        let (status, page) = viewer.text(&format!("/databases/shop/{path}")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            !page.contains("did not answer within"),
            "{path} tried the database: {page}"
        );
    }
    let (_, page) = viewer.text("/databases/shop/activity").await;
    assert!(page.contains("unreachable since"), "{page}");
    let res = crate::helpers::api_get(&app, &token, "/api/v1/databases/shop/activity").await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.text().await.unwrap().contains("unreachable since"));

    // It recovers by itself, and pages read live again.
    hang.send(false).unwrap();
    eventually("shop to answer again", || async {
        (app.db_json(&token, "shop").await["reachable"] == true).then_some(())
    })
    .await;
    let m: serde_json::Value = crate::helpers::api_get(&app, &token, "/api/v1/databases/shop/migrations")
        .await
        .json()
        .await
        .unwrap();
    assert!(m["stale"].is_null(), "{m}");
}
