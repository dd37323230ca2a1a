//! CSRF protection for every state-changing browser request, before any
//! handler runs (so a refusal is a 403 and nothing changes):
//!
//! - **Origin.** A request whose `Origin` header names another site (or is
//!   `null`) is refused. The panel's own origin is the request's `Host`, or
//!   `public_url` behind a proxy. A request without `Origin` goes on to the
//!   token check, as older clients send none.
//! - **Token.** Signed-in pages: the session holds a random token; forms
//!   send it as the `csrf_token` field and htmx as the `X-CSRF-Token` header
//!   (set once on `<body hx-headers>`). The sign-in and setup forms are shown
//!   to visitors with no session and must not make one (a flood of visitors
//!   would fill the store), so theirs is stateless: a random nonce in a
//!   SameSite=Strict cookie, and in the form a timestamp with an HMAC over
//!   nonce and timestamp. Another site can neither read the form's token nor
//!   send the cookie, so it cannot sign a victim into its own account. (A
//!   browser already signed in may send its session token there too.)
//!
//! `/api/` is exempt: it authenticates with bearer tokens, never cookies.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use tower_sessions::Session;
use tower_sessions::cookie::{Cookie, SameSite};
use url::Url;

use crate::clock::now;
use crate::error::{AppError, AppResult};
use crate::secrets::MacKey;
use crate::service::tokens::random_secret;
use crate::web::auth::{is_api_path, keys};
use crate::web::{AppState, BODY_LIMIT};

pub const FORM_FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";

/// The cookie holding the sign-in forms' nonce.
pub const SIGN_IN_COOKIE: &str = "custodian_signin";
/// How long a sign-in form (and its cookie) stays usable.
const SIGN_IN_FORM_TTL_SECS: i64 = 12 * 3600;
/// Instances' clocks may differ a little.
const CLOCK_SKEW_SECS: i64 = 60;

/// Pages whose forms carry the stateless token.
fn is_sign_in_form(path: &str) -> bool {
    matches!(path, "/login" | "/setup")
}

/// The sign-in form token for this request's page (a request extension,
/// read by `PageCtx`).
#[derive(Clone, Debug)]
pub struct SignInToken(pub String);

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

/// The browser's sign-in nonce, if its cookie holds a well-formed one.
fn cookie_nonce(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_string()))
        .filter_map(Result::ok)
        .find(|c| c.name() == SIGN_IN_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == 22 && URL_SAFE_NO_PAD.decode(v).is_ok_and(|b| b.len() == 16))
}

fn sign(key: &MacKey, nonce: &str, at: i64) -> String {
    let at = at.to_string();
    let tag = key.tag(&[b"sign-in form", nonce.as_bytes(), at.as_bytes()]);
    format!("{at}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Was `token` made by [`sign`] for this nonce, recently?
fn signed(key: &MacKey, nonce: &str, token: &str, now: i64) -> bool {
    let Some((at, tag)) = token.split_once('.') else {
        return false;
    };
    let (Ok(at_secs), Ok(tag)) = (at.parse::<i64>(), URL_SAFE_NO_PAD.decode(tag)) else {
        return false;
    };
    // The tag covers `at` as sent, so only the text that was signed passes.
    let fresh = at_secs <= now + CLOCK_SKEW_SECS && now - at_secs <= SIGN_IN_FORM_TTL_SECS;
    fresh && key.verify(&[b"sign-in form", nonce.as_bytes(), at.as_bytes()], &tag)
}

fn sign_in_cookie(nonce: String, secure: bool) -> HeaderValue {
    let cookie = Cookie::build((SIGN_IN_COOKIE, nonce))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(time::Duration::seconds(SIGN_IN_FORM_TTL_SECS))
        .build();
    HeaderValue::from_str(&cookie.to_string()).expect("a cookie of base64 text is a header value")
}

/// The token a state-changing request carries: the header, or the form field.
async fn provided_token(request: Request) -> AppResult<(Request, Option<String>)> {
    let from_header = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(match from_header {
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
    })
}

pub async fn verify(
    State(state): State<AppState>,
    session: Session,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let path = request.uri().path().to_string();
    if is_api_path(&path) {
        return Ok(next.run(request).await);
    }
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe
        && cross_site(
            request.headers(),
            request.uri().authority().map(|a| a.as_str()),
            state.config.public_url.as_deref(),
        )
    {
        return Err(cross_site_refused());
    }
    let sign_in = is_sign_in_form(&path);
    let browser_nonce = if sign_in {
        cookie_nonce(request.headers())
    } else {
        None
    };

    let mut request = request;
    if !safe {
        let (checked, provided) = provided_token(request).await?;
        request = checked;
        // The sign-in forms take their stateless token, or (for a browser
        // that is signed in already) the session's; other forms only that.
        let ok = match &provided {
            None => false,
            Some(token) => {
                let stateless = match (&browser_nonce, sign_in) {
                    (Some(nonce), true) => signed(&state.keys()?.sign_in_form, nonce, token, now()),
                    _ => false,
                };
                stateless
                    || session
                        .get::<String>(keys::CSRF)
                        .await?
                        .is_some_and(|expected| bool::from(token.as_bytes().ct_eq(expected.as_bytes())))
            }
        };
        if !ok {
            return Err(rejected());
        }
    }
    if !sign_in {
        return Ok(next.run(request).await);
    }

    // A sign-in page: a token for its form, and the nonce cookie (kept if
    // the browser has one, so several open tabs all work; its lifetime is
    // renewed with each form).
    let nonce = browser_nonce.unwrap_or_else(|| random_secret(16));
    let token = sign(&state.keys()?.sign_in_form, &nonce, now());
    request.extensions_mut().insert(SignInToken(token));
    let mut response = next.run(request).await;
    response.headers_mut().append(
        header::SET_COOKIE,
        sign_in_cookie(nonce, state.config.secure_cookies),
    );
    Ok(response)
}

fn is_form(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}
