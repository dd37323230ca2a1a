//! `/backups`: the manager's page. Every database by risk (red first), with
//! the age of its last good backup, its last verification, its measured
//! restore time against the RTO, and a small history of sizes and durations.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::error::AppResult;
use crate::format::{fmt_age, fmt_bytes, fmt_duration};
use crate::service::backup::status::{self, Level};
use crate::service::monitoring::charts::spark;
use crate::store::backups::BackupRow;
use crate::store::now;
use crate::web::AppState;
use crate::web::auth::Viewer;
use crate::web::page::PageCtx;

pub fn router() -> Router<AppState> {
    Router::new().route("/backups", get(page))
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
    /// SVG polyline points for sizes and durations (oldest to newest).
    pub sizes: String,
    pub durations: String,
}

/// The line for one database, from its backups (newest first).
pub fn risk_row(state: &AppState, entry: &crate::service::registry::DbEntry, rows: &[BackupRow]) -> RiskRow {
    let health = status::judge(entry, rows, now(), state.config.verify_window);
    let mut history: Vec<&BackupRow> = rows.iter().filter(|b| b.state == "good").take(30).collect();
    history.reverse();
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
}

async fn page(State(state): State<AppState>, Viewer(_): Viewer, ctx: PageCtx) -> AppResult<BackupsPage> {
    let mut rows = Vec::new();
    for m in state.fleet.members() {
        let backups = state.backups.list(m.entry.name.as_str(), 60).await?;
        rows.push(risk_row(&state, &m.entry, &backups));
    }
    rows.sort_by(|a, b| a.level.cmp(&b.level).then_with(|| a.name.cmp(&b.name)));
    Ok(BackupsPage { ctx, rows })
}
