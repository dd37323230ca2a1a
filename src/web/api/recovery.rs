//! API: point-in-time recovery on pgBackRest, in the shapes the PITR
//! issue fixes. Viewers read the catalog, the window and the timeline;
//! operators take physical backups and run stanza-create, check, verify
//! and drills; admins restore into a new server and discard it.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::domain::{JobKind, RestoreId};
use crate::error::AppResult;
use crate::format::rfc3339;
use crate::service::recovery::{BackupType, Status, Target, Timeline, TimelineEvent, parse_time, rfc3339_us};
use crate::store::recovery::RestoreRow;
use crate::web::AppState;
use crate::web::auth::{Admin, Operator, Viewer};
use crate::web::path::Db;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/databases/{name}/recovery", get(status))
        .route("/databases/{name}/recovery/backups", post(backup))
        .route("/databases/{name}/recovery/timeline", get(timeline))
        .route("/databases/{name}/recovery/restores", post(restore))
        .route("/databases/{name}/recovery/drills", post(drill))
        .route("/databases/{name}/recovery/stanza-create", post(stanza_create))
        .route("/databases/{name}/recovery/check", post(check))
        .route("/databases/{name}/recovery/verify", post(verify))
        .route("/recovery-restores/{id}", get(restore_status))
        .route("/recovery-restores/{id}/discard", post(discard))
}

#[derive(Serialize)]
struct ArchivingJson {
    ok: bool,
    last_archived_at: Option<String>,
    last_archived_wal: Option<String>,
    failing: bool,
    message: String,
}

#[derive(Serialize)]
struct WindowJson {
    from: String,
    to: String,
}

#[derive(Serialize)]
struct PhysicalJson {
    label: String,
    #[serde(rename = "type")]
    kind: String,
    prior: Option<String>,
    started_at: String,
    finished_at: String,
    bytes: i64,
    repo_bytes: i64,
    wal_start: String,
    wal_stop: String,
    lsn_start: String,
    lsn_stop: String,
}

/// A restore, as `GET /api/v1/recovery-restores/{id}` shows it.
#[derive(Serialize)]
pub struct RestoreJson {
    id: i64,
    state: crate::domain::RestoreState,
    drill: bool,
    target_time: Option<String>,
    target_xid: Option<i64>,
    backup_label: String,
    reached: Option<String>,
    /// The restored server's name in the registry.
    database: Option<String>,
    source_database: String,
    port: Option<i64>,
    rto_s: Option<f64>,
    proof: String,
    error: Option<String>,
    job_id: Option<i64>,
    created_at: String,
    finished_at: Option<String>,
}

pub fn restore_json(r: RestoreRow) -> RestoreJson {
    RestoreJson {
        id: r.id,
        state: r.state,
        drill: r.drill,
        target_time: r.target_us.map(rfc3339_us),
        target_xid: r.target_xid,
        backup_label: r.backup_label,
        reached: (!r.reached.is_empty()).then_some(r.reached),
        database: (!r.drill && !r.new_database.is_empty()).then_some(r.new_database),
        source_database: r.database_name,
        port: r.port,
        rto_s: r.rto_ms.map(|ms| ms as f64 / 1000.0),
        proof: r.proof,
        error: r.error,
        job_id: r.job_id,
        created_at: rfc3339(r.created_at),
        finished_at: r.finished_at.map(rfc3339),
    }
}

#[derive(Serialize)]
struct VerifiedJson {
    at: String,
    ok: bool,
    findings: Vec<String>,
}

#[derive(Serialize)]
struct StatusJson {
    stanza: String,
    archiving: ArchivingJson,
    window: Option<WindowJson>,
    backups: Vec<PhysicalJson>,
    restores: Vec<RestoreJson>,
    /// Why pgBackRest's catalog could not be read, if it could not.
    catalog_error: Option<String>,
    verified: Option<VerifiedJson>,
}

fn status_json(s: Status) -> StatusJson {
    StatusJson {
        stanza: s.stanza,
        archiving: ArchivingJson {
            ok: s.archiving.ok,
            last_archived_at: s.archiving.last_archived_at.map(rfc3339),
            last_archived_wal: s.archiving.last_archived_wal,
            failing: s.archiving.failing,
            message: s.archiving.message,
        },
        window: s.window.map(|w| WindowJson {
            from: rfc3339(w.from),
            to: rfc3339(w.to),
        }),
        backups: s
            .info
            .backups
            .into_iter()
            .map(|b| PhysicalJson {
                label: b.label,
                kind: b.kind,
                prior: b.prior,
                started_at: rfc3339(b.started_at),
                finished_at: rfc3339(b.finished_at),
                bytes: b.bytes,
                repo_bytes: b.repo_bytes,
                wal_start: b.wal_start,
                wal_stop: b.wal_stop,
                lsn_start: b.lsn_start,
                lsn_stop: b.lsn_stop,
            })
            .collect(),
        restores: s.restores.into_iter().map(restore_json).collect(),
        catalog_error: s.info_error,
        verified: s.verified.map(|v| VerifiedJson {
            at: rfc3339(v.at),
            ok: v.ok,
            findings: v.findings,
        }),
    }
}

async fn status(State(state): State<AppState>, Viewer(_): Viewer, Db(m): Db) -> AppResult<Json<StatusJson>> {
    Ok(Json(status_json(state.recovery.status(&m).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupBody {
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Serialize)]
struct Started {
    job_id: i64,
}

async fn backup(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
    body: Option<Json<BackupBody>>,
) -> AppResult<(StatusCode, Json<Started>)> {
    let kind = match body.and_then(|b| b.0.kind) {
        Some(k) => BackupType::parse(&k)?,
        None => BackupType::Full,
    };
    let job_id = state.recovery.backup(&m, &me.actor(), kind, true).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { job_id })))
}

async fn stanza_job(
    state: &AppState,
    me: &crate::web::auth::CurrentUser,
    m: &std::sync::Arc<crate::service::fleet::Member>,
    kind: JobKind,
) -> AppResult<(StatusCode, Json<Started>)> {
    let job_id = state.recovery.stanza_job(m, &me.actor(), kind).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { job_id })))
}

async fn stanza_create(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
) -> AppResult<(StatusCode, Json<Started>)> {
    stanza_job(&state, &me, &m, JobKind::StanzaCreate).await
}

async fn check(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
) -> AppResult<(StatusCode, Json<Started>)> {
    stanza_job(&state, &me, &m, JobKind::StanzaCheck).await
}

async fn verify(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
) -> AppResult<(StatusCode, Json<Started>)> {
    stanza_job(&state, &me, &m, JobKind::RepoVerify).await
}

#[derive(Deserialize)]
struct TimelineQuery {
    from: Option<String>,
    to: Option<String>,
}

#[derive(Serialize)]
struct TimelineJson {
    from: String,
    to: String,
    events: Vec<TimelineEvent>,
    truncated: bool,
    decoded_bytes: u64,
    segments: usize,
    missing_segments: Vec<String>,
}

pub fn timeline_json(t: Timeline) -> serde_json::Value {
    serde_json::to_value(TimelineJson {
        from: rfc3339_us(t.from_us),
        to: rfc3339_us(t.to_us),
        events: t.events,
        truncated: t.truncated,
        decoded_bytes: t.decoded_bytes,
        segments: t.segments,
        missing_segments: t.missing,
    })
    .unwrap_or_default()
}

async fn timeline(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    Db(m): Db,
    Query(q): Query<TimelineQuery>,
) -> AppResult<Json<serde_json::Value>> {
    let from = q
        .from
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|t| parse_time("from", t))
        .transpose()?;
    let to =
        q.to.as_deref()
            .filter(|s| !s.is_empty())
            .map(|t| parse_time("to", t))
            .transpose()?;
    Ok(Json(timeline_json(state.recovery.timeline(&m, from, to).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    #[serde(default)]
    target_time: Option<String>,
    #[serde(default)]
    target_xid: Option<i64>,
    #[serde(default)]
    confirm: String,
}

#[derive(Serialize)]
struct RestoreStarted {
    job_id: i64,
    restore_id: i64,
}

async fn restore(
    State(state): State<AppState>,
    Admin(me): Admin,
    Db(m): Db,
    Json(body): Json<RestoreBody>,
) -> AppResult<(StatusCode, Json<RestoreStarted>)> {
    let target = Target::of(body.target_time.as_deref(), body.target_xid)?;
    let (job_id, restore_id) = state
        .recovery
        .restore(&m, &me.actor(), target, &body.confirm)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(RestoreStarted { job_id, restore_id })))
}

async fn drill(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
) -> AppResult<(StatusCode, Json<RestoreStarted>)> {
    let (job_id, restore_id) = state.recovery.drill(&m, &me.actor()).await?;
    Ok((StatusCode::ACCEPTED, Json(RestoreStarted { job_id, restore_id })))
}

async fn restore_status(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    id: RestoreId,
) -> AppResult<Json<RestoreJson>> {
    Ok(Json(restore_json(state.recovery.get_restore(id.get()).await?)))
}

async fn discard(
    State(state): State<AppState>,
    Admin(me): Admin,
    id: RestoreId,
) -> AppResult<(StatusCode, Json<Started>)> {
    let job_id = state.recovery.discard(&me.actor(), id.get()).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { job_id })))
}
