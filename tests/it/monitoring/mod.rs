//! Monitoring and alerting: rules firing and resolving on real PostgreSQL
//! and MariaDB sessions, webhooks received by a server the test runs (with
//! retries and silences), samples rolled up and pruned, charts parsed as
//! SVG, `/metrics` parsed as Prometheus exposition, and who may silence.
//! This file holds the shared pieces; one file per story group.

mod alerts;
mod metrics;
mod notifications;
mod refusals;
mod samples;
mod stored;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use axum::routing::post;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Client, StoreChoice, TestApp, api_get, eventually};

/// A webhook receiver: records every body; answers 500 to the first
/// `failures` requests.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    pub requests: Arc<AtomicUsize>,
}

impl Receiver {
    pub async fn start(failures: usize) -> Receiver {
        #[derive(Clone)]
        struct S {
            bodies: Arc<Mutex<Vec<Value>>>,
            requests: Arc<AtomicUsize>,
            failures: usize,
        }
        async fn hook(State(s): State<S>, axum::Json(body): axum::Json<Value>) -> AxumStatus {
            let n = s.requests.fetch_add(1, Ordering::SeqCst);
            if n < s.failures {
                return AxumStatus::INTERNAL_SERVER_ERROR;
            }
            s.bodies.lock().unwrap().push(body);
            AxumStatus::OK
        }
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        let state = S {
            bodies: bodies.clone(),
            requests: requests.clone(),
            failures,
        };
        let app = axum::Router::new().route("/hook", post(hook)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url: format!("http://{addr}/hook"),
            bodies,
            requests,
        }
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// The first body for which `pick` holds, once it arrives.
    pub async fn received(&self, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        eventually(what, || async { self.bodies().into_iter().find(|b| pick(b)) }).await
    }
}

/// A panel that samples every second and retries webhooks after a second.
pub async fn fast_panel() -> TestApp {
    fast_panel_on(StoreChoice::Sqlite).await
}

pub async fn fast_panel_on(store: StoreChoice) -> TestApp {
    TestApp::spawn_with(store, |c| {
        c.sample_interval = Duration::from_secs(1);
        c.webhook_retry = Duration::from_secs(1);
    })
    .await
}

/// Admin: set one rule's threshold and "for" on a database, as the form does.
pub async fn set_rule(admin: &Client, db: &str, rule: &str, threshold: &str, for_seconds: &str) {
    let res = admin
        .post(
            &format!("/databases/{db}/monitoring/rules"),
            &[
                ("rule", rule),
                ("enabled", "on"),
                ("threshold", threshold),
                ("for_seconds", for_seconds),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "saving rule {rule}");
}

pub async fn add_webhook(admin: &Client, name: &str, url: &str, format: &str) {
    let res = admin
        .post(
            "/alerts/webhooks",
            &[("name", name), ("url", url), ("format", format)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "adding webhook {name}");
}

/// The alert of `rule` on `db` in `state` (from the API), once there is one.
pub async fn alert_in(app: &TestApp, token: &str, db: &str, rule: &str, state: &str) -> Value {
    eventually(&format!("{rule} on {db} to be {state}"), || async {
        let v: Value = api_get(app, token, "/api/v1/alerts").await.json().await.ok()?;
        let all = v["open"]
            .as_array()?
            .iter()
            .chain(v["history"].as_array()?.iter())
            .cloned()
            .collect::<Vec<_>>();
        all.into_iter()
            .find(|a| a["database"] == db && a["rule"] == rule && a["state"] == state)
    })
    .await
}
