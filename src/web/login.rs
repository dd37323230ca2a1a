//! Sign-in, sign-out and first-run setup pages.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tower_sessions::Session;
use url::{Position, Url};

use crate::clock::now;
use crate::domain::{Password, Username};
use crate::error::{AppError, AppResult};
use crate::service::setup::SetupRequest;
use crate::service::users::User;
use crate::service::{Actor, Via, auth, setup, users};
use crate::web::AppState;
use crate::web::auth::{ClientAddr, CurrentUser, keys};
use crate::web::csrf;
use crate::web::page::{PageCtx, flash};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/setup", get(setup_page).post(setup_submit))
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/login.html")]
struct LoginPage {
    ctx: PageCtx,
    next: String,
    name: String,
    error: Option<String>,
    no_users: bool,
}

#[derive(Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Where to go after signing in: a path of this panel, or "/". `next` is
/// resolved against a fixed base as a browser would resolve it, and kept
/// only if it stays on that origin; anything with a control character or a
/// backslash (raw or percent-encoded) is refused outright, since browsers
/// drop or reinterpret those (`/\t/evil.example` is read as
/// `//evil.example`). The answer is the resolved path, never the input.
fn safe_next(next: &str) -> String {
    const BASE: &str = "http://panel.invalid/";
    let suspicious = |s: &str| s.chars().any(|c| c.is_control() || c == '\\');
    let decoded = percent_encoding::percent_decode_str(next).decode_utf8_lossy();
    if !next.starts_with('/') || suspicious(next) || suspicious(&decoded) {
        return "/".to_string();
    }
    let base = Url::parse(BASE).expect("the base is a URL");
    match base.join(next) {
        Ok(url) if url.origin() == base.origin() && url.username().is_empty() => {
            url[Position::BeforePath..].to_string()
        }
        _ => "/".to_string(),
    }
}

async fn login_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    user: Option<CurrentUser>,
    Query(q): Query<NextQuery>,
) -> AppResult<Response> {
    if user.is_some() {
        return Ok(Redirect::to(&safe_next(&q.next)).into_response());
    }
    Ok(LoginPage {
        ctx,
        next: safe_next(&q.next),
        name: String::new(),
        error: None,
        no_users: users::count(&state.store).await? == 0,
    }
    .into_response())
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// Start a signed-in session: a new session id (no fixation), a new CSRF
/// token, and the clocks for the idle and absolute timeouts.
async fn start_session(session: &Session, user: &User) -> AppResult<()> {
    session.cycle_id().await?;
    let now = now();
    session.insert(keys::USER_ID, user.id).await?;
    session.insert(keys::LOGIN_AT, now).await?;
    session.insert(keys::LAST_SEEN, now).await?;
    session.insert(keys::EPOCH, user.session_epoch).await?;
    csrf::rotate(session).await?;
    Ok(())
}

async fn login_submit(
    State(state): State<AppState>,
    session: Session,
    ClientAddr(client): ClientAddr,
    ctx: PageCtx,
    Form(form): Form<LoginForm>,
) -> AppResult<Response> {
    let next = safe_next(&form.next);
    let names = &state.keys()?.sign_in_names;
    let attempt = match Password::attempt(form.password) {
        Ok(password) => {
            auth::login(
                &state.store,
                &state.throttle,
                names,
                &client,
                Via::Web,
                &form.name,
                &password,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match attempt {
        Ok(user) => {
            start_session(&session, &user).await?;
            Ok(Redirect::to(&next).into_response())
        }
        Err(e @ (AppError::Invalid(_) | AppError::Throttled { .. })) => {
            let status = e.status();
            let retry_after = match &e {
                AppError::Throttled { retry_after_secs, .. } => Some(*retry_after_secs),
                _ => None,
            };
            let page = LoginPage {
                ctx,
                next,
                name: form.name.chars().take(Username::MAX_LEN).collect(),
                error: Some(e.to_string()),
                no_users: false,
            };
            let mut response = (status, page).into_response();
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            Ok(response)
        }
        Err(e) => Err(e),
    }
}

async fn logout(
    State(state): State<AppState>,
    session: Session,
    user: Option<CurrentUser>,
) -> AppResult<Response> {
    if let Some(user) = user {
        auth::logout(&state.store, &user.actor()).await?;
    }
    session.flush().await?;
    Ok(Redirect::to("/login").into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/setup.html")]
struct SetupPage {
    ctx: PageCtx,
    token: String,
    name: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

async fn setup_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<TokenQuery>,
) -> AppResult<Response> {
    if !setup::is_open(&state.store, &q.token).await? {
        return Err(setup::closed());
    }
    Ok(SetupPage {
        ctx,
        token: q.token,
        name: String::new(),
        error: None,
    }
    .into_response())
}

#[derive(Deserialize)]
struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

async fn setup_submit(
    State(state): State<AppState>,
    session: Session,
    ClientAddr(client): ClientAddr,
    ctx: PageCtx,
    Form(form): Form<SetupForm>,
) -> AppResult<Response> {
    let actor = Actor::anonymous(Via::Web, client);
    let request = SetupRequest {
        name: form.name.clone(),
        password: form.password,
        confirm: form.confirm,
    };
    let user = match setup::create_first_admin(&state.store, &actor, &form.token, request).await {
        Ok(user) => user,
        Err(e @ AppError::Invalid(_)) => {
            let page = SetupPage {
                ctx,
                token: form.token,
                name: form.name.chars().take(Username::MAX_LEN).collect(),
                error: Some(e.to_string()),
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
        Err(e) => return Err(e),
    };
    start_session(&session, &user).await?;
    flash(
        &session,
        "ok",
        format!("Welcome, {}. You are the first admin.", user.name),
    )
    .await?;
    Ok(Redirect::to("/").into_response())
}
