//! A database's migrations tab: drift first and loud, then pending
//! migrations with their SQL (lines with findings marked) and lint
//! findings, then every history found.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};

use super::{DbView, member, path_name};
use crate::engine::history::Applied;
use crate::error::AppResult;
use crate::lint::Finding;
use crate::service::migrations::{self, DriftView};
use crate::web::AppState;
use crate::web::auth::Viewer;
use crate::web::page::PageCtx;

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
        warnings: p.findings.len() - errors,
        errors,
        lines,
        findings: p.findings,
    }
}

pub(super) async fn page(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    Path(name): Path<String>,
    ctx: PageCtx,
) -> AppResult<MigrationsTab> {
    let name = path_name(&name)?;
    let m = member(&state, &name)?;
    let mut tab = MigrationsTab {
        ctx,
        db: DbView::of(&m),
        dir: m.entry.migrations_dir.clone().unwrap_or_default(),
        error: None,
        applied: vec![],
        pending: vec![],
        drift: vec![],
        problems: vec![],
    };
    match migrations::status(&m).await {
        Ok(s) => {
            tab.applied = s.applied;
            tab.pending = s.pending.into_iter().map(pending_view).collect();
            tab.drift = s.drift;
            tab.problems = s.problems;
        }
        Err(e) => tab.error = Some(e.to_string()),
    }
    Ok(tab)
}
