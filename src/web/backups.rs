//! `/backups`: the manager's page. Every database by risk (red first), with
//! the age of its last good backup, its last verification, its measured
//! restore time against the RTO, and a small history of sizes and durations.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::response::Redirect;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tower_sessions::Session;

use crate::clock::now;
use crate::error::AppResult;
use crate::format::{fmt_age, fmt_bytes, fmt_duration, fmt_time};
use crate::service::backup::Removed;
use crate::service::backup::status::{self, Level};
use crate::service::monitoring::charts::spark;
use crate::store::backups::BackupRow;
use crate::web::AppState;
use crate::web::auth::{Admin, Viewer};
use crate::web::page::{PageCtx, flash};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/backups", get(page))
        .route("/backups/removed/{key}/prune", post(prune_removed))
}

/// A removed database's line: what is still kept of it.
pub struct RemovedRow {
    pub key: String,
    pub name: String,
    pub engine: String,
    pub removed: String,
    pub kept: usize,
    pub bytes: String,
    pub newest: String,
}

impl RemovedRow {
    fn of(r: &Removed) -> RemovedRow {
        let kept: Vec<&BackupRow> = r.kept().collect();
        RemovedRow {
            key: r.key.clone(),
            name: r.name.clone(),
            engine: r.engine.clone(),
            removed: format!(
                "{} ({} ago)",
                fmt_time(r.removed_at),
                fmt_age(now() - r.removed_at)
            ),
            kept: kept.len(),
            bytes: fmt_bytes(kept.iter().filter_map(|b| b.bytes).sum()),
            newest: kept
                .first()
                .map(|b| fmt_time(b.finished_at.unwrap_or(b.started_at)))
                .unwrap_or_else(|| "—".into()),
        }
    }
}

/// One database's line.
pub struct RiskRow {
    pub name: String,
    pub engine: &'static str,
    pub level: Level,
    pub reasons: Vec<String>,
    pub last_good: String,
    pub size: String,
    pub verified: String,
    pub restore: String,
    /// The recovery point now: how much would be lost ("4s of WAL", "2h since the last backup").
    pub rpo_measured: String,
    /// The measured recovery time: the last drill's, else the last verification's restore.
    pub rto_measured: String,
    /// SVG polyline points for sizes and durations (oldest to newest).
    pub sizes: String,
    pub durations: String,
}

/// The line for one database, from its backups (newest first).
pub fn risk_row(state: &AppState, entry: &crate::service::registry::DbEntry, rows: &[BackupRow]) -> RiskRow {
    let facts = state.recovery.pitr_facts(entry);
    let health = status::judge_with(
        entry.targets(),
        rows,
        now(),
        state.config.verify_window,
        facts.as_ref(),
    );
    let mut history: Vec<&BackupRow> = rows.iter().filter(|b| b.state.is_good()).take(30).collect();
    history.reverse();
    let rpo_measured = status::rpo_now(&health, facts.as_ref(), now());
    let rto_measured = status::rto_now(&health, facts.as_ref());
    RiskRow {
        name: entry.name.to_string(),
        engine: entry.engine.label(),
        level: health.level,
        reasons: health.reasons,
        last_good: health
            .last_good
            .as_ref()
            .map(|b| format!("{} ago", fmt_age(now() - b.finished_at.unwrap_or(b.started_at))))
            .unwrap_or_else(|| "never".into()),
        size: health
            .last_good
            .as_ref()
            .and_then(|b| b.bytes)
            .map(fmt_bytes)
            .unwrap_or_default(),
        verified: match &health.last_verified {
            Some(v) => format!(
                "{} {} ago",
                if v.verify_ok == Some(true) {
                    "passed"
                } else {
                    "FAILED"
                },
                fmt_age(now() - v.verified_at.unwrap_or(0))
            ),
            None => "never".into(),
        },
        restore: match (
            health.last_verified.as_ref().and_then(|v| v.restore_ms),
            entry.rto,
        ) {
            (Some(ms), Some(rto)) => format!("{} (RTO {})", fmt_age(ms / 1000), fmt_duration(rto)),
            (Some(ms), None) => fmt_age(ms / 1000),
            (None, _) => "not measured".into(),
        },
        rpo_measured,
        rto_measured,
        sizes: spark(
            &history
                .iter()
                .map(|b| b.bytes.unwrap_or(0) as f64)
                .collect::<Vec<_>>(),
        ),
        durations: spark(
            &history
                .iter()
                .map(|b| b.duration_ms.unwrap_or(0) as f64)
                .collect::<Vec<_>>(),
        ),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "backups/index.html")]
struct BackupsPage {
    ctx: PageCtx,
    rows: Vec<RiskRow>,
    removed: Vec<RemovedRow>,
}

async fn page(State(state): State<AppState>, Viewer(_): Viewer, ctx: PageCtx) -> AppResult<BackupsPage> {
    let mut rows = Vec::new();
    for m in state.fleet.members() {
        let backups = state.backups.list(m.entry.name.as_str(), 60).await?;
        rows.push(risk_row(&state, &m.entry, &backups));
    }
    rows.sort_by(|a, b| a.level.cmp(&b.level).then_with(|| a.name.cmp(&b.name)));
    let removed = state
        .backups
        .removed()
        .await?
        .iter()
        .map(RemovedRow::of)
        .collect();
    Ok(BackupsPage { ctx, rows, removed })
}

#[derive(Deserialize)]
struct PruneForm {
    #[serde(default)]
    confirm: String,
}

/// Admin: delete a removed database's backups, after typing its name.
async fn prune_removed(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Path(key): Path<String>,
    Form(form): Form<PruneForm>,
) -> AppResult<Redirect> {
    let pruned = state
        .backups
        .prune_removed(&me.actor(), &key, &form.confirm)
        .await?;
    flash(
        &session,
        "ok",
        format!("Deleted {pruned} backup(s) of the removed database."),
    )
    .await?;
    Ok(Redirect::to("/backups"))
}
