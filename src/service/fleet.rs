//! The fleet: every registered database with its last known status, kept
//! fresh by a background poller. Connections come from each server's budget
//! (`engine::Servers`: at most `max_connections_per_server` per host:port,
//! however many databases live there), and the poller walks one server's
//! databases one after another, so the server-wide reading is taken once
//! per server. Pages read the status and never wait on a database, so one
//! that is down or slow blocks nothing; it reconnects by itself when the
//! server is back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Mutex;

use crate::config::SecretUrl;
use crate::domain::DatabaseName;
use crate::engine::pool::SlotWaits;
use crate::engine::{
    self, Capabilities, DatabaseEntry, ManagedDb, SchemaEntry, ServerConnections, ServerStatus, Servers,
};
use crate::error::AppResult;
use crate::format::{fmt_age, fmt_time};
use crate::service::activity::ActivityCache;
use crate::service::registry::{Connection, DbEntry, Registry};
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
    fingerprint: String,
    db: Result<Arc<dyn ManagedDb>, String>,
    /// The connection URL, for tools that connect themselves (pg_dump).
    url: Result<SecretUrl, String>,
    status: RwLock<Status>,
    /// One check at a time per database.
    checking: Mutex<()>,
    /// The shared activity sample (see `service::activity`).
    pub activity: ActivityCache,
    /// Checks that failed since the panel started (for `/metrics`).
    poll_errors: AtomicU64,
    /// Pages' live reads, one at a time: a slow database never has a pile
    /// of them waiting on it.
    live: Mutex<()>,
    /// Set when a live read or a check ran out of time; cleared by a quick
    /// check. While set, pages answer from what is known.
    slow_since: RwLock<Option<i64>>,
    /// The migration history as last read, and when: what pages show while
    /// the database cannot be read.
    known_history: RwLock<Option<(i64, Vec<engine::history::Applied>)>>,
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
    async fn check_if_idle(&self) {
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

#[derive(Clone)]
pub struct Fleet(Arc<Inner>);

struct Inner {
    members: RwLock<BTreeMap<DatabaseName, Arc<Member>>>,
    /// The registry version the members were last brought in line with
    /// (`None`: not known, e.g. before the first refresh).
    synced: RwLock<Option<String>>,
    /// Lookups' registry checks, one at a time; holds when the last one
    /// that finished had started, and how it went (a failure is shared by
    /// the lookups that waited for it, so a hanging store is waited on
    /// once, not once per queued request).
    checked: Mutex<Option<(std::time::Instant, Result<(), String>)>>,
    servers: Servers,
    /// Servers whose round of checks is still running.
    checking: Rounds,
}

/// Rounds of work over a server's databases (checks, samples), at most one
/// at a time per server: a round that outlasts its interval is not joined
/// by a second one competing for the same connections.
#[derive(Default)]
pub struct Rounds(std::sync::Mutex<std::collections::HashSet<String>>);

/// A round in progress; it ends when this is dropped.
pub struct Round<'a> {
    rounds: &'a Rounds,
    key: String,
}

impl Rounds {
    /// Start a round over `group`, unless one is running for its server.
    pub fn start(&self, group: &[Arc<Member>]) -> Option<Round<'_>> {
        let first = group.first()?;
        let key = first
            .server_label()
            .unwrap_or_else(|| format!("file:{}", first.entry.name));
        let mut running = self.0.lock().ok()?;
        // `then`, not `then_some`: a Round made for nothing would end the
        // running one (and lock this mutex again) when dropped.
        running.insert(key.clone()).then(|| Round { rounds: self, key })
    }
}

impl Drop for Round<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.rounds.0.lock() {
            running.remove(&self.key);
        }
    }
}

impl Fleet {
    /// A fleet holding at most `max_connections_per_server` connections to
    /// any one server.
    pub fn new(max_connections_per_server: usize) -> Self {
        Fleet(Arc::new(Inner {
            members: RwLock::new(BTreeMap::new()),
            synced: RwLock::new(None),
            checked: Mutex::new(None),
            servers: Servers::new(max_connections_per_server),
            checking: Rounds::default(),
        }))
    }

    /// The servers behind the fleet, with the panel's connections to each.
    pub fn servers(&self) -> &Servers {
        &self.0.servers
    }

    /// Bring the members in line with the registry: add new databases,
    /// replace those whose URL changed, drop removed ones (closing pools).
    /// Returns the names that are new or changed, which want a check.
    pub async fn sync(&self, connections: Vec<Connection>) -> Vec<DatabaseName> {
        let mut fresh = Vec::new();
        let mut retired: Vec<Arc<Member>> = Vec::new();
        {
            let Ok(mut members) = self.0.members.write() else {
                return fresh;
            };
            let wanted: Vec<DatabaseName> = connections.iter().map(|c| c.entry.name.clone()).collect();
            let gone: Vec<DatabaseName> = members.keys().filter(|n| !wanted.contains(n)).cloned().collect();
            for name in gone {
                if let Some(m) = members.remove(&name) {
                    retired.push(m);
                }
            }
            for c in connections {
                let name = c.entry.name.clone();
                match members.get(&name) {
                    Some(m) if m.fingerprint == c.fingerprint => {
                        if m.entry != c.entry {
                            // Same connection, new settings (RPO, folder): keep the pool and status.
                            let replaced = Arc::new(Member {
                                entry: c.entry,
                                fingerprint: c.fingerprint,
                                db: m.db.clone(),
                                url: m.url.clone(),
                                status: RwLock::new(m.status()),
                                checking: Mutex::new(()),
                                activity: ActivityCache::default(),
                                poll_errors: AtomicU64::new(m.poll_errors()),
                                live: Mutex::new(()),
                                slow_since: RwLock::new(None),
                                known_history: RwLock::new(m.known_history()),
                            });
                            members.insert(name, replaced);
                        }
                    }
                    existing => {
                        if let Some(old) = existing {
                            retired.push(old.clone());
                        }
                        let url = c.url;
                        let db = url.clone().and_then(|url| {
                            engine::connect(&url, &self.0.servers).map_err(|e| e.to_string())
                        });
                        members.insert(
                            name.clone(),
                            Arc::new(Member {
                                entry: c.entry,
                                fingerprint: c.fingerprint,
                                db,
                                url,
                                status: RwLock::new(Status::default()),
                                checking: Mutex::new(()),
                                activity: ActivityCache::default(),
                                poll_errors: AtomicU64::new(0),
                                live: Mutex::new(()),
                                slow_since: RwLock::new(None),
                                known_history: RwLock::new(None),
                            }),
                        );
                        fresh.push(name);
                    }
                }
            }
        }
        for m in retired {
            if let Ok(db) = &m.db {
                db.close().await;
            }
        }
        fresh
    }

    pub fn get(&self, name: &DatabaseName) -> Option<Arc<Member>> {
        self.0.members.read().ok()?.get(name).cloned()
    }

    pub fn members(&self) -> Vec<Arc<Member>> {
        self.0
            .members
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The members grouped by server: databases sharing a server come in
    /// one group (in name order), each file database in a group of its own.
    pub fn by_server(&self) -> Vec<Vec<Arc<Member>>> {
        let mut servers: BTreeMap<String, Vec<Arc<Member>>> = BTreeMap::new();
        let mut alone = Vec::new();
        for m in self.members() {
            match m.server_label() {
                Some(label) => servers.entry(label).or_default().push(m),
                None => alone.push(vec![m]),
            }
        }
        servers.into_values().chain(alone).collect()
    }

    /// Start a check of every database that is not being checked already:
    /// one task per server, walking its databases one at a time (the first
    /// reads the server-wide views for all; a server that does not answer
    /// fails them all at once), so a slow or hanging server delays no other.
    pub fn check_all(&self) {
        for group in self.by_server() {
            let fleet = self.clone();
            tokio::spawn(async move {
                let Some(_round) = fleet.0.checking.start(&group) else {
                    return;
                };
                for m in &group {
                    m.check_if_idle().await;
                }
            });
        }
    }

    /// Re-read the registry now (after a change) so the fleet matches it
    /// before the caller answers, and check new or changed databases in the
    /// background.
    pub async fn refresh(&self, registry: &Registry) {
        if let Err(e) = self.resync(registry, true).await {
            tracing::error!(error = %e, "cannot read the registry");
        }
    }

    /// Bring the members in line with the registry and remember its
    /// version (read first: a change landing in between only means one
    /// more re-read later). `check_fresh`: start a check of new or changed
    /// members in the background.
    async fn resync(&self, registry: &Registry, check_fresh: bool) -> AppResult<()> {
        let version = registry.version().await?;
        let fresh = self.sync(registry.connections().await?).await;
        for name in fresh.iter().filter(|_| check_fresh) {
            if let Some(m) = self.get(name) {
                tokio::spawn(async move {
                    m.check().await;
                });
            }
        }
        if let Ok(mut synced) = self.0.synced.write() {
            *synced = Some(version);
        }
        Ok(())
    }

    /// The member named `name` as the registry has it now: a database
    /// added, changed or removed elsewhere (the CLI, another panel on the
    /// same store) is seen by the next request, not the next poll.
    ///
    /// Each lookup reads the registry's version (one small row); only a
    /// changed version re-reads the registry. Concurrent lookups share one
    /// read: a lookup waits for the read in flight and takes its answer if
    /// that read started after the lookup arrived, so a stream of bad
    /// names costs the store one small read at a time, never a re-read.
    /// When the store cannot answer, a name the fleet knows is served from
    /// what is known; an unknown one is that error, not a 404.
    pub async fn find(&self, registry: &Registry, name: &DatabaseName) -> AppResult<Option<Arc<Member>>> {
        if let Err(e) = self.catch_up(registry).await {
            return match self.get(name) {
                Some(m) => {
                    tracing::warn!(error = %e, "cannot read the registry's version; serving what is known");
                    Ok(Some(m))
                }
                None => Err(e),
            };
        }
        Ok(self.get(name))
    }

    async fn catch_up(&self, registry: &Registry) -> AppResult<()> {
        let arrived = std::time::Instant::now();
        let mut last = self.0.checked.lock().await;
        if let Some((started, outcome)) = last.as_ref()
            && *started >= arrived
        {
            return outcome.clone().map_err(|e| anyhow::anyhow!(e).into());
        }
        let started = std::time::Instant::now();
        let outcome = async {
            let version = registry.version().await?;
            let synced = self.0.synced.read().ok().and_then(|s| s.clone());
            if synced.as_deref() != Some(version.as_str()) {
                self.resync(registry, true).await?;
            }
            Ok::<_, crate::error::AppError>(())
        }
        .await;
        *last = Some((
            started,
            outcome.as_ref().map(|_| ()).map_err(|e| format!("{e:#}")),
        ));
        outcome
    }

    /// The poller: every `interval`, pick up registry changes made elsewhere
    /// (the CLI, another instance) and check every database.
    pub async fn run(self, registry: Registry, interval: Duration) {
        loop {
            // The round below checks every member, new ones included.
            if let Err(e) = self.resync(&registry, false).await {
                tracing::error!(error = %e, "cannot read the registry");
            }
            self.check_all();
            tokio::time::sleep(interval).await;
        }
    }

    /// Close every connection (shutdown).
    pub async fn close(&self) {
        for m in self.members() {
            if let Ok(db) = &m.db {
                db.close().await;
            }
        }
        self.0.servers.close_idle();
    }
}

/// One server as the servers page shows it: the panel's connections there
/// and the registered databases that share them.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ServerView {
    #[serde(flatten)]
    pub connections: ServerConnections,
    pub databases: Vec<String>,
}

impl Fleet {
    /// Every server with registered databases, in host:port order.
    pub fn server_views(&self) -> Vec<ServerView> {
        let mut views: BTreeMap<String, ServerView> = BTreeMap::new();
        for m in self.members() {
            let Some(connections) = m.server() else { continue };
            views
                .entry(format!("{}/{}", connections.server, connections.engine.as_str()))
                .or_insert_with(|| ServerView {
                    connections,
                    databases: Vec::new(),
                })
                .databases
                .push(m.entry.name.to_string());
        }
        views.into_values().collect()
    }
}
