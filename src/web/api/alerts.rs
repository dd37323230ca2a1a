//! API: alerts (viewer reads; operator acknowledges and silences) and a
//! database's sampled figures over a range.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::AlertId;
use crate::error::{AppError, AppResult};
use crate::format::rfc3339;
use crate::service::monitoring::alerts::{self, AlertView};
use crate::service::monitoring::charts::{self, Range};
use crate::web::AppState;
use crate::web::alerts::silence_length;
use crate::web::auth::{Operator, Viewer};
use crate::web::path::Db;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(list))
        .route("/alerts/{id}/ack", post(ack))
        .route("/databases/{name}/silences", post(silence))
        .route("/databases/{name}/samples", get(series))
}

fn alert_json(v: &AlertView) -> Value {
    let a = &v.row;
    json!({
        "id": a.id,
        "database": a.database_name,
        "rule": a.rule,
        "title": v.title,
        "state": a.state,
        "message": a.message,
        "query": a.query,
        "value": a.value,
        "started_at": rfc3339(a.started_at),
        "fired_at": a.fired_at.map(rfc3339),
        "resolved_at": a.resolved_at.map(rfc3339),
        "acknowledged_by": a.acked_by,
        "silenced_until": v.silenced_until.map(rfc3339),
    })
}

async fn list(State(state): State<AppState>, Viewer(_): Viewer) -> AppResult<Json<Value>> {
    let board = alerts::board(&state.store, None, 100).await?;
    Ok(Json(json!({
        "open": board.open.iter().map(alert_json).collect::<Vec<_>>(),
        "history": board.history.iter().map(alert_json).collect::<Vec<_>>(),
        "silences": board.silences.iter().map(|s| json!({
            "id": s.id,
            "database": s.database_name,
            "rule": s.rule,
            "until": rfc3339(s.until_at),
            "reason": s.reason,
            "created_by": s.created_by,
        })).collect::<Vec<_>>(),
    })))
}

async fn ack(State(state): State<AppState>, Operator(me): Operator, id: AlertId) -> AppResult<Json<Value>> {
    alerts::acknowledge(&state.store, &me.actor(), id.get()).await?;
    Ok(Json(json!({ "ok": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceBody {
    /// One rule, or every rule of the database when absent.
    #[serde(default)]
    rule: Option<String>,
    /// e.g. "1h", "7d".
    duration: String,
    #[serde(default)]
    reason: String,
}

#[derive(Serialize)]
struct Created {
    id: i64,
}

async fn silence(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
    Json(body): Json<SilenceBody>,
) -> AppResult<(StatusCode, Json<Created>)> {
    let length = silence_length(&body.duration)?;
    let id = alerts::silence(
        &state.store,
        &me.actor(),
        &m.entry.name,
        body.rule.as_deref(),
        length,
        body.reason.trim(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

#[derive(Deserialize)]
struct RangeQuery {
    #[serde(default)]
    range: Option<String>,
}

/// The figures the charts draw, bucketed as the chart for that range is.
async fn series(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    Db(m): Db,
    Query(q): Query<RangeQuery>,
) -> AppResult<Json<Value>> {
    let range = match q.range.as_deref() {
        None => Range::Day,
        Some(r) => Range::parse(r).ok_or_else(|| AppError::invalid("range must be 1h, 24h, 7d or 30d"))?,
    };
    let rows = charts::series(&state.store, m.entry.name.as_str(), range).await?;
    let points: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "at": rfc3339(r.at),
                "connections": r.connections,
                "active": r.active,
                "idle": r.idle,
                "idle_in_transaction": r.idle_in_xact,
                "max_connections": r.max_connections,
                "commits_per_s": r.commits_ps,
                "rollbacks_per_s": r.rollbacks_ps,
                "cache_hit_ratio": r.cache_hit,
                "size_bytes": r.size_bytes,
                "longest_query_s": r.longest_query_s,
                "longest_transaction_s": r.longest_xact_s,
                "longest_idle_transaction_s": r.longest_idle_xact_s,
                "replication_lag_s": r.replication_lag_s,
                "dead_tuples": r.dead_tuples,
                "xid_age": r.xid_age,
                "wal_archiving_failing": r.archive_failing.map(|f| f > 0.0),
            })
        })
        .collect();
    Ok(Json(
        json!({ "range": range.key(), "step_s": range.step(), "points": points }),
    ))
}
