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
    vacuum: When,
    autovacuum: When,
    analyze: When,
    autoanalyze: When,
    needs_vacuum: bool,
    never_analyzed: bool,
    storage_engine: String,
    data_free: String,
    autovacuum_disabled: bool,
    /// Estimated bloat: "10.6 MB (87%)"; empty before ANALYZE.
    bloat: String,
    /// Worth a VACUUM FULL / pg_repack: over 30% of the table and 1 MB (the
    /// estimate ignores padding between columns, so it errs high).
    bloated: bool,
}

/// When something last ran, as an age ("12m ago, 3×") with the time
/// itself for a tooltip: short enough that the table fits a laptop.
pub(super) struct When {
    short: String,
    full: String,
}

fn when(t: Option<i64>, count: Option<i64>) -> When {
    let times = match count {
        Some(c) if c > 0 => format!(", {c}×"),
        _ => String::new(),
    };
    match t {
        Some(t) => When {
            short: format!("{} ago{times}", crate::format::fmt_age(crate::clock::now() - t)),
            full: fmt_time(t),
        },
        None if !times.is_empty() => When {
            short: format!("earlier{times}"),
            full: "counted since the statistics were reset".into(),
        },
        None => When {
            short: "never".into(),
            full: String::new(),
        },
    }
}

fn opt_bytes(v: Option<i64>) -> String {
    v.map(fmt_bytes).unwrap_or_default()
}

fn table_row(t: TableHealth) -> TableRow {
    let share = match (t.bloat_bytes, t.table_bytes) {
        (Some(b), Some(size)) if size > 0 => Some(b as f64 * 100.0 / size as f64),
        _ => None,
    };
    TableRow {
        bloat: match (t.bloat_bytes, share) {
            (Some(b), Some(p)) => format!("{} ({p:.0}%)", fmt_bytes(b)),
            (Some(b), None) => fmt_bytes(b),
            _ => String::new(),
        },
        bloated: matches!((t.bloat_bytes, share), (Some(b), Some(p)) if b >= 1_000_000 && p >= 30.0),
        autovacuum_disabled: t.autovacuum_disabled,
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
    /// The autovacuum settings with what each value means.
    settings: Vec<SettingRow>,
    /// Transaction-id ages as a share of the wraparound limit.
    xid_ages: Vec<AgeRow>,
    oldest_tables: Vec<AgeRow>,
    /// Why autovacuum cannot run on this server, when it cannot.
    autovacuum_off: Option<String>,
    /// When the figures were read (live, time-boxed).
    read_at: String,
    error: Option<String>,
    /// The form as it was sent when it was refused: why, and what was
    /// chosen, selected and typed (kept, so nothing is lost).
    refused: Option<String>,
    chosen: Sent,
}

/// One autovacuum setting: its value in units people read, and what it
/// means when the raw value does not say (`-1`, `0`, `off`).
pub(super) struct SettingRow {
    name: String,
    value: String,
    meaning: String,
    /// Turns autovacuum (or part of it) off.
    danger: bool,
}

/// `value` is "setting unit" as pg_settings gives it; `all` the others, to
/// name what a `-1` falls back to.
fn setting_row(name: &str, value: &str, all: &[(String, String)]) -> SettingRow {
    let raw = value.split_once(' ').map_or(value, |(r, _)| r);
    let shown = |name: &str| {
        all.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| readable(v))
            .unwrap_or_default()
    };
    let fallback = |other: &str| format!("uses {other} ({})", shown(other));
    let (meaning, danger) = match (name, raw) {
        ("autovacuum", "off") => ("autovacuum is off on this server: no table is vacuumed or analyzed unless someone runs it; transaction-id wraparound still forces an anti-wraparound vacuum".to_string(), true),
        ("track_counts", "off") => ("autovacuum cannot tell which tables need it".to_string(), true),
        ("autovacuum_work_mem", "-1") => (fallback("maintenance_work_mem"), false),
        ("autovacuum_vacuum_cost_limit", "-1") => (fallback("vacuum_cost_limit"), false),
        ("autovacuum_vacuum_cost_delay", "-1") => (fallback("vacuum_cost_delay"), false),
        ("log_autovacuum_min_duration", "-1") => ("autovacuum runs are not logged".to_string(), false),
        ("log_autovacuum_min_duration", "0") => ("every autovacuum run is logged".to_string(), false),
        ("autovacuum_vacuum_insert_threshold", "-1") => ("inserts alone never trigger a vacuum".to_string(), false),
        ("vacuum_cost_delay", "0") => ("a manual VACUUM is not throttled".to_string(), false),
        ("autovacuum_freeze_max_age", _) => (
            format!(
                "an anti-wraparound vacuum is forced at this age ({:.1}% of the limit)",
                raw.parse::<f64>().unwrap_or(0.0) * 100.0 / XID_LIMIT as f64
            ),
            false,
        ),
        _ => (String::new(), false),
    };
    SettingRow {
        name: name.to_string(),
        value: readable(value),
        meaning,
        danger,
    }
}

/// "65536 kB" → "64 MB", "2000 ms" → "2 s": a pg_settings value and unit
/// as people read them; anything else as it is.
fn readable(value: &str) -> String {
    let Some((raw, unit)) = value.split_once(' ') else {
        return value.to_string();
    };
    let Ok(n) = raw.parse::<i64>() else {
        return value.to_string();
    };
    if n < 0 {
        return raw.to_string();
    }
    let kib = |k: i64| match k {
        k if k >= 1024 * 1024 && k % (1024 * 1024) == 0 => format!("{} GB", k / (1024 * 1024)),
        k if k >= 1024 && k % 1024 == 0 => format!("{} MB", k / 1024),
        k => format!("{k} kB"),
    };
    match unit {
        "kB" => kib(n),
        "8kB" => kib(n * 8),
        "MB" => kib(n * 1024),
        "ms" => crate::format::fmt_ms(n),
        "s" => crate::format::fmt_ms(n * 1000),
        "min" => crate::format::fmt_ms(n * 60_000),
        _ => value.to_string(),
    }
}

/// Transaction ids wrap around at 2^31: PostgreSQL stops accepting writes
/// a few million before.
const XID_LIMIT: i64 = 1 << 31;

/// A transaction-id age beside its share of the wraparound limit.
pub(super) struct AgeRow {
    name: String,
    age: String,
    /// 0–100.
    pct: f64,
    level: &'static str,
}

impl AgeRow {
    fn of(name: &str, age: i64) -> AgeRow {
        let pct = (age as f64 * 100.0 / XID_LIMIT as f64).clamp(0.0, 100.0);
        AgeRow {
            name: name.to_string(),
            age: group_thousands(age),
            pct,
            level: match pct {
                p if p >= 50.0 => "red",
                p if p >= 25.0 => "amber",
                _ => "green",
            },
        }
    }

    fn pct_text(&self) -> String {
        match self.pct {
            p if p > 0.0 && p < 0.1 => "< 0.1%".into(),
            p => format!("{p:.1}%"),
        }
    }
}

/// 123456789 → "123,456,789".
fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
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
        settings: Vec::new(),
        xid_ages: Vec::new(),
        oldest_tables: Vec::new(),
        autovacuum_off: None,
        read_at: fmt_time(crate::clock::now()),
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
        Ok(Figures::Database(h)) => {
            page.settings = h
                .settings
                .iter()
                .map(|(k, v)| setting_row(k, v, &h.settings))
                .collect();
            page.autovacuum_off = page
                .settings
                .iter()
                .find(|r| r.danger && (r.name == "autovacuum" || r.name == "track_counts"))
                .map(|r| r.meaning.clone());
            page.xid_ages = h.xid_ages.iter().map(|(n, a)| AgeRow::of(n, *a)).collect();
            page.oldest_tables = h.oldest_tables.iter().map(|(n, a)| AgeRow::of(n, *a)).collect();
            page.health = h;
        }
        Ok(Figures::Tables(list)) => {
            page.autovacuum_off = list.autovacuum_off;
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
