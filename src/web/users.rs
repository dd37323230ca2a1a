//! Admin pages for panel users: list, create, change role, disable/enable,
//! reset a password.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::response::Redirect;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tower_sessions::Session;

use crate::domain::{Password, Role, Username};
use crate::error::AppResult;
use crate::service::users::{self, NewUser};
use crate::web::AppState;
use crate::web::auth::{Admin, keys};
use crate::web::page::{PageCtx, flash, fmt_time};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{name}/role", post(set_role))
        .route("/users/{name}/disable", post(disable))
        .route("/users/{name}/enable", post(enable))
        .route("/users/{name}/password", post(reset_password))
}

struct UserView {
    name: String,
    role: Role,
    can_approve: bool,
    disabled: bool,
    created: String,
    is_me: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "users/list.html")]
struct UsersPage {
    ctx: PageCtx,
    users: Vec<UserView>,
    roles: [Role; 3],
}

async fn list(State(state): State<AppState>, Admin(me): Admin, ctx: PageCtx) -> AppResult<UsersPage> {
    let users = users::list(&state.store)
        .await?
        .into_iter()
        .map(|u| UserView {
            is_me: u.id == me.user.id,
            created: fmt_time(u.created_at),
            name: u.name,
            role: u.role,
            can_approve: u.can_approve,
            disabled: u.disabled,
        })
        .collect();
    Ok(UsersPage {
        ctx,
        users,
        roles: Role::ALL,
    })
}

/// A checkbox is present when ticked and absent otherwise.
fn ticked(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| !v.is_empty() && v != "false")
}

/// A user named in the path: an impossible name is simply not found.
/// A user named in the path: exactly a valid name, or not found.
fn path_user(raw: &str) -> AppResult<Username> {
    Username::from_path(raw)
}

#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
    approver: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Form(form): Form<CreateForm>,
) -> AppResult<Redirect> {
    let new = NewUser {
        name: Username::parse(&form.name)?,
        password: Password::new(form.password)?,
        role: form.role.parse()?,
        can_approve: ticked(&form.approver),
    };
    let user = users::create(&state.store, &me.actor(), new).await?;
    flash(&session, "ok", format!("Created {} ({}).", user.name, user.role)).await?;
    Ok(Redirect::to("/users"))
}

#[derive(Deserialize)]
struct RoleForm {
    #[serde(default)]
    role: String,
    approver: Option<String>,
}

async fn set_role(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Path(name): Path<String>,
    Form(form): Form<RoleForm>,
) -> AppResult<Redirect> {
    let name = path_user(&name)?;
    let role: Role = form.role.parse()?;
    let user = users::set_role(&state.store, &me.actor(), &name, role, ticked(&form.approver)).await?;
    let approver = if user.can_approve { ", approver" } else { "" };
    flash(
        &session,
        "ok",
        format!("{} is now {}{approver}.", user.name, user.role),
    )
    .await?;
    Ok(Redirect::to("/users"))
}

async fn disable(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Path(name): Path<String>,
) -> AppResult<Redirect> {
    let user = users::set_disabled(&state.store, &me.actor(), &path_user(&name)?, true).await?;
    flash(
        &session,
        "ok",
        format!(
            "Disabled {}; their sessions and tokens no longer work.",
            user.name
        ),
    )
    .await?;
    Ok(Redirect::to("/users"))
}

async fn enable(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Path(name): Path<String>,
) -> AppResult<Redirect> {
    let user = users::set_disabled(&state.store, &me.actor(), &path_user(&name)?, false).await?;
    flash(&session, "ok", format!("Enabled {}.", user.name)).await?;
    Ok(Redirect::to("/users"))
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    password: String,
    revoke_tokens: Option<String>,
}

async fn reset_password(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Path(name): Path<String>,
    Form(form): Form<PasswordForm>,
) -> AppResult<Redirect> {
    let name = path_user(&name)?;
    let password = Password::new(form.password)?;
    let revoke = ticked(&form.revoke_tokens);
    let changed = users::reset_password(&state.store, &me.actor(), &name, &password, revoke).await?;
    // An admin setting their own password keeps this session.
    if changed.user_id == me.user.id {
        session.insert(keys::EPOCH, changed.session_epoch).await?;
    }
    let mut message = format!("Set a new password for {name}; their sessions have been signed out.");
    if revoke {
        message.push_str(&format!(" API tokens revoked: {}.", changed.tokens_revoked));
    }
    flash(&session, "ok", message).await?;
    Ok(Redirect::to("/users"))
}
