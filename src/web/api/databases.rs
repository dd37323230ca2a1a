//! API: the registry and each database's last known status (viewer), and
//! admin-only create, update and delete. Never a password: URLs are shown
//! redacted.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};

use crate::config::SecretUrl;
use crate::domain::{DatabaseName, RecoveryTarget};
use crate::engine::{Capabilities, DatabaseEntry, SchemaEntry};
use crate::error::{AppError, AppResult};
use crate::service::fleet::{Health, Member, ServerView};
use crate::service::registry::{Changes, NewDatabase, PitrSettings, Schedules, Source};
use crate::web::AppState;
use crate::web::auth::{Admin, Viewer};
use crate::web::page::rfc3339;
use crate::web::path::{Db, DbName};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/databases", get(list).post(create))
        .route("/databases/{name}", get(show).put(update).delete(remove))
        .route("/servers", get(servers))
}

/// The servers behind the registered databases, with the panel's own
/// connections to each: `[{"server","engine","panel_connections","limit","opened","databases"}]`.
async fn servers(State(state): State<AppState>, Viewer(_): Viewer) -> Json<Vec<ServerView>> {
    Json(state.fleet.server_views())
}

/// One database in the list: the shape DESIGN.md fixes.
#[derive(Serialize)]
struct DbSummary {
    name: String,
    engine: &'static str,
    /// `null` until the first check.
    reachable: Option<bool>,
    version: Option<String>,
    size_bytes: Option<i64>,
    error: Option<String>,
}

/// One database with everything known about it.
#[derive(Serialize)]
struct DbDetail {
    #[serde(flatten)]
    summary: DbSummary,
    managed_by: &'static str,
    /// The connection URL with its password replaced by `***`.
    url: String,
    connections: Option<i64>,
    max_connections: Option<i64>,
    uptime_s: Option<i64>,
    checked_at: Option<String>,
    last_ok_at: Option<String>,
    rpo_s: Option<u64>,
    rto_s: Option<u64>,
    migrations_dir: Option<String>,
    backup_schedule: Option<String>,
    verify_schedule: Option<String>,
    retention: Option<String>,
    capabilities: Capabilities,
    databases: Vec<DatabaseEntry>,
    schemas: Vec<SchemaEntry>,
    /// host:port, shared with the other databases registered there.
    server: Option<String>,
    /// The panel's connections to that server now, and its budget.
    panel_connections: Option<usize>,
    panel_connection_limit: Option<usize>,
}

fn summary(m: &Member) -> DbSummary {
    let status = m.status();
    DbSummary {
        name: m.entry.name.to_string(),
        engine: m.entry.engine.as_str(),
        reachable: match status.health {
            Health::Up => Some(true),
            Health::Down => Some(false),
            Health::Unknown => None,
        },
        version: status.server.as_ref().map(|s| s.version.clone()),
        size_bytes: status.server.as_ref().and_then(|s| s.size_bytes),
        error: status.error,
    }
}

fn detail(m: &Member) -> DbDetail {
    let status = m.status();
    let server = status.server.clone().unwrap_or_default();
    let budget = m.server();
    DbDetail {
        summary: summary(m),
        managed_by: match m.entry.source {
            Source::Panel => "panel",
            Source::Config => "config",
        },
        url: m.entry.url_redacted.clone(),
        connections: server.connections,
        max_connections: server.max_connections,
        uptime_s: server.uptime_s,
        checked_at: status.checked_at.map(rfc3339),
        last_ok_at: status.last_ok_at.map(rfc3339),
        rpo_s: m.entry.rpo.map(|d| d.as_secs()),
        rto_s: m.entry.rto.map(|d| d.as_secs()),
        migrations_dir: m.entry.migrations_dir.clone(),
        backup_schedule: m.entry.schedules.backup.clone(),
        verify_schedule: m.entry.schedules.verify.clone(),
        retention: m.entry.schedules.retention.clone(),
        capabilities: m.capabilities(),
        databases: status.databases,
        schemas: status.schemas,
        server: budget.as_ref().map(|b| b.server.clone()),
        panel_connections: budget.as_ref().map(|b| b.panel_connections),
        panel_connection_limit: budget.as_ref().map(|b| b.limit),
    }
}

async fn list(State(state): State<AppState>, Viewer(_): Viewer) -> Json<Vec<DbSummary>> {
    Json(state.fleet.members().iter().map(|m| summary(m)).collect())
}

async fn show(Viewer(_): Viewer, Db(m): Db) -> Json<DbDetail> {
    Json(detail(&m))
}

/// `Some(None)` for an explicit `null`, `None` for a missing field.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateDb {
    name: String,
    url: String,
    #[serde(default)]
    migrations_dir: Option<String>,
    #[serde(default)]
    rpo_s: Option<u64>,
    #[serde(default)]
    rto_s: Option<u64>,
    #[serde(default)]
    backup_schedule: Option<String>,
    #[serde(default)]
    verify_schedule: Option<String>,
    #[serde(default)]
    retention: Option<String>,
    #[serde(default)]
    pgbackrest_stanza: Option<String>,
    #[serde(default)]
    pgbackrest_config: Option<String>,
    #[serde(default)]
    pgbackrest_schedule: Option<String>,
    #[serde(default)]
    recovery_drill_schedule: Option<String>,
    #[serde(default)]
    recovery_proof_sql: Option<String>,
}

/// `rpo_s` / `rto_s`: at most ten years (see `RecoveryTarget`).
fn target(what: &str, secs: Option<u64>) -> AppResult<Option<std::time::Duration>> {
    secs.map(|s| RecoveryTarget::from_secs(what, s).map(RecoveryTarget::duration))
        .transpose()
}

/// The detail of `name` once the fleet knows it (it may not have been checked yet).
async fn detail_of(state: &AppState, name: &DatabaseName) -> AppResult<Json<DbDetail>> {
    state.fleet.refresh(&state.registry).await;
    let m = state
        .fleet
        .get(name)
        .ok_or_else(|| AppError::not_found(format!("no database named {name}")))?;
    Ok(Json(detail(&m)))
}

async fn create(
    State(state): State<AppState>,
    Admin(me): Admin,
    Json(body): Json<CreateDb>,
) -> AppResult<(StatusCode, Json<DbDetail>)> {
    let new = NewDatabase {
        name: DatabaseName::parse(&body.name)?,
        url: SecretUrl::new(body.url.trim()),
        migrations_dir: body.migrations_dir.filter(|d| !d.trim().is_empty()),
        rpo: target("RPO", body.rpo_s)?,
        rto: target("RTO", body.rto_s)?,
        schedules: Schedules {
            backup: body.backup_schedule,
            verify: body.verify_schedule,
            retention: body.retention,
        },
        pitr: PitrSettings {
            stanza: body.pgbackrest_stanza,
            config: body.pgbackrest_config,
            schedule: body.pgbackrest_schedule,
            drill_schedule: body.recovery_drill_schedule,
            proof_sql: body.recovery_proof_sql,
        },
    };
    let entry = state.registry.add(&me.actor(), new).await?;
    Ok((StatusCode::CREATED, detail_of(&state, &entry.name).await?))
}

/// Fields left out keep their value; `null` clears an optional one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateDb {
    #[serde(default)]
    url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    migrations_dir: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    rpo_s: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    rto_s: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    backup_schedule: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    verify_schedule: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    retention: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pgbackrest_stanza: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pgbackrest_config: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pgbackrest_schedule: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    recovery_drill_schedule: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    recovery_proof_sql: Option<Option<String>>,
}

async fn update(
    State(state): State<AppState>,
    Admin(me): Admin,
    DbName(name): DbName,
    Json(body): Json<UpdateDb>,
) -> AppResult<Json<DbDetail>> {
    let current = state.registry.get(&name).await?;
    let changes = Changes {
        url: body.url.map(|u| SecretUrl::new(u.trim())),
        migrations_dir: body.migrations_dir.unwrap_or(current.migrations_dir),
        rpo: match body.rpo_s {
            Some(secs) => target("RPO", secs)?,
            None => current.rpo,
        },
        rto: match body.rto_s {
            Some(secs) => target("RTO", secs)?,
            None => current.rto,
        },
        schedules: Schedules {
            backup: body.backup_schedule.unwrap_or(current.schedules.backup),
            verify: body.verify_schedule.unwrap_or(current.schedules.verify),
            retention: body.retention.unwrap_or(current.schedules.retention),
        },
        pitr: PitrSettings {
            stanza: body.pgbackrest_stanza.unwrap_or(current.pitr.stanza),
            config: body.pgbackrest_config.unwrap_or(current.pitr.config),
            schedule: body.pgbackrest_schedule.unwrap_or(current.pitr.schedule),
            drill_schedule: body
                .recovery_drill_schedule
                .unwrap_or(current.pitr.drill_schedule),
            proof_sql: body.recovery_proof_sql.unwrap_or(current.pitr.proof_sql),
        },
    };
    state.registry.update(&me.actor(), &name, changes).await?;
    detail_of(&state, &name).await
}

#[derive(Serialize)]
struct Done {
    ok: bool,
}

async fn remove(
    State(state): State<AppState>,
    Admin(me): Admin,
    DbName(name): DbName,
) -> AppResult<Json<Done>> {
    state.registry.remove(&me.actor(), &name).await?;
    state.fleet.refresh(&state.registry).await;
    Ok(Json(Done { ok: true }))
}
