//! `GET /metrics` for Prometheus. Readable with a bearer token (the
//! configured `metrics_token`, or any active user's API token) or from an
//! address in `metrics_allow`; anyone else gets a 401 with a JSON error
//! (never the sign-in redirect pages get: a scraper cannot sign in).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::service::monitoring::prometheus;
use crate::service::tokens;
use crate::web::AppState;
use crate::web::auth::ClientAddr;

async fn allowed(state: &AppState, headers: &HeaderMap, client: &str) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some(token) = bearer {
        if let Some(expected) = &state.config.metrics_token
            && bool::from(expected.expose_secret().as_bytes().ct_eq(token.as_bytes()))
        {
            return true;
        }
        if matches!(tokens::authenticate(&state.store, token).await, Ok(Some(_))) {
            return true;
        }
    }
    client
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| state.config.metrics_allow.iter().any(|net| net.contains(&ip)))
}

pub async fn metrics(State(state): State<AppState>, client: ClientAddr, headers: HeaderMap) -> Response {
    if !allowed(&state, &headers, &client.0).await {
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
