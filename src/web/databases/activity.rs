//! The activity page of a database: a live table (htmx polling, with pause
//! and interval in the URL), the summary, the blocking tree, cancel and
//! terminate (operator), and the top statements page.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session as HttpSession;

use super::DbView;
use crate::domain::{Pid, Role};
use crate::engine::{Session, Signal, StatementOrder};
use crate::error::{AppError, AppResult};
use crate::service::activity::{self, Filter, Summary, TopStatements};
use crate::service::fleet::Member;
use crate::web::AppState;
use crate::web::auth::{Admin, Operator, Viewer};
use crate::web::csrf;
use crate::web::page::{PageCtx, flash, fmt_age};
use crate::web::path::Db;

/// Refresh intervals offered, in seconds. None is shorter than the shared
/// sample's default life (`activity_sample_ttl`, 2 s): a faster refresh
/// would only show the same sample again.
const INTERVALS: [u64; 4] = [2, 5, 10, 30];
const DEFAULT_INTERVAL: u64 = 2;
/// How much of a query the table shows before "more".
const SHORT_QUERY: usize = 120;

/// The page's state, all in the URL so a view can be shared.
#[derive(Clone, Debug, Default, Deserialize)]
pub(super) struct ActivityQuery {
    #[serde(default)]
    state: String,
    /// Minimum query or transaction age, seconds.
    #[serde(default)]
    min: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    q: String,
    /// Refresh interval, seconds.
    every: Option<u64>,
    #[serde(default)]
    paused: bool,
    /// Show the panel's own connections too.
    #[serde(default)]
    own: bool,
}

impl ActivityQuery {
    fn filter(&self) -> AppResult<Filter> {
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let min_seconds = match self.min.trim() {
            "" => None,
            raw => Some(
                raw.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| AppError::invalid("minimum duration must be a number of seconds"))?,
            ),
        };
        Ok(Filter {
            state: text(&self.state),
            min_seconds,
            user: text(&self.user),
            text: text(&self.q),
            own: self.own,
        })
    }

    /// A filter is set (the page shows the filters open on a phone).
    fn filtered(&self) -> bool {
        [&self.state, &self.min, &self.user, &self.q]
            .iter()
            .any(|v| !v.trim().is_empty())
            || self.own
    }

    fn interval(&self) -> u64 {
        self.every
            .filter(|e| INTERVALS.contains(e))
            .unwrap_or(DEFAULT_INTERVAL)
    }

    /// This view's query string, with `paused` as given.
    fn link(&self, paused: bool) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("state", &self.state),
            ("min", &self.min),
            ("user", &self.user),
            ("q", &self.q),
        ] {
            if !v.trim().is_empty() {
                q.append_pair(k, v.trim());
            }
        }
        q.append_pair("every", &self.interval().to_string());
        if self.own {
            q.append_pair("own", "true");
        }
        if paused {
            q.append_pair("paused", "true");
        }
        q.finish()
    }
}

/// One row of the table.
pub(super) struct Row {
    pid: i64,
    user: String,
    application: String,
    client: String,
    state: String,
    wait_event: String,
    query_short: String,
    query_full: String,
    /// What the age column says: the running query's age, or for a
    /// session idle in a transaction how long it has sat idle.
    query_age: String,
    xact_age: String,
    /// "", "warn" or "alert": the age's colour.
    age_class: &'static str,
    blocked_by: String,
    lock_mode: String,
    own: bool,
    /// Stable while the same query runs, so htmx keeps an expanded text open.
    key: String,
    depth: usize,
}

fn row(s: &Session, warn: f64, alert: f64, depth: usize) -> Row {
    let query = s.query.clone().unwrap_or_default();
    let idle_in_transaction = s
        .state
        .as_deref()
        .is_some_and(|st| st.starts_with("idle in transaction"));
    // Idle in a transaction: how long it has sat idle (holding its locks),
    // not how long ago its last query started.
    let shown_age = if idle_in_transaction {
        s.state_age_s
    } else {
        s.query_age_s
    };
    let age = shown_age.unwrap_or(0.0);
    let short: String = query.chars().take(SHORT_QUERY).collect();
    Row {
        pid: s.pid,
        user: s.user.clone().unwrap_or_default(),
        application: s.application.clone().unwrap_or_default(),
        client: s.client.clone().unwrap_or_default(),
        state: s.state.clone().unwrap_or_default(),
        wait_event: s.wait_event.clone().unwrap_or_default(),
        query_short: if short.len() < query.len() {
            format!("{short}…")
        } else {
            short
        },
        query_age: match shown_age {
            Some(a) if idle_in_transaction => format!("idle {}", fmt_age(a as i64)),
            Some(a) => fmt_age(a as i64),
            None => String::new(),
        },
        xact_age: s.xact_age_s.map(|a| fmt_age(a as i64)).unwrap_or_default(),
        age_class: match shown_age {
            Some(_) if age >= alert => "alert",
            Some(_) if age >= warn => "warn",
            _ => "",
        },
        blocked_by: s
            .blocked_by
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        lock_mode: s.lock_mode.clone().unwrap_or_default(),
        own: s.own,
        key: {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            query.hash(&mut h);
            format!("{}-{:x}", s.pid, h.finish())
        },
        query_full: query,
        depth,
    }
}

/// The live part of the page, also served alone to htmx's polling.
#[derive(Template, WebTemplate)]
#[template(path = "databases/_activity.html")]
pub(super) struct ActivityFragment {
    name: String,
    can_act: bool,
    error: Option<String>,
    summary: Summary,
    /// (pid, age) of the longest query and transaction, formatted.
    longest_query: Option<(i64, String)>,
    longest_transaction: Option<(i64, String)>,
    tree: Vec<Row>,
    rows: Vec<Row>,
    hidden: usize,
    /// The panel's own sessions are listed (the filter asks for them).
    show_own: bool,
    taken: String,
    poll: Option<u64>,
    self_link: String,
    /// This view's query string, for the forms' way back.
    self_query: String,
    csrf: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/activity.html")]
pub(super) struct ActivityPage {
    ctx: PageCtx,
    db: DbView,
    view: ActivityQuery,
    intervals: [u64; 4],
    pause_link: String,
    resume_link: String,
    /// The rendered live part (the same template htmx polls).
    live: String,
}

async fn fragment(
    state: &AppState,
    m: &Member,
    view: &ActivityQuery,
    can_act: bool,
    csrf: String,
) -> AppResult<ActivityFragment> {
    let name = &m.entry.name;
    let filter = view.filter()?;
    let (warn, alert) = (
        state.config.long_query_warn.as_secs_f64(),
        state.config.long_query_alert.as_secs_f64(),
    );
    let mut live = ActivityFragment {
        name: name.to_string(),
        can_act,
        error: None,
        summary: Summary::default(),
        longest_query: None,
        longest_transaction: None,
        tree: Vec::new(),
        rows: Vec::new(),
        hidden: 0,
        show_own: view.own,
        taken: String::new(),
        poll: (!view.paused).then(|| view.interval()),
        self_link: format!("/databases/{name}/activity?{}", view.link(view.paused)),
        self_query: view.link(view.paused),
        csrf,
    };
    match activity::sample(m, state.config.activity_sample_ttl).await {
        Ok(snapshot) => {
            let sample = &snapshot.sample;
            live.summary = activity::summarize(sample);
            let age = |l: Option<(i64, f64)>| l.map(|(pid, secs)| (pid, fmt_age(secs as i64)));
            live.longest_query = age(live.summary.longest_query);
            live.longest_transaction = age(live.summary.longest_transaction);
            live.tree = activity::blocking_tree(sample)
                .iter()
                .map(|(depth, s)| row(s, warn, alert, *depth))
                .collect();
            let shown: Vec<&Session> = sample.sessions.iter().filter(|s| filter.matches(s)).collect();
            live.hidden = sample.sessions.len() - shown.len();
            live.rows = shown.into_iter().map(|s| row(s, warn, alert, 0)).collect();
            live.taken = crate::web::page::fmt_time(snapshot.taken_at);
        }
        Err(e) => live.error = Some(e),
    }
    Ok(live)
}

pub(super) async fn page(
    State(state): State<AppState>,
    Viewer(me): Viewer,
    session: HttpSession,
    headers: HeaderMap,
    Db(m): Db,
    Query(view): Query<ActivityQuery>,
) -> AppResult<Response> {
    let name = &m.entry.name;
    let can_act = me.has(Role::Operator);
    let csrf = csrf::token(&session).await?;
    let live = fragment(&state, &m, &view, can_act, csrf).await?;
    // htmx's polling asks for the live part only; it must not take the
    // flash messages meant for the next full page.
    if headers.get("hx-target").is_some_and(|t| t == "activity") {
        return Ok(live.into_response());
    }
    let path = format!("/databases/{name}/activity");
    let ctx = PageCtx::load(Some(&session), Some(&me), &path, true).await?;
    let db = DbView::of(&m);
    Ok(ActivityPage {
        ctx,
        db,
        pause_link: format!("?{}", view.link(true)),
        resume_link: format!("?{}", view.link(false)),
        intervals: INTERVALS,
        view,
        live: live
            .render()
            .map_err(|e| anyhow::anyhow!("activity template: {e}"))?,
    }
    .into_response())
}

#[derive(Deserialize)]
pub(super) struct SignalForm {
    /// Terminate: the pid, typed by the user.
    #[serde(default)]
    confirm: String,
    /// The activity view to return to (its query string).
    #[serde(default)]
    back: String,
}

/// Back to the activity page, keeping the view; only a query string is
/// accepted from the form, never a path.
fn back_to(name: &str, back: &str) -> Redirect {
    let query: String = back
        .trim_start_matches('?')
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "=&%+-_.".contains(*c))
        .take(500)
        .collect();
    Redirect::to(&format!("/databases/{name}/activity?{query}"))
}

async fn signal_route(
    state: &AppState,
    me: &crate::web::auth::CurrentUser,
    session: &HttpSession,
    m: &Member,
    pid: Pid,
    form: &SignalForm,
    signal: Signal,
) -> AppResult<Redirect> {
    let pid = pid.get();
    if signal == Signal::Terminate && form.confirm.trim() != pid.to_string() {
        return Err(AppError::invalid(format!(
            "Type the pid ({pid}) to confirm terminating the session."
        )));
    }
    let outcome = activity::signal(&state.store, m, &me.actor(), pid, signal).await?;
    flash(session, if outcome.ok { "ok" } else { "error" }, outcome.message).await?;
    Ok(back_to(m.entry.name.as_str(), &form.back))
}

pub(super) async fn cancel(
    State(state): State<AppState>,
    Operator(me): Operator,
    session: HttpSession,
    Db(m): Db,
    pid: Pid,
    Form(form): Form<SignalForm>,
) -> AppResult<Redirect> {
    signal_route(&state, &me, &session, &m, pid, &form, Signal::Cancel).await
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/terminate.html")]
pub(super) struct TerminatePage {
    ctx: PageCtx,
    db: DbView,
    pid: i64,
    state: String,
    query: String,
    back: String,
    /// Why the last attempt was refused, and what was typed.
    error: Option<String>,
    typed: String,
}

#[derive(Deserialize)]
pub(super) struct BackQuery {
    #[serde(default)]
    back: String,
}

/// Terminate asks first, on its own page: the session's query, and a box
/// where the user types the pid.
pub(super) async fn terminate_page(
    Operator(_): Operator,
    Db(m): Db,
    pid: Pid,
    Query(q): Query<BackQuery>,
    ctx: PageCtx,
) -> AppResult<TerminatePage> {
    let pid = pid.get();
    let found = activity::session(&m, pid).await?;
    Ok(TerminatePage {
        ctx,
        db: DbView::of(&m),
        pid,
        state: found.state.unwrap_or_default(),
        query: found.query.unwrap_or_default(),
        back: q.back,
        error: None,
        typed: String::new(),
    })
}

pub(super) async fn terminate(
    State(state): State<AppState>,
    Operator(me): Operator,
    session: HttpSession,
    Db(m): Db,
    pid: Pid,
    ctx: PageCtx,
    Form(form): Form<SignalForm>,
) -> AppResult<Response> {
    match signal_route(&state, &me, &session, &m, pid, &form, Signal::Terminate).await {
        Ok(to) => Ok(to.into_response()),
        // A wrong confirmation: the same page again, the error beside the
        // box and what was typed in it.
        Err(AppError::Invalid(why)) => {
            let found = activity::session(&m, pid.get()).await?;
            let page = TerminatePage {
                ctx,
                db: DbView::of(&m),
                pid: pid.get(),
                state: found.state.unwrap_or_default(),
                query: found.query.unwrap_or_default(),
                back: form.back.clone(),
                error: Some(why),
                typed: form.confirm.chars().take(20).collect(),
            };
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub(super) struct TopQuery {
    #[serde(default)]
    order: String,
}

pub(super) struct StatementRow {
    query: String,
    calls: i64,
    total: String,
    mean: String,
    rows: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/top.html")]
pub(super) struct TopPage {
    ctx: PageCtx,
    db: DbView,
    order: &'static str,
    rows: Vec<StatementRow>,
    installed: bool,
    error: Option<String>,
}

fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.1} s", v / 1000.0)
    } else {
        format!("{v:.1} ms")
    }
}

pub(super) async fn top(
    Viewer(_): Viewer,
    Db(m): Db,
    Query(q): Query<TopQuery>,
    ctx: PageCtx,
) -> AppResult<TopPage> {
    let (order, key) = match q.order.as_str() {
        "mean" => (StatementOrder::MeanTime, "mean"),
        "calls" => (StatementOrder::Calls, "calls"),
        _ => (StatementOrder::TotalTime, "total"),
    };
    let mut page = TopPage {
        ctx,
        db: DbView::of(&m),
        order: key,
        rows: Vec::new(),
        installed: true,
        error: None,
    };
    match activity::top_statements(&m, order).await {
        TopStatements::Rows(rows) => {
            page.rows = rows
                .into_iter()
                .map(|s| StatementRow {
                    query: s.query,
                    calls: s.calls,
                    total: ms(s.total_ms),
                    mean: ms(s.mean_ms),
                    rows: s.rows,
                })
                .collect()
        }
        TopStatements::NotInstalled => page.installed = false,
        TopStatements::Unavailable(e) => page.error = Some(e),
    }
    Ok(page)
}

pub(super) async fn reset_top(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: HttpSession,
    Db(m): Db,
) -> AppResult<Redirect> {
    activity::reset_statements(&state.store, &m, &me.actor()).await?;
    flash(&session, "ok", "Statement statistics reset.").await?;
    Ok(Redirect::to(&format!("/databases/{}/activity/top", m.entry.name)))
}
