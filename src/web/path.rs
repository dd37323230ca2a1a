//! Typed paths: `{name}` becomes a registered database ([`Db`]) or its
//! checked name ([`DbName`]), and `{id}` / `{pid}` become the id types of
//! `crate::domain`. Whatever names nothing is a 404, rendered by the error
//! middleware as the page or the JSON the route has always answered.

use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;

use crate::domain::{AlertId, BackupId, DatabaseName, JobId, Pid, RequestId, RestoreId};
use crate::error::{AppError, AppResult};
use crate::service::fleet::Member;
use crate::web::AppState;

/// The raw value of the path parameter `key` (percent-decoded). A path
/// that cannot be decoded names nothing.
async fn param<S: Send + Sync>(parts: &mut Parts, state: &S, key: &str) -> AppResult<String> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| AppError::not_found("There is no page at this address."))?;
    params
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
        .ok_or_else(|| anyhow::anyhow!("the route has no {{{key}}} parameter").into())
}

/// The registered database `name`, as the registry has it now (see
/// `Fleet::find`: one added or removed elsewhere is seen at once), or 404.
pub async fn member(state: &AppState, name: &DatabaseName) -> AppResult<Arc<Member>> {
    state
        .fleet
        .find(&state.registry, name)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no database named {name}")))
}

/// The database named by `{name}`: exactly a valid name (nothing trimmed)
/// that is registered.
pub struct Db(pub Arc<Member>);

impl FromRequestParts<AppState> for Db {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let DbName(name) = DbName::from_request_parts(parts, state).await?;
        Ok(Db(member(state, &name).await?))
    }
}

/// The name in `{name}`, checked but not looked up: for the registry's
/// own routes, which answer from the registry (and audit a miss).
pub struct DbName(pub DatabaseName);

impl<S: Send + Sync> FromRequestParts<S> for DbName {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Self> {
        Ok(DbName(DatabaseName::from_path(
            &param(parts, state, "name").await?,
        )?))
    }
}

/// Ids from the path: `{id}` (or `{pid}` for a session).
macro_rules! path_id {
    ($($id:ident from $key:literal),* $(,)?) => {$(
        impl<S: Send + Sync> FromRequestParts<S> for $id {
            type Rejection = AppError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Self> {
                $id::from_path(&param(parts, state, $key).await?)
            }
        }
    )*};
}

path_id!(
    JobId from "id",
    BackupId from "id",
    RequestId from "id",
    AlertId from "id",
    RestoreId from "id",
    Pid from "pid",
);
