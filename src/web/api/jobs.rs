//! API: start maintenance (operator), read a job, cancel it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::domain::DatabaseName;
use crate::engine::Action;
use crate::error::{AppError, AppResult};
use crate::service::maintenance::{self, Request};
use crate::web::AppState;
use crate::web::auth::{Operator, Viewer};

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
    Path(name): Path<String>,
    Json(body): Json<MaintenanceBody>,
) -> AppResult<(StatusCode, Json<Started>)> {
    let name = DatabaseName::from_path(&name)?;
    let member = state
        .fleet
        .get(&name)
        .ok_or_else(|| AppError::not_found(format!("no database named {name}")))?;
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
    state: crate::domain::JobState,
    progress: Option<f64>,
    error: Option<String>,
}

fn job_id(raw: &str) -> AppResult<i64> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::not_found(format!("There is no job {raw:?}.")))
}

async fn show(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    Path(id): Path<String>,
) -> AppResult<Json<JobJson>> {
    let job = state.jobs.get(job_id(&id)?).await?;
    let error = maintenance::interrupted_error(&state.fleet, &job);
    Ok(Json(JobJson {
        id: job.id,
        kind: job.kind,
        state: job.state,
        progress: job.progress,
        error,
    }))
}

#[derive(Serialize)]
struct Done {
    ok: bool,
}

async fn cancel(
    State(state): State<AppState>,
    Operator(me): Operator,
    Path(id): Path<String>,
) -> AppResult<Json<Done>> {
    state.jobs.cancel(&me.actor(), job_id(&id)?).await?;
    Ok(Json(Done { ok: true }))
}
