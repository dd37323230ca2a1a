//! A database's backups tab: RPO/RTO status with reasons, point-in-time
//! readiness, the catalog, and (operator) back up now / verify, (admin)
//! restore.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::State;
use axum::response::Redirect;
use serde::Deserialize;

use super::DbView;
use crate::clock::now;
use crate::domain::BackupId;
use crate::error::{AppError, AppResult};
use crate::format::{fmt_age, fmt_bytes, fmt_time};
use crate::service::backup::RestoreInto;
use crate::service::backup::status::{self, BackupHealth};
use crate::store::backups::BackupRow;
use crate::web::AppState;
use crate::web::auth::{Admin, Operator, Viewer};
use crate::web::page::PageCtx;
use crate::web::path::Db;

/// One backup as the table shows it.
pub struct BackupView {
    pub id: i64,
    pub state: crate::domain::BackupState,
    pub started: String,
    pub age: String,
    pub size: String,
    pub took: String,
    pub throughput: String,
    pub sha: String,
    pub verified: String,
    /// "ok", "failed" or "": a CSS class.
    pub verify_class: &'static str,
    pub restore: String,
    pub error: String,
    pub tables: usize,
    pub job_id: Option<i64>,
    /// Where the file is, as a URL (file:///…).
    pub url: String,
}

impl BackupView {
    fn of(b: &BackupRow, backups: &crate::service::backup::Backups) -> Self {
        let secs = b.duration_ms.unwrap_or(0) as f64 / 1000.0;
        BackupView {
            id: b.id,
            state: b.state,
            started: fmt_time(b.started_at),
            age: fmt_age(now() - b.finished_at.unwrap_or(b.started_at)),
            size: b.bytes.map(fmt_bytes).unwrap_or_default(),
            took: b.duration_ms.map(|_| format!("{secs:.1}s")).unwrap_or_default(),
            throughput: match (b.bytes, secs > 0.0) {
                (Some(bytes), true) => format!("{}/s", fmt_bytes((bytes as f64 / secs) as i64)),
                _ => String::new(),
            },
            sha: b
                .sha256
                .as_deref()
                .map(|s| s[..12.min(s.len())].to_string())
                .unwrap_or_default(),
            verified: match (b.verified_at, b.verify_ok) {
                (Some(at), Some(true)) => format!("restored {} ago", fmt_age(now() - at)),
                (Some(_), Some(false)) => format!("FAILED: {}", b.verify_error.clone().unwrap_or_default()),
                _ => String::new(),
            },
            verify_class: match b.verify_ok {
                Some(true) => "ok",
                Some(false) => "failed",
                None => "",
            },
            restore: match (b.restore_ms, b.verify_ms.filter(|_| b.verify_ok == Some(true))) {
                (Some(r), Some(v)) => format!(
                    "{} (the test took {})",
                    crate::format::fmt_elapsed(r),
                    crate::format::fmt_elapsed(v)
                ),
                (Some(r), None) => crate::format::fmt_elapsed(r),
                _ => String::new(),
            },
            error: b.error.clone().unwrap_or_default(),
            tables: serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&b.table_counts)
                .map(|m| m.len())
                .unwrap_or(0),
            job_id: b.job_id,
            url: backups.url_of(&b.location),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/backups.html")]
pub(super) struct BackupsTab {
    ctx: PageCtx,
    db: DbView,
    health: BackupHealth,
    backups: Vec<BackupView>,
    pitr: Vec<(String, String, bool)>,
    pitr_error: Option<String>,
    location: String,
    schedule: String,
    verify_schedule: String,
    retention: String,
    recovery: Option<super::recovery::PitrView>,
}

pub(super) async fn page(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    Db(m): Db,
    ctx: PageCtx,
) -> AppResult<BackupsTab> {
    let name = &m.entry.name;
    let rows = state.backups.list(name.as_str(), 100).await?;
    let recovery = match m.entry.pitr.stanza {
        Some(_) => Some(state.recovery.status(&m).await?),
        None => None,
    };
    let facts = state.recovery.pitr_facts(&m.entry);
    let health = status::judge_with(
        m.entry.targets(),
        &rows,
        now(),
        state.config.verify_window,
        facts.as_ref(),
    );
    let (pitr, pitr_error) = match crate::service::backup::pitr_readiness(&m).await {
        Ok(lines) => (lines, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let schedules = m.entry.schedules.clone();
    Ok(BackupsTab {
        ctx,
        db: DbView::of(&m),
        health,
        backups: rows.iter().map(|b| BackupView::of(b, &state.backups)).collect(),
        pitr,
        pitr_error,
        location: state.backups.location(),
        schedule: schedules.backup.unwrap_or_default(),
        verify_schedule: schedules.verify.unwrap_or_default(),
        retention: schedules.retention.unwrap_or_default(),
        recovery: recovery.as_ref().map(super::recovery::PitrView::of),
    })
}

pub(super) async fn start(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
) -> AppResult<Redirect> {
    let (job, _) = state.backups.start(&m, &me.actor()).await?;
    Ok(Redirect::to(&format!("/jobs/{job}")))
}

pub(super) async fn verify(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
    id: BackupId,
) -> AppResult<Redirect> {
    let job = state.backups.verify(&m, &me.actor(), id.get()).await?;
    Ok(Redirect::to(&format!("/jobs/{job}")))
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/restore.html")]
pub(super) struct RestorePage {
    ctx: PageCtx,
    db: DbView,
    backup: BackupView,
    /// A file database restores into a new file only.
    file: bool,
    /// The form as sent, when it was refused: why, and what was chosen
    /// and typed.
    error: Option<String>,
    sent: RestoreForm,
}

pub(super) async fn restore_page(
    State(state): State<AppState>,
    Admin(_): Admin,
    Db(m): Db,
    id: BackupId,
    ctx: PageCtx,
) -> AppResult<RestorePage> {
    let name = &m.entry.name;
    let backup = state.backups.get(id.get()).await?;
    if backup.database_name != name.as_str() {
        return Err(AppError::not_found(format!("There is no backup {id} of {name}.")));
    }
    Ok(RestorePage {
        ctx,
        file: m.capabilities().file,
        db: DbView::of(&m),
        backup: BackupView::of(&backup, &state.backups),
        error: None,
        sent: RestoreForm::default(),
    })
}

#[derive(Default, Deserialize)]
pub(super) struct RestoreForm {
    /// "new" or "original".
    #[serde(default)]
    into: String,
    #[serde(default)]
    new_name: String,
    #[serde(default)]
    confirm: String,
}

pub(super) async fn restore(
    State(state): State<AppState>,
    Admin(me): Admin,
    Db(m): Db,
    id: BackupId,
    ctx: PageCtx,
    Form(form): Form<RestoreForm>,
) -> AppResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let into = match form.into.as_str() {
        "original" => RestoreInto::Original {
            confirm: form.confirm.clone(),
        },
        _ => RestoreInto::New(form.new_name.clone()),
    };
    match state.backups.restore(&m, &me.actor(), id.get(), into).await {
        Ok(job) => Ok(Redirect::to(&format!("/jobs/{job}")).into_response()),
        // Refused: the form again, the reason beside it, what was chosen
        // and typed still there.
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_))) => {
            let status = match e {
                AppError::Conflict(_) => axum::http::StatusCode::CONFLICT,
                _ => axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            };
            let backup = state.backups.get(id.get()).await?;
            let page = RestorePage {
                ctx,
                file: m.capabilities().file,
                db: DbView::of(&m),
                backup: BackupView::of(&backup, &state.backups),
                error: Some(e.to_string()),
                sent: RestoreForm {
                    into: form.into.chars().take(20).collect(),
                    new_name: form.new_name.chars().take(100).collect(),
                    confirm: form.confirm.chars().take(100).collect(),
                },
            };
            Ok((status, page).into_response())
        }
        Err(e) => Err(e),
    }
}
