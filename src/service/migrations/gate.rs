//! The live gate: before a migration is applied, what the database is
//! doing right now to the tables it locks. For every statement, the lock
//! it takes (`sqltext::locks`), the table with its size, and the sessions
//! holding or waiting for a conflicting lock; the transactions open longer
//! than `gate_max_xact_age`; the worst replica lag. A verdict: go, wait
//! (with why) or blocked (someone must end a session first).

use std::time::Duration;

use serde::Serialize;

use super::requests::{self, RequestAction};
use super::source;
use crate::engine::EngineKind;
use crate::engine::gate::{GateFacts, Wanted};
use crate::error::{AppError, AppResult};
use crate::format::fmt_age;
use crate::service::fleet::{Fleet, Member};
use crate::sqltext::locks::{self, On};
use crate::store::Store;

/// Replica lag above this makes the verdict "wait".
const MAX_REPLICA_LAG_S: f64 = 60.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Go,
    Wait,
    Blocked,
}

/// A session in a statement's way: its pid, user, state, transaction age,
/// query, and the conflicting lock it holds (or waits for: `granted` false).
pub use crate::engine::gate::Holder as Blocker;

/// One lock-taking statement of a migration, and what is in its way.
#[derive(Clone, Debug, Serialize)]
pub struct GateStatement {
    /// The migration's version.
    pub migration: String,
    pub line: usize,
    /// "ACCESS EXCLUSIVE", "SHARE", …
    pub lock: &'static str,
    /// `schema.table`, or the name as written when it does not exist yet.
    pub table: String,
    pub table_bytes: Option<i64>,
    pub table_rows: Option<f64>,
    pub blockers: Vec<Blocker>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Gate {
    pub verdict: Verdict,
    /// Why, in words, worst first; empty for "go".
    pub reasons: Vec<String>,
    pub statements: Vec<GateStatement>,
    /// Transactions open longer than the limit, on any table.
    pub long_transactions: Vec<Blocker>,
    pub replica_lag_s: Option<f64>,
}

/// The gate for request `id`: its files as bound (the undo files of a
/// rollback), on its database as it is now.
pub async fn of_request(store: &Store, fleet: &Fleet, id: i64, max_xact_age: Duration) -> AppResult<Gate> {
    let request = requests::get(store, id).await?;
    let name = crate::domain::DatabaseName::parse(&request.database)
        .map_err(|_| AppError::not_found(format!("there is no migration request {id}")))?;
    let member = fleet
        .get(&name)
        .ok_or_else(|| AppError::not_found(format!("{name} is not registered")))?;
    of_bound(&member, &request, max_xact_age).await
}

/// The gate for `request`'s files, as its database's directory holds them
/// now, on `member`.
pub async fn of_bound(
    member: &Member,
    request: &requests::Request,
    max_xact_age: Duration,
) -> AppResult<Gate> {
    let dir = member.entry.migrations_dir.clone().unwrap_or_default();
    let source = source::scan(std::path::Path::new(&dir))?;
    let rollback = request.action == RequestAction::Rollback;
    let scripts: Vec<(String, String)> = request
        .files
        .iter()
        .filter_map(|b| {
            let m = source
                .migrations
                .iter()
                .find(|m| m.version.as_str() == b.version)?;
            let script = if rollback { m.down.as_ref()? } else { &m.up };
            Some((b.version.clone(), script.sql.clone()))
        })
        .collect();
    of_scripts(member, &scripts, max_xact_age).await
}

/// The gate for `scripts` (version, SQL) on `member` now.
pub async fn of_scripts(
    member: &Member,
    scripts: &[(String, String)],
    max_xact_age: Duration,
) -> AppResult<Gate> {
    // (migration, line, wanted)
    let mut statements: Vec<(String, usize, Wanted)> = Vec::new();
    if member.entry.engine == EngineKind::Postgres {
        for (version, sql) in scripts {
            for (stmt, line) in crate::sqltext::postgres::statements_with_lines(sql) {
                if let Some(lock) = locks::lock_of(&stmt) {
                    statements.push((
                        version.clone(),
                        line,
                        Wanted {
                            mode: lock.mode,
                            on: lock.on,
                        },
                    ));
                }
            }
        }
    }
    if member.entry.engine != EngineKind::Postgres {
        return Ok(Gate {
            verdict: Verdict::Go,
            reasons: vec![format!(
                "the live gate reads PostgreSQL only: nothing was checked on {}",
                member.entry.engine.label()
            )],
            statements: Vec::new(),
            long_transactions: Vec::new(),
            replica_lag_s: None,
        });
    }
    let wanted: Vec<Wanted> = statements.iter().map(|(_, _, w)| w.clone()).collect();
    let max_age_s = max_xact_age.as_secs_f64();
    let read = member
        .read(|db| {
            let wanted = wanted.clone();
            async move { db.gate(&wanted, max_age_s).await }
        })
        .await;
    let facts = match read {
        Ok(facts) => facts,
        Err(why) => {
            return Ok(Gate {
                verdict: Verdict::Blocked,
                reasons: vec![format!("cannot read the database now: {why}")],
                statements: Vec::new(),
                long_transactions: Vec::new(),
                replica_lag_s: None,
            });
        }
    };
    Ok(judge(&statements, &facts, max_age_s))
}

/// Who is in the way of one migration's locks now, in words ("pid 4121
/// (app), in a transaction for 14m: UPDATE orders …"), for a job that
/// timed out waiting; `None` when nobody is (any more) or it cannot tell.
pub async fn in_the_way(member: &Member, version: &str, sql: &str, max_xact_age: Duration) -> Option<String> {
    let gate = of_scripts(member, &[(version.to_string(), sql.to_string())], max_xact_age)
        .await
        .ok()?;
    let b = gate.statements.iter().flat_map(|s| s.blockers.iter()).next()?;
    let table = gate
        .statements
        .iter()
        .find(|s| s.blockers.iter().any(|x| x.pid == b.pid))
        .map(|s| s.table.clone())
        .unwrap_or_default();
    Some(format!(
        "pid {} ({}) on {table}, in a transaction for {}{}",
        b.pid,
        b.user.as_deref().unwrap_or("?"),
        b.xact_age_s
            .map(|a| fmt_age(a as i64))
            .unwrap_or_else(|| "?".into()),
        b.query
            .as_deref()
            .map(|q| format!(": {}", q.chars().take(120).collect::<String>()))
            .unwrap_or_default()
    ))
}

/// The verdict from what was read.
fn judge(statements: &[(String, usize, Wanted)], facts: &GateFacts, max_age_s: f64) -> Gate {
    let mut blocked = Vec::new();
    let mut wait = Vec::new();
    let mut out = Vec::new();
    let mut named = std::collections::BTreeSet::new();
    for ((migration, line, wanted), rel) in statements.iter().zip(&facts.relations) {
        let table = rel.table.clone().unwrap_or_else(|| match &wanted.on {
            On::Table(t) | On::Index(t) => t.clone(),
        });
        for h in &rel.holders {
            named.insert(h.pid);
            let who = format!("pid {} ({})", h.pid, h.user.as_deref().unwrap_or("?"));
            let age = h.xact_age_s.map(|a| fmt_age(a as i64)).unwrap_or_default();
            let idle = h
                .state
                .as_deref()
                .is_some_and(|s| s.starts_with("idle in transaction"));
            if h.granted && idle && h.xact_age_s.unwrap_or(0.0) >= max_age_s {
                blocked.push(format!(
                    "{who} has sat idle in a transaction holding a lock on {table} for {age}: waiting will not end it; cancel or terminate it on the activity page"
                ));
            } else if h.granted {
                wait.push(format!(
                    "{who} has held a transaction on {table} for {age} (a {} lock)",
                    h.mode.as_deref().unwrap_or("conflicting")
                ));
            } else {
                wait.push(format!(
                    "{who} is waiting for a lock on {table}: the migration would queue behind it, and everything after it behind the migration"
                ));
            }
        }
        out.push(GateStatement {
            migration: migration.clone(),
            line: *line,
            lock: locks::named(wanted.mode),
            table,
            table_bytes: rel.bytes,
            table_rows: rel.rows,
            blockers: rel.holders.clone(),
        });
    }
    for h in &facts.long_transactions {
        if !named.contains(&h.pid) {
            wait.push(format!(
                "pid {} ({}) has had a transaction open for {}",
                h.pid,
                h.user.as_deref().unwrap_or("?"),
                h.xact_age_s.map(|a| fmt_age(a as i64)).unwrap_or_default()
            ));
        }
    }
    if let Some(lag) = facts.replica_lag_s.filter(|l| *l > MAX_REPLICA_LAG_S) {
        wait.push(format!("a replica is {} behind", fmt_age(lag as i64)));
    }
    let verdict = if !blocked.is_empty() {
        Verdict::Blocked
    } else if !wait.is_empty() {
        Verdict::Wait
    } else {
        Verdict::Go
    };
    blocked.extend(wait);
    Gate {
        verdict,
        reasons: blocked,
        statements: out,
        long_transactions: facts.long_transactions.clone(),
        replica_lag_s: facts.replica_lag_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gate::{Holder, RelationFacts};

    fn holder(pid: i64, state: &str, age: f64, granted: bool) -> Holder {
        Holder {
            pid,
            user: Some("app".into()),
            state: Some(state.into()),
            xact_age_s: Some(age),
            query: Some("SELECT 1".into()),
            mode: Some("RowExclusiveLock".into()),
            granted,
        }
    }

    fn one(holders: Vec<Holder>) -> Gate {
        let statements = vec![(
            "2".to_string(),
            1,
            Wanted {
                mode: locks::ACCESS_EXCLUSIVE,
                on: On::Table("orders".into()),
            },
        )];
        let facts = GateFacts {
            relations: vec![RelationFacts {
                table: Some("public.orders".into()),
                bytes: Some(8192),
                rows: Some(10.0),
                holders,
            }],
            long_transactions: Vec::new(),
            replica_lag_s: None,
        };
        judge(&statements, &facts, 60.0)
    }

    #[test]
    fn nothing_in_the_way_is_go() {
        let g = one(Vec::new());
        assert_eq!(g.verdict, Verdict::Go);
        assert_eq!(g.statements[0].lock, "ACCESS EXCLUSIVE");
    }

    #[test]
    fn a_running_holder_is_wait_and_an_idle_one_held_long_is_blocked() {
        let g = one(vec![holder(4121, "active", 840.0, true)]);
        assert_eq!(g.verdict, Verdict::Wait);
        assert!(g.reasons[0].contains("pid 4121 (app) has held a transaction on public.orders for 14m"));
        let g = one(vec![holder(4121, "idle in transaction", 840.0, true)]);
        assert_eq!(g.verdict, Verdict::Blocked);
        let g = one(vec![holder(4121, "idle in transaction", 5.0, true)]);
        assert_eq!(g.verdict, Verdict::Wait, "idle for a moment: it may finish");
    }
}
