//! The overview (`/`): the fleet, problems first; and `/healthz`.

use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use crate::config::StoreKind;
use crate::error::AppResult;
use crate::service::users;
use crate::web::AppState;
use crate::web::auth::Viewer;
use crate::web::databases::{DbView, fleet_views};
use crate::web::page::PageCtx;

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(overview))
}

/// Liveness and store reachability, for load balancers. No sign-in needed.
pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    if state.store.ping().await {
        (StatusCode::OK, Json(json!({ "status": "ok" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "error", "error": "the panel's store is not answering" })),
        )
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "overview/index.html")]
struct OverviewPage {
    ctx: PageCtx,
    dbs: Vec<DbView>,
    store_kind: &'static str,
    user_count: i64,
}

async fn overview(State(state): State<AppState>, Viewer(_): Viewer, ctx: PageCtx) -> AppResult<OverviewPage> {
    Ok(OverviewPage {
        ctx,
        dbs: fleet_views(&state),
        store_kind: match state.store.kind() {
            StoreKind::Sqlite => "SQLite",
            StoreKind::Postgres => "PostgreSQL",
        },
        user_count: users::count(&state.store).await?,
    })
}
