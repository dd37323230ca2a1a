//! Signing in and out, and who a session or API token belongs to.
//!
//! Failed sign-ins are throttled by `service::throttle`, per attempted name
//! and client address and per address, the same whether the name exists or
//! not; see there for the rules.

use crate::domain::{Password, Username};
use crate::error::{AppError, AppResult};
use crate::secrets::MacKey;
use crate::service::audit::{Event, Outcome, record};
use crate::service::throttle::{self, Throttle};
use crate::service::users::User;
use crate::service::{Actor, Via, passwords};
use crate::store::Store;
use crate::store::users as rows;

const BAD_CREDENTIALS: &str = "Wrong user name or password.";

/// Check a user name and password. Every attempt the throttle lets through
/// writes one audit row (success or failure); refused ones are counted in
/// aggregate rows (see `service::throttle`). The error never says which
/// part was wrong, and a refusal reads the same for any name. `names` keys
/// the hashes the throttle counts typed names under. A form with no name or
/// no password guesses nothing: it is refused without counting or a row.
pub async fn login(
    store: &Store,
    throttle: &Throttle,
    names: &MacKey,
    client: &str,
    via: Via,
    name: &str,
    password: &Password,
) -> AppResult<User> {
    if name.trim().is_empty() || password.expose().is_empty() {
        return Err(AppError::invalid("Enter your user name and password."));
    }
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

    let key = throttle::name_key(names, name);
    let claim = match throttle.claim(store, &key, client).await? {
        Ok(claim) => claim,
        Err(refusal) => {
            throttle.refused(store, &actor, &target, &refusal).await?;
            return Err(refusal.error());
        }
    };

    let event = |detail| Event {
        action: crate::domain::AuditAction::Login,
        target: &target,
        detail,
        database: None,
    };
    let failure = match &known {
        None => {
            passwords::verify_dummy(password).await?;
            "unknown user"
        }
        Some(row) => {
            let ok = passwords::verify(password, &row.password_hash).await?;
            match (ok, row.disabled) {
                (true, false) => {
                    throttle.succeeded(store, claim).await?;
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
        action: crate::domain::AuditAction::Logout,
        target: &target,
        database: None,
        detail: "",
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
