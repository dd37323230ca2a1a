//! Connections on loan from a server's pool, and slots held for tools.

use std::sync::Arc;

use sqlx::Connection;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::{CLOSE_GRACE, Idle, Inner, PING_TIMEOUT};

/// A connection on loan. Short leases go back to the idle list when
/// dropped; long leases (and any marked with [`Lease::discard`]) are closed.
pub struct Lease<C: Connection + 'static> {
    pub(super) conn: Option<C>,
    pub(super) id: i64,
    pub(super) owner: u64,
    pub(super) group: u64,
    pub(super) pooled: bool,
    pub(super) permit: Option<OwnedSemaphorePermit>,
    pub(super) _long: Option<OwnedSemaphorePermit>,
    pub(super) inner: Arc<Inner<C>>,
}

impl<C: Connection + 'static> Lease<C> {
    /// The server's id for this connection (backend pid, connection id).
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Close this connection instead of pooling it (its session state may
    /// be left dirty: a lock not released, a setting changed).
    pub fn discard(&mut self) {
        self.pooled = false;
    }
}

impl<C: Connection + 'static> std::ops::Deref for Lease<C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.conn
            .as_ref()
            .expect("a lease holds its connection until dropped")
    }
}

impl<C: Connection + 'static> std::ops::DerefMut for Lease<C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }
}

impl<C: Connection + 'static> Drop for Lease<C> {
    fn drop(&mut self) {
        let (Some(conn), Some(permit)) = (self.conn.take(), self.permit.take()) else {
            return;
        };
        if self.pooled
            && let Ok(mut idle) = self.inner.idle.lock()
        {
            idle.push(Idle {
                owner: self.owner,
                group: self.group,
                conn,
                id: self.id,
                since: Instant::now(),
                permit,
            });
            drop(idle);
            self.inner.returned.notify_one();
            return;
        }
        retire(&self.inner, conn, self.id, permit);
    }
}

/// Slots held for a tool's own connections; released when dropped.
pub struct Reservation {
    pub(super) granted: usize,
    pub(super) _long: OwnedSemaphorePermit,
    pub(super) _slots: Vec<OwnedSemaphorePermit>,
}

impl Reservation {
    /// How many connections the tool may open (the budget may allow fewer
    /// than were asked for).
    pub fn granted(&self) -> usize {
        self.granted
    }
}

/// Close `conn` in the background; its slot is freed only once it is closed,
/// so the server never sees more than `limit` connections.
pub(super) fn retire<C: Connection + 'static>(
    inner: &Arc<Inner<C>>,
    conn: C,
    id: i64,
    permit: OwnedSemaphorePermit,
) {
    if let Ok(mut own) = inner.own.lock() {
        own.remove(&id);
    }
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(async move {
                let _ = tokio::time::timeout(PING_TIMEOUT, conn.close()).await;
                tokio::time::sleep(CLOSE_GRACE).await;
                drop(permit);
            });
        }
        Err(_) => drop(conn),
    }
}
