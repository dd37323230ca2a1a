//! Alerts as pages and the API read them: open ones (firing first) with
//! whether a silence covers them, recent history, silences in force.

use std::collections::HashMap;

use super::silenced_by;
use crate::error::AppResult;
use crate::service::monitoring::rules;
use crate::store::alerts::{self as rows, AlertRow, AlertState, SilenceRow};
use crate::store::{Store, now};

/// One alert for pages and the API, with whether a silence covers it.
#[derive(Clone, Debug)]
pub struct AlertView {
    pub row: AlertRow,
    pub title: &'static str,
    pub silenced_until: Option<i64>,
    /// When it was read: the ages pages show count from here.
    pub as_of: i64,
}

/// Open alerts (firing first) and recent history.
pub struct Board {
    pub open: Vec<AlertView>,
    pub history: Vec<AlertView>,
    pub silences: Vec<SilenceRow>,
    /// When it was read.
    pub as_of: i64,
}

/// The board of every database, or of one; `history` alerts that fired,
/// newest first (none for 0).
pub async fn board(store: &Store, database: Option<&str>, history: i64) -> AppResult<Board> {
    let pool = store.pool();
    let as_of = now();
    let silences = rows::silences(pool, as_of).await?;
    let view = |row: AlertRow| AlertView {
        title: rules::rule(row.rule).title(),
        silenced_until: silenced_by(&silences, &row.database_name, row.rule).map(|s| s.until_at),
        row,
        as_of,
    };
    let open: Vec<AlertView> = rows::open(pool)
        .await?
        .into_iter()
        .filter(|a| database.is_none_or(|d| a.database_name == d))
        .map(view)
        .collect();
    let history = if history > 0 {
        rows::recent(pool, database, history)
            .await?
            .into_iter()
            .map(view)
            .collect()
    } else {
        Vec::new()
    };
    let silences = silences
        .into_iter()
        .filter(|s| database.is_none_or(|d| s.database_name == d))
        .collect();
    Ok(Board {
        open,
        history,
        silences,
        as_of,
    })
}

/// Firing alerts per database, for the overview.
pub async fn firing_counts(store: &Store) -> AppResult<HashMap<String, usize>> {
    let mut counts = HashMap::new();
    for a in rows::open(store.pool()).await? {
        if a.state == AlertState::Firing {
            *counts.entry(a.database_name).or_insert(0) += 1;
        }
    }
    Ok(counts)
}
