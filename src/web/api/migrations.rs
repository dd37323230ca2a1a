//! Migrations over the API: status (applied, pending with lint, drift),
//! requests to apply, and their approval.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::domain::RequestId;
use crate::error::AppResult;
use crate::service::migrations::requests::{self, Request};
use crate::service::migrations::{self, Status};
use crate::web::AppState;
use crate::web::auth::{Admin, Operator, Viewer};
use crate::web::path::{Db, member};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/databases/{name}/migrations", get(status))
        .route("/databases/{name}/migrations/requests", get(list).post(create))
        .route("/databases/{name}/migrations/rollback", post(rollback))
        .route("/databases/{name}/migrations/files", post(submit))
        .route(
            "/databases/{name}/migrations/settings",
            get(settings).put(set_settings),
        )
        .route("/migration-requests/{id}", get(show))
        .route("/migration-requests/{id}/gate", get(gate))
        .route("/migration-requests/{id}/approve", post(approve))
        .route("/migration-requests/{id}/reject", post(reject))
        .route("/migration-requests/{id}/apply", post(apply))
}

async fn status(Viewer(_): Viewer, Db(m): Db) -> AppResult<Json<Status>> {
    Ok(Json(migrations::status(&m).await?))
}

async fn list(State(state): State<AppState>, Viewer(_): Viewer, Db(m): Db) -> AppResult<Json<Vec<Request>>> {
    Ok(Json(requests::list(&state.store, m.entry.name.as_str()).await?))
}

#[derive(Deserialize)]
struct NewRequest {
    versions: Vec<String>,
}

#[derive(Serialize)]
struct Created {
    id: i64,
}

async fn create(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
    Json(body): Json<NewRequest>,
) -> AppResult<(StatusCode, Json<Created>)> {
    let id = requests::request(&state.store, &m, &me.actor(), &body.versions).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

/// The live gate for a request: what the database is doing now to the
/// tables its statements lock, and a verdict (go, wait, blocked).
async fn gate(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    id: RequestId,
) -> AppResult<Json<crate::service::migrations::gate::Gate>> {
    let gate = crate::service::migrations::gate::of_request(
        &state.store,
        &state.fleet,
        id.get(),
        state.config.gate_max_xact_age,
    )
    .await?;
    Ok(Json(gate))
}

async fn show(State(state): State<AppState>, Viewer(_): Viewer, id: RequestId) -> AppResult<Json<Request>> {
    Ok(Json(requests::get(&state.store, id.get()).await?))
}

#[derive(Deserialize, Default)]
struct Comment {
    #[serde(default)]
    comment: String,
}

#[derive(Serialize)]
struct Done {
    ok: bool,
}

async fn approve(
    State(state): State<AppState>,
    Viewer(me): Viewer,
    id: RequestId,
    Json(body): Json<Comment>,
) -> AppResult<Json<Done>> {
    requests::decide(
        &state.store,
        &state.fleet,
        &me.actor(),
        id.get(),
        true,
        &body.comment,
    )
    .await?;
    Ok(Json(Done { ok: true }))
}

async fn reject(
    State(state): State<AppState>,
    Viewer(me): Viewer,
    id: RequestId,
    Json(body): Json<Comment>,
) -> AppResult<Json<Done>> {
    requests::decide(
        &state.store,
        &state.fleet,
        &me.actor(),
        id.get(),
        false,
        &body.comment,
    )
    .await?;
    Ok(Json(Done { ok: true }))
}

#[derive(Serialize)]
struct Started {
    job_id: i64,
}

#[derive(Default, Deserialize)]
struct ApplyBody {
    /// Apply although the live gate says blocked, for this reason (audited).
    #[serde(default)]
    override_reason: Option<String>,
}

async fn apply(
    State(state): State<AppState>,
    Operator(me): Operator,
    id: RequestId,
    body: axum::body::Bytes,
) -> AppResult<(StatusCode, Json<Started>)> {
    // The body is optional: none, or `{"override_reason": "..."}`.
    let body: ApplyBody = if body.iter().all(u8::is_ascii_whitespace) {
        ApplyBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            crate::error::AppError::invalid(format!("the body must be {{\"override_reason\": \"...\"}}: {e}"))
        })?
    };
    let id = id.get();
    let request = requests::get(&state.store, id).await?;
    let m = member(
        &state,
        &crate::domain::DatabaseName::from_path(&request.database)?,
    )
    .await?;
    let check = requests::GateCheck {
        max_xact_age: state.config.gate_max_xact_age,
        lock_retries: state.config.lock_retries,
        override_reason: body.override_reason,
    };
    let job_id = requests::apply(&state.jobs, &state.store, &m, &me.actor(), id, &check).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { job_id })))
}

#[derive(Deserialize)]
struct Rollback {
    version: String,
    /// The version typed again.
    confirm: String,
}

async fn rollback(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
    Json(body): Json<Rollback>,
) -> AppResult<(StatusCode, Json<Created>)> {
    let id = requests::request_rollback(&state.store, &m, &me.actor(), &body.version, &body.confirm).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

async fn settings(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    Db(m): Db,
) -> AppResult<Json<requests::Settings>> {
    Ok(Json(
        requests::settings(&state.store, m.entry.name.as_str()).await?,
    ))
}

async fn set_settings(
    State(state): State<AppState>,
    Admin(me): Admin,
    Db(m): Db,
    Json(body): Json<requests::Settings>,
) -> AppResult<Json<requests::Settings>> {
    requests::set_settings(&state.store, &me.actor(), m.entry.name.as_str(), body).await?;
    Ok(Json(
        requests::settings(&state.store, m.entry.name.as_str()).await?,
    ))
}

#[derive(Deserialize)]
struct NewFile {
    name: String,
    sql: String,
}

async fn submit(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
    Json(body): Json<NewFile>,
) -> AppResult<(StatusCode, Json<migrations::Submitted>)> {
    let done = migrations::submit(&state.store, &m, &me.actor(), &body.name, &body.sql).await?;
    let code = if done.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(done)))
}
