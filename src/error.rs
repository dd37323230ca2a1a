//! The one error type. Services return `AppError`; handlers pass it up with
//! `?`. Which variant to use:
//! - `Invalid`: the user's input is wrong in a way they can fix (422);
//! - `BadRequest`: the request itself is malformed (400);
//! - `NotFound`, `Conflict`, `Forbidden`, `Throttled`: say so plainly;
//! - `Unauthorized`: not signed in, or a bad API token;
//! - `Internal`: anything unexpected. The client sees an opaque 500; the cause
//!   is logged once, inside the request's span (which carries its request id).
//!
//! `into_response` only attaches an [`ErrorInfo`]; `web::errors` renders it as
//! an HTML page, an htmx fragment or JSON, depending on who asked.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::domain::Role;

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Invalid(String),
    #[error("sign-in required")]
    Unauthorized,
    #[error("{message}")]
    Forbidden { message: String, needed: Option<Role> },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts; the answer carries `Retry-After`.
    #[error("{message}")]
    Throttled { message: String, retry_after_secs: u64 },
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        AppError::Invalid(msg.into())
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        AppError::NotFound(msg.into())
    }

    pub fn conflict(msg: impl Into<String>) -> Self {
        AppError::Conflict(msg.into())
    }

    pub fn needs_role(role: Role) -> Self {
        AppError::Forbidden {
            message: format!("This needs the {role} role."),
            needed: Some(role),
        }
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        AppError::Forbidden {
            message: msg.into(),
            needed: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        AppError::Internal(anyhow::Error::new(err).context("store query failed"))
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(err: tower_sessions::session::Error) -> Self {
        AppError::Internal(anyhow::Error::new(err).context("session store failed"))
    }
}

/// What the renderer needs to know about an error. Carried as a response
/// extension from `AppError::into_response` to `web::errors::render`.
#[derive(Clone, Debug)]
pub struct ErrorInfo {
    pub status: StatusCode,
    /// Safe to show to the user: never a driver message.
    pub message: String,
    pub needed: Option<Role>,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            AppError::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                "Something went wrong on our side. It has been logged.".to_string()
            }
            other => other.to_string(),
        };
        let needed = match &self {
            AppError::Forbidden { needed, .. } => *needed,
            _ => None,
        };
        let info = ErrorInfo {
            status,
            message,
            needed,
        };
        let mut response = status.into_response();
        if let AppError::Throttled { retry_after_secs, .. } = &self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, (*retry_after_secs).into());
        }
        response.extensions_mut().insert(info);
        response
    }
}
