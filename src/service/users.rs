//! Panel users: create, list, change role, disable, reset passwords. Admin
//! work; the checks here repeat the route's so the CLI and API get them too.

use crate::domain::{Password, Role, Username};
use crate::error::{AppError, AppResult};
use crate::service::audit::{Event, audited};
use crate::service::{Actor, passwords};
use crate::store::users::{self as rows, UserRow};
use crate::store::{ConflictOnUnique, Store};

/// A panel user as the rest of the code sees it: no password hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub can_approve: bool,
    pub disabled: bool,
    pub created_at: i64,
    /// The credential generation sessions must match (see `set_password`).
    pub session_epoch: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            name: r.name,
            role: r.role,
            can_approve: r.can_approve,
            disabled: r.disabled,
            created_at: r.created_at,
            session_epoch: r.session_epoch,
        }
    }
}

/// Fail unless the actor holds at least `role`.
pub fn require(actor: &Actor, role: Role) -> AppResult<()> {
    match actor.role {
        Some(r) if r >= role => Ok(()),
        _ => Err(AppError::needs_role(role)),
    }
}

#[derive(Debug)]
pub struct NewUser {
    pub name: Username,
    pub password: Password,
    pub role: Role,
    pub can_approve: bool,
}

pub async fn create(store: &Store, actor: &Actor, new: NewUser) -> AppResult<User> {
    let target = format!("user:{}", new.name);
    let detail = format!(
        "role {}{}",
        new.role,
        if new.can_approve { ", approver" } else { "" }
    );
    let event = Event {
        action: crate::domain::AuditAction::UserCreate,
        target: &target,
        detail: &detail,
        database: None,
    };
    audited(store, actor, event, async {
        require(actor, Role::Admin)?;
        let hash = passwords::hash(&new.password).await?;
        let id = rows::insert(store.pool(), new.name.as_str(), &hash, new.role, new.can_approve)
            .await
            .conflict_on_unique(|| format!("a user named {} already exists", new.name))?;
        by_id(store, id).await
    })
    .await
}

pub async fn list(store: &Store) -> AppResult<Vec<User>> {
    Ok(rows::list(store.pool())
        .await?
        .into_iter()
        .map(User::from)
        .collect())
}

pub async fn count(store: &Store) -> AppResult<i64> {
    Ok(rows::count(store.pool()).await?)
}

pub async fn by_id(store: &Store, id: i64) -> AppResult<User> {
    rows::by_id(store.pool(), id)
        .await?
        .map(User::from)
        .ok_or_else(|| AppError::not_found("no such user"))
}

pub async fn by_name(store: &Store, name: &Username) -> AppResult<User> {
    rows::by_name(store.pool(), name.as_str())
        .await?
        .map(User::from)
        .ok_or_else(|| AppError::not_found(format!("no user named {name}")))
}

const LAST_ADMIN: &str = "this would leave no enabled admin; make another user admin first";

pub async fn set_role(
    store: &Store,
    actor: &Actor,
    name: &Username,
    role: Role,
    can_approve: bool,
) -> AppResult<User> {
    let target = format!("user:{name}");
    let detail = format!("role {role}{}", if can_approve { ", approver" } else { "" });
    let event = Event {
        action: crate::domain::AuditAction::UserRole,
        target: &target,
        detail: &detail,
        database: None,
    };
    audited(store, actor, event, async {
        require(actor, Role::Admin)?;
        let user = by_name(store, name).await?;
        if rows::set_role(store.pool(), user.id, role, can_approve).await? == 0 {
            return Err(AppError::conflict(LAST_ADMIN));
        }
        by_id(store, user.id).await
    })
    .await
}

/// Disable or re-enable a user. A disabled user's sessions and API tokens
/// stop working at their next request (both are checked against the user).
pub async fn set_disabled(store: &Store, actor: &Actor, name: &Username, disabled: bool) -> AppResult<User> {
    let target = format!("user:{name}");
    let event = Event {
        action: if disabled {
            crate::domain::AuditAction::UserDisable
        } else {
            crate::domain::AuditAction::UserEnable
        },
        target: &target,
        database: None,
        detail: "",
    };
    audited(store, actor, event, async {
        require(actor, Role::Admin)?;
        let user = by_name(store, name).await?;
        if disabled && actor.user_id == Some(user.id) {
            return Err(AppError::conflict("you cannot disable your own account"));
        }
        if rows::set_disabled(store.pool(), user.id, disabled).await? == 0 {
            return Err(AppError::conflict(LAST_ADMIN));
        }
        by_id(store, user.id).await
    })
    .await
}

/// What a password change did. Every session of the user made before it is
/// over (they hold an older `session_epoch`); the session that made the
/// change, if it is the user's own, moves to the new epoch and goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordChanged {
    pub user_id: i64,
    pub session_epoch: i64,
    pub tokens_revoked: u64,
}

fn password_detail(revoke_tokens: bool) -> &'static str {
    if revoke_tokens {
        "sessions ended, API tokens revoked"
    } else {
        "sessions ended"
    }
}

async fn set_password(
    store: &Store,
    user_id: i64,
    password: &Password,
    revoke_tokens: bool,
) -> AppResult<PasswordChanged> {
    let hash = passwords::hash(password).await?;
    let (session_epoch, tokens_revoked) = rows::set_password(store.pool(), user_id, &hash, revoke_tokens)
        .await?
        .ok_or_else(|| AppError::not_found("no such user"))?;
    Ok(PasswordChanged {
        user_id,
        session_epoch,
        tokens_revoked,
    })
}

/// An admin (or the CLI) sets someone's password, ending their sessions;
/// with `revoke_tokens`, their API tokens too.
pub async fn reset_password(
    store: &Store,
    actor: &Actor,
    name: &Username,
    password: &Password,
    revoke_tokens: bool,
) -> AppResult<PasswordChanged> {
    let target = format!("user:{name}");
    let event = Event {
        action: crate::domain::AuditAction::UserPassword,
        target: &target,
        detail: password_detail(revoke_tokens),
        database: None,
    };
    audited(store, actor, event, async {
        require(actor, Role::Admin)?;
        let user = by_name(store, name).await?;
        set_password(store, user.id, password, revoke_tokens).await
    })
    .await
}

/// A signed-in user changes their own password, proving the current one;
/// their other sessions end, and with `revoke_tokens` their API tokens.
pub async fn change_own_password(
    store: &Store,
    actor: &Actor,
    current: &Password,
    new: &Password,
    revoke_tokens: bool,
) -> AppResult<PasswordChanged> {
    let target = format!("user:{}", actor.name);
    let event = Event {
        action: crate::domain::AuditAction::AccountPassword,
        target: &target,
        detail: password_detail(revoke_tokens),
        database: None,
    };
    audited(store, actor, event, async {
        let id = actor
            .user_id
            .ok_or_else(|| AppError::forbidden("only a signed-in user has a password"))?;
        let row = rows::by_id(store.pool(), id)
            .await?
            .ok_or_else(|| AppError::not_found("no such user"))?;
        if !passwords::verify(current, &row.password_hash).await? {
            return Err(AppError::invalid("the current password is wrong"));
        }
        set_password(store, id, new, revoke_tokens).await
    })
    .await
}
