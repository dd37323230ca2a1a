//! API tokens: `cust_` + 32 random bytes (base64url). Only a SHA-256 of the
//! token is stored (the token is random and long, so a slow hash adds
//! nothing); it is shown once, at creation, and can be revoked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::service::audit::{Event, audited};
use crate::service::users::User;
use crate::service::{Actor, auth};
use crate::store::tokens::{self as rows, TokenRow};
use crate::store::{ConflictOnUnique, Store, now};

const PREFIX: &str = "cust_";
pub const NAME_MAX_LEN: usize = 64;

/// A token's secret, as handed to its owner once.
pub struct NewToken {
    pub token: TokenRow,
    pub secret: String,
}

fn digest(secret: &str) -> String {
    let hash = Sha256::digest(secret.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Random URL-safe text of `bytes` random bytes, for tokens and setup links.
pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// SHA-256 hex of a high-entropy secret.
pub fn secret_digest(secret: &str) -> String {
    digest(secret)
}

fn parse_name(raw: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::invalid("token name is required"));
    }
    if name.chars().count() > NAME_MAX_LEN || name.chars().any(char::is_control) {
        return Err(AppError::invalid(format!(
            "token name must be at most {NAME_MAX_LEN} printable characters"
        )));
    }
    Ok(name.to_string())
}

/// Users manage their own tokens; admins (and the CLI) anyone's.
fn may_manage(actor: &Actor, owner: &User) -> AppResult<()> {
    if actor.user_id == Some(owner.id) || actor.role == Some(Role::Admin) {
        Ok(())
    } else {
        Err(AppError::needs_role(Role::Admin))
    }
}

pub async fn create(store: &Store, actor: &Actor, owner: &User, name: &str) -> AppResult<NewToken> {
    let target = format!("user:{}", owner.name);
    let detail = format!("token {}", name.trim());
    let event = Event {
        action: crate::domain::AuditAction::TokenCreate,
        target: &target,
        detail: &detail,
        database: None,
    };
    audited(store, actor, event, async {
        may_manage(actor, owner)?;
        if owner.disabled {
            return Err(AppError::conflict(format!("user {} is disabled", owner.name)));
        }
        let name = parse_name(name)?;
        let secret = format!("{PREFIX}{}", random_secret(32));
        let id = rows::insert(store.pool(), owner.id, &name, &digest(&secret))
            .await
            .conflict_on_unique(|| format!("{} already has a live token named {name:?}", owner.name))?;
        let token = TokenRow {
            id,
            user_id: owner.id,
            name,
            created_at: now(),
            last_used_at: None,
            revoked_at: None,
        };
        Ok(NewToken { token, secret })
    })
    .await
}

pub async fn list(store: &Store, owner: &User) -> AppResult<Vec<TokenRow>> {
    Ok(rows::list_for_user(store.pool(), owner.id).await?)
}

pub async fn revoke(store: &Store, actor: &Actor, owner: &User, token_id: i64) -> AppResult<()> {
    let target = format!("user:{}", owner.name);
    let detail = format!("token #{token_id}");
    let event = Event {
        action: crate::domain::AuditAction::TokenRevoke,
        target: &target,
        detail: &detail,
        database: None,
    };
    audited(store, actor, event, async {
        may_manage(actor, owner)?;
        if rows::revoke(store.pool(), token_id, owner.id).await? == 0 {
            return Err(AppError::not_found("no such live token"));
        }
        Ok(())
    })
    .await
}

/// The enabled user a bearer token belongs to, or `None` for any token that
/// is unknown, revoked, malformed or whose user is disabled.
pub async fn authenticate(store: &Store, secret: &str) -> AppResult<Option<User>> {
    if !secret.starts_with(PREFIX) || secret.len() > 128 {
        return Ok(None);
    }
    let Some(token) = rows::live_by_hash(store.pool(), &digest(secret)).await? else {
        return Ok(None);
    };
    let user = auth::active_user(store, token.user_id).await?;
    if user.is_some() {
        rows::touch(store.pool(), token.id).await?;
    }
    Ok(user)
}
