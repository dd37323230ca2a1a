//! The fleet: every registered database with its last known status, kept
//! fresh by a background poller. Connections come from each server's budget
//! (`engine::Servers`: at most `max_connections_per_server` per host:port,
//! however many databases live there), and the poller walks one server's
//! databases one after another, so the server-wide reading is taken once
//! per server. Pages read the status and never wait on a database, so one
//! that is down or slow blocks nothing; it reconnects by itself when the
//! server is back.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Mutex;

use crate::domain::DatabaseName;
use crate::engine::{self, ServerConnections, Servers};
use crate::error::AppResult;
use crate::service::registry::{Connection, Registry};

mod cache;
mod member;

pub use cache::{ActivityCache, Snapshot};
pub use member::{Health, Member, PAGE_READ_LIMIT, Status};

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
    /// Re-reads of the registry, one at a time.
    resyncing: Mutex<()>,
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
            resyncing: Mutex::new(()),
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
        // Closed in the background: closing a file's pool waits for its
        // connections on loan (a VACUUM may hold one for long), and no
        // lookup may wait behind that.
        for m in retired {
            if let Ok(db) = m.db.clone() {
                tokio::spawn(async move { db.close().await });
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
        // One at a time (the poller and lookups both resync): an older read
        // landing after a newer one would pair old members with the new
        // version, and lookups would then trust a stale fleet.
        let _one = self.0.resyncing.lock().await;
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
