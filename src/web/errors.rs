//! Error responses in one place. Handlers and extractors return `AppError`,
//! whose response carries an `ErrorInfo`; axum's own rejections (bad form,
//! bad JSON, unknown route, wrong method) arrive as plain text. This
//! middleware turns both into what the client understands: `{"error": …}` for
//! `/api/`, an htmx fragment for htmx, a styled page for browsers, and a
//! redirect to sign-in for a page that needs it.

use std::any::Any;

use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::body::to_bytes;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use tower_sessions::Session;

use crate::domain::Role;
use crate::error::{AppError, ErrorInfo};
use crate::web::AppState;
use crate::web::auth::{CurrentUser, is_api_path};
use crate::web::page::PageCtx;

/// The full error page (404, 400, 403, 500 …) in the panel's layout.
#[derive(Template, WebTemplate)]
#[template(path = "errors/error.html")]
struct ErrorPage {
    ctx: PageCtx,
    status: u16,
    title: &'static str,
    message: String,
    needed: Option<Role>,
    signed_in: bool,
}

/// The same message as a fragment htmx swaps into the flash area.
#[derive(Template, WebTemplate)]
#[template(path = "errors/_error.html")]
struct ErrorFragment {
    title: &'static str,
    message: String,
}

/// Routes nobody defined.
pub async fn not_found() -> AppError {
    AppError::not_found("There is no page at this address.")
}

/// A handler panicked: answer an opaque 500 (the panic is logged).
pub fn panicked(err: Box<dyn Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = detail, "handler panicked");
    AppError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

fn title(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "Bad request",
        StatusCode::UNAUTHORIZED => "Sign-in required",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
        StatusCode::CONFLICT => "Conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "Request too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported content type",
        StatusCode::UNPROCESSABLE_ENTITY => "Invalid input",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        s if s.is_server_error() => "Something went wrong",
        _ => "Error",
    }
}

fn is_rendered(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html") || ct.starts_with("application/json"))
}

/// An error response that did not come from `AppError` (an axum rejection or
/// a framework status): keep its status, take its text as the message for a
/// client error, never for a server error.
async fn info_from_plain(response: Response) -> ErrorInfo {
    let status = response.status();
    let message = if status.is_client_error() {
        let bytes = to_bytes(response.into_body(), 4096).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        match status {
            StatusCode::NOT_FOUND if text.is_empty() => "There is no page at this address.".into(),
            StatusCode::METHOD_NOT_ALLOWED => "This address does not accept that method.".into(),
            _ if text.is_empty() => title(status).to_string(),
            _ => text,
        }
    } else {
        "Something went wrong on our side. It has been logged.".into()
    };
    ErrorInfo {
        status,
        message,
        needed: None,
    }
}

pub async fn render(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request
        .extensions()
        .get::<OriginalUri>()
        .map(|u| u.0.clone())
        .unwrap_or_else(|| request.uri().clone());
    let api = is_api_path(path.path());
    // After signing in, return to a page: a form's POST address is not one.
    let return_to = match *request.method() {
        Method::GET | Method::HEAD => path.path_and_query().map(|pq| pq.as_str().to_string()),
        _ => None,
    }
    .unwrap_or_else(|| "/".into());
    let htmx = request.headers().contains_key("hx-request");
    let session = request.extensions().get::<Session>().cloned();
    let (mut parts, _) = Request::new(()).into_parts();
    parts.extensions = request.extensions().clone();
    parts.headers = request.headers().clone();
    parts.uri = path.clone();

    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // A 429 says when to come back, however it is rendered.
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let keep = |mut res: Response| {
        if let Some(v) = &retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, v.clone());
        }
        res
    };
    let info = match response.extensions().get::<ErrorInfo>() {
        Some(info) => info.clone(),
        // A handler's own page or JSON with an error status (a form shown
        // again with its error, say) is already what the client needs.
        None if is_rendered(&response) => return response,
        None => info_from_plain(response).await,
    };

    if api {
        let mut res = (info.status, Json(json!({ "error": info.message }))).into_response();
        if info.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        return keep(res);
    }

    if info.status == StatusCode::UNAUTHORIZED {
        let login = format!("/login?next={}", encode(&return_to));
        if htmx {
            let mut res = StatusCode::OK.into_response();
            if let Ok(v) = HeaderValue::from_str(&login) {
                res.headers_mut().insert("hx-redirect", v);
            }
            return res;
        }
        return Redirect::to(&login).into_response();
    }

    if htmx {
        let fragment = ErrorFragment {
            title: title(info.status),
            message: info.message,
        };
        let mut res = (info.status, fragment).into_response();
        res.headers_mut()
            .insert("hx-retarget", HeaderValue::from_static("#flash"));
        res.headers_mut()
            .insert("hx-reswap", HeaderValue::from_static("innerHTML"));
        return keep(res);
    }

    let user = <CurrentUser as axum::extract::OptionalFromRequestParts<AppState>>::from_request_parts(
        &mut parts, &state,
    )
    .await
    .ok()
    .flatten();
    let signed_in = user.is_some();
    let ctx = match PageCtx::load(session.as_ref(), user.as_ref(), path.path(), signed_in).await {
        Ok(ctx) => ctx,
        Err(_) => PageCtx {
            user: None,
            csrf: String::new(),
            flashes: Vec::new(),
            section: String::new(),
        },
    };
    let page = ErrorPage {
        signed_in: ctx.user.is_some(),
        ctx,
        status: info.status.as_u16(),
        title: title(info.status),
        message: info.message,
        needed: info.needed,
    };
    let mut res = (info.status, page).into_response();
    if info.status.is_server_error() {
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    keep(res)
}

/// Percent-encode a path for the `next` query parameter.
fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
