//! The audit log page: filter by user, action, database and date range,
//! newest first, keyset-paginated. There is no route that changes the log.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::Deserialize;

use crate::error::{AppError, AppResult};
use crate::service::audit::{self, ACTIONS};
use crate::store::audit::{AuditRow, Filter};
use crate::web::AppState;
use crate::web::auth::Operator;
use crate::web::page::{PageCtx, fmt_time};

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(page))
}

/// Filters as they arrive in the query string (page and API alike). Empty
/// fields mean "any".
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub database: String,
    /// First day, `YYYY-MM-DD` (UTC), inclusive.
    #[serde(default)]
    pub from: String,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive.
    #[serde(default)]
    pub to: String,
    pub before: Option<i64>,
    pub after: Option<i64>,
}

fn day_start(raw: &str, field: &str) -> AppResult<Option<i64>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(raw, &format)
        .map_err(|_| AppError::invalid(format!("{field} must be a date like 2026-01-31")))?;
    Ok(Some(date.midnight().assume_utc().unix_timestamp()))
}

fn non_empty(s: &str, max: usize) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.chars().take(max).collect())
}

impl AuditQuery {
    pub fn filter(&self) -> AppResult<Filter> {
        let from = day_start(&self.from, "from")?;
        let until = day_start(&self.to, "to")?.map(|t| t + 86_400);
        if let (Some(f), Some(u)) = (from, until)
            && f >= u
        {
            return Err(AppError::invalid("from must not be after to"));
        }
        Ok(Filter {
            actor: non_empty(&self.user, 200),
            action: non_empty(&self.action, 100),
            database: non_empty(&self.database, 200),
            from,
            until,
            before_id: self.before,
            after_id: self.after,
            limit: 0,
        })
    }

    /// The query string for another page with the same filters.
    fn link(&self, before: Option<i64>, after: Option<i64>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("user", &self.user),
            ("action", &self.action),
            ("database", &self.database),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.trim().is_empty() {
                q.append_pair(k, v.trim());
            }
        }
        if let Some(b) = before {
            q.append_pair("before", &b.to_string());
        }
        if let Some(a) = after {
            q.append_pair("after", &a.to_string());
        }
        format!("/audit?{}", q.finish())
    }
}

struct RowView {
    at: String,
    actor: String,
    via: String,
    action: String,
    target: String,
    /// Where the target is: a job's page, a database's, a request's.
    target_link: Option<String>,
    database: String,
    database_link: Option<String>,
    outcome: String,
    detail: String,
    /// The detail as the row records it, when the page shows it in words.
    recorded: String,
    client: String,
}

impl From<AuditRow> for RowView {
    fn from(r: AuditRow) -> Self {
        let database = r.database_name.unwrap_or_default();
        let target_link = link_of(&r.target, &database);
        RowView {
            at: fmt_time(r.at),
            actor: r.actor,
            via: r.via,
            action: r.action,
            target: r.target,
            target_link,
            database_link: db_link(&database),
            database,
            outcome: r.outcome,
            recorded: String::new(),
            detail: r.detail,
            client: r.client_addr,
        }
    }
}

/// The page an audit target is about, when it has one: `job:N`, a
/// migration request, or the database itself.
fn link_of(target: &str, database: &str) -> Option<String> {
    if let Some(id) = target.strip_prefix("job:") {
        return id.parse::<i64>().ok().map(|id| format!("/jobs/{id}"));
    }
    if target.starts_with("request ") && !database.is_empty() {
        let id = target.trim_start_matches("request ").parse::<i64>().ok()?;
        return Some(format!("{}/migrations#request-{id}", db_link(database)?));
    }
    if !database.is_empty() && target == database {
        return db_link(database);
    }
    None
}

/// A registered database's page; `None` for a name that is not one.
fn db_link(database: &str) -> Option<String> {
    crate::domain::DatabaseName::parse(database)
        .ok()
        .map(|d| format!("/databases/{d}"))
}

/// What a job's audit rows are about, in words: "VACUUM FULL public.big on
/// shop" (the detail only names the kind's code, and job.end only the
/// outcome).
async fn describe_jobs(state: &AppState, rows: &mut [RowView]) {
    let mut seen: std::collections::HashMap<i64, Option<String>> = std::collections::HashMap::new();
    for r in rows.iter_mut() {
        let Some(id) = r.target.strip_prefix("job:").and_then(|i| i.parse::<i64>().ok()) else {
            continue;
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = seen.entry(id) {
            let what = state.jobs.get(id).await.ok().map(|j| {
                let on = j
                    .database_name
                    .as_deref()
                    .map(|d| format!(" on {d}"))
                    .unwrap_or_default();
                format!("{} {}{on}", j.kind.label(), j.target)
            });
            slot.insert(what);
        }
        if let Some(Some(what)) = seen.get(&id) {
            r.recorded = r.detail.clone();
            r.detail = match r.action.as_str() {
                "job.start" => what.clone(),
                _ if r.detail.is_empty() => what.clone(),
                _ => format!("{what}: {}", r.detail),
            };
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "audit/list.html")]
struct AuditPage {
    ctx: PageCtx,
    q: AuditQuery,
    actions: &'static [&'static str],
    rows: Vec<RowView>,
    older: Option<String>,
    newer: Option<String>,
}

async fn page(
    State(state): State<AppState>,
    Operator(_): Operator,
    ctx: PageCtx,
    Query(q): Query<AuditQuery>,
) -> AppResult<AuditPage> {
    let result = audit::search(&state.store, q.filter()?).await?;
    let mut rows: Vec<RowView> = result.rows.into_iter().map(RowView::from).collect();
    describe_jobs(&state, &mut rows).await;
    Ok(AuditPage {
        ctx,
        older: result.older.map(|id| q.link(Some(id), None)),
        newer: result.newer.map(|id| q.link(None, Some(id))),
        rows,
        actions: ACTIONS,
        q,
    })
}
