//! Requests to apply pending migrations, and their approval. A request is
//! bound to the checksums of its files when made; approvers (users with
//! can_approve, never the requester) approve or reject it with a comment;
//! a file changed since makes the request void. Everything is audited.

use serde::{Deserialize, Serialize};

pub use super::apply::{GateCheck, Started, apply, apply_next};
use super::{source, status_now};
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::service::Actor;
use crate::service::audit::{Event, audited};
use crate::service::fleet::Member;
use crate::service::users::require;
use crate::store::migrations::{self as rows, DecisionRow, RequestRow};
pub use crate::store::migrations::{RequestAction, RequestState};
use crate::store::{Store, users};

/// One file a request is bound to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    pub version: String,
    pub checksum: String,
}

/// A request with its decisions and what it still needs.
#[derive(Debug, Serialize)]
pub struct Request {
    pub id: i64,
    pub database: String,
    pub action: RequestAction,
    pub files: Vec<Bound>,
    pub requested_by: String,
    pub requested_at: i64,
    pub state: RequestState,
    pub error: Option<String>,
    pub job_id: Option<i64>,
    pub decisions: Vec<Decision>,
    pub approvals: i64,
    pub approvals_required: i64,
}

#[derive(Debug, Serialize)]
pub struct Decision {
    pub approver: String,
    pub approve: bool,
    pub comment: String,
    pub decided_at: i64,
}

impl From<DecisionRow> for Decision {
    fn from(d: DecisionRow) -> Self {
        Decision {
            approver: d.approver,
            approve: d.approve,
            comment: d.comment,
            decided_at: d.decided_at,
        }
    }
}

/// Ask for `versions` (pending ones, in any order) to be applied.
pub async fn request(store: &Store, member: &Member, actor: &Actor, versions: &[String]) -> AppResult<i64> {
    let database = member.entry.name.to_string();
    let detail = format!("versions {}", versions.join(", "));
    let event = Event {
        action: crate::domain::AuditAction::MigrationRequest,
        target: &database,
        database: Some(&database),
        detail: &detail,
    };
    audited(store, actor, event, async {
        require(actor, Role::Operator)?;
        if versions.is_empty() {
            return Err(AppError::invalid("choose at least one pending migration"));
        }
        let status = status_now(member).await?;
        let mut files = Vec::new();
        for v in versions {
            let pending = status.pending.iter().find(|p| p.version == *v).ok_or_else(|| {
                AppError::invalid(format!("{v:?} is not a pending migration of {database}"))
            })?;
            if let Some(why) = blocked_by_lint(&pending.version, &pending.findings) {
                return Err(AppError::invalid(why));
            }
            files.push(Bound {
                version: pending.version.clone(),
                checksum: pending.checksum.clone(),
            });
        }
        // Applied in version order whatever order they were asked in.
        files.sort_by(|a, b| source::Version::parse(&a.version).cmp(&source::Version::parse(&b.version)));
        files.dedup();
        let json = serde_json::to_string(&files).map_err(anyhow::Error::from)?;
        Ok(rows::insert(store.pool(), &database, RequestAction::Apply, &json, &actor.name).await?)
    })
    .await
}

/// An error-level lint finding blocks a migration until it is fixed, or the
/// rule is disabled in the file (`-- squawk-ignore rule`), which changes
/// its checksum and so voids any request bound to the old one.
fn blocked_by_lint(version: &str, findings: &[crate::lint::Finding]) -> Option<String> {
    let errors: Vec<String> = findings
        .iter()
        .filter(|f| f.severity == crate::lint::Severity::Error)
        .map(|f| format!("{} (line {}): {}", f.rule, f.line, f.message))
        .collect();
    if errors.is_empty() {
        return None;
    }
    Some(format!(
        "version {version} has {} lint error(s), which block it until fixed or disabled in the file \
         (-- squawk-ignore <rule>): {}",
        errors.len(),
        errors.join("; ")
    ))
}

/// Why an apply request cannot be approved: one of its files, as bound,
/// has an error-level finding. `None` when none has (or the database or
/// its files cannot be read: apply checks again and refuses then).
async fn lint_block(fleet: &crate::service::fleet::Fleet, row: &RequestRow) -> AppResult<Option<String>> {
    let Ok(name) = crate::domain::DatabaseName::parse(&row.database_name) else {
        return Ok(None);
    };
    let Some(member) = fleet.get(&name) else {
        return Ok(None);
    };
    let files: Vec<Bound> = serde_json::from_str(&row.files).unwrap_or_default();
    let dir = member.entry.migrations_dir.clone().unwrap_or_default();
    let Ok(source) = source::scan(std::path::Path::new(&dir)) else {
        return Ok(None);
    };
    let server_version = member.status().server.map(|s| s.version);
    for bound in &files {
        let script = source
            .migrations
            .iter()
            .find(|m| m.version.as_str() == bound.version)
            .map(|m| &m.up)
            .filter(|s| s.checksum == bound.checksum);
        if let Some(script) = script {
            let findings = super::lint_applied(member.entry.engine, &script.sql, server_version.as_deref());
            if let Some(why) = blocked_by_lint(&bound.version, &findings) {
                return Ok(Some(why));
            }
        }
    }
    Ok(None)
}

/// Ask for the newest applied version to be rolled back with its undo/down
/// file; `confirm` must repeat the version (typed by the user).
pub async fn request_rollback(
    store: &Store,
    member: &Member,
    actor: &Actor,
    version: &str,
    confirm: &str,
) -> AppResult<i64> {
    let database = member.entry.name.to_string();
    let detail = format!("roll back version {version}");
    let event = Event {
        action: crate::domain::AuditAction::MigrationRequest,
        target: &database,
        database: Some(&database),
        detail: &detail,
    };
    audited(store, actor, event, async {
        require(actor, Role::Operator)?;
        if confirm.trim() != version {
            return Err(AppError::invalid(format!("type the version ({version}) to confirm the rollback")));
        }
        let status = status_now(member).await?;
        let newest = status
            .applied
            .iter()
            .filter(|a| a.tool == "custodian" && a.success)
            .filter_map(|a| source::Version::parse(&a.version))
            .max()
            .ok_or_else(|| AppError::invalid(format!("Custodian has applied nothing to {database} to roll back")))?;
        if Some(&newest) != source::Version::parse(version).as_ref() {
            return Err(AppError::invalid(format!(
                "only the newest applied version ({newest}) can be rolled back, one at a time"
            )));
        }
        let dir = member.entry.migrations_dir.clone().unwrap_or_default();
        let files = source::scan(std::path::Path::new(&dir))?;
        let m = files
            .migrations
            .iter()
            .find(|m| m.version == newest)
            .ok_or_else(|| AppError::invalid(format!("version {newest} has no file in the migrations directory")))?;
        let down = m.down.as_ref().ok_or_else(|| {
            AppError::invalid(format!(
                "version {newest} has no undo file (U{newest}__….sql or {newest}_….down.sql): it cannot be rolled back here"
            ))
        })?;
        let files = vec![Bound { version: newest.to_string(), checksum: down.checksum.clone() }];
        let json = serde_json::to_string(&files).map_err(anyhow::Error::from)?;
        Ok(rows::insert(store.pool(), &database, RequestAction::Rollback, &json, &actor.name).await?)
    })
    .await
}

/// Approve or reject an open request.
pub async fn decide(
    store: &Store,
    fleet: &crate::service::fleet::Fleet,
    actor: &Actor,
    id: i64,
    approve: bool,
    comment: &str,
) -> AppResult<()> {
    let target = format!("request {id}");
    let row = rows::get(store.pool(), id).await?;
    let database = row.as_ref().map(|r| r.database_name.clone());
    let event = Event {
        action: if approve {
            crate::domain::AuditAction::MigrationApprove
        } else {
            crate::domain::AuditAction::MigrationReject
        },
        target: &target,
        database: database.as_deref(),
        detail: comment,
    };
    audited(store, actor, event, async {
        let row = row.ok_or_else(|| AppError::not_found(format!("there is no migration request {id}")))?;
        let user = match actor.user_id {
            Some(uid) => users::by_id(store.pool(), uid).await?,
            None => None,
        };
        if !user.is_some_and(|u| u.can_approve && !u.disabled) {
            return Err(AppError::forbidden(
                "only approvers may approve or reject migrations",
            ));
        }
        if row.requested_by == actor.name {
            return Err(AppError::forbidden(
                "you cannot approve or reject your own request",
            ));
        }
        if !row.state.is_open() {
            return Err(AppError::conflict(format!(
                "request {id} is {}, not open",
                row.state
            )));
        }
        if comment.len() > 2000 {
            return Err(AppError::invalid("a comment is at most 2000 characters"));
        }
        let blocked = match approve && row.action == RequestAction::Apply {
            true => lint_block(fleet, &row).await?,
            false => None,
        };
        if let Some(why) = blocked {
            return Err(AppError::conflict(why));
        }
        if !rows::decide(store.pool(), id, &actor.name, approve, comment.trim()).await? {
            return Err(AppError::conflict("you have already decided on this request"));
        }
        if !approve {
            rows::transition(store.pool(), id, RequestState::Open, RequestState::Rejected, None).await?;
        }
        Ok(())
    })
    .await
}

pub async fn get(store: &Store, id: i64) -> AppResult<Request> {
    let row = rows::get(store.pool(), id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("there is no migration request {id}")))?;
    let required = settings(store, &row.database_name).await?.approvals_required;
    view(store, row, required).await
}

/// Request `id` if it is one of `database`'s: any other is not found (the
/// same answer as none at all), while a store that cannot answer stays
/// that error, never a "not found".
pub async fn of_database(store: &Store, database: &str, id: i64) -> AppResult<Request> {
    let missing = || AppError::not_found(format!("there is no migration request \"{id}\" for {database}"));
    match get(store, id).await {
        Ok(request) if request.database == database => Ok(request),
        Ok(_) | Err(AppError::NotFound(_)) => Err(missing()),
        Err(e) => Err(e),
    }
}

pub async fn list(store: &Store, database: &str) -> AppResult<Vec<Request>> {
    let required = settings(store, database).await?.approvals_required;
    let mut out = Vec::new();
    for row in rows::list(store.pool(), database, 50).await? {
        out.push(view(store, row, required).await?);
    }
    Ok(out)
}

/// A request row with its decisions; `approvals_required` is its database's.
async fn view(store: &Store, row: RequestRow, approvals_required: i64) -> AppResult<Request> {
    let decisions: Vec<Decision> = rows::decisions(store.pool(), row.id)
        .await?
        .into_iter()
        .map(Decision::from)
        .collect();
    let approvals = decisions.iter().filter(|d| d.approve).count() as i64;
    Ok(Request {
        id: row.id,
        approvals_required,
        database: row.database_name,
        action: row.action,
        files: serde_json::from_str(&row.files).unwrap_or_default(),
        requested_by: row.requested_by,
        requested_at: row.requested_at,
        state: row.state,
        error: row.error,
        job_id: row.job_id,
        approvals,
        decisions,
    })
}

/// May this request run now? It must be open, approved enough times, and
/// its files must still be the ones approved; a changed file voids it.
pub async fn ready(store: &Store, member: &Member, id: i64) -> AppResult<Request> {
    let request = get(store, id).await?;
    if request.database != member.entry.name.as_str() {
        return Err(AppError::not_found(format!(
            "there is no migration request {id} for {}",
            member.entry.name
        )));
    }
    if !request.state.is_open() {
        return Err(AppError::conflict(format!("request {id} is {}", request.state)));
    }
    if request.approvals < request.approvals_required {
        return Err(AppError::conflict(format!(
            "request {id} has {} of the {} approvals it needs",
            request.approvals, request.approvals_required
        )));
    }
    let dir = member.entry.migrations_dir.clone().unwrap_or_default();
    let source = source::scan(std::path::Path::new(&dir))?;
    let rollback = request.action == RequestAction::Rollback;
    let server_version = member.status().server.map(|s| s.version);
    for bound in &request.files {
        let script = source
            .migrations
            .iter()
            .find(|m| m.version.as_str() == bound.version)
            .and_then(|m| if rollback { m.down.as_ref() } else { Some(&m.up) });
        // An undo file is not blocked: dropping what the migration added
        // is its whole point (the drop rules are errors), and a rollback is
        // wanted most when there is no time to edit files.
        if let Some(script) = script.filter(|s| s.checksum == bound.checksum && !rollback) {
            let findings = super::lint_applied(member.entry.engine, &script.sql, server_version.as_deref());
            if let Some(why) = blocked_by_lint(&bound.version, &findings) {
                return Err(AppError::conflict(why));
            }
        }
        let now = script.map(|script| &script.checksum);
        if now != Some(&bound.checksum) {
            let why = format!(
                "version {} changed after the request was made: its approvals are void; request it again",
                bound.version
            );
            rows::transition(
                store.pool(),
                id,
                RequestState::Open,
                RequestState::Void,
                Some(&why),
            )
            .await?;
            return Err(AppError::conflict(why));
        }
    }
    Ok(request)
}

/// A database's migration settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Approvals a request needs (0 for development databases).
    pub approvals_required: i64,
    /// Lock wait for each migration: a DDL statement queued behind a long
    /// transaction blocks every query behind it, so give up early.
    pub lock_timeout_ms: i64,
    /// Longest any one statement of a migration may run.
    pub statement_timeout_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            approvals_required: 1,
            lock_timeout_ms: 5_000,
            statement_timeout_ms: 30 * 60 * 1000,
        }
    }
}

pub async fn settings(store: &Store, database: &str) -> AppResult<Settings> {
    Ok(match rows::settings(store.pool(), database).await? {
        Some((approvals_required, lock_timeout_ms, statement_timeout_ms)) => Settings {
            approvals_required,
            lock_timeout_ms,
            statement_timeout_ms,
        },
        None => Settings::default(),
    })
}

/// Change a database's migration settings (admin), audited.
pub async fn set_settings(store: &Store, actor: &Actor, database: &str, new: Settings) -> AppResult<()> {
    let detail = format!(
        "approvals_required={} lock_timeout_ms={} statement_timeout_ms={}",
        new.approvals_required, new.lock_timeout_ms, new.statement_timeout_ms
    );
    let event = Event {
        action: crate::domain::AuditAction::DbUpdate,
        target: database,
        database: Some(database),
        detail: &detail,
    };
    audited(store, actor, event, async {
        require(actor, Role::Admin)?;
        if !(0..=10).contains(&new.approvals_required) {
            return Err(AppError::invalid("approvals must be between 0 and 10"));
        }
        if !(100..=3_600_000).contains(&new.lock_timeout_ms) {
            return Err(AppError::invalid(
                "the lock timeout must be between 100 ms and 1 hour",
            ));
        }
        if !(1_000..=86_400_000).contains(&new.statement_timeout_ms) {
            return Err(AppError::invalid(
                "the statement timeout must be between 1 s and 24 hours",
            ));
        }
        let n = rows::set_settings(
            store.pool(),
            database,
            new.approvals_required,
            new.lock_timeout_ms,
            new.statement_timeout_ms,
        )
        .await?;
        if n == 0 {
            return Err(AppError::invalid(format!(
                "{database} is declared in the configuration file: its migration settings are the defaults"
            )));
        }
        Ok(())
    })
    .await
}
