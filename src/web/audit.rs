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
    database: String,
    outcome: String,
    detail: String,
    client: String,
}

impl From<AuditRow> for RowView {
    fn from(r: AuditRow) -> Self {
        RowView {
            at: fmt_time(r.at),
            actor: r.actor,
            via: r.via,
            action: r.action,
            target: r.target,
            database: r.database_name.unwrap_or_default(),
            outcome: r.outcome,
            detail: r.detail,
            client: r.client_addr,
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
    Ok(AuditPage {
        ctx,
        older: result.older.map(|id| q.link(Some(id), None)),
        newer: result.newer.map(|id| q.link(None, Some(id))),
        rows: result.rows.into_iter().map(RowView::from).collect(),
        actions: ACTIONS,
        q,
    })
}
