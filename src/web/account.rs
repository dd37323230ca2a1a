//! The signed-in user's own account: change password, API tokens.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tower_sessions::Session;

use crate::domain::Password;
use crate::error::{AppError, AppResult};
use crate::service::{tokens, users};
use crate::web::AppState;
use crate::web::auth::{CurrentUser, Viewer, keys};
use crate::web::page::{PageCtx, flash, fmt_time};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(show))
        .route("/account/password", post(change_password))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
}

struct TokenView {
    id: i64,
    name: String,
    created: String,
    last_used: String,
    revoked: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "account/index.html")]
struct AccountPage {
    ctx: PageCtx,
    name: String,
    role: String,
    can_approve: bool,
    tokens: Vec<TokenView>,
    /// A token just created: shown this once.
    new_token: Option<(String, String)>,
    /// Why the password form was refused, shown beside it (passwords are
    /// never sent back).
    password_refused: Option<String>,
}

async fn page(
    state: &AppState,
    me: &CurrentUser,
    ctx: PageCtx,
    new_token: Option<(String, String)>,
) -> AppResult<AccountPage> {
    let tokens = tokens::list(&state.store, &me.user)
        .await?
        .into_iter()
        .map(|t| TokenView {
            id: t.id,
            name: t.name,
            created: fmt_time(t.created_at),
            last_used: t.last_used_at.map(fmt_time).unwrap_or_else(|| "never".into()),
            revoked: t.revoked_at.map(fmt_time),
        })
        .collect();
    Ok(AccountPage {
        ctx,
        name: me.user.name.clone(),
        role: me.user.role.to_string(),
        can_approve: me.user.can_approve,
        tokens,
        new_token,
        password_refused: None,
    })
}

async fn show(State(state): State<AppState>, Viewer(me): Viewer, ctx: PageCtx) -> AppResult<AccountPage> {
    page(&state, &me, ctx, None).await
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    /// A checkbox: present when ticked.
    revoke_tokens: Option<String>,
}

/// Your other sessions end (their epoch is now old); this one moves to the
/// new epoch and goes on.
async fn change_password(
    State(state): State<AppState>,
    Viewer(me): Viewer,
    session: Session,
    ctx: PageCtx,
    headers: axum::http::HeaderMap,
    Form(form): Form<PasswordForm>,
) -> AppResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let revoke = form
        .revoke_tokens
        .as_deref()
        .is_some_and(|v| !v.is_empty() && v != "false");
    let changed = async {
        if form.password != form.confirm {
            return Err(AppError::invalid("the two new passwords differ"));
        }
        let current = Password::attempt(form.current)?;
        let new = Password::new(form.password)?;
        users::change_own_password(&state.store, &me.actor(), &current, &new, revoke).await
    }
    .await;
    let changed = match changed {
        Ok(changed) => changed,
        // The account page again, the reason beside the form (not for
        // htmx, which swaps in its error fragment).
        Err(e @ (AppError::Invalid(_) | AppError::BadRequest(_))) if !headers.contains_key("hx-request") => {
            let mut page = page(&state, &me, ctx, None).await?;
            page.password_refused = Some(e.to_string());
            return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
        Err(e) => return Err(e),
    };
    session.insert(keys::EPOCH, changed.session_epoch).await?;
    let mut message = "Your password has been changed; your other sessions have been signed out.".to_string();
    if revoke {
        message.push_str(&format!(" API tokens revoked: {}.", changed.tokens_revoked));
    }
    flash(&session, "ok", message).await?;
    Ok(Redirect::to("/account").into_response())
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    name: String,
}

/// Answers with the account page showing the new token once; it is not
/// stored anywhere it could be shown again, and the page is not cached.
async fn create_token(
    State(state): State<AppState>,
    Viewer(me): Viewer,
    ctx: PageCtx,
    Form(form): Form<TokenForm>,
) -> AppResult<Response> {
    let created = tokens::create(&state.store, &me.actor(), &me.user, &form.name).await?;
    let shown = Some((created.token.name, created.secret));
    let mut response = page(&state, &me, ctx, shown).await?.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn revoke_token(
    State(state): State<AppState>,
    Viewer(me): Viewer,
    session: Session,
    Path(id): Path<String>,
) -> AppResult<Redirect> {
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::not_found("no such live token"))?;
    tokens::revoke(&state.store, &me.actor(), &me.user, id).await?;
    flash(&session, "ok", "Token revoked: it no longer works.").await?;
    Ok(Redirect::to("/account"))
}
