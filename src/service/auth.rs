//! Signing in and out, and who a session or API token belongs to.
//!
//! Failed sign-ins are throttled per user and per client address by counting
//! recent failures in the audit log, so the limit holds across restarts and
//! across panel instances sharing a store.

use crate::domain::{Password, Username};
use crate::error::{AppError, AppResult};
use crate::service::audit::{Event, Outcome, record};
use crate::service::users::User;
use crate::service::{Actor, Via, passwords};
use crate::store::audit::{recent_login_failures_for_user, recent_login_failures_from};
use crate::store::users as rows;
use crate::store::{Store, now};

/// Failures counted within this window.
pub const THROTTLE_WINDOW_SECS: i64 = 15 * 60;
/// After this many failures for one user (since their last success), that
/// user cannot sign in until the window has passed.
pub const MAX_FAILURES_PER_USER: i64 = 5;
/// After this many failures from one address, it cannot sign anyone in.
pub const MAX_FAILURES_PER_CLIENT: i64 = 20;

const BAD_CREDENTIALS: &str = "Wrong user name or password.";
const THROTTLED: &str = "Too many failed sign-ins. Wait 15 minutes and try again.";

/// Check a user name and password. Every attempt writes one audit row:
/// success, failure or throttled. The error never says which part was wrong.
pub async fn login(
    store: &Store,
    client: &str,
    via: Via,
    name: &str,
    password: &Password,
) -> AppResult<User> {
    let since = now() - THROTTLE_WINDOW_SECS;
    // A typo'd name may be a password typed in the wrong box: never store
    // names that are not users; the row only says "unknown user".
    let known = match Username::parse(name) {
        Ok(username) => rows::by_name(store.pool(), username.as_str()).await?,
        Err(_) => None,
    };
    let mut actor = Actor::anonymous(via, client.to_string());
    let mut target = "unknown user".to_string();
    if let Some(row) = &known {
        actor.user_id = Some(row.id);
        actor.name = row.name.clone();
        target = format!("user:{}", row.name);
    }
    let event = |detail| Event {
        action: "login",
        target: &target,
        detail,
        ..Default::default()
    };

    let from_client = recent_login_failures_from(store.pool(), client, since).await?;
    let for_user = match &known {
        Some(row) => recent_login_failures_for_user(store.pool(), row.id, since).await?,
        None => 0,
    };
    if from_client >= MAX_FAILURES_PER_CLIENT || for_user >= MAX_FAILURES_PER_USER {
        let why = if for_user >= MAX_FAILURES_PER_USER {
            "too many failures for this user"
        } else {
            "too many failures from this address"
        };
        record(store, &actor, event(why), Outcome::Throttled).await?;
        return Err(AppError::Throttled(THROTTLED.into()));
    }

    let failure = match &known {
        None => {
            passwords::verify_dummy(password).await?;
            "unknown user"
        }
        Some(row) => {
            let ok = passwords::verify(password, &row.password_hash).await?;
            match (ok, row.disabled) {
                (true, false) => {
                    record(store, &actor, event(""), Outcome::Success).await?;
                    return Ok(User::from(row.clone()));
                }
                (true, true) => "user is disabled",
                (false, _) => "wrong password",
            }
        }
    };
    record(store, &actor, event(failure), Outcome::Failure).await?;
    Err(AppError::Invalid(BAD_CREDENTIALS.into()))
}

/// Audit a sign-out.
pub async fn logout(store: &Store, actor: &Actor) -> AppResult<()> {
    let target = format!("user:{}", actor.name);
    let event = Event {
        action: "logout",
        target: &target,
        ..Default::default()
    };
    record(store, actor, event, Outcome::Success).await
}

/// The user behind a session, if they still exist and are enabled.
pub async fn active_user(store: &Store, user_id: i64) -> AppResult<Option<User>> {
    Ok(rows::by_id(store.pool(), user_id)
        .await?
        .filter(|r| !r.disabled)
        .map(User::from))
}
