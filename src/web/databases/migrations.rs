//! A database's migrations tab: drift first and loud, then pending
//! migrations with their SQL (lines with findings marked) and lint
//! findings, then every history found.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session as HttpSession;

use super::DbView;
use crate::domain::RequestId;
use crate::engine::history::Applied;
use crate::error::{AppError, AppResult};
use crate::format::fmt_time;
use crate::lint::Finding;
use crate::service::fleet::Member;
use crate::service::migrations::requests::{self, Request};
use crate::service::migrations::{self, DriftView};
use crate::web::AppState;
use crate::web::auth::{Admin, CurrentUser, Operator, Viewer};
use crate::web::page::{PageCtx, flash};
use crate::web::path::Db;

/// One line of a pending migration's SQL.
pub struct SqlLine {
    pub number: usize,
    pub text: String,
    /// "error", "warning" or "": the worst finding on this line.
    pub mark: &'static str,
}

pub struct PendingView {
    pub version: String,
    pub description: String,
    pub file: String,
    pub checksum: String,
    pub has_down: bool,
    pub errors: usize,
    pub warnings: usize,
    pub lines: Vec<SqlLine>,
    pub findings: Vec<Finding>,
    /// PostgreSQL refuses one of its statements inside a transaction
    /// (CONCURRENTLY): apply runs it statement by statement, autocommit.
    pub outside_transaction: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/migrations.html")]
pub struct MigrationsTab {
    ctx: PageCtx,
    db: DbView,
    dir: String,
    error: Option<String>,
    applied: Vec<Applied>,
    pending: Vec<PendingView>,
    drift: Vec<DriftView>,
    problems: Vec<String>,
    /// Why the history shown is not live.
    stale: Option<String>,
    requests: Vec<RequestView>,
    /// The signed-in user's name, to hide approval of one's own request.
    me: String,
    can_approve: bool,
    settings: requests::Settings,
    /// A form the server refused, shown again beside that form.
    refused: Option<Refused>,
}

/// A refused form: which one, why, and what was typed into it.
#[derive(Default)]
pub struct Refused {
    /// "request", "decide", "apply" or "rollback".
    pub form: &'static str,
    /// The request a decide or apply was about.
    pub request: i64,
    pub why: String,
    pub comment: String,
    pub version: String,
    pub confirm: String,
}

impl MigrationsTab {
    /// A gate's verdict as its word: go, wait or blocked.
    fn verdict_of(&self, g: &migrations::gate::Gate) -> &'static str {
        match g.verdict {
            migrations::gate::Verdict::Go => "go",
            migrations::gate::Verdict::Wait => "wait",
            migrations::gate::Verdict::Blocked => "blocked",
        }
    }

    /// Pending migrations with lint errors (which block a request).
    fn blocked(&self) -> usize {
        self.pending.iter().filter(|p| p.errors > 0).count()
    }

    /// The refusal of `form` (one not about a request), if that was it.
    fn refused_form(&self, form: &str) -> Option<&Refused> {
        self.refused.as_ref().filter(|r| r.on(form, 0))
    }
}

impl Refused {
    fn on(&self, form: &str, request: i64) -> bool {
        self.form == form && self.request == request
    }
}

pub struct RequestView {
    pub r: Request,
    pub versions: String,
    pub at: String,
    /// What the request's state means now: "approved — ready to apply
    /// (by …)" once an open request has its approvals.
    pub status: String,
    /// The signed-in user may still approve or reject it (an approver who
    /// neither asked for it nor decided on it yet).
    pub mine_to_decide: bool,
    /// Its migrations' lint findings, worst first: (severity, version, rule, message).
    pub lint: Vec<(String, String, String, String)>,
    pub lint_errors: usize,
    /// The live gate, for an open request (what the database is doing now
    /// to the tables it locks).
    pub gate: Option<migrations::gate::Gate>,
}

impl RequestView {
    fn of(r: Request, me: &str, can_approve: bool) -> RequestView {
        let approved_by: Vec<&str> = r
            .decisions
            .iter()
            .filter(|d| d.approve)
            .map(|d| d.approver.as_str())
            .collect();
        let status = if r.state.is_open() && r.approvals >= r.approvals_required {
            format!("approved — ready to apply (by {})", approved_by.join(", "))
        } else if r.state.is_open() {
            format!(
                "waiting for approval ({} of {})",
                r.approvals, r.approvals_required
            )
        } else {
            r.state.to_string()
        };
        RequestView {
            versions: r
                .files
                .iter()
                .map(|f| f.version.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            at: fmt_time(r.requested_at),
            status,
            mine_to_decide: can_approve
                && r.state.is_open()
                && r.requested_by != me
                && !r.decisions.iter().any(|d| d.approver == me),
            lint: Vec::new(),
            lint_errors: 0,
            gate: None,
            r,
        }
    }

    /// Its migrations' findings, from the pending list.
    fn with_lint(mut self, pending: &[PendingView]) -> RequestView {
        for f in &self.r.files {
            if let Some(p) = pending.iter().find(|p| p.version == f.version) {
                for x in &p.findings {
                    self.lint.push((
                        x.severity.as_str().to_string(),
                        p.version.clone(),
                        x.rule.clone(),
                        x.message.clone(),
                    ));
                }
            }
        }
        self.lint.sort_by_key(|(sev, ..)| sev != "error");
        self.lint_errors = self.lint.iter().filter(|(sev, ..)| sev == "error").count();
        self
    }
}

fn pending_view(p: migrations::Pending) -> PendingView {
    let mark = |n: usize| {
        let on_line = p.findings.iter().filter(|f| f.line == n);
        let mut worst = "";
        for f in on_line {
            worst = match (worst, f.severity.as_str()) {
                ("error", _) | (_, "error") => "error",
                _ => "warning",
            };
        }
        worst
    };
    let lines = p
        .sql
        .lines()
        .enumerate()
        .map(|(i, text)| SqlLine {
            number: i + 1,
            text: text.to_string(),
            mark: mark(i + 1),
        })
        .collect();
    let errors = p
        .findings
        .iter()
        .filter(|f| f.severity.as_str() == "error")
        .count();
    PendingView {
        version: p.version,
        description: p.description,
        file: p.file,
        checksum: p.checksum.chars().take(12).collect(),
        has_down: p.has_down,
        outside_transaction: p.outside_transaction,
        warnings: p.findings.len() - errors,
        errors,
        lines,
        findings: p.findings,
    }
}

pub(super) async fn page(
    State(state): State<AppState>,
    Viewer(me): Viewer,
    Db(m): Db,
    ctx: PageCtx,
) -> AppResult<MigrationsTab> {
    build(&state, &me, &m, ctx).await
}

/// The tab as the signed-in user sees it.
async fn build(state: &AppState, me: &CurrentUser, m: &Member, ctx: PageCtx) -> AppResult<MigrationsTab> {
    let name = &m.entry.name;
    let mut tab = MigrationsTab {
        ctx,
        db: DbView::of(m),
        dir: m.entry.migrations_dir.clone().unwrap_or_default(),
        error: None,
        applied: vec![],
        pending: vec![],
        drift: vec![],
        problems: vec![],
        stale: None,
        requests: vec![],
        me: me.user.name.to_string(),
        can_approve: me.user.can_approve,
        settings: requests::settings(&state.store, name.as_str()).await?,
        refused: None,
    };
    let requests = requests::list(&state.store, name.as_str()).await?;
    match migrations::status(m).await {
        Ok(s) => {
            tab.applied = s.applied;
            tab.pending = s.pending.into_iter().map(pending_view).collect();
            tab.drift = s.drift;
            tab.problems = s.problems;
            tab.stale = s.stale;
        }
        Err(e) => tab.error = Some(e.to_string()),
    }
    tab.requests = requests
        .into_iter()
        .map(|r| RequestView::of(r, &tab.me, tab.can_approve).with_lint(&tab.pending))
        .collect();
    // The live gate of the open requests (a few: each is a handful of
    // time-boxed catalog reads).
    for q in tab.requests.iter_mut().filter(|q| q.r.state.is_open()).take(3) {
        q.gate = migrations::gate::of_bound(m, &q.r, state.config.gate_max_xact_age)
            .await
            .ok();
    }
    Ok(tab)
}

/// A refusal the user can act on (bad input, a conflict, not theirs to
/// do) shows the tab again with the reason beside the form and what was
/// typed; anything else is the error page.
async fn refused(
    state: &AppState,
    me: &CurrentUser,
    m: &Member,
    ctx: PageCtx,
    e: AppError,
    form: Refused,
) -> AppResult<Response> {
    let status = match &e {
        AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
        _ => return Err(e),
    };
    let mut tab = build(state, me, m, ctx).await?;
    tab.refused = Some(Refused {
        why: e.to_string(),
        ..form
    });
    Ok((status, tab).into_response())
}

#[derive(Deserialize)]
pub(super) struct RequestForm {
    /// Space-separated versions (one hidden field per pending list).
    versions: String,
}

/// Operator: ask for the pending migrations shown to be applied.
pub(super) async fn request(
    State(state): State<AppState>,
    Operator(me): Operator,
    session: HttpSession,
    Db(m): Db,
    ctx: PageCtx,
    Form(form): Form<RequestForm>,
) -> AppResult<Response> {
    let name = &m.entry.name;
    let versions: Vec<String> = form.versions.split_whitespace().map(str::to_string).collect();
    let id = match requests::request(&state.store, &m, &me.actor(), &versions).await {
        Ok(id) => id,
        Err(e) => {
            let form = Refused {
                form: "request",
                ..Refused::default()
            };
            return refused(&state, &me, &m, ctx, e, form).await;
        }
    };
    flash(
        &session,
        "ok",
        format!("Request {id} made: an approver must approve it before it can be applied."),
    )
    .await?;
    Ok(Redirect::to(&format!("/databases/{name}/migrations#request-{id}")).into_response())
}

#[derive(Deserialize)]
pub(super) struct DecisionForm {
    #[serde(default)]
    comment: String,
    /// "approve" or "reject".
    decision: String,
}

/// Approver: approve or reject a request, with a comment.
pub(super) async fn decide(
    State(state): State<AppState>,
    Viewer(me): Viewer,
    session: HttpSession,
    Db(m): Db,
    ctx: PageCtx,
    id: RequestId,
    Form(form): Form<DecisionForm>,
) -> AppResult<Response> {
    let name = &m.entry.name;
    let id = requests::of_database(&state.store, name.as_str(), id.get())
        .await?
        .id;
    let approve = match form.decision.as_str() {
        "approve" => Ok(true),
        "reject" => Ok(false),
        _ => Err(AppError::invalid("choose approve or reject")),
    };
    let decided = match approve {
        Ok(approve) => requests::decide(
            &state.store,
            &state.fleet,
            &me.actor(),
            id,
            approve,
            &form.comment,
        )
        .await
        .map(|()| approve),
        Err(e) => Err(e),
    };
    let approve = match decided {
        Ok(approve) => approve,
        Err(e) => {
            let form = Refused {
                form: "decide",
                request: id,
                comment: form.comment.chars().take(2000).collect(),
                ..Refused::default()
            };
            return refused(&state, &me, &m, ctx, e, form).await;
        }
    };
    let verb = if approve { "approved" } else { "rejected" };
    flash(&session, "ok", format!("Request {id} {verb}.")).await?;
    Ok(Redirect::to(&format!("/databases/{name}/migrations#request-{id}")).into_response())
}

/// Operator: apply an approved request as a job.
#[derive(Default, Deserialize)]
pub(super) struct ApplyForm {
    /// Apply although the live gate says blocked, for this reason.
    #[serde(default)]
    override_reason: String,
}

pub(super) async fn apply(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
    ctx: PageCtx,
    id: RequestId,
    Form(form): Form<ApplyForm>,
) -> AppResult<Response> {
    let id = requests::of_database(&state.store, m.entry.name.as_str(), id.get())
        .await?
        .id;
    let check = requests::GateCheck {
        max_xact_age: state.config.gate_max_xact_age,
        lock_retries: state.config.lock_retries,
        override_reason: Some(form.override_reason).filter(|r| !r.trim().is_empty()),
    };
    match requests::apply(&state.jobs, &state.store, &m, &me.actor(), id, &check).await {
        Ok(job) => Ok(Redirect::to(&format!("/jobs/{job}")).into_response()),
        Err(e) => {
            let form = Refused {
                form: "apply",
                request: id,
                ..Refused::default()
            };
            refused(&state, &me, &m, ctx, e, form).await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct RollbackForm {
    version: String,
    #[serde(default)]
    confirm: String,
}

/// Operator: ask for the newest applied version to be rolled back (typed
/// confirmation); it then needs approval like any request.
pub(super) async fn rollback(
    State(state): State<AppState>,
    Operator(me): Operator,
    session: HttpSession,
    Db(m): Db,
    ctx: PageCtx,
    Form(form): Form<RollbackForm>,
) -> AppResult<Response> {
    let name = &m.entry.name;
    let id =
        match requests::request_rollback(&state.store, &m, &me.actor(), &form.version, &form.confirm).await {
            Ok(id) => id,
            Err(e) => {
                let typed = Refused {
                    form: "rollback",
                    version: form.version.chars().take(100).collect(),
                    confirm: form.confirm.chars().take(100).collect(),
                    ..Refused::default()
                };
                return refused(&state, &me, &m, ctx, e, typed).await;
            }
        };
    flash(
        &session,
        "ok",
        format!("Rollback request {id} made: it needs approval like any other."),
    )
    .await?;
    Ok(Redirect::to(&format!("/databases/{name}/migrations#request-{id}")).into_response())
}

#[derive(Deserialize)]
pub(super) struct SettingsForm {
    approvals_required: String,
    lock_timeout_ms: String,
    statement_timeout_ms: String,
}

/// Admin: approvals needed and timeouts for this database's migrations.
pub(super) async fn settings(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: HttpSession,
    Db(m): Db,
    Form(form): Form<SettingsForm>,
) -> AppResult<Redirect> {
    let name = &m.entry.name;
    let number = |field: &str, raw: &str| -> AppResult<i64> {
        raw.trim()
            .parse()
            .map_err(|_| AppError::invalid(format!("{field} must be a whole number")))
    };
    let new = requests::Settings {
        approvals_required: number("approvals", &form.approvals_required)?,
        lock_timeout_ms: number("the lock timeout", &form.lock_timeout_ms)?,
        statement_timeout_ms: number("the statement timeout", &form.statement_timeout_ms)?,
    };
    requests::set_settings(&state.store, &me.actor(), m.entry.name.as_str(), new).await?;
    flash(&session, "ok", "Migration settings saved.").await?;
    Ok(Redirect::to(&format!("/databases/{name}/migrations")))
}
