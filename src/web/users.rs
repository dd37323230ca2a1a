//! Admin pages for panel users: list, create, change role, disable/enable,
//! reset a password.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tower_sessions::Session;

use crate::domain::{Password, Role, Username};
use crate::error::{AppError, AppResult};
use crate::service::users::{self, NewUser};
use crate::web::AppState;
use crate::web::auth::{Admin, CurrentUser, keys};
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
    /// A refused form, shown again beside that form with what was typed.
    refused: Option<Refused>,
}

/// Which form was refused, why, and what was typed (never a password).
#[derive(Default)]
struct Refused {
    /// "create", or the user a row's form was about.
    form: String,
    why: String,
    name: String,
    role: String,
    approver: bool,
    /// Sent by htmx (which swaps an error fragment in), not a plain form.
    htmx: bool,
}

impl Refused {
    /// A refused form of one user's row (role, password): nothing typed is
    /// sent back.
    fn row(name: &Username, headers: &axum::http::HeaderMap) -> Refused {
        Refused {
            form: name.to_string(),
            htmx: headers.contains_key("hx-request"),
            ..Refused::default()
        }
    }
}

impl UsersPage {
    /// The refusal of `form`, if that was the one.
    fn refused_on(&self, form: &str) -> Option<&Refused> {
        self.refused.as_ref().filter(|r| r.form == form)
    }

    /// The role the add-user form shows selected.
    fn chosen_role(&self, role: &Role) -> bool {
        match self.refused_on("create") {
            Some(r) if !r.role.is_empty() => r.role == role.as_str(),
            _ => *role == Role::Viewer,
        }
    }
}

async fn list(State(state): State<AppState>, Admin(me): Admin, ctx: PageCtx) -> AppResult<UsersPage> {
    build(&state, &me, ctx).await
}

async fn build(state: &AppState, me: &CurrentUser, ctx: PageCtx) -> AppResult<UsersPage> {
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
        refused: None,
    })
}

/// A refusal the admin can act on (a bad name, a short password, a name
/// taken, the last admin): the page again with the reason beside the form;
/// anything else is the error page.
async fn refused(
    state: &AppState,
    me: &CurrentUser,
    ctx: PageCtx,
    e: AppError,
    form: Refused,
) -> AppResult<Response> {
    // An htmx request gets the error fragment for its flash area instead.
    if form.htmx {
        return Err(e);
    }
    let status = match &e {
        AppError::Invalid(_) | AppError::BadRequest(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::Conflict(_) => StatusCode::CONFLICT,
        _ => return Err(e),
    };
    let mut page = build(state, me, ctx).await?;
    page.refused = Some(Refused {
        why: e.to_string(),
        ..form
    });
    Ok((status, page).into_response())
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
    ctx: PageCtx,
    headers: axum::http::HeaderMap,
    Form(form): Form<CreateForm>,
) -> AppResult<Response> {
    let made = async {
        let new = NewUser {
            name: Username::parse(&form.name)?,
            password: Password::new(form.password.clone())?,
            role: form.role.parse()?,
            can_approve: ticked(&form.approver),
        };
        users::create(&state.store, &me.actor(), new).await
    }
    .await;
    match made {
        Ok(user) => {
            flash(&session, "ok", format!("Created {} ({}).", user.name, user.role)).await?;
            Ok(Redirect::to("/users").into_response())
        }
        Err(e) => {
            let typed = Refused {
                form: "create".into(),
                name: form.name.chars().take(64).collect(),
                role: form.role.chars().take(20).collect(),
                approver: ticked(&form.approver),
                htmx: headers.contains_key("hx-request"),
                ..Refused::default()
            };
            refused(&state, &me, ctx, e, typed).await
        }
    }
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
    ctx: PageCtx,
    headers: axum::http::HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<RoleForm>,
) -> AppResult<Response> {
    let name = path_user(&name)?;
    let changed = async {
        let role: Role = form.role.parse()?;
        users::set_role(&state.store, &me.actor(), &name, role, ticked(&form.approver)).await
    }
    .await;
    let user = match changed {
        Ok(user) => user,
        Err(e) => {
            return refused(&state, &me, ctx, e, Refused::row(&name, &headers)).await;
        }
    };
    let approver = if user.can_approve { ", approver" } else { "" };
    flash(
        &session,
        "ok",
        format!("{} is now {}{approver}.", user.name, user.role),
    )
    .await?;
    Ok(Redirect::to("/users").into_response())
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
    ctx: PageCtx,
    headers: axum::http::HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<PasswordForm>,
) -> AppResult<Response> {
    let name = path_user(&name)?;
    let revoke = ticked(&form.revoke_tokens);
    let changed = async {
        let password = Password::new(form.password)?;
        users::reset_password(&state.store, &me.actor(), &name, &password, revoke).await
    }
    .await;
    let changed = match changed {
        Ok(changed) => changed,
        Err(e) => {
            return refused(&state, &me, ctx, e, Refused::row(&name, &headers)).await;
        }
    };
    // An admin setting their own password keeps this session.
    if changed.user_id == me.user.id {
        session.insert(keys::EPOCH, changed.session_epoch).await?;
    }
    let mut message = format!("Set a new password for {name}; their sessions have been signed out.");
    if revoke {
        message.push_str(&format!(" API tokens revoked: {}.", changed.tokens_revoked));
    }
    flash(&session, "ok", message).await?;
    Ok(Redirect::to("/users").into_response())
}
