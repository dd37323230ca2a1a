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
        let (csrf, flashes) = match session {
            Some(session) => {
                let csrf = if need_csrf {
                    csrf::token(session).await?
                } else {
                    session.get::<String>(keys::CSRF).await?.unwrap_or_default()
                };
                // `remove` marks the session modified (a store write), so
                // only remove when there is something to show.
                let flashes = match session.get::<Vec<Flash>>(keys::FLASH).await? {
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
        let session = parts.extensions.get::<Session>().cloned();
        PageCtx::load(session.as_ref(), user.as_ref(), request_path(parts), true).await
    }
}

/// A store timestamp as shown on pages: `2026-11-25 07:41 UTC`.
pub fn fmt_time(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "—".into())
}

/// A store timestamp as RFC 3339, for JSON.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Bytes as people read them: `12.3 MB`.
pub fn fmt_bytes(bytes: i64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value.abs() >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A target duration in the unit people set it in: `24h`, `7d`, `30m`.
pub fn fmt_duration(d: std::time::Duration) -> String {
    match d.as_secs() {
        s if s >= 2 * 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Seconds as a short age: `45s`, `12m`, `3h`, `5d`.
pub fn fmt_age(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages_read_well() {
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(12_345_678), "12.3 MB");
        assert_eq!(fmt_age(59), "59s");
        assert_eq!(fmt_age(7200), "2h");
        assert_eq!(fmt_duration(std::time::Duration::from_secs(86_400)), "24h");
        assert_eq!(fmt_duration(std::time::Duration::from_secs(7 * 86_400)), "7d");
    }
}
