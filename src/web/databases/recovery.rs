//! The Backups tab's point-in-time recovery: archiving, the restorable
//! window drawn as a bar with every backup marked, pgBackRest's catalog,
//! restored servers, and the timeline with "restore to just before this";
//! the forms for physical backups, stanza-create, check, verify, drills,
//! restores and discarding.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::Redirect;
use serde::Deserialize;

use super::DbView;
use crate::clock::now;
use crate::domain::{JobKind, RestoreId, RestoreState};
use crate::error::{AppError, AppResult};
use crate::format::{fmt_age, fmt_bytes, fmt_time};
use crate::service::recovery::{BackupType, Status, Target, TimelineEvent, parse_time, rfc3339_us};
use crate::web::AppState;
use crate::web::auth::{Admin, Operator, Viewer};
use crate::web::page::PageCtx;
use crate::web::path::Db;

/// A backup on the window's bar and in the table.
pub struct PhysicalView {
    pub label: String,
    pub kind: String,
    pub prior: String,
    pub finished: String,
    pub age: String,
    pub size: String,
    pub repo_size: String,
    pub wal: String,
    /// Where on the bar, 0..100.
    pub left_pct: f64,
}

pub struct RestoreView {
    pub id: i64,
    pub state: RestoreState,
    pub drill: bool,
    pub target: String,
    pub reached: String,
    pub database: String,
    pub port: String,
    pub rto: String,
    pub error: String,
    pub job_id: Option<i64>,
    pub ready: bool,
}

/// The section's view.
pub struct PitrView {
    pub stanza: String,
    pub run_as: String,
    pub archiving_ok: bool,
    pub archiving_failing: bool,
    pub archiving: String,
    pub window: Option<(String, String)>,
    /// RFC 3339 ends, for the forms.
    pub window_from: String,
    pub window_to: String,
    pub backups: Vec<PhysicalView>,
    pub restores: Vec<RestoreView>,
    pub catalog_error: Option<String>,
    pub verified: String,
    pub findings: Vec<String>,
    pub retention: String,
}

impl PitrView {
    pub fn of(s: &Status) -> PitrView {
        let (from, to) = s.window.map(|w| (w.from, w.to.max(w.from + 1))).unwrap_or((0, 1));
        let span = (to - from) as f64;
        PitrView {
            stanza: s.stanza.clone(),
            run_as: s.run_as.clone().unwrap_or_default(),
            archiving_ok: s.archiving.ok,
            archiving_failing: s.archiving.failing,
            archiving: s.archiving.message.clone(),
            window: s.window.map(|w| (fmt_time(w.from), fmt_time(w.to))),
            window_from: s
                .window
                .map(|w| rfc3339_us(w.from * 1_000_000))
                .unwrap_or_default(),
            window_to: s
                .window
                .map(|w| rfc3339_us((w.to + 1) * 1_000_000))
                .unwrap_or_default(),
            backups: s
                .info
                .backups
                .iter()
                .rev()
                .map(|b| PhysicalView {
                    label: b.label.clone(),
                    kind: b.kind.clone(),
                    prior: b.prior.clone().unwrap_or_default(),
                    finished: fmt_time(b.finished_at),
                    age: fmt_age(now() - b.finished_at),
                    size: fmt_bytes(b.bytes),
                    repo_size: fmt_bytes(b.repo_bytes),
                    wal: format!("{} – {}", b.wal_start, b.wal_stop),
                    left_pct: (((b.finished_at - from) as f64 / span) * 100.0).clamp(0.0, 100.0),
                })
                .collect(),
            restores: s
                .restores
                .iter()
                .map(|r| RestoreView {
                    id: r.id,
                    state: r.state,
                    drill: r.drill,
                    target: match (r.target_us, r.target_xid) {
                        (Some(us), _) => rfc3339_us(us),
                        (None, Some(x)) => format!("before transaction {x}"),
                        _ => "latest".into(),
                    },
                    reached: r.reached.clone(),
                    database: r.new_database.clone(),
                    port: r.port.map(|p| p.to_string()).unwrap_or_default(),
                    rto: r
                        .rto_ms
                        .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                        .unwrap_or_default(),
                    error: r.error.clone().unwrap_or_default(),
                    job_id: r.job_id,
                    ready: r.state == RestoreState::Ready,
                })
                .collect(),
            catalog_error: s.info_error.clone(),
            verified: match &s.verified {
                Some(v) => format!(
                    "{} {} ago",
                    if v.ok { "passed" } else { "FOUND PROBLEMS" },
                    fmt_age(now() - v.at)
                ),
                None => "never".into(),
            },
            findings: s
                .verified
                .as_ref()
                .map(|v| v.findings.clone())
                .unwrap_or_default(),
            retention: if s.retention.is_empty() {
                "pgBackRest's default (no repo1-retention-full set: it keeps every backup and warns)".into()
            } else {
                s.retention.join(", ")
            },
        }
    }
}

#[derive(Deserialize)]
pub(super) struct BackupForm {
    #[serde(default)]
    kind: String,
}

pub(super) async fn backup(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
    Form(form): Form<BackupForm>,
) -> AppResult<Redirect> {
    let kind = BackupType::parse(if form.kind.is_empty() { "full" } else { &form.kind })?;
    let job = state.recovery.backup(&m, &me.actor(), kind, true).await?;
    Ok(Redirect::to(&format!("/jobs/{job}")))
}

async fn stanza(
    state: &AppState,
    me: &crate::web::auth::CurrentUser,
    m: &std::sync::Arc<crate::service::fleet::Member>,
    kind: JobKind,
) -> AppResult<Redirect> {
    let job = state.recovery.stanza_job(m, &me.actor(), kind).await?;
    Ok(Redirect::to(&format!("/jobs/{job}")))
}

pub(super) async fn stanza_create(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
) -> AppResult<Redirect> {
    stanza(&state, &me, &m, JobKind::StanzaCreate).await
}

pub(super) async fn check(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
) -> AppResult<Redirect> {
    stanza(&state, &me, &m, JobKind::StanzaCheck).await
}

pub(super) async fn verify(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
) -> AppResult<Redirect> {
    stanza(&state, &me, &m, JobKind::RepoVerify).await
}

pub(super) async fn drill(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
) -> AppResult<Redirect> {
    let (job, _) = state.recovery.drill(&m, &me.actor()).await?;
    Ok(Redirect::to(&format!("/jobs/{job}")))
}

pub struct EventView {
    pub at: String,
    pub xid: u32,
    pub kind: &'static str,
    pub relation: String,
    pub rows: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/_timeline.html")]
pub(super) struct TimelineFragment {
    db_name: String,
    events: Vec<EventView>,
    truncated: bool,
    segments: usize,
    missing: Vec<String>,
    from: String,
    to: String,
    is_admin: bool,
}

#[derive(Deserialize)]
pub(super) struct TimelineQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

fn event_view(e: &TimelineEvent) -> EventView {
    EventView {
        at: e.at.clone(),
        xid: e.xid,
        kind: e.kind,
        relation: e.relation.clone().unwrap_or_else(|| "-".into()),
        rows: e.rows.map(|r| r.to_string()).unwrap_or_default(),
    }
}

pub(super) async fn timeline(
    State(state): State<AppState>,
    Viewer(me): Viewer,
    Db(m): Db,
    Query(q): Query<TimelineQuery>,
) -> AppResult<TimelineFragment> {
    let from = (!q.from.trim().is_empty())
        .then(|| parse_time("from", &q.from))
        .transpose()?;
    let to = (!q.to.trim().is_empty())
        .then(|| parse_time("to", &q.to))
        .transpose()?;
    let t = state.recovery.timeline(&m, from, to).await?;
    Ok(TimelineFragment {
        db_name: m.entry.name.to_string(),
        events: t.events.iter().rev().map(event_view).collect(),
        truncated: t.truncated,
        segments: t.segments,
        missing: t.missing,
        from: rfc3339_us(t.from_us),
        to: rfc3339_us(t.to_us),
        is_admin: me.user.role >= crate::domain::Role::Admin,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/pitr_restore.html")]
pub(super) struct RestorePage {
    ctx: PageCtx,
    db: DbView,
    target_time: String,
    target_xid: String,
    what: String,
    window: String,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct RestoreQuery {
    #[serde(default)]
    time: String,
    #[serde(default)]
    xid: String,
    #[serde(default)]
    what: String,
}

pub(super) async fn restore_page(
    State(state): State<AppState>,
    Admin(_): Admin,
    Db(m): Db,
    ctx: PageCtx,
    Query(q): Query<RestoreQuery>,
) -> AppResult<RestorePage> {
    let status = state.recovery.status(&m).await?;
    Ok(RestorePage {
        ctx,
        db: DbView::of(&m),
        target_time: q.time.chars().take(64).collect(),
        target_xid: q.xid.chars().filter(|c| c.is_ascii_digit()).take(12).collect(),
        what: q.what.chars().take(300).collect(),
        window: status
            .window
            .map(|w| format!("{} – {}", fmt_time(w.from), fmt_time(w.to)))
            .unwrap_or_else(|| "none yet".into()),
        error: None,
    })
}

#[derive(Deserialize)]
pub(super) struct RestoreForm {
    #[serde(default)]
    target_time: String,
    #[serde(default)]
    target_xid: String,
    #[serde(default)]
    confirm: String,
}

pub(super) async fn restore(
    State(state): State<AppState>,
    Admin(me): Admin,
    Db(m): Db,
    ctx: PageCtx,
    Form(form): Form<RestoreForm>,
) -> AppResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let result = async {
        let xid = match form.target_xid.trim() {
            "" => None,
            x => Some(
                x.parse::<i64>()
                    .map_err(|_| AppError::invalid(format!("{x:?} is not a transaction id")))?,
            ),
        };
        let target = Target::of(Some(form.target_time.as_str()), xid)?;
        state
            .recovery
            .restore(&m, &me.actor(), target, &form.confirm)
            .await
    }
    .await;
    match result {
        Ok((job, _)) => Ok(Redirect::to(&format!("/jobs/{job}")).into_response()),
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_))) => {
            let window = state
                .recovery
                .status(&m)
                .await
                .ok()
                .and_then(|s| s.window)
                .map(|w| format!("{} – {}", fmt_time(w.from), fmt_time(w.to)))
                .unwrap_or_else(|| "none yet".into());
            let page = RestorePage {
                ctx,
                db: DbView::of(&m),
                target_time: form.target_time.chars().take(64).collect(),
                target_xid: form.target_xid.chars().take(12).collect(),
                what: String::new(),
                window,
                error: Some(e.to_string()),
            };
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn discard(
    State(state): State<AppState>,
    Admin(me): Admin,
    id: RestoreId,
) -> AppResult<Redirect> {
    let job = state.recovery.discard(&me.actor(), id.get()).await?;
    Ok(Redirect::to(&format!("/jobs/{job}")))
}
