//! Managed servers: what every database registered on one server (host and
//! port) shares — the connection budget ([`ServerPool`]) and the readings of
//! server-wide views (pg_stat_activity, pg_stat_database, sizes, the process
//! list), taken once per server and handed to each of its databases.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::pool::{AcquireError, ServerPool};
use super::{ActivitySample, DatabaseEntry, EngineError, EngineKind, EngineResult, ServerStatus, Session};

/// The panel's connections to one server, as pages show them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerConnections {
    /// host:port
    pub server: String,
    pub engine: EngineKind,
    /// Connections the panel holds there now.
    pub panel_connections: usize,
    /// `max_connections_per_server`.
    pub limit: usize,
    /// Connections opened since the panel started.
    pub opened: u64,
}

/// Where a database's server is: its engine, host and port (a Unix
/// socket's directory counts as the host). Databases with the same key
/// share a budget.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerKey {
    pub engine: EngineKind,
    pub host: String,
    pub port: u16,
}

impl ServerKey {
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A reading a reader failed to take, and whether it failed because the
/// server itself did not answer (then every database on it shares the
/// failure for a while instead of each trying again).
pub struct Failure {
    pub error: EngineError,
    pub server_down: bool,
}

impl From<AcquireError> for Failure {
    fn from(e: AcquireError) -> Failure {
        Failure {
            server_down: e.server_down(),
            error: e.into(),
        }
    }
}

impl From<EngineError> for Failure {
    fn from(error: EngineError) -> Failure {
        Failure {
            error,
            server_down: false,
        }
    }
}

/// One reading shared by every database of a server for `ttl`:
/// single-flight, so concurrent callers wait for the one read in flight.
pub struct Shared<T> {
    slot: tokio::sync::Mutex<Option<Taken<T>>>,
}

/// A reading (or a server-wide failure) and when it was taken.
type Taken<T> = (Instant, Result<Arc<T>, EngineError>);

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Shared {
            slot: tokio::sync::Mutex::new(None),
        }
    }
}

impl<T> Shared<T> {
    /// The reading if it is younger than `ttl`, else a new one from `read`.
    /// A failure is shared only when the server was down; a failure of one
    /// database (dropped, refusing its user) leaves the next caller to try.
    pub async fn get<Fut>(&self, ttl: Duration, read: impl FnOnce() -> Fut) -> Result<Arc<T>, EngineError>
    where
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((at, found)) = slot.as_ref()
            && at.elapsed() < ttl
        {
            return found.clone();
        }
        match read().await {
            Ok(value) => {
                let value = Arc::new(value);
                *slot = Some((Instant::now(), Ok(value.clone())));
                Ok(value)
            }
            Err(f) => {
                if f.server_down {
                    *slot = Some((Instant::now(), Err(f.error.clone())));
                } else {
                    *slot = None;
                }
                Err(f.error)
            }
        }
    }
}

/// How long one server-wide reading serves every database of the server.
/// The poller and the sampler walk a server's databases one after another
/// within these windows, so each reads the server once per round.
pub const STATUS_SHARE: Duration = Duration::from_secs(3);
pub const ACTIVITY_SHARE: Duration = Duration::from_secs(1);
pub const METRICS_SHARE: Duration = Duration::from_secs(5);

/// The server's figures and its databases with their sizes.
pub struct ServerWide {
    pub status: ServerStatus,
    pub databases: Vec<DatabaseEntry>,
}

/// The server-wide readings one login role shares (what the views show
/// depends on who asks).
#[derive(Default)]
pub struct Views {
    pub status: Shared<ServerWide>,
    pub activity: Shared<ActivitySample>,
    pub metrics: Shared<super::metrics::ServerReading>,
}

/// One managed server: the panel's connections to it and its server-wide
/// readings, per login role.
pub struct Server<C: sqlx::Connection + 'static> {
    pub pool: ServerPool<C>,
    views: Mutex<HashMap<String, Arc<Views>>>,
}

impl<C: sqlx::Connection + 'static> Server<C> {
    fn new(pool: ServerPool<C>) -> Self {
        Server {
            pool,
            views: Mutex::new(HashMap::new()),
        }
    }

    /// Room in the budget for a tool's own connections (see
    /// [`ServerPool::reserve`]).
    pub async fn reserve(&self, connections: usize) -> EngineResult<Option<super::pool::Reservation>> {
        self.pool
            .reserve(connections)
            .await
            .map(Some)
            .map_err(EngineError::from)
    }

    /// One database's part of the server's activity sample: the sessions
    /// `mine` keeps, those the panel holds (`own` too) marked.
    pub fn activity_of(
        &self,
        all: &ActivitySample,
        mine: impl Fn(&Session) -> bool,
        own: impl Fn(&Session) -> bool,
    ) -> ActivitySample {
        let ids = self.pool.own_ids();
        ActivitySample {
            sessions: all
                .sessions
                .iter()
                .filter(|s| mine(s))
                .map(|s| Session {
                    own: ids.contains(&s.pid) && own(s),
                    ..s.clone()
                })
                .collect(),
            server_connections: all.server_connections,
            max_connections: all.max_connections,
        }
    }

    /// The readings shared by the databases registered with login `user`.
    pub fn views_for(&self, user: &str) -> Arc<Views> {
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        views.entry(user.to_string()).or_default().clone()
    }

    pub fn connections(&self, engine: EngineKind) -> ServerConnections {
        ServerConnections {
            server: self.pool.server().to_string(),
            engine,
            panel_connections: self.pool.in_use(),
            limit: self.pool.limit(),
            opened: self.pool.opened(),
        }
    }
}

/// Every server the panel talks to, with its budget. One per panel process
/// (the fleet holds it); tests and the CLI make their own.
#[derive(Clone)]
pub struct Servers(Arc<ServersInner>);

struct ServersInner {
    limit: usize,
    postgres: Mutex<HashMap<ServerKey, Arc<Server<sqlx::PgConnection>>>>,
    mysql: Mutex<HashMap<ServerKey, Arc<Server<sqlx::MySqlConnection>>>>,
}

impl Servers {
    /// At most `limit` connections to each server.
    pub fn new(limit: usize) -> Servers {
        Servers(Arc::new(ServersInner {
            limit: limit.max(1),
            postgres: Mutex::new(HashMap::new()),
            mysql: Mutex::new(HashMap::new()),
        }))
    }

    pub fn limit(&self) -> usize {
        self.0.limit
    }

    pub(super) fn postgres(&self, key: &ServerKey) -> Arc<Server<sqlx::PgConnection>> {
        let mut map = self.0.postgres.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.clone())
            .or_insert_with(|| Arc::new(Server::new(ServerPool::new(key.label(), self.0.limit))))
            .clone()
    }

    pub(super) fn mysql(&self, key: &ServerKey) -> Arc<Server<sqlx::MySqlConnection>> {
        let mut map = self.0.mysql.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.clone())
            .or_insert_with(|| Arc::new(Server::new(ServerPool::new(key.label(), self.0.limit))))
            .clone()
    }

    /// The panel's connections per server, for pages and `/metrics`.
    pub fn connections(&self) -> Vec<ServerConnections> {
        let mut out = Vec::new();
        if let Ok(map) = self.0.postgres.lock() {
            out.extend(map.iter().map(|(k, s)| s.connections(k.engine)));
        }
        if let Ok(map) = self.0.mysql.lock() {
            out.extend(map.iter().map(|(k, s)| s.connections(k.engine)));
        }
        out.sort_by(|a, b| a.server.cmp(&b.server));
        out
    }

    /// Close every idle connection (shutdown).
    pub fn close_idle(&self) {
        if let Ok(map) = self.0.postgres.lock() {
            map.values().for_each(|s| s.pool.close_idle());
        }
        if let Ok(map) = self.0.mysql.lock() {
            map.values().for_each(|s| s.pool.close_idle());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_is_named_by_host_and_port() {
        let key = |host: &str| ServerKey {
            engine: EngineKind::Postgres,
            host: host.into(),
            port: 5433,
        };
        assert_eq!(key("db1.example").label(), "db1.example:5433");
        assert_eq!(key("::1").label(), "[::1]:5433");
    }
}
