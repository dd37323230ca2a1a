//! The registry pages: the list of managed databases, one database's page,
//! and (admin) the add/edit/remove forms with "Test connection". Status
//! comes from the fleet's last check: no page waits on a database.

use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tower_sessions::Session;

use crate::config::SecretUrl;
use crate::domain::DatabaseName;
use crate::engine::{Capabilities, DatabaseEntry, SchemaEntry};
use crate::error::{AppError, AppResult};
use crate::service::fleet::{Health, Member};
use crate::service::registry::{self, Changes, NewDatabase, Source};
use crate::store::now;
use crate::web::AppState;
use crate::web::auth::{Admin, Operator, Viewer};
use crate::web::page::{PageCtx, flash, fmt_age, fmt_bytes, fmt_duration};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/databases", get(list).post(create))
        .route("/databases/new", get(new_form))
        .route("/databases/test-connection", post(test_connection))
        .route("/databases/{name}", get(show).post(update))
        .route("/databases/{name}/edit", get(edit_form))
        .route("/databases/{name}/delete", post(remove))
        .route("/databases/{name}/check", post(check_now))
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

/// A database named in the path: an impossible name is simply not found.
fn path_name(raw: &str) -> AppResult<DatabaseName> {
    DatabaseName::parse(raw).map_err(|_| AppError::not_found(format!("no database named {raw:?}")))
}

fn member(state: &AppState, name: &DatabaseName) -> AppResult<std::sync::Arc<Member>> {
    state
        .fleet
        .get(name)
        .ok_or_else(|| AppError::not_found(format!("no database named {name}")))
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
#[template(path = "databases/show.html")]
struct ShowPage {
    ctx: PageCtx,
    db: DbView,
}

async fn show(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    ctx: PageCtx,
    Path(name): Path<String>,
) -> AppResult<ShowPage> {
    let name = path_name(&name)?;
    Ok(ShowPage {
        ctx,
        db: DbView::of(&*member(&state, &name)?),
    })
}

/// The add/edit form's fields as typed, to show them again with an error.
#[derive(Default)]
struct FormValues {
    name: String,
    /// Shown again only when it holds no password.
    url: String,
    migrations_dir: String,
    rpo: String,
    rto: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/form.html")]
struct FormPage {
    ctx: PageCtx,
    /// `Some(name)` when editing.
    editing: Option<String>,
    current_url: String,
    values: FormValues,
    error: Option<String>,
}

async fn new_form(Admin(_): Admin, ctx: PageCtx) -> FormPage {
    FormPage {
        ctx,
        editing: None,
        current_url: String::new(),
        values: FormValues::default(),
        error: None,
    }
}

async fn edit_form(
    State(state): State<AppState>,
    Admin(_): Admin,
    ctx: PageCtx,
    Path(name): Path<String>,
) -> AppResult<FormPage> {
    let entry = state.registry.get(&path_name(&name)?).await?;
    if entry.source == Source::Config {
        return Err(AppError::conflict(format!(
            "{} is declared in the configuration file: change it there",
            entry.name
        )));
    }
    Ok(FormPage {
        ctx,
        editing: Some(entry.name.to_string()),
        current_url: entry.url_redacted.clone(),
        values: FormValues {
            name: entry.name.to_string(),
            url: String::new(),
            migrations_dir: entry.migrations_dir.clone().unwrap_or_default(),
            rpo: entry.rpo.map(fmt_duration).unwrap_or_default(),
            rto: entry.rto.map(fmt_duration).unwrap_or_default(),
        },
        error: None,
    })
}

#[derive(Deserialize)]
struct DbForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    migrations_dir: String,
    #[serde(default)]
    rpo: String,
    #[serde(default)]
    rto: String,
}

impl DbForm {
    fn values(&self) -> FormValues {
        let url = SecretUrl::new(self.url.trim());
        FormValues {
            name: self.name.chars().take(DatabaseName::MAX_LEN).collect(),
            url: if url.redacted() == url.expose() {
                self.url.trim().chars().take(2000).collect()
            } else {
                String::new()
            },
            migrations_dir: self.migrations_dir.clone(),
            rpo: self.rpo.clone(),
            rto: self.rto.clone(),
        }
    }
}

/// A target like `24h`, `30m` or `7d`; empty means none.
pub fn parse_target(raw: &str, what: &str) -> AppResult<Option<Duration>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    humantime::parse_duration(raw)
        .map(Some)
        .map_err(|_| AppError::invalid(format!("{what} must be a duration like 24h, 30m or 7d")))
}

fn optional(raw: &str) -> Option<String> {
    let raw = raw.trim();
    (!raw.is_empty()).then(|| raw.to_string())
}

fn url_field(raw: &str) -> AppResult<SecretUrl> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(AppError::invalid("the connection URL is required"));
    }
    if raw.len() > 2000 {
        return Err(AppError::invalid(
            "the connection URL is longer than 2000 characters",
        ));
    }
    Ok(SecretUrl::new(raw))
}

/// Show the form again with the error: invalid input and conflicts are the
/// user's to fix; anything else is an error page.
fn form_error(
    ctx: PageCtx,
    editing: Option<String>,
    current_url: String,
    form: &DbForm,
    e: AppError,
) -> AppResult<Response> {
    match e {
        AppError::Invalid(_) | AppError::Conflict(_) => {
            let status = e.status();
            let page = FormPage {
                ctx,
                editing,
                current_url,
                values: form.values(),
                error: Some(e.to_string()),
            };
            Ok((status, page).into_response())
        }
        other => Err(other),
    }
}

async fn create(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    ctx: PageCtx,
    Form(form): Form<DbForm>,
) -> AppResult<Response> {
    let parsed = (|| {
        Ok::<_, AppError>(NewDatabase {
            name: DatabaseName::parse(&form.name)?,
            url: url_field(&form.url)?,
            migrations_dir: optional(&form.migrations_dir),
            rpo: parse_target(&form.rpo, "RPO")?,
            rto: parse_target(&form.rto, "RTO")?,
        })
    })();
    let result = match parsed {
        Ok(new) => state.registry.add(&me.actor(), new).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(entry) => {
            state.fleet.refresh(&state.registry).await;
            flash(&session, "ok", format!("Added {}. Checking it now.", entry.name)).await?;
            Ok(Redirect::to(&format!("/databases/{}", entry.name)).into_response())
        }
        Err(e) => form_error(ctx, None, String::new(), &form, e),
    }
}

async fn update(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    ctx: PageCtx,
    Path(name): Path<String>,
    Form(form): Form<DbForm>,
) -> AppResult<Response> {
    let name = path_name(&name)?;
    let current = state.registry.get(&name).await?;
    let parsed = (|| {
        Ok::<_, AppError>(Changes {
            url: optional(&form.url).map(|u| url_field(&u)).transpose()?,
            migrations_dir: optional(&form.migrations_dir),
            rpo: parse_target(&form.rpo, "RPO")?,
            rto: parse_target(&form.rto, "RTO")?,
        })
    })();
    let result = match parsed {
        Ok(changes) => state.registry.update(&me.actor(), &name, changes).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(entry) => {
            state.fleet.refresh(&state.registry).await;
            flash(&session, "ok", format!("Saved {}.", entry.name)).await?;
            Ok(Redirect::to(&format!("/databases/{}", entry.name)).into_response())
        }
        Err(e) => form_error(ctx, Some(name.to_string()), current.url_redacted, &form, e),
    }
}

async fn remove(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Path(name): Path<String>,
) -> AppResult<Redirect> {
    let name = path_name(&name)?;
    state.registry.remove(&me.actor(), &name).await?;
    state.fleet.refresh(&state.registry).await;
    flash(
        &session,
        "ok",
        format!("Removed {name} from the registry. The database itself is untouched."),
    )
    .await?;
    Ok(Redirect::to("/databases"))
}

/// Check a registered database now and report, for "Check now".
async fn check_now(
    State(state): State<AppState>,
    Operator(_): Operator,
    session: Session,
    Path(name): Path<String>,
) -> AppResult<Redirect> {
    let name = path_name(&name)?;
    let status = member(&state, &name)?.check().await;
    match status.error {
        None => flash(&session, "ok", format!("{name} answered.")).await?,
        Some(e) => flash(&session, "error", format!("{name} is unreachable: {e}")).await?,
    }
    Ok(Redirect::to(&format!("/databases/{name}")))
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/_test_result.html")]
struct TestResult {
    ok: bool,
    message: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/test_page.html")]
struct TestPage {
    ctx: PageCtx,
    ok: bool,
    message: String,
}

/// "Test connection": connect once with the URL in the form (or, when
/// editing with the URL left blank, the stored one) and report.
async fn test_connection(
    State(state): State<AppState>,
    Admin(_): Admin,
    ctx: PageCtx,
    headers: HeaderMap,
    Form(form): Form<DbForm>,
) -> AppResult<Response> {
    let url = match optional(&form.url) {
        Some(raw) => url_field(&raw)?,
        None => {
            let name = DatabaseName::parse(&form.name)
                .map_err(|_| AppError::invalid("enter a connection URL to test"))?;
            let conns = state.registry.connections().await?;
            let conn = conns
                .into_iter()
                .find(|c| c.entry.name == name)
                .ok_or_else(|| AppError::invalid("enter a connection URL to test"))?;
            conn.url.map_err(AppError::invalid)?
        }
    };
    let result = match registry::test_connection(&url).await? {
        Ok(server) => TestResult {
            ok: true,
            message: format!(
                "Connected: {} {}{}",
                crate::engine::EngineKind::of_url(url.expose())?.label(),
                server.version,
                server
                    .size_bytes
                    .map(|b| format!(", {}", fmt_bytes(b)))
                    .unwrap_or_default()
            ),
        },
        Err(e) => TestResult {
            ok: false,
            message: format!("Could not connect: {e}"),
        },
    };
    if headers.contains_key("hx-request") {
        return Ok(result.into_response());
    }
    let status = if result.ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = TestPage {
        ctx,
        ok: result.ok,
        message: result.message,
    };
    Ok((status, page).into_response())
}
