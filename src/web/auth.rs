//! Who is asking: the signed-in user (session for pages, bearer token for
//! `/api/`), the client address, and the role extractors (`Viewer`,
//! `Operator`, `Admin`) that make a handler unreachable without the role.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts, OptionalFromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{Method, header};
use tower_sessions::Session;

use crate::clock::now;
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::service::audit::{Event, Outcome, record};
use crate::service::users::User;
use crate::service::{Actor, Via, auth, tokens};
use crate::web::AppState;

/// Session keys. Everything the session holds is listed here.
pub mod keys {
    pub const USER_ID: &str = "user_id";
    pub const LOGIN_AT: &str = "login_at";
    pub const LAST_SEEN: &str = "last_seen";
    /// The user's `session_epoch` at sign-in: a password change ends it.
    pub const EPOCH: &str = "session_epoch";
    pub const CSRF: &str = "csrf";
    pub const FLASH: &str = "flash";
}

/// How often the idle clock is written back: a session write per request
/// would make every poll a store write, so at most once a minute, but well
/// within the idle timeout (a quarter of it), so a user in the middle of
/// their work is never taken for idle.
fn last_seen_resolution(idle_secs: i64) -> i64 {
    (idle_secs / 4).min(60)
}

/// The request's full path: nested routers see only their part in `parts.uri`.
pub fn request_path(parts: &Parts) -> &str {
    parts
        .extensions
        .get::<OriginalUri>()
        .map(|u| u.0.path())
        .unwrap_or_else(|| parts.uri.path())
}

/// Is this path for machines: the JSON API, or `/metrics` for Prometheus?
/// Such requests authenticate with bearer tokens only (never cookies, so no
/// CSRF), and their errors are JSON, never a redirect to sign-in.
pub fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/metrics"
}

/// The client's address: the peer, or with `trust_proxy_headers` the last
/// address in X-Forwarded-For (the one the panel's own proxy appended).
#[derive(Clone, Debug)]
pub struct ClientAddr(pub String);

impl<S> FromRequestParts<S> for ClientAddr
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Self> {
        let state = AppState::from_ref(state);
        if state.config.trust_proxy_headers {
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .rfind(|v| !v.is_empty());
            if let Some(addr) = forwarded {
                return Ok(ClientAddr(addr.chars().take(64).collect()));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(ClientAddr(peer))
    }
}

/// The signed-in user of this request.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub user: User,
    pub via: Via,
    pub client: String,
}

impl CurrentUser {
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.user.id),
            name: self.user.name.clone(),
            role: Some(self.user.role),
            via: self.via,
            client: self.client.clone(),
        }
    }

    pub fn has(&self, role: Role) -> bool {
        self.user.role >= role
    }
}

/// Resolved once per request and kept in the request's extensions, so the
/// page context and the role check do not each hit the store.
#[derive(Clone)]
struct Resolved(Option<CurrentUser>);

async fn resolve(parts: &mut Parts, state: &AppState) -> AppResult<Option<CurrentUser>> {
    if let Some(Resolved(found)) = parts.extensions.get::<Resolved>() {
        return Ok(found.clone());
    }
    let ClientAddr(client) = ClientAddr::from_request_parts(parts, state).await?;
    let found = if is_api_path(request_path(parts)) {
        from_bearer(parts, state).await?.map(|user| CurrentUser {
            user,
            via: Via::Api,
            client,
        })
    } else {
        from_session(parts, state).await?.map(|user| CurrentUser {
            user,
            via: Via::Web,
            client,
        })
    };
    parts.extensions.insert(Resolved(found.clone()));
    Ok(found)
}

async fn from_bearer(parts: &Parts, state: &AppState) -> AppResult<Option<User>> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let Some(token) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) else {
        return Ok(None);
    };
    tokens::authenticate(&state.store, token.trim()).await
}

/// The session's user, ending the session if it has passed its idle or
/// absolute timeout, its user has been disabled, or their password has
/// changed since it signed in (its epoch is older).
async fn from_session(parts: &Parts, state: &AppState) -> AppResult<Option<User>> {
    let Some(session) = parts.extensions.get::<Session>() else {
        return Ok(None);
    };
    let Some(user_id) = session.get::<i64>(keys::USER_ID).await? else {
        return Ok(None);
    };
    let now = now();
    let login_at = session.get::<i64>(keys::LOGIN_AT).await?.unwrap_or(0);
    let last_seen = session.get::<i64>(keys::LAST_SEEN).await?.unwrap_or(0);
    let absolute = state.config.session_absolute_timeout.as_secs() as i64;
    let idle = state.config.session_idle_timeout.as_secs() as i64;
    if now - login_at > absolute || now - last_seen > idle {
        session.flush().await?;
        return Ok(None);
    }
    let Some(user) = auth::active_user(&state.store, user_id).await? else {
        session.flush().await?;
        return Ok(None);
    };
    if session.get::<i64>(keys::EPOCH).await? != Some(user.session_epoch) {
        session.flush().await?;
        return Ok(None);
    }
    if now - last_seen >= last_seen_resolution(idle) {
        session.insert(keys::LAST_SEEN, now).await?;
    }
    Ok(Some(user))
}

impl<S> FromRequestParts<S> for CurrentUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Self> {
        resolve(parts, &AppState::from_ref(state))
            .await?
            .ok_or(AppError::Unauthorized)
    }
}

impl<S> OptionalFromRequestParts<S> for CurrentUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Option<Self>> {
        resolve(parts, &AppState::from_ref(state)).await
    }
}

/// Check `role`; a refused attempt at a state-changing route is audited.
async fn require_role<S>(parts: &mut Parts, state: &S, role: Role) -> AppResult<CurrentUser>
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    let state = AppState::from_ref(state);
    let user = resolve(parts, &state).await?.ok_or(AppError::Unauthorized)?;
    if user.has(role) {
        return Ok(user);
    }
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        let path = request_path(parts).to_string();
        let detail = format!("{} needs {role}", parts.method);
        let event = Event {
            action: crate::domain::AuditAction::AccessDenied,
            target: &path,
            detail: &detail,
            database: None,
        };
        record(&state.store, &user.actor(), event, Outcome::Denied).await?;
    }
    Err(AppError::needs_role(role))
}

macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, $role:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name(pub CurrentUser);

        impl<S> FromRequestParts<S> for $name
        where
            AppState: FromRef<S>,
            S: Send + Sync,
        {
            type Rejection = AppError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Self> {
                require_role(parts, state, $role).await.map($name)
            }
        }
    };
}

role_extractor!(
    /// Any signed-in user.
    Viewer,
    Role::Viewer
);
role_extractor!(
    /// Operators and admins: may act on databases.
    Operator,
    Role::Operator
);
role_extractor!(
    /// Admins only: users, tokens of others, the registry.
    Admin,
    Role::Admin
);
