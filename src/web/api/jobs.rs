//! API: start maintenance (operator), read a job, cancel it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::domain::JobId;
use crate::engine::Action;
use crate::error::{AppError, AppResult};
use crate::service::maintenance::{self, Request};
use crate::web::AppState;
use crate::web::auth::{Operator, Viewer};
use crate::web::path::Db;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/databases/{name}/maintenance", post(start))
        .route("/jobs/{id}", get(show))
        .route("/jobs/{id}/cancel", post(cancel))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceBody {
    action: String,
    #[serde(default)]
    tables: Vec<String>,
    /// REINDEX one index: "schema.index".
    #[serde(default)]
    index: Option<String>,
    #[serde(default)]
    whole_database: bool,
    /// VACUUM FULL: the table's (or database's) name, as the page asks.
    #[serde(default)]
    confirm: Option<String>,
}

#[derive(Serialize)]
struct Started {
    job_id: i64,
}

async fn start(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(member): Db,
    Json(body): Json<MaintenanceBody>,
) -> AppResult<(StatusCode, Json<Started>)> {
    let action = Action::parse(&body.action).ok_or_else(|| {
        AppError::invalid("action must be vacuum, vacuum_analyze, analyze, vacuum_full, reindex, optimize, check or integrity_check")
    })?;
    let req = Request {
        tables: body.tables,
        index: body.index,
        whole_database: body.whole_database,
        confirm: body.confirm,
    };
    let job_id = maintenance::start(&state.jobs, &member, &me.actor(), action, req).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { job_id })))
}

#[derive(Serialize)]
struct JobJson {
    id: i64,
    kind: crate::domain::JobKind,
    /// The action in words: "VACUUM ANALYZE", "REINDEX INDEX CONCURRENTLY".
    what: String,
    state: crate::domain::JobState,
    progress: Option<f64>,
    /// What it is doing now, or when it has ended, what it did.
    phase: String,
    error: Option<String>,
    /// The job's log: the engine's own words, timestamped.
    log: String,
}

async fn show(State(state): State<AppState>, Viewer(_): Viewer, id: JobId) -> AppResult<Json<JobJson>> {
    let job = state.jobs.get(id.get()).await?;
    let error = maintenance::interrupted_error(&state.fleet, &job);
    Ok(Json(JobJson {
        id: job.id,
        kind: job.kind,
        what: maintenance::what(&state.fleet, &job),
        state: job.state,
        progress: job.progress,
        phase: job.phase,
        error,
        log: job.log,
    }))
}

#[derive(Serialize)]
struct Done {
    ok: bool,
}

async fn cancel(State(state): State<AppState>, Operator(me): Operator, id: JobId) -> AppResult<Json<Done>> {
    state.jobs.cancel(&me.actor(), id.get()).await?;
    Ok(Json(Done { ok: true }))
}
