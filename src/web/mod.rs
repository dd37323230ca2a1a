//! The HTTP edge: the router, the middleware every request passes through,
//! and one module per area. Handlers extract, authorise (role extractors in
//! `auth`), call one service function and render; no SQL lives here.
//! Paths are typed (`path`: `{name}` is a registered database, ids are the
//! id types of `domain`), and web names engine and store types only, never
//! their functions (`tests/it/web_layering.rs` holds this).

mod account;
pub(crate) mod alerts;
mod api;
mod assets;
mod audit;
pub mod auth;
pub(crate) mod backups;
mod body_limit;
mod csrf;
mod databases;
mod errors;
mod jobs;
mod login;
mod metrics;
mod overview;
mod page;
pub mod path;
mod users;

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{HeaderName, HeaderValue, Request, header};
use axum::middleware;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::config::Config;
use crate::error::AppResult;
use crate::secrets::{MacKey, Secrets};
use crate::service::backup::Backups;
use crate::service::fleet::Fleet;
use crate::service::jobs::Jobs;
use crate::service::monitoring::Monitor;
use crate::service::registry::Registry;
use crate::service::throttle::Throttle;
use crate::store::{SessionBackend, Store};

/// Largest request body accepted. Forms and JSON here are small; a later
/// upload route can raise its own limit.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "custodian_session";

/// Everything a handler may need, shared by all requests.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub registry: Registry,
    pub fleet: Fleet,
    pub jobs: Jobs,
    pub backups: Backups,
    pub recovery: crate::service::recovery::Recovery,
    pub monitor: Monitor,
    /// The sign-in throttle's in-memory half (counts of refused attempts).
    pub throttle: Throttle,
    keys: OnceLock<Keys>,
}

/// MAC keys the web edge signs and recognises its own values with, derived
/// from the panel's secret key (so instances sharing it agree).
pub struct Keys {
    /// Signs the sign-in and setup forms' stateless CSRF tokens.
    pub sign_in_form: MacKey,
    /// Keys the hashes the sign-in throttle counts typed names under.
    pub sign_in_names: MacKey,
}

impl AppState {
    /// The pages' state over the panel's services.
    pub fn new(config: Config, services: &crate::service::Services, monitor: Monitor) -> Self {
        AppState(Arc::new(Inner {
            config,
            store: services.store.clone(),
            registry: services.registry.clone(),
            fleet: services.fleet.clone(),
            jobs: services.jobs.clone(),
            backups: services.backups.clone(),
            recovery: services.recovery.clone(),
            monitor,
            throttle: Throttle::default(),
            keys: OnceLock::new(),
        }))
    }

    /// The MAC keys, derived from the secret key on first use (the server
    /// has loaded, and if need be created, the key before any request).
    pub fn keys(&self) -> AppResult<&Keys> {
        if let Some(keys) = self.keys.get() {
            return Ok(keys);
        }
        let secrets = Secrets::load(&self.config)?;
        let keys = Keys {
            sign_in_form: secrets.mac_key("sign-in form token"),
            sign_in_names: secrets.mac_key("sign-in throttle names"),
        };
        Ok(self.keys.get_or_init(|| keys))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl FromRef<AppState> for Store {
    fn from_ref(state: &AppState) -> Store {
        state.store.clone()
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application: pages, API, assets and the middleware stack.
pub fn router(state: AppState, sessions: SessionBackend) -> Router {
    let session_layer = SessionManagerLayer::new(sessions)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(state.config.secure_cookies)
        .with_expiry(Expiry::OnInactivity(
            time::Duration::try_from(state.config.session_idle_timeout).unwrap_or(time::Duration::hours(1)),
        ));

    let routes = Router::new()
        .route("/healthz", get(overview::healthz))
        .route("/static/{*path}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
        .route("/metrics", get(metrics::metrics))
        .merge(login::router())
        .merge(overview::router())
        .merge(databases::router())
        .merge(jobs::router())
        .merge(backups::router())
        .merge(alerts::router())
        .merge(users::router())
        .merge(account::router())
        .merge(audit::router())
        .nest("/api/v1", api::router())
        .fallback(errors::not_found);

    // Layers run outside-in from the bottom: request id, tracing, panic
    // catching, security headers, body limit, sessions, error rendering, a
    // declared body past the limit refused unread, then CSRF.
    routes
        .layer(middleware::from_fn_with_state(state.clone(), csrf::verify))
        .layer(middleware::from_fn(body_limit::refuse_oversized))
        .layer(middleware::from_fn_with_state(state.clone(), errors::render))
        .layer(session_layer)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // Pages show SQL, audit rows and tokens: no cache keeps them (assets
        // set their own, revalidated, policy).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(CatchPanicLayer::custom(errors::panicked))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req
                        .extensions()
                        .get::<RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or("-");
                    // The path only: query strings can carry secrets (the setup token).
                    tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// The CSP allows scripts and styles from this origin only: htmx is served
/// from /static and nothing is inline.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; \
                   frame-ancestors 'none'";
