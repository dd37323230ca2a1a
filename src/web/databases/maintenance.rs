//! The maintenance page of a database: tables (sorted and paged on the
//! server), indexes, database-wide figures, and the form that starts
//! VACUUM / ANALYZE / REINDEX / … as a job.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, RawForm, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::DbView;
use crate::engine::{Action, DatabaseHealth, IndexHealth, TableHealth, TableQuery, TableSort};
use crate::error::{AppError, AppResult};
use crate::service::maintenance::{self, Figures, FiguresOf, Request};
use crate::web::AppState;
use crate::web::auth::{Operator, Viewer};
use crate::web::page::{PageCtx, fmt_bytes, fmt_time};
use crate::web::path::Db;

const PAGE: i64 = 50;
const INDEX_LIMIT: i64 = 500;

#[derive(Clone, Debug, Default, Deserialize)]
pub(super) struct MaintQuery {
    #[serde(default)]
    tab: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    dir: String,
    #[serde(default)]
    q: String,
    page: Option<i64>,
}

pub(super) struct TableRow {
    /// What the form sends: `oid:N` on PostgreSQL, else `schema.table`.
    key: String,
    name: String,
    total: String,
    table: String,
    index: String,
    toast: String,
    live: String,
    dead: String,
    dead_pct: String,
    vacuum: String,
    autovacuum: String,
    analyze: String,
    autoanalyze: String,
    needs_vacuum: bool,
    never_analyzed: bool,
    storage_engine: String,
    data_free: String,
}

fn when(t: Option<i64>, count: Option<i64>) -> String {
    match (t, count) {
        (Some(t), Some(c)) => format!("{} ({c}×)", fmt_time(t)),
        (Some(t), None) => fmt_time(t),
        (None, Some(c)) if c > 0 => format!("({c}×)"),
        _ => "never".into(),
    }
}

fn opt_bytes(v: Option<i64>) -> String {
    v.map(fmt_bytes).unwrap_or_default()
}

fn table_row(t: TableHealth) -> TableRow {
    TableRow {
        key: match t.oid {
            Some(oid) => format!("oid:{oid}"),
            None => format!("{}.{}", t.schema, t.name),
        },
        dead_pct: t.dead_pct().map(|p| format!("{p:.1}%")).unwrap_or_default(),
        name: format!("{}.{}", t.schema, t.name),
        total: opt_bytes(t.total_bytes),
        table: opt_bytes(t.table_bytes),
        index: opt_bytes(t.index_bytes),
        toast: opt_bytes(t.toast_bytes),
        live: t.live_tuples.map(|v| v.to_string()).unwrap_or_default(),
        dead: t.dead_tuples.map(|v| v.to_string()).unwrap_or_default(),
        vacuum: when(t.last_vacuum, t.vacuum_count),
        autovacuum: when(t.last_autovacuum, t.autovacuum_count),
        analyze: when(t.last_analyze, t.analyze_count),
        autoanalyze: when(t.last_autoanalyze, t.autoanalyze_count),
        needs_vacuum: t.needs_vacuum,
        never_analyzed: t.never_analyzed && t.oid.is_some(),
        storage_engine: t.storage_engine.unwrap_or_default(),
        data_free: opt_bytes(t.data_free),
    }
}

pub(super) struct IndexRow {
    key: String,
    name: String,
    table: String,
    size: String,
    scans: String,
    flags: Vec<&'static str>,
    duplicate_of: String,
    definition: String,
}

fn index_row(i: IndexHealth) -> IndexRow {
    let mut flags = Vec::new();
    if !i.valid {
        flags.push("invalid");
    }
    if i.unused {
        flags.push("unused");
    }
    if i.duplicate_of.is_some() {
        flags.push("duplicate");
    }
    if i.primary {
        flags.push("primary key");
    } else if i.unique {
        flags.push("unique");
    }
    IndexRow {
        key: i.oid.map(|o| format!("oid:{o}")).unwrap_or_default(),
        name: format!("{}.{}", i.schema, i.name),
        table: i.table,
        size: opt_bytes(i.bytes),
        scans: i.scans.map(|s| s.to_string()).unwrap_or_default(),
        flags,
        duplicate_of: i.duplicate_of.unwrap_or_default(),
        definition: i.definition,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "databases/maintenance.html")]
pub(super) struct MaintenancePage {
    ctx: PageCtx,
    db: DbView,
    /// Tables, indexes or database.
    view_tab: &'static str,
    view: MaintQuery,
    sort: &'static str,
    descending: bool,
    actions: Vec<(&'static str, &'static str)>,
    tables: Vec<TableRow>,
    total: i64,
    page: i64,
    pages: i64,
    indexes: Vec<IndexRow>,
    health: DatabaseHealth,
    error: Option<String>,
    /// The form as it was sent when it was refused: why, and what was
    /// chosen, selected and typed (kept, so nothing is lost).
    refused: Option<String>,
    chosen: Sent,
}

/// What the maintenance form sent.
#[derive(Clone, Debug, Default)]
pub(super) struct Sent {
    action: String,
    tables: Vec<String>,
    whole: bool,
    confirm: String,
}

impl MaintenancePage {
    /// Was the table with this form key selected when the form was refused?
    fn selected(&self, key: &str) -> bool {
        self.chosen.tables.iter().any(|t| t == key)
    }

    /// Selected tables that are not on this page of the list (sent again, hidden).
    fn selected_elsewhere(&self) -> Vec<&String> {
        self.chosen
            .tables
            .iter()
            .filter(|t| !self.tables.iter().any(|r| &r.key == *t))
            .collect()
    }

    /// A link to this tab with one thing changed.
    fn link(&self, sort: &str, descending: bool, page: i64) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("tab", self.view_tab);
        q.append_pair("sort", sort);
        q.append_pair("dir", if descending { "desc" } else { "asc" });
        if !self.view.q.trim().is_empty() {
            q.append_pair("q", self.view.q.trim());
        }
        q.append_pair("page", &page.to_string());
        format!("?{}", q.finish())
    }

    /// The header link for a sortable column: toggles direction when it is
    /// already the sort.
    fn sort_link(&self, sort: &str) -> String {
        let descending = if self.sort == sort {
            !self.descending
        } else {
            sort != "name"
        };
        self.link(sort, descending, 1)
    }

    fn page_link(&self, page: i64) -> String {
        self.link(self.sort, self.descending, page)
    }

    fn showing(&self, tab: &str) -> bool {
        self.view_tab == tab
    }
}

pub(super) async fn page(
    Viewer(_): Viewer,
    Db(m): Db,
    Query(view): Query<MaintQuery>,
    ctx: PageCtx,
) -> AppResult<MaintenancePage> {
    Ok(build(&m, view, ctx).await)
}

async fn build(m: &crate::service::fleet::Member, view: MaintQuery, ctx: PageCtx) -> MaintenancePage {
    let caps = m.capabilities();
    let tab = match view.tab.as_str() {
        "indexes" if caps.index_health => "indexes",
        "database" => "database",
        _ => "tables",
    };
    let sort = TableSort::parse(&view.sort);
    let descending = view.dir != "asc";
    let page_no = view.page.unwrap_or(1).clamp(1, 1_000_000);
    let mut page = MaintenancePage {
        ctx,
        db: DbView::of(m),
        view_tab: tab,
        sort: sort.as_str(),
        descending,
        actions: maintenance::actions(m)
            .into_iter()
            .map(|a| (a.as_str(), a.label()))
            .collect(),
        tables: Vec::new(),
        total: 0,
        page: page_no,
        pages: 1,
        indexes: Vec::new(),
        health: DatabaseHealth::default(),
        error: None,
        refused: None,
        chosen: Sent::default(),
        view,
    };
    let search = Some(page.view.q.trim().to_string()).filter(|s| !s.is_empty());
    let of = match tab {
        "indexes" => FiguresOf::Indexes { limit: INDEX_LIMIT },
        "database" => FiguresOf::Database,
        _ => FiguresOf::Tables(TableQuery {
            sort,
            descending,
            search,
            offset: (page_no - 1) * PAGE,
            limit: PAGE,
        }),
    };
    match maintenance::figures(m, of).await {
        Ok(Figures::Indexes(ix)) => page.indexes = ix.into_iter().map(index_row).collect(),
        Ok(Figures::Database(h)) => page.health = h,
        Ok(Figures::Tables(list)) => {
            page.total = list.total;
            page.pages = ((list.total + PAGE - 1) / PAGE).max(1);
            page.tables = list.rows.into_iter().map(table_row).collect();
        }
        Err(e) => page.error = Some(e),
    }
    page
}

/// Start a maintenance job from the form: `action`, any number of
/// `tables`, or `whole`; `index` for REINDEX of one index; `confirm` for
/// VACUUM FULL.
pub(super) async fn run(
    State(state): State<AppState>,
    Operator(me): Operator,
    Db(m): Db,
    ctx: PageCtx,
    RawForm(body): RawForm,
) -> AppResult<Response> {
    let mut action = None;
    let mut req = Request::default();
    let mut sent = Sent::default();
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "action" => {
                action = Action::parse(&v);
                sent.action = v.chars().take(40).collect();
            }
            "tables" if !v.is_empty() => req.tables.push(v.into_owned()),
            "index" if !v.is_empty() => req.index = Some(v.into_owned()),
            "whole" => req.whole_database = !v.is_empty() && v != "false",
            "confirm" if !v.is_empty() => req.confirm = Some(v.into_owned()),
            _ => {}
        }
    }
    sent.tables = req.tables.iter().take(1000).cloned().collect();
    sent.whole = req.whole_database;
    sent.confirm = req
        .confirm
        .clone()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let started = match action {
        Some(action) => maintenance::start(&state.jobs, &m, &me.actor(), action, req).await,
        None => Err(AppError::invalid("choose an action")),
    };
    match started {
        Ok(id) => Ok(Redirect::to(&format!("/jobs/{id}")).into_response()),
        // Refused: the page again with the reason beside the form, and
        // what was chosen, selected and typed still there.
        Err(AppError::Invalid(why) | AppError::Conflict(why)) if from_tables_form(&body) => {
            let mut page = build(&m, MaintQuery::default(), ctx).await;
            page.refused = Some(why);
            page.chosen = sent;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e),
    }
}

/// Sent by the tables form (not the indexes tab's one-index REINDEX button).
fn from_tables_form(body: &[u8]) -> bool {
    !form_urlencoded::parse(body).any(|(k, _)| k == "index")
}
