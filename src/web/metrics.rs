//! `GET /metrics` for Prometheus. Readable with a bearer token (the
//! configured `metrics_token`, or any active user's API token) or from an
//! address in `metrics_allow`; anyone else gets a 401 with a JSON error.
//! `auth::is_api_path` counts it as a machine path: bearer tokens are
//! resolved as for the API, cookies are not, errors are never a redirect.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::service::monitoring::prometheus;
use crate::web::AppState;
use crate::web::auth::{ClientAddr, CurrentUser};

/// Any active user's API token (resolved as for the API), the configured
/// metrics token, or an allowed client address.
fn allowed(state: &AppState, user: Option<&CurrentUser>, headers: &HeaderMap, client: &str) -> bool {
    if user.is_some() {
        return true;
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let (Some(token), Some(expected)) = (bearer, &state.config.metrics_token)
        && bool::from(expected.expose_secret().as_bytes().ct_eq(token.as_bytes()))
    {
        return true;
    }
    client
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| state.config.metrics_allow.iter().any(|net| net.contains(&ip)))
}

pub async fn metrics(
    State(state): State<AppState>,
    user: Option<CurrentUser>,
    client: ClientAddr,
    headers: HeaderMap,
) -> Response {
    if !allowed(&state, user.as_ref(), &headers, &client.0) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({ "error": "metrics need a bearer token or an allowed address (metrics_token, metrics_allow)" })),
        )
            .into_response();
    }
    match prometheus::exposition(&state.monitor).await {
        Ok(body) => ([(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)], body).into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "cannot build the metrics exposition");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": "metrics are unavailable; see the panel's log" })),
            )
                .into_response()
        }
    }
}
