//! First run: with no users, the server makes a one-time setup token and
//! prints a link; the setup page uses it to create the first admin, once.
//! Only the token's hash is stored, so the link works on any instance
//! sharing the store, until it is used.

use crate::domain::{Password, Username};
use crate::error::{AppError, AppResult};
use crate::service::audit::{Event, audited};
use crate::service::tokens::{random_secret, secret_digest};
use crate::service::users::{self, User};
use crate::service::{Actor, passwords};
use crate::store::{Store, settings, users as rows};

const SETUP_KEY: &str = "setup_token_sha256";

/// If there are no users, make a new setup token (replacing any old one) and
/// return it. With users, forget any leftover token and return `None`.
pub async fn prepare(store: &Store) -> AppResult<Option<String>> {
    if users::count(store).await? > 0 {
        settings::delete(store.pool(), SETUP_KEY).await?;
        return Ok(None);
    }
    let token = random_secret(24);
    settings::put(store.pool(), SETUP_KEY, &secret_digest(&token)).await?;
    Ok(Some(token))
}

/// Does this token still open the setup page?
pub async fn is_open(store: &Store, token: &str) -> AppResult<bool> {
    let stored = settings::get(store.pool(), SETUP_KEY).await?;
    Ok(stored.is_some_and(|h| h == secret_digest(token)))
}

/// What the setup form sends.
pub struct SetupRequest {
    pub name: String,
    pub password: String,
    pub confirm: String,
}

/// Create the first admin (an approver too) with the setup token. Every
/// attempt is audited, including ones with a spent or wrong token.
pub async fn create_first_admin(
    store: &Store,
    actor: &Actor,
    token: &str,
    req: SetupRequest,
) -> AppResult<User> {
    let event = Event {
        action: crate::domain::AuditAction::Setup,
        target: "first admin",
        database: None,
        detail: "",
    };
    audited(store, actor, event, async {
        if !is_open(store, token).await? {
            return Err(closed());
        }
        let name = Username::parse(&req.name)?;
        if req.password != req.confirm {
            return Err(AppError::invalid("the two passwords differ"));
        }
        let password = Password::new(req.password)?;
        let hash = passwords::hash(&password).await?;
        let id = rows::insert_first_admin(
            store.pool(),
            SETUP_KEY,
            &secret_digest(token),
            name.as_str(),
            &hash,
        )
        .await?
        .ok_or_else(closed)?;
        users::by_id(store, id).await
    })
    .await
}

/// The answer for a used or unknown setup link.
pub fn closed() -> AppError {
    AppError::not_found(
        "This setup link has been used or is not valid. Sign in, or create users with `custodian user add`.",
    )
}
