//! Point-in-time recovery for PostgreSQL on pgBackRest: physical backups,
//! expire and verify as jobs; the catalog read from `pgbackrest info`
//! (never a second copy); the restorable window; WAL archiving judged
//! from the server; restores to a moment into a new server (never over
//! the running one) registered as a new database; drills on schedule that
//! measure the RTO and prove the data; and the timeline of what happened,
//! read from the archived WAL.

mod archiving;
mod discard;
mod physical;
mod restore;
mod run;
mod task;
mod timeline;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use crate::domain::{JobKind, RestoreState};
use crate::engine::pitr::pgbackrest::{Info, Stanza, run_as};
use crate::engine::pitr::{Facts, RelationFile};
use crate::error::{AppError, AppResult};
use crate::service::Actor;
use crate::service::backup::schedule::take_due_named;
use crate::service::backup::status::{Drill, PitrFacts};
use crate::service::fleet::{Fleet, Member};
use crate::service::jobs::{JobCtx, JobSpec, Jobs};
use crate::service::registry::{PhysicalRun, Registry};
use crate::store::recovery::{self as rows, RestoreRow};
use crate::store::{Store, settings};

pub use archiving::{Archiving, Window};
use archiving::{archiving_of, archiving_state, retention_of, window_of};
pub use physical::{BackupType, Verified};
pub use restore::{Target, rfc3339_us};
pub use timeline::{Timeline, TimelineEvent};

/// An RFC 3339 time as µs since the epoch; `what` names the field in the error.
pub fn parse_time(what: &str, text: &str) -> AppResult<i64> {
    let t = time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            AppError::invalid(format!(
                "{what} must be an RFC 3339 time such as 2026-12-06T14:30:00Z, not {text:?}"
            ))
        })?;
    Ok((t.unix_timestamp_nanos() / 1000) as i64)
}

impl Target {
    /// From two optional fields: a time, a transaction, or neither (the latest).
    pub fn of(time: Option<&str>, xid: Option<i64>) -> AppResult<Target> {
        match (time.filter(|t| !t.trim().is_empty()), xid) {
            (Some(_), Some(_)) => Err(AppError::invalid("give target_time or target_xid, not both")),
            (Some(t), None) => Ok(Target::Time(parse_time("target_time", t)?)),
            (None, Some(x)) => Ok(Target::Xid(x)),
            (None, None) => Ok(Target::Latest),
        }
    }
}

/// A stanza as the panel tells stanzas apart: its config file and name.
fn stanza_id(stanza: &Stanza) -> String {
    format!(
        "{}:{}",
        stanza
            .config
            .as_deref()
            .map(|c| c.display().to_string())
            .unwrap_or_default(),
        stanza.name
    )
}

/// How the panel's recovery work is set up.
#[derive(Clone, Debug)]
pub struct RecoveryConfig {
    pub restore_dir: PathBuf,
    pub restore_keep: Duration,
    pub timeline_min_rows: i64,
    pub timeline_wal_budget: u64,
}

/// The recovery area's shared parts. Cheap to clone.
#[derive(Clone)]
pub struct Recovery(Arc<Inner>);

struct Inner {
    store: Store,
    jobs: Jobs,
    registry: Registry,
    fleet: Fleet,
    config: RecoveryConfig,
    /// Per database: what judging its backups needs, refreshed in the background.
    facts: StdMutex<HashMap<String, PitrFacts>>,
    /// Per database: the relation files last recorded, and the catalog's
    /// fingerprint they were read at.
    recorded: StdMutex<HashMap<String, (String, Vec<RelationFile>)>>,
    /// Per database: the last reading of the server and pgBackRest's catalog.
    readings: StdMutex<HashMap<String, Arc<ReadingSlot>>>,
    segments: timeline::SegmentCache,
    /// One timeline request decodes archived WAL at a time.
    decoding: tokio::sync::Semaphore,
    /// Restores whose discard job was started by this panel.
    discarding: StdMutex<std::collections::HashSet<i64>>,
}

/// How long one reading of a server's archiving and pgBackRest's catalog
/// serves every viewer: the database and the repository see one reading
/// per this interval, however many people watch.
const READING_SHARE: Duration = Duration::from_secs(3);

/// What the server and pgBackRest said, once.
struct Reading {
    facts: Result<Facts, String>,
    stanza: AppResult<Stanza>,
    info: Info,
    /// Why the catalog could not be read (pgBackRest missing, no stanza yet, …).
    info_error: Option<String>,
}

/// One database's reading and when it was taken; single-flight.
type ReadingSlot = tokio::sync::Mutex<Option<(std::time::Instant, Arc<Reading>)>>;

/// What the Backups tab and `GET …/recovery` show.
#[derive(Clone, Debug)]
pub struct Status {
    pub stanza: String,
    pub config: Option<String>,
    pub run_as: Option<String>,
    pub archiving: Archiving,
    pub window: Option<Window>,
    pub info: Info,
    /// Why the catalog could not be read (pgBackRest missing, no stanza yet, …).
    pub info_error: Option<String>,
    pub restores: Vec<RestoreRow>,
    pub verified: Option<Verified>,
    /// WAL archiving the server reported, or why it could not be read.
    pub facts: Result<Facts, String>,
    /// pgBackRest's retention settings, from its config file.
    pub retention: Vec<String>,
}

impl Recovery {
    pub fn new(
        store: Store,
        jobs: Jobs,
        registry: Registry,
        fleet: Fleet,
        config: RecoveryConfig,
    ) -> Recovery {
        Recovery(Arc::new(Inner {
            store,
            jobs,
            registry,
            fleet,
            config,
            facts: StdMutex::default(),
            recorded: StdMutex::default(),
            readings: StdMutex::default(),
            decoding: tokio::sync::Semaphore::new(1),
            discarding: StdMutex::default(),
            segments: timeline::SegmentCache::default(),
        }))
    }

    pub fn restore_dir(&self) -> &Path {
        &self.0.config.restore_dir
    }

    /// The database's stanza, or a clear refusal.
    fn stanza_name(m: &Member) -> AppResult<&str> {
        m.entry.pitr.stanza.as_deref().ok_or_else(|| {
            AppError::invalid(format!(
                "{} has no pgBackRest stanza: set one (pgbackrest_stanza) to use point-in-time recovery",
                m.entry.name
            ))
        })
    }

    /// The stanza with the OS user to run as, from the server's facts.
    fn stanza_of(m: &Member, facts: Option<&Facts>) -> AppResult<Stanza> {
        let name = Self::stanza_name(m)?;
        let config = m.entry.pitr.config.as_deref();
        let user = run_as(facts.map(|f| f.data_directory.as_str()), config.map(Path::new));
        Stanza::new(name, config, user).map_err(AppError::from)
    }

    async fn facts_of(m: &Member) -> Result<Facts, String> {
        m.read(|db| async move { db.recovery_facts().await }).await
    }

    /// The server's archiving and pgBackRest's catalog: shared for
    /// [`READING_SHARE`] unless `fresh` (actions judge on a new reading).
    async fn reading(&self, m: &Member, fresh: bool) -> Arc<Reading> {
        let slot = self
            .0
            .readings
            .lock()
            .map(|mut all| all.entry(m.entry.name.to_string()).or_default().clone())
            .unwrap_or_default();
        let mut taken = slot.lock().await;
        if !fresh
            && let Some((at, reading)) = taken.as_ref()
            && at.elapsed() < READING_SHARE
        {
            return reading.clone();
        }
        let facts = Self::facts_of(m).await;
        let stanza = Self::stanza_of(m, facts.as_ref().ok());
        let (info, info_error) = match &stanza {
            Ok(s) => match s.info().await {
                Ok(info) if info.status_code == 0 || !info.backups.is_empty() => (info, None),
                Ok(info) => {
                    let why = format!("pgBackRest: {} (code {})", info.status_message, info.status_code);
                    (info, Some(why))
                }
                Err(e) => (Info::default(), Some(e.to_string())),
            },
            Err(e) => (Info::default(), Some(e.to_string())),
        };
        let reading = Arc::new(Reading {
            facts,
            stanza,
            info,
            info_error,
        });
        *taken = Some((std::time::Instant::now(), reading.clone()));
        reading
    }

    /// The catalog, the window, archiving, restores: for the page and the
    /// API, from the shared reading.
    pub async fn status(&self, m: &Arc<Member>) -> AppResult<Status> {
        self.status_read(m, false).await
    }

    /// [`Recovery::status`] from a new reading, for an action to judge on.
    async fn status_fresh(&self, m: &Arc<Member>) -> AppResult<Status> {
        self.status_read(m, true).await
    }

    async fn status_read(&self, m: &Arc<Member>, fresh: bool) -> AppResult<Status> {
        let stanza_name = Self::stanza_name(m)?.to_string();
        let reading = self.reading(m, fresh).await;
        let archiving = archiving_of(&reading.facts);
        let window = window_of(&reading.info, &archiving);
        let restores = rows::list(self.0.store.pool(), m.entry.name.as_str(), 50).await?;
        let verified = self.verified(m.entry.name.as_str()).await;
        self.remember(m, &reading.facts, reading.info.newest_good(), &restores);
        Ok(Status {
            stanza: stanza_name,
            config: m.entry.pitr.config.clone(),
            run_as: reading.stanza.as_ref().ok().and_then(|s| s.run_as.clone()),
            archiving,
            window,
            info: reading.info.clone(),
            info_error: reading.info_error.clone(),
            restores,
            verified,
            facts: reading.facts.clone(),
            retention: retention_of(m.entry.pitr.config.as_deref()),
        })
    }

    /// What judging `name`'s backups needs, as last seen (`None` for a
    /// database without a stanza).
    pub fn pitr_facts(&self, entry: &crate::service::registry::DbEntry) -> Option<PitrFacts> {
        entry.pitr.stanza.as_ref()?;
        Some(
            self.0
                .facts
                .lock()
                .ok()
                .and_then(|f| f.get(entry.name.as_str()).cloned())
                .unwrap_or_default(),
        )
    }

    fn remember(
        &self,
        m: &Member,
        facts: &Result<Facts, String>,
        newest_physical: Option<i64>,
        restores: &[RestoreRow],
    ) {
        let archiving = match facts {
            Ok(f) => Some(archiving_state(f)),
            Err(_) => None,
        };
        let last_drill = restores
            .iter()
            .filter(|r| r.drill && matches!(r.state, RestoreState::Passed | RestoreState::Failed))
            .max_by_key(|r| r.id)
            .map(|r| Drill {
                at: r.finished_at.unwrap_or(r.created_at),
                ok: r.state == RestoreState::Passed,
                rto_s: r.rto_ms.map(|ms| (ms + 999) / 1000),
                error: r.error.clone().unwrap_or_default(),
            });
        if let Ok(mut all) = self.0.facts.lock() {
            all.insert(
                m.entry.name.to_string(),
                PitrFacts {
                    archiving,
                    newest_physical,
                    last_archived_at: facts.as_ref().ok().and_then(|f| f.last_archived_at),
                    last_drill,
                },
            );
        }
    }

    /// Record the database's relation files where they changed, so the
    /// timeline can name a relation after it is dropped. `fingerprint`:
    /// the catalog's as just read (see `Facts::relations`); the files are
    /// read only when it differs from the one last recorded (`None`: always).
    async fn record_files(&self, m: &Member, fingerprint: Option<&str>) {
        let name = m.entry.name.to_string();
        let known = self
            .0
            .recorded
            .lock()
            .ok()
            .and_then(|r| r.get(&name).map(|(f, _)| f.clone()));
        if let (Some(now), Some(known)) = (fingerprint, known.as_deref())
            && now == known
        {
            return;
        }
        let Ok(files) = m.read(|db| async move { db.relation_files().await }).await else {
            return;
        };
        let changed: Vec<RelationFile> = {
            let recorded = self.0.recorded.lock().ok();
            let before = recorded.as_ref().and_then(|r| r.get(&name)).map(|(_, f)| f);
            match before {
                Some(before) => {
                    let known: std::collections::HashSet<&RelationFile> = before.iter().collect();
                    files.iter().filter(|f| !known.contains(f)).cloned().collect()
                }
                None => files.clone(),
            }
        };
        if !changed.is_empty()
            && let Err(e) = rows::record_files(self.0.store.pool(), &name, &changed).await
        {
            tracing::warn!(database = %name, error = %e, "cannot record relation files");
            return;
        }
        if let Ok(mut r) = self.0.recorded.lock() {
            r.insert(name, (fingerprint.unwrap_or_default().to_string(), files));
        }
    }

    async fn verified(&self, database: &str) -> Option<Verified> {
        let text = settings::get(self.0.store.pool(), &format!("recovery:verify:{database}"))
            .await
            .ok()??;
        serde_json::from_str(&text).ok()
    }

    async fn submit(
        &self,
        actor: &Actor,
        spec: JobSpec,
        work: impl FnOnce(JobCtx) -> crate::service::jobs::JobFuture + Send + 'static,
    ) -> AppResult<i64> {
        self.0.jobs.submit(actor, spec, Box::new(work)).await
    }

    /// Refresh what judging needs (archiving, catalog, drills) for one
    /// database, and record its relation files if its catalog changed.
    async fn refresh(&self, m: &Arc<Member>) {
        let reading = self.reading(m, true).await;
        // A catalog that cannot be read now does not forget the backups it had.
        let newest_physical = match &reading.info_error {
            None => reading.info.newest_good(),
            Some(_) => self.pitr_facts(&m.entry).and_then(|f| f.newest_physical),
        };
        let restores = rows::list(self.0.store.pool(), m.entry.name.as_str(), 50)
            .await
            .unwrap_or_default();
        self.remember(m, &reading.facts, newest_physical, &restores);
        if let Ok(f) = &reading.facts {
            self.record_files(m, Some(&f.relations)).await;
        }
    }

    pub async fn get_restore(&self, id: i64) -> AppResult<RestoreRow> {
        rows::get(self.0.store.pool(), id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("There is no restore {id}.")))
    }

    /// What a serving panel runs beside its requests: every `every`, for
    /// each database with a stanza: archiving and the catalog refreshed,
    /// relation files recorded, due schedules run (physical backups,
    /// verify, drills); restored servers past `restore_keep` discarded;
    /// restores the panel died under interrupted and their directories
    /// removed (at start, then every tick).
    pub fn spawn_background(&self, every: Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            this.sweep_scratch();
            loop {
                this.sweep_interrupted().await;
                this.discard_expired().await;
                for m in this.0.fleet.members() {
                    if m.entry.pitr.stanza.is_none() {
                        continue;
                    }
                    this.refresh(&m).await;
                    if let Err(e) = this.run_schedules(&m).await {
                        tracing::warn!(database = %m.entry.name, error = %e, "scheduled recovery work failed to start");
                    }
                }
                tokio::time::sleep(every).await;
            }
        });
    }

    async fn run_schedules(&self, m: &Arc<Member>) -> AppResult<()> {
        let name = m.entry.name.to_string();
        let system = Actor::system();
        for (run, s) in &m.entry.plan.physical {
            let key = match run {
                PhysicalRun::Verify => "repo_verify".to_string(),
                other => format!("physical_backup:{}", other.as_str()),
            };
            if take_due_named(&self.0.store, &key, &name, &s.cron).await? {
                match run {
                    PhysicalRun::Full => self.backup(m, &system, BackupType::Full, false).await?,
                    PhysicalRun::Diff => self.backup(m, &system, BackupType::Diff, false).await?,
                    PhysicalRun::Incr => self.backup(m, &system, BackupType::Incr, false).await?,
                    PhysicalRun::Verify => self.stanza_job(m, &system, JobKind::RepoVerify).await?,
                };
            }
        }
        if let Some(s) = &m.entry.plan.drill
            && take_due_named(&self.0.store, "drill", &name, &s.cron).await?
        {
            self.drill(m, &system).await?;
        }
        Ok(())
    }
}
