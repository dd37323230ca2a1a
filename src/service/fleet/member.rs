//! One registered database in the fleet: its entry, connection, last known
//! status, and the one way pages and services read it live
//! ([`Member::read`]: refused at once while it is down or slow, time-boxed
//! otherwise).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Mutex;

use super::ActivityCache;
use crate::config::SecretUrl;
use crate::engine::pool::SlotWaits;
use crate::engine::{
    self, Capabilities, DatabaseEntry, ManagedDb, SchemaEntry, ServerConnections, ServerStatus,
};
use crate::format::{fmt_age, fmt_time};
use crate::service::registry::DbEntry;
use crate::store::now;

/// Whether the last check reached the database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Health {
    /// Not checked yet.
    #[default]
    Unknown,
    Up,
    Down,
}

/// The last check's findings. After a failure the last good figures stay,
/// marked by `last_ok_at`, so a page can say "was 12 GB an hour ago".
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub health: Health,
    pub server: Option<ServerStatus>,
    pub databases: Vec<DatabaseEntry>,
    pub schemas: Vec<SchemaEntry>,
    pub error: Option<String>,
    pub checked_at: Option<i64>,
    pub last_ok_at: Option<i64>,
    /// When the database went from answering to not (kept while it stays down).
    pub down_since: Option<i64>,
}

/// One registered database in the fleet.
pub struct Member {
    pub entry: DbEntry,
    pub(super) fingerprint: String,
    pub(super) db: Result<Arc<dyn ManagedDb>, String>,
    /// The connection URL, for tools that connect themselves (pg_dump).
    pub(super) url: Result<SecretUrl, String>,
    pub(super) status: RwLock<Status>,
    /// One check at a time per database.
    pub(super) checking: Mutex<()>,
    /// The shared activity sample (see `service::activity`).
    pub activity: ActivityCache,
    /// Checks that failed since the panel started (for `/metrics`).
    pub(super) poll_errors: AtomicU64,
    /// Pages' live reads, one at a time: a slow database never has a pile
    /// of them waiting on it.
    pub(super) live: Mutex<()>,
    /// Set when a live read or a check ran out of time; cleared by a quick
    /// check. While set, pages answer from what is known.
    pub(super) slow_since: RwLock<Option<i64>>,
    /// The migration history as last read, and when: what pages show while
    /// the database cannot be read.
    pub(super) known_history: RwLock<Option<(i64, Vec<engine::history::Applied>)>>,
}

/// How long a page waits on a live catalog read (and on another page's
/// read of the same database) before answering from what is known.
pub const PAGE_READ_LIMIT: Duration = Duration::from_secs(2);

impl Member {
    pub fn status(&self) -> Status {
        self.status.read().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn poll_errors(&self) -> u64 {
        self.poll_errors.load(Ordering::Relaxed)
    }

    pub fn capabilities(&self) -> Capabilities {
        self.entry.engine.capabilities()
    }

    /// The connection, for the areas that query the database directly.
    pub fn db(&self) -> Result<Arc<dyn ManagedDb>, String> {
        self.db.clone()
    }

    /// The connection URL (with its password), for external tools only.
    pub fn url(&self) -> Result<SecretUrl, String> {
        self.url.clone()
    }

    /// The panel's connections to this database's server, if it has one.
    pub fn server(&self) -> Option<ServerConnections> {
        self.db.as_ref().ok()?.server()
    }

    /// The host:port this database shares with others (`None`: a file).
    pub fn server_label(&self) -> Option<String> {
        self.db.as_ref().ok()?.server_label()
    }

    /// Refuse work that needs the database (a job to start) while it is
    /// known down; a slow database may still take it.
    pub fn reachable(&self) -> crate::error::AppResult<()> {
        let status = self.status();
        if status.health == Health::Down {
            return Err(crate::error::AppError::invalid(format!(
                "{} is unreachable: {}",
                self.entry.name,
                status.error.unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// Why a page shows what is known instead of reading live, if it must:
    /// the poller found the database down, or it answers too slowly.
    pub fn unavailable(&self) -> Option<String> {
        let status = self.status();
        if status.health == Health::Down {
            let since = status
                .down_since
                .map(|t| format!(" since {} ({} ago)", fmt_time(t), fmt_age(now() - t)))
                .unwrap_or_default();
            return Some(format!(
                "{} is unreachable{since}: {}",
                self.entry.name,
                status.error.unwrap_or_default()
            ));
        }
        let slow = self.slow_since.read().ok().and_then(|s| *s)?;
        Some(format!(
            "{} is answering too slowly (a read took over {} seconds, {} ago); showing what is known until it answers quickly again",
            self.entry.name,
            PAGE_READ_LIMIT.as_secs(),
            fmt_age(now() - slow)
        ))
    }

    /// The time box under [`Member::read`]: refused at once when the
    /// database is known down or slow, waiting at most [`PAGE_READ_LIMIT`] for another page's
    /// read of it and for its own. A read that runs out of time marks the
    /// database slow.
    async fn live<T>(
        &self,
        read: impl std::future::Future<Output = engine::EngineResult<T>>,
    ) -> Result<T, String> {
        if let Some(why) = self.unavailable() {
            return Err(why);
        }
        let limit = || {
            format!(
                "{} did not answer within {} seconds",
                self.entry.name,
                PAGE_READ_LIMIT.as_secs()
            )
        };
        // The limit counts the database's time, not the time the read
        // queues for a slot in the server's connection budget.
        let waits = Arc::new(SlotWaits::default());
        let started = std::time::Instant::now();
        let read = engine::pool::counting_slot_waits(waits.clone(), async {
            let _one_at_a_time = self.live.lock().await;
            read.await
        });
        tokio::pin!(read);
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                outcome = &mut read => return outcome.map_err(|e| e.to_string()),
                _ = tick.tick() => {
                    if started.elapsed().saturating_sub(waits.waited()) > PAGE_READ_LIMIT {
                        self.mark_slow();
                        return Err(limit());
                    }
                }
            }
        }
    }

    /// A live catalog read for a page, the one place the rule is written:
    /// refused at once (with why) when the database is known down or slow
    /// or has no connection, otherwise time-boxed as [`Member::live`].
    ///
    /// `read` gets the connection by value (not an async closure over a
    /// borrow, whose future the compiler cannot yet prove `Send`).
    pub async fn read<T, F, Fut>(&self, read: F) -> Result<T, String>
    where
        F: FnOnce(Arc<dyn ManagedDb>) -> Fut,
        Fut: std::future::Future<Output = engine::EngineResult<T>>,
    {
        if let Some(why) = self.unavailable() {
            return Err(why);
        }
        let db = self.db()?;
        self.live(read(db)).await
    }

    /// Remember the migration history just read.
    pub fn remember_history(&self, applied: &[engine::history::Applied]) {
        if let Ok(mut known) = self.known_history.write() {
            *known = Some((now(), applied.to_vec()));
        }
    }

    /// The migration history as last read, and when.
    pub fn known_history(&self) -> Option<(i64, Vec<engine::history::Applied>)> {
        self.known_history.read().ok()?.clone()
    }

    fn mark_slow(&self) {
        if let Ok(mut slow) = self.slow_since.write()
            && slow.is_none()
        {
            *slow = Some(now());
        }
    }

    fn set(&self, update: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.status.write() {
            update(&mut s);
        }
    }

    /// Check now (after any check already running): status, databases and
    /// schemas, within one time limit.
    pub async fn check(&self) -> Status {
        let _one_at_a_time = self.checking.lock().await;
        self.check_locked().await
    }

    /// Check unless a check is already running (the poller's way: a slow
    /// database never piles up checks).
    pub(super) async fn check_if_idle(&self) {
        if let Ok(_one_at_a_time) = self.checking.try_lock() {
            self.check_locked().await;
        }
    }

    async fn check_locked(&self) -> Status {
        let db = match &self.db {
            Ok(db) => db.clone(),
            Err(why) => {
                let why = why.clone();
                self.set(|s| {
                    if s.health != Health::Down {
                        s.down_since = Some(now());
                    }
                    s.health = Health::Down;
                    s.error = Some(why);
                    s.checked_at = Some(now());
                });
                return self.status();
            }
        };
        let limit = engine::CONNECT_TIMEOUT + engine::STATEMENT_TIMEOUT;
        let started = std::time::Instant::now();
        let waits = Arc::new(SlotWaits::default());
        let reading = tokio::time::timeout(
            limit,
            engine::pool::counting_slot_waits(waits.clone(), db.check()),
        )
        .await;
        // The database's time, not the time spent queueing for a slot.
        let took = started.elapsed().saturating_sub(waits.waited());
        let at = now();
        let down = |s: &mut Status, error: String| {
            if s.health != Health::Down {
                s.down_since = Some(at);
            }
            s.health = Health::Down;
            s.error = Some(error);
            s.checked_at = Some(at);
        };
        match reading {
            Ok(Ok(check)) => {
                self.set(|s| {
                    *s = Status {
                        health: Health::Up,
                        server: Some(check.status),
                        databases: check.databases,
                        schemas: check.schemas,
                        error: None,
                        checked_at: Some(at),
                        last_ok_at: Some(at),
                        down_since: None,
                    }
                });
                if took < PAGE_READ_LIMIT {
                    if let Ok(mut slow) = self.slow_since.write() {
                        *slow = None;
                    }
                } else {
                    self.mark_slow();
                }
            }
            Ok(Err(e)) => self.set(|s| down(s, e.to_string())),
            Err(_) => self.set(|s| down(s, format!("no answer within {} seconds", limit.as_secs()))),
        }
        if let Some(e) = self.status().error {
            self.poll_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(database = %self.entry.name, error = %e, "managed database unreachable");
        }
        self.status()
    }
}
