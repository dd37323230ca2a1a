//! Migrations over the API: status (applied, pending with lint, drift).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

use super::member;
use crate::error::AppResult;
use crate::service::migrations::{self, Status};
use crate::web::AppState;
use crate::web::auth::Viewer;

pub fn router() -> Router<AppState> {
    Router::new().route("/databases/{name}/migrations", get(status))
}

async fn status(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    Path(name): Path<String>,
) -> AppResult<Json<Status>> {
    let m = member(&state, &name)?;
    Ok(Json(migrations::status(&m).await?))
}
