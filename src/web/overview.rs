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
use crate::service::monitoring::charts;
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
    let mut dbs = fleet_views(&state);
    let firing = crate::service::monitoring::alerts::firing_counts(&state.store).await?;
    for db in &mut dbs {
        db.firing = firing.get(&db.name).copied().unwrap_or(0);
        let (connections, tps) = charts::sparks(&state.store, &db.name, crate::clock::now()).await?;
        db.spark_connections = connections;
        db.spark_tps = tps;
        let Ok(name) = crate::domain::DatabaseName::parse(&db.name) else {
            continue;
        };
        if let Some(m) = state.fleet.get(&name) {
            let rows = state.backups.list(&db.name, 60).await?;
            let risk = crate::web::backups::risk_row(&state, &m.entry, &rows);
            db.backup_level = risk.level.as_str().to_string();
            db.backup_age = risk.last_good;
            db.rpo_now = risk.rpo_measured;
            db.rto_now = risk.rto_measured;
        }
    }
    Ok(OverviewPage {
        ctx,
        dbs,
        store_kind: match state.store.kind() {
            StoreKind::Sqlite => "SQLite",
            StoreKind::Postgres => "PostgreSQL",
        },
        user_count: users::count(&state.store).await?,
    })
}
