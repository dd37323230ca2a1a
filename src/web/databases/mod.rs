//! The registry pages: the list of managed databases and one database's
//! page (status from the fleet's last check: no page waits on a database),
//! and in `form` the admin's add/edit/remove forms with "Test connection".

mod activity;
mod backups;
mod form;
mod maintenance;
mod migrations;
mod monitoring;
mod recovery;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::response::Redirect;
use axum::routing::{get, post};
use tower_sessions::Session;

use crate::clock::now;
use crate::engine::{Capabilities, DatabaseEntry, SchemaEntry};
use crate::error::AppResult;
use crate::service::fleet::{Health, Member, ServerView};
use crate::service::registry::Source;
use crate::web::AppState;
use crate::web::auth::{Operator, Viewer};
use crate::web::page::{PageCtx, flash, fmt_age, fmt_bytes, fmt_duration};
use crate::web::path::Db;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/databases", get(list).post(form::create))
        .route("/servers", get(servers))
        .route("/databases/new", get(form::new_form))
        .route("/databases/test-connection", post(form::test_connection))
        .route("/databases/{name}", get(show).post(form::update))
        .route("/databases/{name}/edit", get(form::edit_form))
        .route("/databases/{name}/delete", post(form::remove))
        .route("/databases/{name}/check", post(check_now))
        .route("/databases/{name}/activity", get(activity::page))
        .route("/databases/{name}/activity/{pid}/cancel", post(activity::cancel))
        .route(
            "/databases/{name}/activity/{pid}/terminate",
            get(activity::terminate_page).post(activity::terminate),
        )
        .route("/databases/{name}/activity/top", get(activity::top))
        .route(
            "/databases/{name}/backups",
            get(backups::page).post(backups::start),
        )
        .route("/databases/{name}/backups/{id}/verify", post(backups::verify))
        .route("/databases/{name}/recovery/backups", post(recovery::backup))
        .route(
            "/databases/{name}/recovery/stanza-create",
            post(recovery::stanza_create),
        )
        .route("/databases/{name}/recovery/check", post(recovery::check))
        .route("/databases/{name}/recovery/verify", post(recovery::verify))
        .route("/databases/{name}/recovery/drills", post(recovery::drill))
        .route("/databases/{name}/recovery/timeline", get(recovery::timeline))
        .route("/databases/{name}/recovery/restore", get(recovery::restore_page))
        .route("/databases/{name}/recovery/restores", post(recovery::restore))
        .route("/recovery-restores/{id}/discard", post(recovery::discard))
        .route(
            "/databases/{name}/backups/{id}/restore",
            get(backups::restore_page).post(backups::restore),
        )
        .route(
            "/databases/{name}/maintenance",
            get(maintenance::page).post(maintenance::run),
        )
        .route("/databases/{name}/activity/top/reset", post(activity::reset_top))
        .route("/databases/{name}/monitoring", get(monitoring::page))
        .route("/databases/{name}/monitoring/rules", post(monitoring::set_rule))
        .route("/databases/{name}/migrations", get(migrations::page))
        .route("/databases/{name}/migrations/requests", post(migrations::request))
        .route(
            "/databases/{name}/migrations/settings",
            post(migrations::settings),
        )
        .route(
            "/databases/{name}/migrations/rollback",
            post(migrations::rollback),
        )
        .route(
            "/databases/{name}/migrations/requests/{id}/decide",
            post(migrations::decide),
        )
        .route(
            "/databases/{name}/migrations/requests/{id}/apply",
            post(migrations::apply),
        )
}

/// One database as the tables and cards show it.
pub struct DbView {
    pub name: String,
    pub engine: &'static str,
    pub from_config: bool,
    pub url: String,
    /// "up", "down" or "unknown": a CSS class.
    pub health: &'static str,
    pub health_label: &'static str,
    pub error: Option<String>,
    pub version: String,
    pub size: String,
    pub connections: String,
    /// Share of max_connections in use, 0–100, when known.
    pub connections_pct: Option<i64>,
    pub uptime: String,
    pub checked: String,
    pub rpo: String,
    pub rto: String,
    pub migrations_dir: String,
    pub caps: Capabilities,
    pub databases: Vec<DatabaseEntry>,
    pub schemas: Vec<SchemaEntry>,
    /// host:port (empty for a file) and the panel's connections there,
    /// e.g. "2 of 4".
    pub server: String,
    pub panel_connections: String,
    /// Filled by pages that show backup status: level and last good age.
    pub backup_level: String,
    pub backup_age: String,
    /// Measured: what would be lost now, and how long a restore takes.
    pub rpo_now: String,
    pub rto_now: String,
    /// Filled by the overview: firing alerts, and sparkline points of
    /// connections and transactions per second over the last day.
    pub firing: usize,
    pub spark_connections: String,
    pub spark_tps: String,
}

const NONE: &str = "—";

impl DbView {
    pub fn of(member: &Member) -> DbView {
        let entry = &member.entry;
        let status = member.status();
        let server = status.server.clone().unwrap_or_default();
        let (health, health_label) = match status.health {
            Health::Up => ("up", "reachable"),
            Health::Down => ("down", "unreachable"),
            Health::Unknown => ("unknown", "checking…"),
        };
        let known = status.server.is_some();
        DbView {
            name: entry.name.to_string(),
            engine: entry.engine.label(),
            from_config: entry.source == Source::Config,
            url: entry.url_redacted.clone(),
            health,
            health_label,
            error: status.error.clone(),
            version: if known {
                server.version.clone()
            } else {
                NONE.into()
            },
            size: server.size_bytes.map(fmt_bytes).unwrap_or_else(|| NONE.into()),
            connections: match (server.connections, server.max_connections) {
                (Some(used), Some(max)) => format!("{used} / {max}"),
                (Some(used), None) => used.to_string(),
                _ => NONE.into(),
            },
            connections_pct: match (server.connections, server.max_connections) {
                (Some(used), Some(max)) if max > 0 => Some((used * 100 / max).clamp(0, 100)),
                _ => None,
            },
            uptime: server.uptime_s.map(fmt_age).unwrap_or_else(|| NONE.into()),
            checked: status
                .checked_at
                .map(|t| format!("{} ago", fmt_age(now() - t)))
                .unwrap_or_else(|| "not yet".into()),
            rpo: entry.rpo.map(fmt_duration).unwrap_or_else(|| NONE.into()),
            rto: entry.rto.map(fmt_duration).unwrap_or_else(|| NONE.into()),
            migrations_dir: entry.migrations_dir.clone().unwrap_or_default(),
            caps: member.capabilities(),
            databases: status.databases.clone(),
            schemas: status.schemas.clone(),
            server: member.server_label().unwrap_or_default(),
            panel_connections: member
                .server()
                .map(|c| format!("{} of {}", c.panel_connections, c.limit))
                .unwrap_or_default(),
            backup_level: String::new(),
            backup_age: String::new(),
            rpo_now: String::new(),
            rto_now: String::new(),
            firing: 0,
            spark_connections: String::new(),
            spark_tps: String::new(),
        }
    }

    /// Problems first (unreachable, then not yet checked), then by name.
    pub fn sort(views: &mut [DbView]) {
        let rank = |h: &str| match h {
            "down" => 0,
            "unknown" => 1,
            _ => 2,
        };
        views.sort_by(|a, b| {
            rank(a.health)
                .cmp(&rank(b.health))
                .then_with(|| a.name.cmp(&b.name))
        });
    }

    pub fn size_of(entry: &DatabaseEntry) -> String {
        entry.size_bytes.map(fmt_bytes).unwrap_or_else(|| NONE.into())
    }
}

/// Every database's view, problems first.
pub fn fleet_views(state: &AppState) -> Vec<DbView> {
    let mut views: Vec<DbView> = state.fleet.members().iter().map(|m| DbView::of(m)).collect();
    DbView::sort(&mut views);
    views
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/list.html")]
struct ListPage {
    ctx: PageCtx,
    dbs: Vec<DbView>,
}

async fn list(State(state): State<AppState>, Viewer(_): Viewer, ctx: PageCtx) -> ListPage {
    ListPage {
        ctx,
        dbs: fleet_views(&state),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/servers.html")]
struct ServersPage {
    ctx: PageCtx,
    servers: Vec<ServerView>,
}

/// The servers behind the registered databases and the panel's own
/// connections to each, against `max_connections_per_server`.
async fn servers(State(state): State<AppState>, Viewer(_): Viewer, ctx: PageCtx) -> ServersPage {
    ServersPage {
        ctx,
        servers: state.fleet.server_views(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/show.html")]
struct ShowPage {
    ctx: PageCtx,
    db: DbView,
}

async fn show(Viewer(_): Viewer, ctx: PageCtx, Db(m): Db) -> ShowPage {
    ShowPage {
        ctx,
        db: DbView::of(&m),
    }
}

/// Check a registered database now and report, for "Check now".
async fn check_now(Operator(_): Operator, session: Session, Db(m): Db) -> AppResult<Redirect> {
    let name = &m.entry.name;
    let status = m.check().await;
    match status.error {
        None => flash(&session, "ok", format!("{name} answered.")).await?,
        Some(e) => flash(&session, "error", format!("{name} is unreachable: {e}")).await?,
    }
    Ok(Redirect::to(&format!("/databases/{name}")))
}
