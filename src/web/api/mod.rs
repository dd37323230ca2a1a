//! The JSON API under `/api/v1`, authenticated with `Authorization: Bearer`
//! tokens, with the same role checks and audit as the pages. Errors are
//! `{"error": "..."}` (rendered by `web::errors`). One module per area.

mod activity;
mod alerts;
mod backups;
mod databases;
mod jobs;
mod migrations;
pub mod recovery;
mod users;

use axum::Router;

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
        .merge(recovery::router())
}
