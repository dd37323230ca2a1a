//! The JSON API under `/api/v1`, authenticated with `Authorization: Bearer`
//! tokens, with the same role checks and audit as the pages. Errors are
//! `{"error": "..."}` (rendered by `web::errors`). One module per area.

mod activity;
mod alerts;
mod backups;
mod databases;
mod jobs;
mod migrations;
mod users;

use axum::Router;

use crate::domain::DatabaseName;
use crate::error::{AppError, AppResult};
use crate::service::fleet::Member;
use crate::web::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(users::router())
        .merge(databases::router())
        .merge(activity::router())
        .merge(jobs::router())
        .merge(backups::router())
        .merge(migrations::router())
        .merge(alerts::router())
}

/// The registered database named in a path, or 404: what `alerts` uses
/// until it moves to `web::path::Db` with the alerts work (the other
/// areas resolve `{name}` with that extractor).
fn member(state: &AppState, raw: &str) -> AppResult<std::sync::Arc<Member>> {
    let name = DatabaseName::from_path(raw)?;
    state
        .fleet
        .get(&name)
        .ok_or_else(|| AppError::not_found(format!("no database named {name}")))
}
