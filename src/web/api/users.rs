//! API: the token's user, panel users (admin) and the audit log (operator).

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::domain::{Password, Role, Username};
use crate::error::AppResult;
use crate::service::audit;
use crate::service::users::{self, NewUser, User};
use crate::web::AppState;
use crate::web::audit::AuditQuery;
use crate::web::auth::{Admin, Operator, Viewer};
use crate::web::page::rfc3339;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{name}/disable", post(disable_user))
        .route("/users/{name}/password", post(set_password))
        .route("/audit", get(audit_log))
}

#[derive(Serialize)]
struct UserJson {
    name: String,
    role: Role,
    can_approve: bool,
    disabled: bool,
    created_at: String,
}

impl From<User> for UserJson {
    fn from(u: User) -> Self {
        UserJson {
            name: u.name,
            role: u.role,
            can_approve: u.can_approve,
            disabled: u.disabled,
            created_at: rfc3339(u.created_at),
        }
    }
}

async fn me(Viewer(me): Viewer) -> Json<UserJson> {
    Json(me.user.into())
}

async fn list_users(State(state): State<AppState>, Admin(_): Admin) -> AppResult<Json<Vec<UserJson>>> {
    let users = users::list(&state.store).await?;
    Ok(Json(users.into_iter().map(UserJson::from).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    name: String,
    password: String,
    role: String,
    #[serde(default)]
    approver: bool,
}

async fn create_user(
    State(state): State<AppState>,
    Admin(me): Admin,
    Json(body): Json<CreateUser>,
) -> AppResult<(axum::http::StatusCode, Json<UserJson>)> {
    let new = NewUser {
        name: Username::parse(&body.name)?,
        password: Password::new(body.password)?,
        role: body.role.parse()?,
        can_approve: body.approver,
    };
    let user = users::create(&state.store, &me.actor(), new).await?;
    Ok((axum::http::StatusCode::CREATED, Json(user.into())))
}

async fn disable_user(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(name): Path<String>,
) -> AppResult<Json<UserJson>> {
    let name = Username::from_path(&name)?;
    let user = users::set_disabled(&state.store, &me.actor(), &name, true).await?;
    Ok(Json(user.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPassword {
    password: String,
    /// Revoke the user's API tokens as well.
    #[serde(default)]
    revoke_tokens: bool,
}

#[derive(Serialize)]
struct PasswordSetJson {
    ok: bool,
    tokens_revoked: u64,
}

/// An admin sets a user's password; the user's sessions end (a bearer
/// token is no session, so none is kept).
async fn set_password(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(name): Path<String>,
    Json(body): Json<SetPassword>,
) -> AppResult<Json<PasswordSetJson>> {
    let name = Username::from_path(&name)?;
    let password = Password::new(body.password)?;
    let changed =
        users::reset_password(&state.store, &me.actor(), &name, &password, body.revoke_tokens).await?;
    Ok(Json(PasswordSetJson {
        ok: true,
        tokens_revoked: changed.tokens_revoked,
    }))
}

#[derive(Serialize)]
struct AuditEntryJson {
    id: i64,
    at: String,
    actor: String,
    via: String,
    action: String,
    target: String,
    database: Option<String>,
    outcome: String,
    detail: String,
    client: String,
}

#[derive(Serialize)]
struct AuditPageJson {
    entries: Vec<AuditEntryJson>,
    /// Pass as `before` for the next (older) page.
    older_before: Option<i64>,
    /// Pass as `after` for the previous (newer) page.
    newer_after: Option<i64>,
}

async fn audit_log(
    State(state): State<AppState>,
    Operator(_): Operator,
    Query(q): Query<AuditQuery>,
) -> AppResult<Json<AuditPageJson>> {
    let page = audit::search(&state.store, q.filter()?).await?;
    Ok(Json(AuditPageJson {
        entries: page
            .rows
            .into_iter()
            .map(|r| AuditEntryJson {
                id: r.id,
                at: rfc3339(r.at),
                actor: r.actor,
                via: r.via,
                action: r.action,
                target: r.target,
                database: r.database_name,
                outcome: r.outcome,
                detail: r.detail,
                client: r.client_addr,
            })
            .collect(),
        older_before: page.older,
        newer_after: page.newer,
    }))
}
