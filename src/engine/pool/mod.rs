//! The panel's connections to one managed server (host:port), shared by
//! every registered database that lives on it: at most `limit` open at once
//! (idle, busy or being opened), idle ones closed within seconds.
//!
//! A connection belongs to the database it was opened for (its `owner`: a
//! fingerprint of the URL); an idle one is reused by the same database, and
//! closed to make room when another database needs a slot. Long work (a
//! VACUUM, a migration) takes a "long" lease: at most `limit - 1` of those
//! at once, so short catalog reads always have a slot, and the connection is
//! closed afterwards rather than pooled (its settings differ).

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sqlx::Connection;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::{CONNECT_TIMEOUT, EngineError};

mod lease;
mod waits;

use lease::retire;
pub use lease::{Lease, Reservation};
use waits::Waiting;
pub use waits::{SlotWaits, counting_slot_waits};

/// An idle connection is closed after this long unused.
pub const IDLE_CLOSE: Duration = Duration::from_secs(5);
/// How long a reused connection may take to answer a ping.
pub(super) const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a short lease waits for a free slot before giving up.
const WAIT_FOR_SLOT: Duration = Duration::from_secs(5);
/// A closed connection's slot stays taken this much longer: the server ends
/// the backend a few milliseconds after the client hangs up (3 ms median,
/// 12 ms at worst on an idle test machine, longer on a loaded one), and until then it
/// still counts against max_connections and shows in pg_stat_activity.
pub(super) const CLOSE_GRACE: Duration = Duration::from_millis(100);

/// Why no connection could be had.
#[derive(Debug)]
pub enum AcquireError {
    /// Every slot stayed busy for the whole wait.
    Busy { server: String, limit: usize },
    /// Opening took longer than the connect timeout.
    ConnectTimeout,
    /// The driver refused (server down, wrong password, no such database).
    Connect(sqlx::Error),
}

impl AcquireError {
    /// The server itself did not answer (as opposed to refusing this one
    /// database or user): every database on it is unreachable for now.
    pub fn server_down(&self) -> bool {
        matches!(
            self,
            AcquireError::ConnectTimeout
                | AcquireError::Connect(sqlx::Error::Io(_))
                | AcquireError::Connect(sqlx::Error::Tls(_))
        )
    }
}

impl From<AcquireError> for EngineError {
    fn from(e: AcquireError) -> EngineError {
        match e {
            AcquireError::Busy { server, limit } => EngineError::TimedOut(format!(
                "all {limit} of the panel's connections to {server} stayed busy for {} seconds \
                 (max_connections_per_server); try again in a moment",
                WAIT_FOR_SLOT.as_secs()
            )),
            AcquireError::ConnectTimeout => EngineError::from_sqlx(sqlx::Error::PoolTimedOut),
            AcquireError::Connect(e) => EngineError::from_sqlx(e),
        }
    }
}

pub(super) struct Idle<C> {
    pub(super) owner: u64,
    /// Connections of one login role: any of them reads server-wide views.
    pub(super) group: u64,
    pub(super) conn: C,
    pub(super) id: i64,
    pub(super) since: Instant,
    pub(super) permit: OwnedSemaphorePermit,
}

pub(super) struct Inner<C> {
    pub(super) server: String,
    pub(super) limit: usize,
    /// One permit per open connection, idle or busy.
    pub(super) slots: Arc<Semaphore>,
    /// Leases held for long work.
    pub(super) long_slots: Arc<Semaphore>,
    pub(super) idle: Mutex<Vec<Idle<C>>>,
    /// A connection went back to idle: a waiter may reuse or evict it.
    pub(super) returned: Notify,
    /// Server-side ids (backend pids, connection ids) of pooled connections.
    pub(super) own: Mutex<HashSet<i64>>,
    pub(super) opened: AtomicU64,
}

/// The connections to one server; cheap to clone.
pub struct ServerPool<C: Connection> {
    inner: Arc<Inner<C>>,
}

impl<C: Connection> Clone for ServerPool<C> {
    fn clone(&self) -> Self {
        ServerPool {
            inner: self.inner.clone(),
        }
    }
}

impl<C: Connection + 'static> ServerPool<C> {
    /// A pool for `server` (shown on pages) holding at most `limit` connections.
    pub fn new(server: String, limit: usize) -> Self {
        let limit = limit.max(1);
        let inner = Arc::new(Inner {
            server,
            limit,
            slots: Arc::new(Semaphore::new(limit)),
            long_slots: Arc::new(Semaphore::new((limit - 1).max(1))),
            idle: Mutex::new(Vec::new()),
            returned: Notify::new(),
            own: Mutex::new(HashSet::new()),
            opened: AtomicU64::new(0),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(reap(Arc::downgrade(&inner)));
        }
        ServerPool { inner }
    }

    pub fn server(&self) -> &str {
        &self.inner.server
    }

    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Connections open (or being opened or closed) right now.
    pub fn in_use(&self) -> usize {
        self.inner.limit - self.inner.slots.available_permits()
    }

    /// Connections opened since the panel started.
    pub fn opened(&self) -> u64 {
        self.inner.opened.load(Ordering::Relaxed)
    }

    /// Ids of the pooled connections (the panel's own sessions).
    pub fn own_ids(&self) -> HashSet<i64> {
        self.inner.own.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// A pooled connection for `owner` (of login role `group`), opened with
    /// `open` if none is idle. With `any_database`, an idle connection of
    /// another database of the same role will do (for server-wide views).
    /// `open` returns the connection and its server-side id.
    pub async fn acquire<F, Fut>(
        &self,
        owner: u64,
        group: u64,
        any_database: bool,
        open: F,
    ) -> Result<Lease<C>, AcquireError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(C, i64), sqlx::Error>>,
    {
        let deadline = Instant::now() + WAIT_FOR_SLOT;
        loop {
            let notified = self.inner.returned.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let reusable = self
                .take_idle(Some(owner))
                .or_else(|| any_database.then(|| self.take_idle_of_group(group)).flatten());
            if let Some(mut idle) = reusable {
                match tokio::time::timeout(PING_TIMEOUT, idle.conn.ping()).await {
                    Ok(Ok(())) => {
                        return Ok(self.lease(
                            idle.conn,
                            idle.id,
                            idle.owner,
                            idle.group,
                            true,
                            idle.permit,
                            None,
                        ));
                    }
                    _ => {
                        retire(&self.inner, idle.conn, idle.id, idle.permit);
                        continue;
                    }
                }
            }
            let waiting = Waiting::start();
            let permit = match self.free_slot().await {
                Some(permit) => permit,
                None => {
                    tokio::select! {
                        _ = &mut notified => continue,
                        p = self.inner.slots.clone().acquire_owned() => match p {
                            Ok(p) => p,
                            Err(_) => return Err(self.busy()),
                        },
                        _ = tokio::time::sleep_until(deadline) => return Err(self.busy()),
                    }
                }
            };
            drop(waiting);
            return self.open(owner, group, true, permit, None, &open).await;
        }
    }

    /// A connection of its own for long work, closed when the lease ends.
    /// Waits for a slot as long as it takes: callers race it against their
    /// own cancellation.
    pub async fn acquire_long<F, Fut>(&self, owner: u64, open: F) -> Result<Lease<C>, AcquireError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(C, i64), sqlx::Error>>,
    {
        let waiting = Waiting::start();
        let long = self
            .inner
            .long_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| self.busy())?;
        let permit = loop {
            let notified = self.inner.returned.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(permit) = self.free_slot().await {
                break permit;
            }
            tokio::select! {
                _ = &mut notified => continue,
                p = self.inner.slots.clone().acquire_owned() => break p.map_err(|_| self.busy())?,
            }
        };
        drop(waiting);
        self.open(owner, 0, false, permit, Some(long), &open).await
    }

    /// Hold `wanted` slots for connections a tool opens itself (pg_dump
    /// and its snapshot, pg_restore): they count in the budget while the
    /// reservation lives. At most `limit - 1` (room is left for catalog
    /// reads), but at least two when the budget has two: a dump needs its
    /// snapshot and the tool. Waits as long as it takes, like
    /// [`ServerPool::acquire_long`].
    pub async fn reserve(&self, wanted: usize) -> Result<Reservation, AcquireError> {
        let limit = self.inner.limit;
        let n = wanted.clamp(1, (limit - 1).max(2).min(limit));
        let waiting = Waiting::start();
        let long = self
            .inner
            .long_slots
            .clone()
            .acquire_many_owned(n.min((limit - 1).max(1)) as u32)
            .await
            .map_err(|_| self.busy())?;
        let mut slots = Vec::with_capacity(n);
        while slots.len() < n {
            let notified = self.inner.returned.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(permit) = self.free_slot().await {
                slots.push(permit);
                continue;
            }
            tokio::select! {
                _ = &mut notified => continue,
                p = self.inner.slots.clone().acquire_owned() => slots.push(p.map_err(|_| self.busy())?),
            }
        }
        drop(waiting);
        Ok(Reservation {
            granted: n,
            _long: long,
            _slots: slots,
        })
    }

    /// Close the idle connections of `owner` (its database was removed).
    pub fn close_owner(&self, owner: u64) {
        while let Some(idle) = self.take_idle(Some(owner)) {
            retire(&self.inner, idle.conn, idle.id, idle.permit);
        }
    }

    /// Close every idle connection.
    pub fn close_idle(&self) {
        while let Some(idle) = self.take_idle(None) {
            retire(&self.inner, idle.conn, idle.id, idle.permit);
        }
    }

    fn busy(&self) -> AcquireError {
        AcquireError::Busy {
            server: self.inner.server.clone(),
            limit: self.inner.limit,
        }
    }

    /// A slot now: a free one, or one freed by closing the oldest idle
    /// connection (of another database: the caller's own were reused first).
    async fn free_slot(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.inner.slots.clone().try_acquire_owned() {
            return Some(permit);
        }
        let victim = self.take_idle(None)?;
        if let Ok(mut own) = self.inner.own.lock() {
            own.remove(&victim.id);
        }
        // Closed (and gone on the server) before the new one opens: the
        // server never sees limit + 1.
        let _ = tokio::time::timeout(PING_TIMEOUT, victim.conn.close()).await;
        tokio::time::sleep(CLOSE_GRACE).await;
        Some(victim.permit)
    }

    /// The newest idle connection of login role `group`.
    fn take_idle_of_group(&self, group: u64) -> Option<Idle<C>> {
        let mut idle = self.inner.idle.lock().ok()?;
        let at = idle.iter().rposition(|i| i.group == group)?;
        Some(idle.remove(at))
    }

    /// Take an idle connection: the newest of `owner`, or the oldest of any.
    fn take_idle(&self, owner: Option<u64>) -> Option<Idle<C>> {
        let mut idle = self.inner.idle.lock().ok()?;
        let at = match owner {
            Some(owner) => idle.iter().rposition(|i| i.owner == owner)?,
            None => {
                if idle.is_empty() {
                    return None;
                }
                0
            }
        };
        Some(idle.remove(at))
    }

    #[allow(clippy::too_many_arguments)]
    async fn open<F, Fut>(
        &self,
        owner: u64,
        group: u64,
        pooled: bool,
        permit: OwnedSemaphorePermit,
        long: Option<OwnedSemaphorePermit>,
        open: &F,
    ) -> Result<Lease<C>, AcquireError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(C, i64), sqlx::Error>>,
    {
        match tokio::time::timeout(CONNECT_TIMEOUT, open()).await {
            Ok(Ok((conn, id))) => {
                self.inner.opened.fetch_add(1, Ordering::Relaxed);
                if pooled && let Ok(mut own) = self.inner.own.lock() {
                    own.insert(id);
                }
                Ok(self.lease(conn, id, owner, group, pooled, permit, long))
            }
            Ok(Err(e)) => Err(AcquireError::Connect(e)),
            Err(_) => Err(AcquireError::ConnectTimeout),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn lease(
        &self,
        conn: C,
        id: i64,
        owner: u64,
        group: u64,
        pooled: bool,
        permit: OwnedSemaphorePermit,
        long: Option<OwnedSemaphorePermit>,
    ) -> Lease<C> {
        Lease {
            conn: Some(conn),
            id,
            owner,
            group,
            pooled,
            permit: Some(permit),
            _long: long,
            inner: self.inner.clone(),
        }
    }
}

/// Close connections idle longer than [`IDLE_CLOSE`], until the pool is gone.
async fn reap<C: Connection + 'static>(pool: Weak<Inner<C>>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = pool.upgrade() else { return };
        let stale: Vec<Idle<C>> = match inner.idle.lock() {
            Ok(mut idle) => {
                let (old, keep): (Vec<_>, Vec<_>) =
                    idle.drain(..).partition(|i| i.since.elapsed() >= IDLE_CLOSE);
                *idle = keep;
                old
            }
            Err(_) => Vec::new(),
        };
        for i in stale {
            retire(&inner, i.conn, i.id, i.permit);
        }
    }
}

/// A fingerprint of a connection URL (which database an idle connection
/// may be reused for) or of a login role (which server-wide reads may share
/// a connection).
pub fn owner_of(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}
