//! CSRF protection for every state-changing browser request: the session
//! holds a random token; forms send it as the `csrf_token` field and htmx as
//! the `X-CSRF-Token` header (set once on `<body hx-headers>`). A missing or
//! wrong token is a 403 before any handler runs, so nothing changes. So is
//! a request whose `Origin` header names another site (or is `null`): the
//! panel's own origin is the request's `Host`, or `public_url` behind a
//! proxy. A request without `Origin` goes on to the token check, as older
//! clients send none.
//! `/api/` is exempt: it authenticates with bearer tokens, never cookies.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;
use tower_sessions::Session;
use url::Url;

use crate::error::{AppError, AppResult};
use crate::service::tokens::random_secret;
use crate::web::auth::{is_api_path, keys};
use crate::web::{AppState, BODY_LIMIT};

pub const FORM_FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";

/// The session's token, made on first use.
pub async fn token(session: &Session) -> AppResult<String> {
    if let Some(token) = session.get::<String>(keys::CSRF).await? {
        return Ok(token);
    }
    let token = random_secret(32);
    session.insert(keys::CSRF, &token).await?;
    Ok(token)
}

/// A fresh token, e.g. at sign-in when the session's privileges change.
pub async fn rotate(session: &Session) -> AppResult<()> {
    session.insert(keys::CSRF, random_secret(32)).await?;
    Ok(())
}

fn rejected() -> AppError {
    AppError::forbidden(
        "This form has expired or did not come from this panel (missing or wrong CSRF token). \
         Reload the page and try again.",
    )
}

fn cross_site_refused() -> AppError {
    AppError::forbidden(
        "This request came from another site (its Origin is not this panel's), so it was refused \
         (CSRF protection).",
    )
}

/// Did a page of another site send this request? Only `Origin` can say.
fn cross_site(headers: &HeaderMap, authority: Option<&str>, public_url: Option<&str>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Some(origin) = origin.to_str().ok().and_then(|o| Url::parse(o).ok()) else {
        return true; // `null` (sandboxed or privacy-masked) or garbage
    };
    let scheme = origin.scheme().to_string();
    if !matches!(scheme.as_str(), "http" | "https") {
        return true;
    }
    let origin = origin.origin();
    if public_url
        .and_then(|u| Url::parse(u).ok())
        .is_some_and(|u| u.origin() == origin)
    {
        return false;
    }
    // Host has no scheme: take the Origin's, so host and port (with the
    // scheme's default) are what is compared. A Host with more than an
    // authority in it matches nothing.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(authority);
    let same = host.is_some_and(|host| {
        Url::parse(&format!("{scheme}://{host}/"))
            .is_ok_and(|u| u.origin() == origin && u.path() == "/" && u.username().is_empty())
    });
    !same
}

pub async fn verify(
    State(state): State<AppState>,
    session: Session,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || is_api_path(request.uri().path()) {
        return Ok(next.run(request).await);
    }
    if cross_site(
        request.headers(),
        request.uri().authority().map(|a| a.as_str()),
        state.config.public_url.as_deref(),
    ) {
        return Err(cross_site_refused());
    }
    let expected = session.get::<String>(keys::CSRF).await?.ok_or_else(rejected)?;

    let from_header = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (request, provided) = match from_header {
        Some(token) => (request, Some(token)),
        None if is_form(&request) => {
            // Read the form to find the field, then hand the same bytes on.
            let (parts, body) = request.into_parts();
            let bytes = to_bytes(body, BODY_LIMIT).await.map_err(|_| {
                AppError::TooLarge(format!("the request body is larger than {BODY_LIMIT} bytes"))
            })?;
            let token = form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == FORM_FIELD)
                .map(|(_, v)| v.into_owned());
            (Request::from_parts(parts, Body::from(bytes)), token)
        }
        None => (request, None),
    };
    match provided {
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) => Ok(next.run(request).await),
        _ => Err(rejected()),
    }
}

fn is_form(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}
