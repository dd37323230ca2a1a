//! A database's monitoring tab: charts of its samples over a chosen range
//! (drawn as SVG on the server), its open alerts with acknowledge and
//! silence (operator), and the alert rules' thresholds (admin edits).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::Redirect;
use serde::Deserialize;
use tower_sessions::Session;

use super::DbView;
use crate::clock::now;
use crate::error::{AppError, AppResult};
use crate::service::monitoring::alerts;
use crate::service::monitoring::charts::{self, Chart, Range};
use crate::service::monitoring::rules::{self, Setting, Unit};
use crate::web::AppState;
use crate::web::alerts::{AlertLine, SILENCE_CHOICES};
use crate::web::auth::{Admin, Viewer};
use crate::web::page::{PageCtx, flash};
use crate::web::path::Db;

/// One rule's row in the settings table.
pub struct RuleLine {
    pub key: &'static str,
    pub title: &'static str,
    pub why: &'static str,
    pub unit: &'static str,
    pub has_threshold: bool,
    pub enabled: bool,
    /// The threshold as typed into the form (plain number).
    pub threshold: String,
    /// The threshold as people read it.
    pub shown: String,
    pub for_seconds: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/monitoring.html")]
pub(super) struct MonitoringTab {
    ctx: PageCtx,
    db: DbView,
    range: &'static str,
    ranges: [&'static str; 4],
    charts: Vec<Chart>,
    width: f64,
    height: f64,
    sampled: String,
    alerts: Vec<AlertLine>,
    rules: Vec<RuleLine>,
    /// Admins get the rules as a form.
    admin: bool,
    silence_choices: &'static [(&'static str, &'static str)],
    /// A refused rule form: its rule, why, and the threshold and "for" typed.
    rule_refused: Option<(String, String, String, String)>,
}

impl MonitoringTab {
    /// Why this rule's form was refused, if it was.
    fn refused_why(&self, key: &str) -> Option<&str> {
        self.rule_refused
            .as_ref()
            .filter(|r| r.0 == key)
            .map(|r| r.1.as_str())
    }

    /// Why a form naming no rule shown here was refused.
    fn refused_elsewhere(&self) -> Option<&str> {
        self.rule_refused
            .as_ref()
            .filter(|x| !self.rules.iter().any(|r| r.key == x.0))
            .map(|x| x.1.as_str())
    }

    /// The threshold to show in the rule's box: as typed when refused.
    fn threshold_of<'a>(&'a self, r: &'a RuleLine) -> &'a str {
        match &self.rule_refused {
            Some(x) if x.0 == r.key => &x.2,
            _ => &r.threshold,
        }
    }

    /// The "for" seconds to show: as typed when refused.
    fn for_of(&self, r: &RuleLine) -> String {
        match &self.rule_refused {
            Some(x) if x.0 == r.key => x.3.clone(),
            _ => r.for_seconds.to_string(),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct RangeQuery {
    #[serde(default)]
    range: String,
}

pub(super) async fn page(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    Db(m): Db,
    Query(q): Query<RangeQuery>,
    ctx: PageCtx,
) -> AppResult<MonitoringTab> {
    build(&state, &m, &q, ctx).await
}

async fn build(
    state: &AppState,
    m: &crate::service::fleet::Member,
    q: &RangeQuery,
    ctx: PageCtx,
) -> AppResult<MonitoringTab> {
    let name = &m.entry.name;
    let at = now();
    let range = match Range::parse(&q.range) {
        Some(r) => r,
        None => charts::fitting_range(&state.store, name.as_str(), at).await?,
    };
    let every = state.config.sample_interval.as_secs() as i64;
    let charts = charts::charts(&state.store, name.as_str(), range, at, every).await?;
    let board = alerts::board(&state.store, Some(name.as_str()), 0).await?;
    let rules = alerts::settings(&state.monitor, name.as_str())
        .await?
        .into_iter()
        .map(|(rule, s)| RuleLine {
            key: rule.key,
            title: rule.title,
            why: rule.why,
            unit: rule.unit.label(),
            has_threshold: rule.unit != Unit::None,
            enabled: s.enabled,
            threshold: s.threshold.map(|t| format!("{t}")).unwrap_or_default(),
            shown: s.threshold.map(|t| rule.unit.show(t)).unwrap_or_default(),
            for_seconds: s.for_seconds,
        })
        .collect();
    let sampled = match state.monitor.latest(name) {
        Some(l) => match l.reading {
            Ok(_) => format!("sampled {}", crate::format::fmt_time(l.at)),
            Err(e) => format!("the last sample failed: {e}"),
        },
        None => "not sampled yet".into(),
    };
    Ok(MonitoringTab {
        admin: ctx.user.as_ref().is_some_and(|u| u.is_admin()),
        ctx,
        db: DbView::of(m),
        range: range.key(),
        ranges: Range::ALL.map(Range::key),
        charts,
        width: charts::WIDTH,
        height: charts::HEIGHT,
        sampled,
        alerts: board.open.iter().map(AlertLine::from).collect(),
        rules,
        silence_choices: SILENCE_CHOICES,
        rule_refused: None,
    })
}

#[derive(Deserialize)]
pub(super) struct RuleForm {
    rule: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    threshold: String,
    #[serde(default)]
    for_seconds: String,
}

/// Admin: change one rule's settings on this database.
pub(super) async fn set_rule(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Db(m): Db,
    ctx: PageCtx,
    headers: axum::http::HeaderMap,
    Form(form): Form<RuleForm>,
) -> AppResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let name = &m.entry.name;
    let saved = async {
        let threshold = match form.threshold.trim() {
            "" => None,
            t => Some(
                t.parse::<f64>()
                    .map_err(|_| AppError::invalid(format!("the threshold {t:?} is not a number")))?,
            ),
        };
        let for_seconds = match form.for_seconds.trim() {
            "" => 0,
            t => t
                .parse::<i64>()
                .map_err(|_| AppError::invalid(format!("\"for\" {t:?} is not a whole number of seconds")))?,
        };
        let setting = Setting {
            enabled: form.enabled.is_some(),
            threshold,
            for_seconds,
        };
        alerts::set_rule(&state.store, &me.actor(), name, &form.rule, setting).await
    }
    .await;
    match saved {
        Ok(()) => {
            let title = rules::find(&form.rule).map(|r| r.title).unwrap_or("");
            flash(&session, "ok", format!("{title}: saved for {name}.")).await?;
            Ok(Redirect::to(&format!("/databases/{name}/monitoring")).into_response())
        }
        // The tab again, the reason beside that rule, what was typed kept.
        Err(e @ AppError::Invalid(_)) if !headers.contains_key("hx-request") => {
            let mut tab = build(&state, &m, &RangeQuery { range: String::new() }, ctx).await?;
            tab.rule_refused = Some((
                form.rule.chars().take(64).collect(),
                e.to_string(),
                form.threshold.chars().take(40).collect(),
                form.for_seconds.chars().take(40).collect(),
            ));
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, tab).into_response())
        }
        Err(e) => Err(e),
    }
}
