//! Sessions live in the store's own database (tower-sessions' sqlx stores),
//! so several panel instances on one PostgreSQL store share sign-ins.
//!
//! The store never holds a session's id as the cookie carries it: each row
//! is keyed by a SHA-256 of the cookie's id, so someone who can read the
//! store (a backup, a replica, a local user) cannot take a session over.
//! The id is 128 random bits, so an unkeyed hash cannot be reversed by
//! guessing. Sessions made before this were keyed by the plain id; they are
//! simply not found any more and their users sign in again.

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use super::Pool;

/// One session store type for the router, whichever engine the store uses.
#[derive(Clone, Debug)]
pub struct SessionBackend {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl SessionBackend {
    pub(super) async fn new(pool: &Pool) -> anyhow::Result<Self> {
        let backend = match pool {
            Pool::Sqlite(p) => {
                let store = SqliteStore::new(p.clone());
                store.migrate().await?;
                Backend::Sqlite(store)
            }
            Pool::Postgres(p) => {
                let store = PostgresStore::new(p.clone());
                store.migrate().await?;
                Backend::Postgres(store)
            }
        };
        Ok(SessionBackend { backend })
    }
}

/// The id a row is stored under for the cookie's `id`.
fn stored_id(id: &Id) -> Id {
    let digest = Sha256::new()
        .chain_update(b"custodian session id\0")
        .chain_update(id.0.to_be_bytes())
        .finalize();
    let mut half = [0u8; 16];
    half.copy_from_slice(&digest[..16]);
    Id(i128::from_be_bytes(half))
}

/// `record` as stored: the same data under the hashed id.
fn stored(record: &Record) -> Record {
    Record {
        id: stored_id(&record.id),
        ..record.clone()
    }
}

macro_rules! on_backend {
    ($self:expr, |$s:ident| $body:expr) => {
        match &$self.backend {
            Backend::Sqlite($s) => $body,
            Backend::Postgres($s) => $body,
        }
    };
}

#[async_trait]
impl SessionStore for SessionBackend {
    /// A new session: the inner stores' `create` would pick a fresh id on a
    /// collision of the *stored* id and write that back to the record,
    /// leaking the hash as the cookie, so the collision check is done here
    /// over the cookie's id: load the hashed id, draw a new id while it is
    /// taken, then save. (Two creates racing for one 128-bit random id is
    /// not a case worth a transaction.)
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let row = stored(record);
            let taken = on_backend!(self, |s| s.load(&row.id).await)?;
            if taken.is_none() {
                return on_backend!(self, |s| s.save(&row).await);
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let row = stored(record);
        on_backend!(self, |s| s.save(&row).await)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let row = on_backend!(self, |s| s.load(&stored_id(id)).await)?;
        // The session goes on under the cookie's id, never the stored one.
        Ok(row.map(|row| Record { id: *id, ..row }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        on_backend!(self, |s| s.delete(&stored_id(id)).await)
    }
}

#[async_trait]
impl ExpiredDeletion for SessionBackend {
    async fn delete_expired(&self) -> session_store::Result<()> {
        on_backend!(self, |s| s.delete_expired().await)
    }
}
