//! Monitoring: a sampler per managed database records its figures every
//! `sample_interval` into the store (rolled up and pruned as they age),
//! keeps the latest reading in memory for `/metrics`, and hands each sample
//! to the alert rules. Notifications go out from their own worker, so a
//! slow webhook never delays a sample.
//!
//! Here: the sampler and its lease. `rules/` holds one file per alert rule,
//! `alerts/` moves alerts along their states and what people do to them,
//! `notify` the webhooks and their worker, `charts` the figures over a range
//! (for pages and the API), `prometheus` the `/metrics` text. Pages and the
//! API reach the store only through these.

pub mod alerts;
pub mod charts;
pub mod notify;
pub mod prometheus;
pub mod rules;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Config;
use crate::domain::DatabaseName;
use crate::engine::{self, metrics::Reading};
use crate::secrets::Secrets;
use crate::service::backup::Backups;
use crate::service::fleet::{Fleet, Member, Rounds};
use crate::store::leases;
use crate::store::metrics::{self as samples, SampleRow};
use crate::store::{Store, now};

/// The lease that decides which panel instance samples the fleet.
const SAMPLER_LEASE: &str = "monitoring.sampler";

/// The settings monitoring reads from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub interval: Duration,
    pub full_resolution: Duration,
    pub retention: Duration,
    pub long_query_alert: Duration,
    pub verify_window: Duration,
    pub webhook_retry: Duration,
    pub webhook_attempts: u32,
    /// The panel's address for links in notifications, if configured.
    pub public_url: Option<String>,
}

impl Settings {
    pub fn of(config: &Config) -> Settings {
        Settings {
            interval: config.sample_interval,
            full_resolution: config.samples_full_resolution,
            retention: config.samples_retention,
            long_query_alert: config.long_query_alert,
            verify_window: config.verify_window,
            webhook_retry: config.webhook_retry,
            webhook_attempts: config.webhook_attempts,
            public_url: config.public_url.clone(),
        }
    }
}

/// The latest sample of one database.
#[derive(Clone, Debug)]
pub struct Latest {
    pub at: i64,
    /// The reading, or why the database did not answer.
    pub reading: Result<Reading, String>,
    /// The figures as stored (rates computed from the previous reading).
    pub row: Option<SampleRow>,
}

/// Per-database sampler state.
#[derive(Default)]
struct Probe {
    /// One sample at a time: a slow database never piles samples up.
    busy: tokio::sync::Mutex<()>,
    /// The previous good reading and when (seconds, fractional), for rates.
    previous: Mutex<Option<(f64, Reading)>>,
    latest: Mutex<Option<Latest>>,
}

#[derive(Clone)]
pub struct Monitor(Arc<Inner>);

struct Inner {
    store: Store,
    fleet: Fleet,
    backups: Backups,
    secrets: Secrets,
    settings: Settings,
    probes: Mutex<HashMap<DatabaseName, Arc<Probe>>>,
    /// Servers whose round of samples is still running.
    rounds: Rounds,
    /// The webhook client, or why it could not be built (no usable TLS
    /// roots, say): deliveries then fail with that reason, nothing panics.
    http: Result<reqwest::Client, String>,
    /// Wakes the delivery worker when something is queued.
    wake: tokio::sync::Notify,
    /// This instance, for the sampling lease.
    instance: String,
}

impl Monitor {
    pub fn new(
        store: Store,
        fleet: Fleet,
        backups: Backups,
        secrets: Secrets,
        settings: Settings,
    ) -> Monitor {
        let http = reqwest::Client::builder()
            .timeout(notify::TIMEOUT)
            .user_agent(concat!("custodian/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("the panel's HTTP client could not start: {e}"));
        if let Err(e) = &http {
            tracing::error!(error = %e, "webhooks cannot be sent");
        }
        Monitor(Arc::new(Inner {
            store,
            fleet,
            backups,
            secrets,
            settings,
            probes: Mutex::new(HashMap::new()),
            rounds: Rounds::default(),
            http,
            wake: tokio::sync::Notify::new(),
            instance: uuid::Uuid::new_v4().to_string(),
        }))
    }

    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    fn probe(&self, name: &DatabaseName) -> Arc<Probe> {
        let mut probes = self.0.probes.lock().unwrap_or_else(|e| e.into_inner());
        probes.entry(name.clone()).or_default().clone()
    }

    /// The latest sample of a database, if one was taken.
    pub fn latest(&self, name: &DatabaseName) -> Option<Latest> {
        let probe = self.0.probes.lock().ok()?.get(name).cloned()?;
        probe.latest.lock().ok()?.clone()
    }

    /// Start the sampler, the compaction and the delivery worker.
    pub fn spawn(&self) {
        tokio::spawn(self.clone().sample_loop());
        tokio::spawn(self.clone().deliver_loop());
    }

    /// Whether this instance samples the fleet now. Panels sharing a store
    /// take turns through a lease of three intervals (at least 30 s), renewed
    /// every round, so the fleet is sampled once and alerts judged once; if
    /// the holder stops, another instance takes over when it runs out.
    pub async fn lead(&self, at: i64) -> bool {
        let hold = (3 * self.0.settings.interval.as_secs() as i64).max(30);
        match leases::acquire(
            self.0.store.pool(),
            SAMPLER_LEASE,
            &self.0.instance,
            at + hold,
            at,
        )
        .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the sampling lease");
                false
            }
        }
    }

    async fn sample_loop(self) {
        let mut compacted_at = 0;
        loop {
            let leading = self.lead(now()).await;
            if leading {
                // One task per server, its databases one after another: the
                // first reads the server-wide views for all of them.
                for group in self.0.fleet.by_server() {
                    let me = self.clone();
                    tokio::spawn(async move {
                        let Some(_round) = me.0.rounds.start(&group) else {
                            return;
                        };
                        for m in &group {
                            me.sample(m).await;
                        }
                    });
                }
            }
            // Compaction and closing orphaned alerts judge by this instance's
            // fleet: only the instance that judges alerts does them.
            if leading && now() - compacted_at >= 3600 {
                compacted_at = now();
                if let Err(e) = self.compact(now()).await {
                    tracing::warn!(error = %e, "sample compaction failed");
                }
            }
            tokio::time::sleep(self.0.settings.interval).await;
        }
    }

    /// Roll up and prune samples as of `at`; forget databases no longer
    /// registered (their samples once an hour old, their alerts now) and
    /// alert history older than three retention periods.
    pub async fn compact(&self, at: i64) -> anyhow::Result<samples::Compacted> {
        let known: Vec<String> = self
            .0
            .fleet
            .members()
            .iter()
            .map(|m| m.entry.name.to_string())
            .collect();
        let s = &self.0.settings;
        let done = samples::compact(
            self.0.store.pool(),
            at - s.full_resolution.as_secs() as i64,
            at - s.retention.as_secs() as i64,
            &known,
            at - 3600,
        )
        .await?;
        alerts::close_orphans(self, &known).await?;
        // Alert history and deliveries are kept three times as long as samples.
        crate::store::alerts::prune(self.0.store.pool(), at - 3 * s.retention.as_secs() as i64).await?;
        if let Ok(mut probes) = self.0.probes.lock() {
            probes.retain(|name, _| known.iter().any(|k| k == name.as_str()));
        }
        tracing::debug!(rolled = done.rolled, deleted = done.deleted, "samples compacted");
        Ok(done)
    }

    /// Take one sample of `member` (unless one is running), store it, and
    /// judge the alert rules on it.
    pub async fn sample(&self, member: &Arc<Member>) {
        let probe = self.probe(&member.entry.name);
        let Ok(_busy) = probe.busy.try_lock() else {
            return;
        };
        let at = now();
        let precise = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9;
        let reading = match member.db() {
            Ok(db) => {
                let limit = engine::CONNECT_TIMEOUT + engine::STATEMENT_TIMEOUT;
                match tokio::time::timeout(limit, db.reading()).await {
                    Ok(Ok(r)) => Ok(r),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {} seconds", limit.as_secs())),
                }
            }
            Err(why) => Err(why),
        };
        let name = member.entry.name.to_string();
        let row = reading.as_ref().ok().map(|r| {
            let mut previous = probe.previous.lock().unwrap_or_else(|e| e.into_inner());
            // Rates over a long gap (this instance did not hold the lease,
            // or the database was down) would be averages, not rates.
            let window = 3.0 * self.0.settings.interval.as_secs_f64();
            let since = previous
                .as_ref()
                .map(|(t, p)| (precise - t, p))
                .filter(|(elapsed, _)| *elapsed <= window);
            let row = derive(&name, at, r, since);
            *previous = Some((precise, r.clone()));
            row
        });
        if let Some(row) = &row
            && let Err(e) = samples::insert(self.0.store.pool(), row).await
        {
            tracing::warn!(database = %name, error = %e, "cannot store a sample");
        }
        let growth = match &row {
            Some(row) => self.growth_per_day(row).await,
            None => None,
        };
        if let Ok(mut latest) = probe.latest.lock() {
            *latest = Some(Latest {
                at,
                reading: reading.clone(),
                row,
            });
        }
        let backups = self.0.backups.list(&name, 100).await.ok();
        let facts = rules::Facts {
            now: at,
            reading: reading.as_ref().map_err(|e| e.as_str()),
            growth_per_day: growth,
            entry: &member.entry,
            backups: backups.as_deref(),
        };
        if let Err(e) = alerts::evaluate(self, &member.entry, &facts).await {
            tracing::warn!(database = %name, error = %e, "cannot evaluate alert rules");
        }
    }

    /// Size growth over the last day of samples, as bytes per day; needs
    /// at least an hour of history.
    async fn growth_per_day(&self, row: &SampleRow) -> Option<f64> {
        let then = samples::first_since(self.0.store.pool(), &row.database_name, row.at - 86_400)
            .await
            .ok()??;
        let span = (row.at - then.at) as f64;
        if span < 3600.0 {
            return None;
        }
        Some((row.size_bytes? - then.size_bytes?) / span * 86_400.0)
    }
}

/// The stored figures of a reading: counters become rates against the
/// previous reading (`elapsed` seconds earlier); a counter that went
/// backwards (a server restart) gives no rate this once.
pub fn derive(database: &str, at: i64, r: &Reading, previous: Option<(f64, &Reading)>) -> SampleRow {
    let rate = |now: Option<f64>, then: Option<f64>, elapsed: f64| match (now, then) {
        (Some(n), Some(t)) if n >= t && elapsed > 0.0 => Some((n - t) / elapsed),
        _ => None,
    };
    let (commits_ps, rollbacks_ps, cache_hit) = match previous {
        Some((elapsed, p)) => {
            let hits = rate(r.cache_hits, p.cache_hits, 1.0);
            let reads = rate(r.cache_reads, p.cache_reads, 1.0);
            let ratio = match (hits, reads) {
                (Some(h), Some(t)) if t > 0.0 => Some((h / t).min(1.0)),
                // Nothing read in between: the cumulative ratio says the most.
                _ => cumulative_hit(r),
            };
            (
                rate(r.commits, p.commits, elapsed),
                rate(r.rollbacks, p.rollbacks, elapsed),
                ratio,
            )
        }
        None => (None, None, cumulative_hit(r)),
    };
    SampleRow {
        database_name: database.to_string(),
        at,
        connections: r.connections,
        active: r.active,
        idle: r.idle,
        idle_in_xact: r.idle_in_xact,
        max_connections: r.max_connections,
        commits_ps,
        rollbacks_ps,
        cache_hit,
        size_bytes: r.size_bytes,
        longest_query_s: r.longest_query.as_ref().map(|q| q.seconds),
        longest_xact_s: r.longest_xact_s,
        longest_idle_xact_s: r.longest_idle_xact.as_ref().map(|q| q.seconds),
        replication_lag_s: r.replicas.iter().map(|x| x.lag_s).reduce(f64::max),
        dead_tuples: r.dead_tuples,
        xid_age: r.xid_age,
        archive_failing: r.archive_failing.map(|f| if f { 1.0 } else { 0.0 }),
    }
}

fn cumulative_hit(r: &Reading) -> Option<f64> {
    match (r.cache_hits, r.cache_reads) {
        (Some(h), Some(t)) if t > 0.0 => Some((h / t).min(1.0)),
        _ => None,
    }
}
