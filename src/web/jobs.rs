//! The jobs pages: the list, one job's live progress and log, and cancel.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::Redirect;
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;

use crate::domain::JobId;
use crate::error::AppResult;
use crate::service::maintenance;
use crate::store::jobs::JobRow;
use crate::web::AppState;
use crate::web::auth::{Operator, Viewer};
use crate::web::page::{PageCtx, flash, fmt_age, fmt_time};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/jobs", get(list))
        .route("/jobs/{id}", get(show))
        .route("/jobs/{id}/cancel", post(cancel))
}

const PAGE: i64 = 50;

/// One job as the pages show it.
pub struct JobView {
    pub id: i64,
    pub kind: crate::domain::JobKind,
    /// The action in words: "VACUUM ANALYZE", "REINDEX INDEX CONCURRENTLY".
    pub what: String,
    pub database: String,
    pub target: String,
    pub requested_by: String,
    pub state: crate::domain::JobState,
    /// 0–100, when known.
    pub percent: Option<i64>,
    pub phase: String,
    pub error: String,
    pub log: String,
    pub created: String,
    pub started: String,
    pub finished: String,
    pub took: String,
    pub active: bool,
    /// Interrupted, but the database server may have finished the work:
    /// what to check (see `maintenance::server_may_have_finished`).
    pub server_check: Option<maintenance::MayHaveFinished>,
}

impl JobView {
    /// The row as shown, with what the server may have done meanwhile.
    fn of(state: &AppState, j: JobRow) -> JobView {
        let server_check = maintenance::server_may_have_finished(&state.fleet, &j);
        let what = maintenance::what(&state.fleet, &j);
        JobView {
            server_check,
            what,
            ..JobView::from(j)
        }
    }

    /// The state as the pages name it.
    pub fn state_label(&self) -> String {
        match self.server_check {
            Some(_) => format!("{} — the server may have completed it", self.state),
            None => self.state.to_string(),
        }
    }
}

impl From<JobRow> for JobView {
    fn from(j: JobRow) -> Self {
        let active = j.state.is_active();
        JobView {
            server_check: None,
            id: j.id,
            what: j.kind.label().to_string(),
            kind: j.kind,
            database: j.database_name.unwrap_or_default(),
            target: j.target,
            requested_by: j.requested_by,
            percent: j.progress.map(|p| (p * 100.0).round() as i64),
            phase: j.phase,
            error: j.error.unwrap_or_default(),
            log: j.log,
            created: fmt_time(j.created_at),
            started: j.started_at.map(fmt_time).unwrap_or_default(),
            finished: j.finished_at.map(fmt_time).unwrap_or_default(),
            took: match (j.started_at, j.finished_at) {
                (Some(s), Some(f)) => fmt_age(f - s),
                _ => String::new(),
            },
            state: j.state,
            active,
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    before: Option<i64>,
    #[serde(default)]
    database: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "jobs/list.html")]
struct ListPage {
    ctx: PageCtx,
    jobs: Vec<JobView>,
    older: Option<String>,
    any_active: bool,
}

async fn list(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    ctx: PageCtx,
    Query(q): Query<ListQuery>,
) -> AppResult<ListPage> {
    let database = Some(q.database.trim()).filter(|d| !d.is_empty());
    let rows = state.jobs.list(database, q.before, PAGE + 1).await?;
    let more = rows.len() as i64 > PAGE;
    let jobs: Vec<JobView> = rows
        .into_iter()
        .take(PAGE as usize)
        .map(|row| JobView::of(&state, row))
        .collect();
    let older = match (more, jobs.last()) {
        (true, Some(last)) => Some(match database {
            Some(d) => format!(
                "/jobs?database={}&before={}",
                form_urlencoded::byte_serialize(d.as_bytes()).collect::<String>(),
                last.id
            ),
            None => format!("/jobs?before={}", last.id),
        }),
        _ => None,
    };
    Ok(ListPage {
        ctx,
        any_active: jobs.iter().any(|j| j.active),
        jobs,
        older,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "jobs/show.html")]
struct ShowPage {
    ctx: PageCtx,
    job: JobView,
}

async fn show(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    ctx: PageCtx,
    id: JobId,
) -> AppResult<ShowPage> {
    let job = state.jobs.get(id.get()).await?;
    Ok(ShowPage {
        ctx,
        job: JobView::of(&state, job),
    })
}

async fn cancel(
    State(state): State<AppState>,
    Operator(me): Operator,
    session: Session,
    id: JobId,
) -> AppResult<Redirect> {
    let id = id.get();
    state.jobs.cancel(&me.actor(), id).await?;
    flash(&session, "ok", format!("Asked job {id} to stop.")).await?;
    Ok(Redirect::to(&format!("/jobs/{id}")))
}
