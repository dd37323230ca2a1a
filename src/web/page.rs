//! What every HTML page needs besides its own data: the signed-in user for the
//! navigation, the CSRF token, flash messages, and the current section; plus
//! small formatting helpers for view structs.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::web::AppState;
use crate::web::auth::{CurrentUser, keys, request_path};
use crate::web::csrf;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Flash {
    /// "ok" or "error": a CSS class.
    pub kind: String,
    pub message: String,
}

/// Queue a message for the next page this session renders.
pub async fn flash(session: &Session, kind: &str, message: impl Into<String>) -> AppResult<()> {
    let mut queued: Vec<Flash> = session.get(keys::FLASH).await?.unwrap_or_default();
    queued.push(Flash {
        kind: kind.into(),
        message: message.into(),
    });
    session.insert(keys::FLASH, queued).await?;
    Ok(())
}

/// The user as the navigation shows them.
#[derive(Clone, Debug)]
pub struct NavUser {
    pub name: String,
    pub role: Role,
}

impl NavUser {
    pub fn is_operator(&self) -> bool {
        self.role >= Role::Operator
    }

    pub fn is_admin(&self) -> bool {
        self.role >= Role::Admin
    }
}

/// The layout's data. Every full-page template has a `ctx: PageCtx` field.
#[derive(Clone, Debug)]
pub struct PageCtx {
    pub user: Option<NavUser>,
    pub csrf: String,
    pub flashes: Vec<Flash>,
    /// First path segment ("" for the overview), to mark the current tab.
    pub section: String,
}

impl PageCtx {
    /// Build the context from a session; used by the extractor and by the
    /// error renderer, which runs outside any handler. `need_csrf` makes a
    /// token (and so a session) if there is none yet: pages with forms need
    /// one, an anonymous visitor's 404 does not.
    pub async fn load(
        session: Option<&Session>,
        user: Option<&CurrentUser>,
        path: &str,
        need_csrf: bool,
    ) -> AppResult<PageCtx> {
        PageCtx::load_with(session, user, path, need_csrf, true).await
    }

    /// [`PageCtx::load`], taking the queued messages only when
    /// `take_flashes` (not for a page refreshing part of itself).
    pub async fn load_with(
        session: Option<&Session>,
        user: Option<&CurrentUser>,
        path: &str,
        need_csrf: bool,
        take_flashes: bool,
    ) -> AppResult<PageCtx> {
        let (csrf, flashes) = match session {
            Some(session) => {
                let csrf = if need_csrf {
                    csrf::token(session).await?
                } else {
                    session.get::<String>(keys::CSRF).await?.unwrap_or_default()
                };
                // `remove` marks the session modified (a store write), so
                // only remove when there is something to show.
                let queued = match take_flashes {
                    true => session.get::<Vec<Flash>>(keys::FLASH).await?,
                    false => None,
                };
                let flashes = match queued {
                    Some(queued) => {
                        session.remove_value(keys::FLASH).await?;
                        queued
                    }
                    None => Vec::new(),
                };
                (csrf, flashes)
            }
            None => (String::new(), Vec::new()),
        };
        Ok(PageCtx {
            user: user.map(|u| NavUser {
                name: u.user.name.clone(),
                role: u.user.role,
            }),
            csrf,
            flashes,
            section: path
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("")
                .to_string(),
        })
    }

    pub fn is(&self, section: &str) -> bool {
        self.section == section
    }
}

impl<S> FromRequestParts<S> for PageCtx
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Self> {
        let user =
            <CurrentUser as axum::extract::OptionalFromRequestParts<S>>::from_request_parts(parts, state)
                .await?;
        // A page refreshing part of itself (htmx polling, not a boosted
        // navigation) leaves queued messages for the next page the user
        // opens: the poll's swap never shows them.
        let poll = parts.headers.contains_key("hx-request") && !parts.headers.contains_key("hx-boosted");
        let session = parts.extensions.get::<Session>().cloned();
        // Only a signed-in session gets a session token: a visitor's page
        // must not create a session (a row in the store) for one.
        let mut ctx = PageCtx::load_with(
            session.as_ref(),
            user.as_ref(),
            request_path(parts),
            user.is_some(),
            !poll,
        )
        .await?;
        // The sign-in and setup pages' forms carry a stateless token.
        if let Some(csrf::SignInToken(token)) = parts.extensions.get::<csrf::SignInToken>() {
            ctx.csrf = token.clone();
        }
        Ok(ctx)
    }
}

pub use crate::format::{fmt_age, fmt_bytes, fmt_duration, fmt_time, rfc3339};
