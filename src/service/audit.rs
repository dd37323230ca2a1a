//! The audit log: one row per mutating action or sign-in event, with its
//! outcome. Append-only: this module can add rows and read them, nothing else.

use std::future::Future;

pub use crate::domain::AuditAction;
use crate::error::{AppError, AppResult};
use crate::service::Actor;
use crate::store::audit::{self as rows, AuditRow, Filter, NewEntry};
use crate::store::{Store, now};

/// Every action name the panel writes, for the audit page's filter: the
/// texts of [`AuditAction`], in its order.
pub const ACTIONS: &[&str] = &AuditAction::NAMES;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Denied,
    Throttled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
            Outcome::Throttled => "throttled",
        }
    }

    fn of(result: &AppError) -> Outcome {
        match result {
            AppError::Forbidden { .. } => Outcome::Denied,
            AppError::Throttled { .. } => Outcome::Throttled,
            _ => Outcome::Failure,
        }
    }
}

/// What one audit row says, besides who and when.
#[derive(Debug)]
pub struct Event<'a> {
    pub action: AuditAction,
    pub target: &'a str,
    pub database: Option<&'a str>,
    pub detail: &'a str,
}

/// Append one row.
pub async fn record(store: &Store, actor: &Actor, event: Event<'_>, outcome: Outcome) -> AppResult<()> {
    let entry = NewEntry {
        at: now(),
        actor_id: actor.user_id,
        actor: &actor.name,
        via: actor.via.as_str(),
        action: event.action.as_str(),
        target: event.target,
        database_name: event.database,
        outcome: outcome.as_str(),
        detail: event.detail,
        client_addr: &actor.client,
    };
    rows::insert(store.pool(), &entry).await?;
    Ok(())
}

/// Run a mutating action and write exactly one row with its outcome. A
/// failure's row carries the user-facing message, never a driver error.
pub async fn audited<T, F>(store: &Store, actor: &Actor, event: Event<'_>, action: F) -> AppResult<T>
where
    F: Future<Output = AppResult<T>>,
{
    let result = action.await;
    let (outcome, detail) = match &result {
        Ok(_) => (Outcome::Success, event.detail.to_string()),
        Err(AppError::Internal(_)) => (Outcome::Failure, "internal error".to_string()),
        Err(e) => (Outcome::of(e), e.to_string()),
    };
    let action_name = event.action;
    let event = Event {
        detail: &detail,
        ..event
    };
    if let Err(e) = record(store, actor, event, outcome).await {
        // The action has already happened (or failed); say loudly that its
        // row is missing rather than hide the action's own result.
        tracing::error!(error = ?e, action = action_name.as_str(), "could not write the audit row");
    }
    result
}

/// One page of the log.
pub struct Page {
    pub rows: Vec<AuditRow>,
    /// Id to pass as `before` for older rows, if there are any.
    pub older: Option<i64>,
    /// Id to pass as `after` for newer rows, if there are any.
    pub newer: Option<i64>,
}

pub const PAGE_SIZE: i64 = 50;

/// Read a page; `filter.limit` is set here. Asks for one row more than the
/// page to know whether another page exists in the direction of travel.
pub async fn search(store: &Store, mut filter: Filter) -> AppResult<Page> {
    filter.limit = PAGE_SIZE + 1;
    let mut rows = rows::search(store.pool(), &filter).await?;
    let walking_newer = filter.before_id.is_none() && filter.after_id.is_some();
    let more = rows.len() as i64 > PAGE_SIZE;
    if more {
        if walking_newer {
            rows.remove(0);
        } else {
            rows.pop();
        }
    }
    let (first, last) = (rows.first().map(|r| r.id), rows.last().map(|r| r.id));
    let older = if walking_newer || more { last } else { None };
    let newer = if filter.before_id.is_some() || (walking_newer && more) {
        first
    } else {
        None
    };
    Ok(Page { rows, older, newer })
}
