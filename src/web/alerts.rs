//! `/alerts`: what is firing now (firing first), silences in force, the
//! history of alerts that fired, and the webhooks that hear about them with
//! their recent deliveries. Operators acknowledge and silence; admins add
//! and remove webhooks.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::response::Redirect;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tower_sessions::Session;

use crate::domain::{AlertId, DatabaseName};
use crate::error::{AppError, AppResult};
use crate::format::{fmt_age, fmt_time};
use crate::service::monitoring::alerts::{self, AlertView};
use crate::service::monitoring::notify::{self, DeliveryView, WebhookView};
use crate::store::alerts::{AlertEvent, AlertState, DeliveryState, RuleKey, SilenceRow};
use crate::web::AppState;
use crate::web::auth::{Admin, Operator, Viewer};
use crate::web::page::{PageCtx, flash};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(page))
        .route("/alerts/{id}/ack", post(ack))
        .route("/alerts/silences", post(silence))
        .route("/alerts/silences/{id}/end", post(end_silence))
        .route("/alerts/webhooks", post(add_webhook))
        .route("/alerts/webhooks/{id}/delete", post(remove_webhook))
}

/// The lengths a silence can be given in the forms.
pub const SILENCE_CHOICES: &[(&str, &str)] = &[
    ("1h", "1 hour"),
    ("4h", "4 hours"),
    ("24h", "1 day"),
    ("7d", "7 days"),
];

/// One alert as the tables show it.
pub struct AlertLine {
    pub id: i64,
    pub database: String,
    pub rule: RuleKey,
    pub title: &'static str,
    pub state: AlertState,
    /// Firing (not pending, not resolved): marked as a failure.
    pub firing: bool,
    pub message: String,
    /// The statement behind it, if any.
    pub query: String,
    pub started: String,
    pub fired: String,
    pub resolved: String,
    pub lasted: String,
    pub acked: String,
    pub silenced: String,
}

impl From<&AlertView> for AlertLine {
    fn from(v: &AlertView) -> Self {
        let a = &v.row;
        let now = v.as_of;
        AlertLine {
            id: a.id,
            database: a.database_name.clone(),
            rule: a.rule,
            title: v.title,
            state: a.state,
            firing: a.state == AlertState::Firing,
            message: a.message.clone(),
            query: a.query.clone().unwrap_or_default(),
            started: format!("{} ago", fmt_age(now - a.started_at)),
            fired: a.fired_at.map(fmt_time).unwrap_or_default(),
            resolved: a.resolved_at.map(fmt_time).unwrap_or_default(),
            lasted: match (a.fired_at, a.resolved_at) {
                (Some(f), Some(r)) => fmt_age(r - f),
                (Some(f), None) => format!("{} so far", fmt_age(now - f)),
                _ => String::new(),
            },
            acked: match (&a.acked_by, a.acked_at) {
                (Some(by), Some(at)) => format!("{by}, {} ago", fmt_age(now - at)),
                _ => String::new(),
            },
            silenced: v
                .silenced_until
                .map(|u| format!("for {}", fmt_age(u - now)))
                .unwrap_or_default(),
        }
    }
}

pub struct SilenceLine {
    pub id: i64,
    pub database: String,
    pub rule: String,
    pub left: String,
    pub reason: String,
    pub by: String,
}

impl SilenceLine {
    fn of(s: &SilenceRow, now: i64) -> Self {
        SilenceLine {
            id: s.id,
            database: s.database_name.clone(),
            rule: s.rule.map_or("all rules", RuleKey::as_str).to_string(),
            left: fmt_age(s.until_at - now),
            reason: s.reason.clone(),
            by: s.created_by.clone(),
        }
    }
}

pub struct DeliveryLine {
    pub webhook: String,
    pub event: AlertEvent,
    pub alert_id: i64,
    pub state: DeliveryState,
    /// The state's look: succeeded, failed or queued.
    pub badge: &'static str,
    pub attempts: i64,
    pub when: String,
    pub error: String,
}

impl DeliveryLine {
    fn of(d: &DeliveryView, now: i64) -> Self {
        DeliveryLine {
            webhook: d.webhook.clone(),
            event: d.row.event,
            alert_id: d.row.alert_id,
            state: d.row.state,
            badge: match d.row.state {
                DeliveryState::Delivered => "succeeded",
                DeliveryState::Failed => "failed",
                DeliveryState::Pending => "queued",
            },
            attempts: d.row.attempts,
            when: match (d.row.state, d.row.delivered_at) {
                (DeliveryState::Delivered, Some(at)) => format!("delivered {} ago", fmt_age(now - at)),
                (DeliveryState::Pending, _) => format!("next try in {}", fmt_age(d.row.next_at - now)),
                _ => format!("queued {} ago", fmt_age(now - d.row.created_at)),
            },
            error: d.row.last_error.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "alerts/index.html")]
struct AlertsPage {
    ctx: PageCtx,
    open: Vec<AlertLine>,
    history: Vec<AlertLine>,
    silences: Vec<SilenceLine>,
    webhooks: Vec<WebhookView>,
    deliveries: Vec<DeliveryLine>,
    silence_choices: &'static [(&'static str, &'static str)],
    /// A refused webhook form: why, and the name, URL and format typed.
    webhook_refused: Option<(String, WebhookForm)>,
}

async fn page(State(state): State<AppState>, Viewer(_): Viewer, ctx: PageCtx) -> AppResult<AlertsPage> {
    build(&state, ctx).await
}

async fn build(state: &AppState, ctx: PageCtx) -> AppResult<AlertsPage> {
    let board = alerts::board(&state.store, None, 100).await?;
    let now = board.as_of;
    Ok(AlertsPage {
        ctx,
        open: board.open.iter().map(AlertLine::from).collect(),
        history: board.history.iter().map(AlertLine::from).collect(),
        silences: board.silences.iter().map(|s| SilenceLine::of(s, now)).collect(),
        webhooks: notify::webhooks(&state.monitor).await?,
        deliveries: notify::deliveries(&state.monitor, 30)
            .await?
            .iter()
            .map(|d| DeliveryLine::of(d, now))
            .collect(),
        silence_choices: SILENCE_CHOICES,
        webhook_refused: None,
    })
}

/// An id from the path: anything but a positive number names nothing.
fn path_id(raw: &str, what: &str) -> AppResult<i64> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::not_found(format!("There is no {what} {raw:?}.")))
}

/// Where a form sends the user back to: this page, or the database's
/// monitoring tab (built here, never taken from the form as a URL).
fn back(to: &str, database: Option<&str>) -> Redirect {
    match (to, database.and_then(|d| DatabaseName::parse(d).ok())) {
        ("monitoring", Some(name)) => Redirect::to(&format!("/databases/{name}/monitoring")),
        _ => Redirect::to("/alerts"),
    }
}

#[derive(Deserialize)]
struct BackForm {
    #[serde(default)]
    back: String,
}

async fn ack(
    State(state): State<AppState>,
    Operator(me): Operator,
    session: Session,
    id: AlertId,
    Form(form): Form<BackForm>,
) -> AppResult<Redirect> {
    let alert = alerts::acknowledge(&state.store, &me.actor(), id.get()).await?;
    flash(&session, "ok", format!("Acknowledged: {}", alert.message)).await?;
    Ok(back(&form.back, Some(&alert.database_name)))
}

#[derive(Deserialize)]
struct SilenceForm {
    database: String,
    /// Empty: every rule of the database.
    #[serde(default)]
    rule: String,
    duration: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
}

/// A duration from a form or the API: `1h`, `4h`, `24h`, `7d`, `90m`, ….
pub(crate) fn silence_length(raw: &str) -> AppResult<std::time::Duration> {
    humantime::parse_duration(raw.trim())
        .map_err(|_| AppError::invalid(format!("{raw:?} is not a duration such as 1h or 7d")))
}

async fn silence(
    State(state): State<AppState>,
    Operator(me): Operator,
    session: Session,
    Form(form): Form<SilenceForm>,
) -> AppResult<Redirect> {
    let name = DatabaseName::parse(&form.database)
        .ok()
        .filter(|n| state.fleet.get(n).is_some())
        .ok_or_else(|| AppError::invalid(format!("no database named {:?}", form.database)))?;
    let rule = Some(form.rule.trim()).filter(|r| !r.is_empty());
    let length = silence_length(&form.duration)?;
    alerts::silence(&state.store, &me.actor(), &name, rule, length, form.reason.trim()).await?;
    flash(
        &session,
        "ok",
        format!(
            "Notifications for {} on {name} are silenced for {}.",
            rule.unwrap_or("every rule"),
            crate::format::fmt_duration(length)
        ),
    )
    .await?;
    Ok(back(&form.back, Some(name.as_str())))
}

async fn end_silence(
    State(state): State<AppState>,
    Operator(me): Operator,
    session: Session,
    Path(id): Path<String>,
) -> AppResult<Redirect> {
    alerts::unsilence(&state.store, &me.actor(), path_id(&id, "silence")?).await?;
    flash(&session, "ok", "The silence has ended.").await?;
    Ok(Redirect::to("/alerts"))
}

#[derive(Default, Deserialize)]
struct WebhookForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    format: String,
}

async fn add_webhook(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    ctx: PageCtx,
    headers: axum::http::HeaderMap,
    Form(form): Form<WebhookForm>,
) -> AppResult<axum::response::Response> {
    use axum::response::IntoResponse;
    match notify::add_webhook(&state.monitor, &me.actor(), &form.name, &form.url, &form.format).await {
        Ok(_) => {
            flash(&session, "ok", format!("Webhook {} added.", form.name.trim())).await?;
            Ok(Redirect::to("/alerts").into_response())
        }
        // The page again, the reason beside the form, what was typed kept.
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_))) if !headers.contains_key("hx-request") => {
            let status = match e {
                AppError::Conflict(_) => axum::http::StatusCode::CONFLICT,
                _ => axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            };
            let mut page = build(&state, ctx).await?;
            let typed = WebhookForm {
                name: form.name.chars().take(64).collect(),
                url: form.url.chars().take(2000).collect(),
                format: form.format.chars().take(20).collect(),
            };
            page.webhook_refused = Some((e.to_string(), typed));
            Ok((status, page).into_response())
        }
        Err(e) => Err(e),
    }
}

async fn remove_webhook(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Path(id): Path<String>,
) -> AppResult<Redirect> {
    notify::remove_webhook(&state.monitor, &me.actor(), path_id(&id, "webhook")?).await?;
    flash(&session, "ok", "Webhook removed.").await?;
    Ok(Redirect::to("/alerts"))
}
