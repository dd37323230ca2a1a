//! Slow and greedy clients, over raw TCP: a client that trickles its
//! headers is disconnected, an idle keep-alive connection is closed, a body
//! declared past the limit is refused before any of it is sent, connections
//! past the cap wait for a free slot, and a request in flight when the
//! panel stops still gets its answer. Every wait has a generous upper bound;
//! none asserts how fast the server is.

use std::time::{Duration, Instant};

use custodian::domain::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{StoreChoice, TestApp, eventually};

/// Far longer than any limit under test: reaching it means "never".
const NEVER: Duration = Duration::from_secs(30);

/// Read one response head (through the blank line); panics after `NEVER`.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read = async {
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(0) | Err(_) => break,
                Ok(_) => head.push(byte[0]),
            }
        }
    };
    tokio::time::timeout(NEVER, read)
        .await
        .expect("the server answers");
    String::from_utf8_lossy(&head).into_owned()
}

/// A response head's Content-Length.
fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// One whole response: its head and body.
async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let head = read_head(stream).await;
    let mut body = vec![0u8; content_length(&head)];
    tokio::time::timeout(NEVER, stream.read_exact(&mut body))
        .await
        .expect("the body arrives")
        .expect("the body is read");
    (head, String::from_utf8_lossy(&body).into_owned())
}

/// Does the server close this connection (EOF or reset) within `NEVER`?
/// Whatever it sends first (a 408) is read and discarded.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut sink = [0u8; 4096];
    let read_to_end = async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(NEVER, read_to_end).await.is_ok()
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_disconnected() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| c.header_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: panel\r\n")
        .await
        .unwrap();
    let deadline = Instant::now() + NEVER;
    let mut lines = 0;
    let mut buf = [0u8; 1024];
    loop {
        assert!(
            Instant::now() < deadline,
            "still connected after {lines} header lines over {NEVER:?}: the server waits for ever"
        );
        // One more header line, as a slowloris client sends them...
        if stream
            .write_all(format!("X-Slow-{lines}: still typing\r\n").as_bytes())
            .await
            .is_err()
        {
            break;
        }
        lines += 1;
        // ...then a look whether the server has hung up (a 408, then EOF).
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) | Err(_) => {}
        }
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| c.header_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: panel\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("connection: close"),
        "the connection is kept alive for a next request: {head}"
    );
    assert!(
        closed_by_server(&mut stream).await,
        "an idle keep-alive connection is still open after {NEVER:?}"
    );
}

#[tokio::test]
async fn a_body_declared_past_the_limit_is_refused_before_it_is_sent() {
    let app = TestApp::spawn().await;
    let token = app.token_for("bot", Role::Admin).await;
    for (path, api) in [("/api/v1/users", true), ("/users", false)] {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: panel\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        // No byte of the body is sent: the answer must come without it.
        let (head, body) = read_response(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 413"), "POST {path}: {head}");
        if api {
            let err: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert!(err["error"].as_str().is_some_and(|e| e.contains("KiB")), "{body}");
        } else {
            assert!(
                body.contains("<title>") && body.contains("Request too large"),
                "{body}"
            );
        }
    }
    assert!(app.user("bot").await.is_some());
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    let app = TestApp::spawn_with(StoreChoice::Sqlite, |c| c.max_connections = 2).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: panel\r\n\r\n";
    // Two clients take both slots (answered, then kept alive).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let (head, _) = read_response(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        held.push(s);
    }
    // A third is not served while they are open...
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    third.write_all(request).await.unwrap();
    let mut first = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut first)).await;
    assert!(
        early.is_err(),
        "a third connection was served while two were open: {early:?}"
    );
    // ...and is once one of them goes.
    drop(held.remove(0));
    let (head, _) = read_response(&mut third).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

#[tokio::test]
async fn a_request_in_flight_when_the_panel_stops_gets_its_answer() {
    let data = tempfile::tempdir().unwrap();
    let config = custodian::config::Config {
        data_dir: data.path().to_path_buf(),
        demo: false,
        ..Default::default()
    };
    let prepared = custodian::server::prepare(config).await.unwrap();
    let state = prepared.state.clone();
    let user = custodian::service::users::create(
        &state.store,
        &custodian::service::Actor::cli(),
        custodian::service::users::NewUser {
            name: custodian::domain::Username::parse("bot").unwrap(),
            password: custodian::domain::Password::new("bot-password-1".into()).unwrap(),
            role: Role::Admin,
            can_approve: false,
        },
    )
    .await
    .unwrap();
    let token =
        custodian::service::tokens::create(&state.store, &custodian::service::Actor::cli(), &user, "t")
            .await
            .unwrap()
            .secret;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = custodian::server::Limits::of(&state.config);
    let server = tokio::spawn(custodian::server::serve(listener, prepared.app, limits, async {
        let _ = stopped.await;
    }));

    // A request whose handler is waiting for its body (the server asks for
    // it with 100 Continue, so it is in flight for sure)...
    let body = r#"{"name":"late","password":"late-password-1","role":"viewer"}"#;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/users HTTP/1.1\r\nHost: panel\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let go_on = read_head(&mut stream).await;
    assert!(go_on.starts_with("HTTP/1.1 100"), "{go_on}");

    // ...when the panel is told to stop.
    stop.send(()).unwrap();
    eventually("the listener to close", || async {
        TcpStream::connect(addr).await.is_err().then_some(())
    })
    .await;
    stream.write_all(body.as_bytes()).await.unwrap();
    let (head, answer) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 201"), "{head}{answer}");
    tokio::time::timeout(NEVER, server)
        .await
        .expect("serve returns once the last request is answered")
        .unwrap()
        .unwrap();
    let late = custodian::domain::Username::parse("late").unwrap();
    assert!(
        custodian::service::users::by_name(&state.store, &late)
            .await
            .is_ok()
    );
}
