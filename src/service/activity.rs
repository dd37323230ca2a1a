//! Active queries: one shared activity sample per database per interval
//! (single-flight: however many people watch, the database sees one catalog
//! query), the summary and blocking tree built from it, filters, and cancel
//! and terminate with their checks and audit rows.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use crate::domain::Role;
use crate::engine::{ActivitySample, Session, SessionLookup, Signal, Statement, StatementOrder};
use crate::error::{AppError, AppResult};
use crate::service::Actor;
use crate::service::audit::{Event, Outcome, record};
use crate::service::fleet::{Member, Snapshot};
use crate::service::users::require;
use crate::store::Store;

/// The activity of `member`, at most `ttl` old: one shared sample however
/// many people watch (see [`Member::activity_sample`]).
pub async fn sample(member: &Member, ttl: Duration) -> Result<Snapshot, String> {
    member.activity_sample(ttl).await
}

/// Filters from the page's URL; `None` means "any".
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub state: Option<String>,
    pub min_seconds: Option<f64>,
    pub user: Option<String>,
    pub text: Option<String>,
    /// Show the panel's own connections too (hidden by default: they are
    /// its catalog reads, not the database's work).
    pub own: bool,
}

impl Filter {
    pub fn matches(&self, s: &Session) -> bool {
        let state_ok = self
            .state
            .as_deref()
            .is_none_or(|want| s.state.as_deref() == Some(want));
        let age = s.query_age_s.or(s.xact_age_s).unwrap_or(0.0);
        let age_ok = self.min_seconds.is_none_or(|min| age >= min);
        let user_ok = self.user.as_deref().is_none_or(|u| s.user.as_deref() == Some(u));
        let text_ok = self.text.as_deref().is_none_or(|t| {
            let t = t.to_lowercase();
            s.query.as_deref().is_some_and(|q| q.to_lowercase().contains(&t))
        });
        (self.own || !s.own) && state_ok && age_ok && user_ok && text_ok
    }
}

/// The figures above the table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Sessions of this database by state, most first (not the panel's own).
    pub by_state: Vec<(String, i64)>,
    pub total: i64,
    /// The panel's own connections to this database (not in `total`).
    pub own: i64,
    pub server_connections: Option<i64>,
    pub max_connections: Option<i64>,
    pub idle_in_transaction: i64,
    /// (pid, seconds) of the longest-running active query.
    pub longest_query: Option<(i64, f64)>,
    /// (pid, seconds) of the oldest open transaction.
    pub longest_transaction: Option<(i64, f64)>,
}

pub fn summarize(sample: &ActivitySample) -> Summary {
    let mut by_state: BTreeMap<String, i64> = BTreeMap::new();
    for s in sample.sessions.iter().filter(|s| !s.own) {
        *by_state
            .entry(s.state.clone().unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
    }
    let mut by_state: Vec<(String, i64)> = by_state.into_iter().collect();
    by_state.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let longest = |age: fn(&Session) -> Option<f64>| {
        sample
            .sessions
            .iter()
            .filter(|s| !s.own)
            .filter_map(|s| age(s).map(|a| (s.pid, a)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    };
    Summary {
        total: sample.sessions.iter().filter(|s| !s.own).count() as i64,
        own: sample.sessions.iter().filter(|s| s.own).count() as i64,
        server_connections: sample.server_connections,
        max_connections: sample.max_connections,
        idle_in_transaction: sample
            .sessions
            .iter()
            .filter(|s| !s.own)
            .filter(|s| {
                s.state
                    .as_deref()
                    .is_some_and(|st| st.starts_with("idle in transaction"))
            })
            .count() as i64,
        longest_query: longest(|s| {
            if s.state.as_deref() == Some("active") {
                s.query_age_s
            } else {
                None
            }
        }),
        longest_transaction: longest(|s| s.xact_age_s),
        by_state,
    }
}

/// The blocking chains as a tree from each root blocker (a session that
/// blocks others and waits on nobody here): `(depth, session)` in display
/// order. Sessions in no chain are left out.
pub fn blocking_tree(sample: &ActivitySample) -> Vec<(usize, Session)> {
    let by_pid: BTreeMap<i64, &Session> = sample.sessions.iter().map(|s| (s.pid, s)).collect();
    let mut children: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for s in &sample.sessions {
        for blocker in &s.blocked_by {
            children.entry(*blocker).or_default().push(s.pid);
        }
    }
    let waits_here = |s: &Session| s.blocked_by.iter().any(|b| by_pid.contains_key(b));
    let mut roots: Vec<i64> = children
        .keys()
        .filter(|pid| by_pid.get(pid).is_some_and(|s| !waits_here(s)))
        .copied()
        .collect();
    // A deadlock has no root: show it from its lowest pid.
    if roots.is_empty()
        && let Some(first) = children.keys().find(|p| by_pid.contains_key(p))
    {
        roots.push(*first);
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    fn walk(
        pid: i64,
        depth: usize,
        by_pid: &BTreeMap<i64, &Session>,
        children: &BTreeMap<i64, Vec<i64>>,
        seen: &mut HashSet<i64>,
        out: &mut Vec<(usize, Session)>,
    ) {
        if !seen.insert(pid) {
            return;
        }
        if let Some(s) = by_pid.get(&pid) {
            out.push((depth, (*s).clone()));
        }
        for child in children.get(&pid).into_iter().flatten() {
            walk(*child, depth + 1, by_pid, children, seen, out);
        }
    }
    for root in roots {
        walk(root, 0, &by_pid, &children, &mut seen, &mut out);
    }
    out
}

/// The answer to a cancel or terminate, in plain words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalOutcome {
    pub ok: bool,
    pub message: String,
}

/// How much of the running query an audit row keeps.
const AUDIT_QUERY_CHARS: usize = 1000;

/// Cancel or terminate session `pid` of `member`. Checks first that the
/// session exists in this database and is not the panel's own; every
/// attempt writes one audit row carrying the query that was running.
pub async fn signal(
    store: &Store,
    member: &Member,
    actor: &Actor,
    pid: i64,
    signal: Signal,
) -> AppResult<SignalOutcome> {
    let database = member.entry.name.to_string();
    let target = format!("pid:{pid}");
    let action = match signal {
        Signal::Cancel => crate::domain::AuditAction::SessionCancel,
        Signal::Terminate => crate::domain::AuditAction::SessionTerminate,
    };
    let mut query_text = String::new();
    let result = async {
        require(actor, Role::Operator)?;
        if !member.capabilities().cancel {
            return Err(AppError::invalid(format!(
                "{} has no sessions to {}",
                member.entry.engine.label(),
                signal.verb()
            )));
        }
        let db = member.db().map_err(AppError::invalid)?;
        let found = db
            .session(pid)
            .await
            .map_err(|e| AppError::invalid(format!("cannot reach {database}: {e}")))?
            .ok_or_else(|| AppError::not_found(format!("There is no session with pid {pid}.")))?;
        query_text = found.query.clone().unwrap_or_default();
        if !found.in_database {
            return Err(AppError::not_found(format!(
                "Session {pid} belongs to another database, not {database}."
            )));
        }
        if found.own {
            let done = match signal {
                Signal::Cancel => "cancelled",
                Signal::Terminate => "terminated",
            };
            return Err(AppError::forbidden(format!(
                "Session {pid} is one of the panel's own connections; it cannot be {done} here."
            )));
        }
        // Cancel stops a running query; an idle session has none, and one
        // idle in a transaction keeps its locks until it is terminated.
        match (signal, found.state.as_deref()) {
            (Signal::Cancel, Some("idle")) => {
                return Ok(SignalOutcome {
                    ok: false,
                    message: format!("Nothing to cancel: the query on pid {pid} had already finished."),
                });
            }
            (Signal::Cancel, Some(state)) if state.starts_with("idle in transaction") => {
                return Ok(SignalOutcome {
                    ok: false,
                    message: format!(
                        "Nothing to cancel: pid {pid} is {state}, running no query. Terminate it to end its transaction and free its locks."
                    ),
                });
            }
            _ => {}
        }
        let done = db
            .signal(pid, signal)
            .await
            .map_err(|e| AppError::invalid(format!("{database} refused: {e}")))?;
        member.activity.invalidate().await;
        Ok(if !done {
            SignalOutcome {
                ok: false,
                message: format!("Session {pid} had already ended."),
            }
        } else if signal == Signal::Cancel {
            SignalOutcome {
                ok: true,
                message: format!("Cancelled the query on pid {pid}."),
            }
        } else {
            SignalOutcome {
                ok: true,
                message: format!("Terminated session {pid}."),
            }
        })
    }
    .await;
    let query: String = query_text.chars().take(AUDIT_QUERY_CHARS).collect();
    let (outcome, said) = match &result {
        Ok(o) if o.ok => (Outcome::Success, String::new()),
        Ok(o) => (Outcome::Failure, o.message.clone()),
        Err(e @ AppError::Forbidden { .. }) => (Outcome::Denied, e.to_string()),
        Err(AppError::Internal(_)) => (Outcome::Failure, "internal error".into()),
        Err(e) => (Outcome::Failure, e.to_string()),
    };
    let detail = match (said.is_empty(), query.is_empty()) {
        (_, true) => said,
        (true, false) => format!("query: {query}"),
        (false, false) => format!("{said} query: {query}"),
    };
    let event = Event {
        action,
        target: &target,
        database: Some(&database),
        detail: &detail,
    };
    record(store, actor, event, outcome).await?;
    result
}

/// The session `pid` of `member`'s database, read live for the terminate
/// page (time-boxed; refused while the database is down or slow). A
/// session of another database on the same server is not found.
pub async fn session(member: &Member, pid: i64) -> AppResult<SessionLookup> {
    member
        .read(|db| async move { db.session(pid).await })
        .await
        .map_err(|e| AppError::invalid(format!("cannot read the session: {e}")))?
        .filter(|s| s.in_database)
        .ok_or_else(|| {
            AppError::not_found(format!(
                "There is no session with pid {pid} in {}.",
                member.entry.name
            ))
        })
}

/// Top statements, or why there are none.
pub enum TopStatements {
    Rows(Vec<Statement>),
    /// pg_stat_statements is not installed in this database.
    NotInstalled,
    Unavailable(String),
}

pub async fn top_statements(member: &Member, order: StatementOrder) -> TopStatements {
    match member
        .read(|db| async move { db.top_statements(order, 25).await })
        .await
    {
        Ok(Some(rows)) => TopStatements::Rows(rows),
        Ok(None) => TopStatements::NotInstalled,
        Err(e) => TopStatements::Unavailable(e),
    }
}

/// pg_stat_statements_reset() (admin), audited.
pub async fn reset_statements(store: &Store, member: &Member, actor: &Actor) -> AppResult<()> {
    let database = member.entry.name.to_string();
    let event = Event {
        action: crate::domain::AuditAction::StatementsReset,
        target: &database,
        database: Some(&database),
        detail: "",
    };
    crate::service::audit::audited(store, actor, event, async {
        require(actor, Role::Admin)?;
        let db = member.db().map_err(AppError::invalid)?;
        db.reset_statements()
            .await
            .map_err(|e| AppError::invalid(format!("cannot reset statistics: {e}")))
    })
    .await
}
