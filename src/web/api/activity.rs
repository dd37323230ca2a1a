//! API: a database's sessions (viewer) and cancel/terminate (operator), in
//! the shapes DESIGN.md fixes. Same checks and audit rows as the page.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::domain::Pid;
use crate::engine::Signal;
use crate::error::{AppError, AppResult};
use crate::service::activity;
use crate::service::fleet::Member;
use crate::web::AppState;
use crate::web::auth::{Operator, Viewer};
use crate::web::path::Db;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/databases/{name}/activity", get(sessions))
        .route("/databases/{name}/activity/{pid}/cancel", post(cancel))
        .route("/databases/{name}/activity/{pid}/terminate", post(terminate))
}

#[derive(Serialize)]
struct SessionJson {
    pid: i64,
    user: Option<String>,
    application: Option<String>,
    client: Option<String>,
    state: Option<String>,
    wait_event: Option<String>,
    query: Option<String>,
    query_age_s: Option<f64>,
    xact_age_s: Option<f64>,
    blocked_by: Vec<i64>,
}

#[derive(Serialize)]
struct Sessions {
    sessions: Vec<SessionJson>,
}

#[derive(Serialize)]
struct SignalJson {
    ok: bool,
    message: String,
}

async fn sessions(State(state): State<AppState>, Viewer(_): Viewer, Db(m): Db) -> AppResult<Json<Sessions>> {
    let snapshot = activity::sample(&m, state.config.activity_sample_ttl)
        .await
        .map_err(AppError::Conflict)?;
    let sessions = snapshot
        .sample
        .sessions
        .iter()
        .map(|s| SessionJson {
            pid: s.pid,
            user: s.user.clone(),
            application: s.application.clone(),
            client: s.client.clone(),
            state: s.state.clone(),
            wait_event: s.wait_event.clone(),
            query: s.query.clone(),
            query_age_s: s.query_age_s,
            xact_age_s: s.xact_age_s,
            blocked_by: s.blocked_by.clone(),
        })
        .collect();
    Ok(Json(Sessions { sessions }))
}

async fn send(
    state: &AppState,
    me: &crate::web::auth::CurrentUser,
    m: &Member,
    pid: Pid,
    signal: Signal,
) -> AppResult<Json<SignalJson>> {
    let outcome = activity::signal(&state.store, m, &me.actor(), pid.get(), signal).await?;
    Ok(Json(SignalJson {
        ok: outcome.ok,
        message: outcome.message,
    }))
}

async fn cancel(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
    pid: Pid,
) -> AppResult<Json<SignalJson>> {
    send(&state, &me, &m, pid, Signal::Cancel).await
}

async fn terminate(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
    pid: Pid,
) -> AppResult<Json<SignalJson>> {
    send(&state, &me, &m, pid, Signal::Terminate).await
}
