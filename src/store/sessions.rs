//! Sessions live in the store's own database (tower-sessions' sqlx stores),
//! so several panel instances on one PostgreSQL store share sign-ins.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use super::Pool;

/// One session store type for the router, whichever engine the store uses.
#[derive(Clone, Debug)]
pub enum SessionBackend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl SessionBackend {
    pub(super) async fn new(pool: &Pool) -> anyhow::Result<Self> {
        let backend = match pool {
            Pool::Sqlite(p) => {
                let store = SqliteStore::new(p.clone());
                store.migrate().await?;
                SessionBackend::Sqlite(store)
            }
            Pool::Postgres(p) => {
                let store = PostgresStore::new(p.clone());
                store.migrate().await?;
                SessionBackend::Postgres(store)
            }
        };
        Ok(backend)
    }
}

macro_rules! on_backend {
    ($self:expr, |$s:ident| $body:expr) => {
        match $self {
            SessionBackend::Sqlite($s) => $body,
            SessionBackend::Postgres($s) => $body,
        }
    };
}

#[async_trait]
impl SessionStore for SessionBackend {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        on_backend!(self, |s| s.create(record).await)
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        on_backend!(self, |s| s.save(record).await)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        on_backend!(self, |s| s.load(id).await)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        on_backend!(self, |s| s.delete(id).await)
    }
}

#[async_trait]
impl ExpiredDeletion for SessionBackend {
    async fn delete_expired(&self) -> session_store::Result<()> {
        on_backend!(self, |s| s.delete_expired().await)
    }
}
