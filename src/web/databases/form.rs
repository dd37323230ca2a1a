//! The admin's registry forms: add, edit, remove, and "Test connection".
//! A URL typed into a form is shown again only if it holds no password.

use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::config::SecretUrl;
use crate::domain::{DatabaseName, RecoveryTarget};
use crate::error::{AppError, AppResult};
use crate::service::registry::{self, Changes, NewDatabase, PitrSettings, Schedules, Source, Tested};
use crate::web::AppState;
use crate::web::auth::Admin;
use crate::web::page::{PageCtx, flash, fmt_bytes, fmt_duration};
use crate::web::path::DbName;

/// The add/edit form's fields as typed, to show them again with an error.
#[derive(Default)]
struct FormValues {
    name: String,
    /// Shown again only when it holds no password.
    url: String,
    migrations_dir: String,
    rpo: String,
    rto: String,
    backup_schedule: String,
    verify_schedule: String,
    retention: String,
    pgbackrest_stanza: String,
    pgbackrest_config: String,
    pgbackrest_schedule: String,
    recovery_drill_schedule: String,
    recovery_proof_sql: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/form.html")]
pub(super) struct FormPage {
    ctx: PageCtx,
    /// `Some(name)` when editing.
    editing: Option<String>,
    current_url: String,
    values: FormValues,
    error: Option<String>,
}

pub(super) async fn new_form(Admin(_): Admin, ctx: PageCtx) -> FormPage {
    FormPage {
        ctx,
        editing: None,
        current_url: String::new(),
        values: FormValues::default(),
        error: None,
    }
}

pub(super) async fn edit_form(
    State(state): State<AppState>,
    Admin(_): Admin,
    ctx: PageCtx,
    DbName(name): DbName,
) -> AppResult<FormPage> {
    let entry = state.registry.get(&name).await?;
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
            backup_schedule: entry.schedules.backup.clone().unwrap_or_default(),
            verify_schedule: entry.schedules.verify.clone().unwrap_or_default(),
            retention: entry.schedules.retention.clone().unwrap_or_default(),
            pgbackrest_stanza: entry.pitr.stanza.clone().unwrap_or_default(),
            pgbackrest_config: entry.pitr.config.clone().unwrap_or_default(),
            pgbackrest_schedule: entry.pitr.schedule.clone().unwrap_or_default(),
            recovery_drill_schedule: entry.pitr.drill_schedule.clone().unwrap_or_default(),
            recovery_proof_sql: entry.pitr.proof_sql.clone().unwrap_or_default(),
        },
        error: None,
    })
}

#[derive(Deserialize)]
pub(super) struct DbForm {
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
    #[serde(default)]
    backup_schedule: String,
    #[serde(default)]
    verify_schedule: String,
    #[serde(default)]
    retention: String,
    #[serde(default)]
    pgbackrest_stanza: String,
    #[serde(default)]
    pgbackrest_config: String,
    #[serde(default)]
    pgbackrest_schedule: String,
    #[serde(default)]
    recovery_drill_schedule: String,
    #[serde(default)]
    recovery_proof_sql: String,
}

impl DbForm {
    fn schedules(&self) -> Schedules {
        Schedules {
            backup: optional(&self.backup_schedule),
            verify: optional(&self.verify_schedule),
            retention: optional(&self.retention),
        }
    }

    fn pitr(&self) -> PitrSettings {
        PitrSettings {
            stanza: optional(&self.pgbackrest_stanza),
            config: optional(&self.pgbackrest_config),
            schedule: optional(&self.pgbackrest_schedule),
            drill_schedule: optional(&self.recovery_drill_schedule),
            proof_sql: optional(&self.recovery_proof_sql),
        }
    }

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
            backup_schedule: self.backup_schedule.clone(),
            verify_schedule: self.verify_schedule.clone(),
            retention: self.retention.clone(),
            pgbackrest_stanza: self.pgbackrest_stanza.clone(),
            pgbackrest_config: self.pgbackrest_config.clone(),
            pgbackrest_schedule: self.pgbackrest_schedule.clone(),
            recovery_drill_schedule: self.recovery_drill_schedule.clone(),
            recovery_proof_sql: self.recovery_proof_sql.clone(),
        }
    }
}

/// A target like `24h`, `30m` or `7d` (at most ten years); empty means none.
fn parse_target(raw: &str, what: &str) -> AppResult<Option<Duration>> {
    Ok(RecoveryTarget::parse(what, raw)?.map(RecoveryTarget::duration))
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

pub(super) async fn create(
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
            schedules: form.schedules(),
            pitr: form.pitr(),
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

pub(super) async fn update(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    ctx: PageCtx,
    DbName(name): DbName,
    Form(form): Form<DbForm>,
) -> AppResult<Response> {
    let current = state.registry.get(&name).await?;
    let parsed = (|| {
        Ok::<_, AppError>(Changes {
            url: optional(&form.url).map(|u| url_field(&u)).transpose()?,
            migrations_dir: optional(&form.migrations_dir),
            rpo: parse_target(&form.rpo, "RPO")?,
            rto: parse_target(&form.rto, "RTO")?,
            schedules: form.schedules(),
            pitr: form.pitr(),
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

pub(super) async fn remove(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    DbName(name): DbName,
) -> AppResult<Redirect> {
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
pub(super) async fn test_connection(
    State(state): State<AppState>,
    Admin(_): Admin,
    ctx: PageCtx,
    headers: HeaderMap,
    Form(form): Form<DbForm>,
) -> AppResult<Response> {
    let tested = match optional(&form.url) {
        Some(raw) => registry::test_url(&url_field(&raw)?, state.fleet.servers()).await?,
        None => {
            let enter = || AppError::invalid("enter a connection URL to test");
            let name = DatabaseName::parse(&form.name).map_err(|_| enter())?;
            match state.registry.test_stored(&name, state.fleet.servers()).await {
                Err(AppError::NotFound(_)) => return Err(enter()),
                other => other?,
            }
        }
    };
    let result = match tested {
        Ok(Tested {
            engine,
            status: server,
        }) => TestResult {
            ok: true,
            message: format!(
                "Connected: {engine} {}{}",
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
