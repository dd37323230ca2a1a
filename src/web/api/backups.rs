//! API: the backup catalog (viewer), taking a backup and verifying one
//! (operator), in the shapes DESIGN.md fixes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::domain::{BackupId, DatabaseName};
use crate::error::AppResult;
use crate::format::rfc3339;
use crate::web::AppState;
use crate::web::auth::{Admin, Operator, Viewer};
use crate::web::path::{Db, member};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/databases/{name}/backups", get(list).post(start))
        .route("/backups/{id}/verify", post(verify))
        .route("/removed-databases", get(removed))
        .route("/removed-databases/{key}/prune", post(prune_removed))
}

/// A removed database and the backups still kept of it.
#[derive(Serialize)]
struct RemovedJson {
    key: String,
    name: String,
    engine: String,
    removed_at: String,
    backups: Vec<BackupJson>,
}

fn backup_json(backups: &crate::service::backup::Backups, b: crate::store::backups::BackupRow) -> BackupJson {
    BackupJson {
        id: b.id,
        state: b.state,
        bytes: b.bytes,
        sha256: b.sha256,
        location: backups.url_of(&b.location),
        started_at: rfc3339(b.started_at),
        finished_at: b.finished_at.map(rfc3339),
        verified_at: b.verified_at.map(rfc3339),
        verify_ok: b.verify_ok,
    }
}

async fn removed(State(state): State<AppState>, Viewer(_): Viewer) -> AppResult<Json<Vec<RemovedJson>>> {
    Ok(Json(
        state
            .backups
            .removed()
            .await?
            .into_iter()
            .map(|r| RemovedJson {
                key: r.key,
                name: r.name,
                engine: r.engine,
                removed_at: rfc3339(r.removed_at),
                backups: r
                    .backups
                    .into_iter()
                    .map(|b| backup_json(&state.backups, b))
                    .collect(),
            })
            .collect(),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PruneBody {
    confirm: String,
}

#[derive(Serialize)]
struct Pruned {
    ok: bool,
    pruned: usize,
}

/// Admin: delete a removed database's backups (`{"confirm": name}`).
async fn prune_removed(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(key): Path<String>,
    Json(body): Json<PruneBody>,
) -> AppResult<Json<Pruned>> {
    let pruned = state
        .backups
        .prune_removed(&me.actor(), &key, &body.confirm)
        .await?;
    Ok(Json(Pruned { ok: true, pruned }))
}

#[derive(Serialize)]
struct BackupJson {
    id: i64,
    state: crate::domain::BackupState,
    bytes: Option<i64>,
    sha256: Option<String>,
    location: String,
    started_at: String,
    finished_at: Option<String>,
    verified_at: Option<String>,
    verify_ok: Option<bool>,
}

async fn list(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    Db(m): Db,
) -> AppResult<Json<Vec<BackupJson>>> {
    let rows = state.backups.list(m.entry.name.as_str(), 500).await?;
    Ok(Json(
        rows.into_iter().map(|b| backup_json(&state.backups, b)).collect(),
    ))
}

#[derive(Serialize)]
struct Started {
    job_id: i64,
    backup_id: i64,
}

async fn start(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
) -> AppResult<(StatusCode, Json<Started>)> {
    let (job_id, backup_id) = state.backups.start(&m, &me.actor()).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { job_id, backup_id })))
}

#[derive(Serialize)]
struct Verifying {
    job_id: i64,
}

async fn verify(
    State(state): State<AppState>,
    Operator(me): Operator,
    id: BackupId,
) -> AppResult<(StatusCode, Json<Verifying>)> {
    let id = id.get();
    let backup = state.backups.get(id).await?;
    let m = member(&state, &DatabaseName::from_path(&backup.database_name)?).await?;
    let job_id = state.backups.verify(&m, &me.actor(), id).await?;
    Ok((StatusCode::ACCEPTED, Json(Verifying { job_id })))
}
