//! Point-in-time recovery for PostgreSQL on pgBackRest: physical backups,
//! expire and verify as jobs; the catalog read from `pgbackrest info`
//! (never a second copy); the restorable window; WAL archiving judged
//! from the server; restores to a moment into a new server (never over
//! the running one) registered as a new database; drills on schedule that
//! measure the RTO and prove the data; and the timeline of what happened,
//! read from the archived WAL.

mod restore;
mod run;
mod timeline;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use crate::domain::{JobKind, RestoreState, Role};
use crate::engine::pitr::pgbackrest::{Info, Stanza, run_as, segment_parts};
use crate::engine::pitr::{Facts, RelationFile};
use crate::error::{AppError, AppResult};
use crate::service::Actor;
use crate::service::backup::schedule::take_due_named;
use crate::service::backup::status::{ArchivingState, Drill, PitrFacts};
use crate::service::fleet::{Fleet, Member};
use crate::service::jobs::{GLOBAL_CLAIM, JobCtx, JobFailure, JobSpec, Jobs};
use crate::service::registry::{PhysicalRun, Registry};
use crate::service::users::require;
use crate::store::recovery::{self as rows, RestoreRow};
use crate::store::{Store, now, settings};

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
    /// Per database: the relation files last recorded.
    recorded: StdMutex<HashMap<String, Vec<RelationFile>>>,
    segments: timeline::SegmentCache,
}

/// A physical backup's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackupType {
    Full,
    Diff,
    Incr,
}

impl BackupType {
    pub fn parse(s: &str) -> AppResult<BackupType> {
        match s {
            "full" => Ok(BackupType::Full),
            "diff" => Ok(BackupType::Diff),
            "incr" => Ok(BackupType::Incr),
            other => Err(AppError::invalid(format!(
                "backup type {other:?}: use full, diff or incr"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BackupType::Full => "full",
            BackupType::Diff => "diff",
            BackupType::Incr => "incr",
        }
    }
}

/// WAL archiving as the page and the API show it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Archiving {
    pub ok: bool,
    pub failing: bool,
    pub last_archived_at: Option<i64>,
    pub last_archived_wal: Option<String>,
    pub message: String,
    pub archive_mode: String,
    pub archive_command: String,
    pub failed_count: i64,
}

/// The restorable window: from the oldest backup's consistency point to
/// the newest archived WAL (Unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

/// The last `pgbackrest verify`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verified {
    pub at: i64,
    pub ok: bool,
    /// Its WARN and ERROR lines (gaps in the archive, damaged files).
    pub findings: Vec<String>,
}

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

/// A job claim on a stanza, held across the databases that share it
/// (one backup or expire of a stanza at a time, whichever database asks).
fn stanza_claim(stanza: &Stanza, what: &str) -> String {
    format!(
        "{GLOBAL_CLAIM}pgbackrest-{what}:{}:{}",
        stanza
            .config
            .as_deref()
            .map(|c| c.display().to_string())
            .unwrap_or_default(),
        stanza.name
    )
}

/// The `repo*-retention-*` lines of pgBackRest's config (given, or its default places).
fn retention_of(config: Option<&str>) -> Vec<String> {
    let candidates: Vec<&str> = match config {
        Some(c) => vec![c],
        None => vec!["/etc/pgbackrest/pgbackrest.conf", "/etc/pgbackrest.conf"],
    };
    candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|text| {
            text.lines()
                .map(str::trim)
                .filter(|l| l.starts_with("repo") && l.contains("-retention-"))
                .map(|l| l.chars().take(100).collect())
                .collect()
        })
        .unwrap_or_default()
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

    /// The catalog, the window, archiving, restores: for the page and the API.
    pub async fn status(&self, m: &Arc<Member>) -> AppResult<Status> {
        let stanza_name = Self::stanza_name(m)?.to_string();
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
        let archiving = archiving_of(&facts);
        let window = window_of(&info, &archiving);
        let restores = rows::list(self.0.store.pool(), m.entry.name.as_str(), 50).await?;
        let verified = self.verified(m.entry.name.as_str()).await;
        self.remember(m, &facts, &info, &restores);
        if facts.is_ok() {
            self.record_files(m).await;
        }
        Ok(Status {
            stanza: stanza_name,
            config: m.entry.pitr.config.clone(),
            run_as: stanza.ok().and_then(|s| s.run_as),
            archiving,
            window,
            info,
            info_error,
            restores,
            verified,
            facts,
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

    fn remember(&self, m: &Member, facts: &Result<Facts, String>, info: &Info, restores: &[RestoreRow]) {
        let archiving = match facts {
            Ok(f) => Some(archiving_state(f)),
            Err(_) => None,
        };
        let newest_physical = info
            .backups
            .iter()
            .filter(|b| !b.error)
            .map(|b| b.finished_at)
            .max();
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
    /// timeline can name a relation after it is dropped.
    async fn record_files(&self, m: &Member) {
        let Ok(files) = m.read(|db| async move { db.relation_files().await }).await else {
            return;
        };
        let name = m.entry.name.to_string();
        let changed: Vec<RelationFile> = {
            let recorded = self.0.recorded.lock().ok();
            let before = recorded.as_ref().and_then(|r| r.get(&name));
            match before {
                Some(before) => files.iter().filter(|f| !before.contains(f)).cloned().collect(),
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
            r.insert(name, files);
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

    /// Take a physical backup (operator). `fast`: start with an immediate
    /// checkpoint (a backup someone asked for now); scheduled ones follow
    /// pgBackRest's config.
    pub async fn backup(
        &self,
        m: &Arc<Member>,
        actor: &Actor,
        kind: BackupType,
        fast: bool,
    ) -> AppResult<i64> {
        require(actor, Role::Operator)?;
        m.reachable()?;
        let facts = Self::facts_of(m).await.map_err(AppError::invalid)?;
        let stanza = Self::stanza_of(m, Some(&facts))?;
        self.record_files(m).await;
        let name = m.entry.name.to_string();
        let spec = JobSpec {
            kind: JobKind::PhysicalBackup,
            database: Some(name.clone()),
            target: format!("{} backup of stanza {}", kind.as_str(), stanza.name),
            tables: vec![stanza_claim(&stanza, "backup")],
        };
        let this = self.clone();
        let member = m.clone();
        self.submit(actor, spec, move |ctx| {
            Box::pin(async move {
                let mut args = vec![
                    format!("--type={}", kind.as_str()),
                    "--log-level-console=detail".into(),
                ];
                args.push("--no-expire-auto".into());
                if fast {
                    args.push("--start-fast".into());
                }
                ctx.progress(Some(0.0), "waiting for the backup's checkpoint");
                let lines = run::run(
                    stanza.command("backup", &args),
                    "pgbackrest backup",
                    &ctx,
                    (0.0, 0.97),
                )
                .await?;
                let label = lines
                    .iter()
                    .find_map(|l| l.strip_prefix("new backup label = "))
                    .unwrap_or("?")
                    .to_string();
                this.record_files(&member).await;
                // Retention is pgBackRest's own: expire after each backup.
                if let Err(e) = this.expire(&member, &Actor::system(), &stanza).await {
                    ctx.log(&format!("expire not started: {e}")).await;
                }
                this.refresh(&member).await;
                Ok(format!("{} backup {label}", kind.as_str()))
            })
        })
        .await
    }

    async fn expire(&self, m: &Arc<Member>, actor: &Actor, stanza: &Stanza) -> AppResult<i64> {
        let spec = JobSpec {
            kind: JobKind::Expire,
            database: Some(m.entry.name.to_string()),
            target: format!("stanza {} (pgBackRest's retention)", stanza.name),
            tables: vec![stanza_claim(&stanza, "backup")],
        };
        let stanza = stanza.clone();
        self.submit(actor, spec, move |ctx| {
            Box::pin(async move {
                let lines = run::run(
                    stanza.command("expire", &[]),
                    "pgbackrest expire",
                    &ctx,
                    (0.0, 1.0),
                )
                .await?;
                let removed = lines.iter().filter(|l| l.contains("expire")).count();
                Ok(format!("expired by pgBackRest's retention ({removed} lines)"))
            })
        })
        .await
    }

    /// `stanza-create`, `check` or `verify`, as a job (operator).
    pub async fn stanza_job(&self, m: &Arc<Member>, actor: &Actor, kind: JobKind) -> AppResult<i64> {
        require(actor, Role::Operator)?;
        let (command, what) = match kind {
            JobKind::StanzaCreate => ("stanza-create", "create the stanza"),
            JobKind::StanzaCheck => ("check", "check archiving and the repository"),
            JobKind::RepoVerify => ("verify", "verify the repository's backups and WAL"),
            other => return Err(AppError::invalid(format!("{other} is not a stanza job"))),
        };
        let facts = Self::facts_of(m).await.ok();
        let stanza = Self::stanza_of(m, facts.as_ref())?;
        let name = m.entry.name.to_string();
        let spec = JobSpec {
            kind,
            database: Some(name.clone()),
            target: format!("stanza {}: {what}", stanza.name),
            tables: vec![stanza_claim(&stanza, "admin")],
        };
        let this = self.clone();
        let member = m.clone();
        self.submit(actor, spec, move |ctx| {
            Box::pin(async move {
                let args: Vec<String> = if kind == JobKind::RepoVerify {
                    vec!["--log-level-console=info".into()]
                } else {
                    Vec::new()
                };
                let result = run::run(
                    stanza.command(command, &args),
                    &format!("pgbackrest {command}"),
                    &ctx,
                    (0.0, 1.0),
                )
                .await;
                if kind == JobKind::RepoVerify {
                    let (ok, findings) = match &result {
                        Ok(lines) => {
                            let found: Vec<String> = lines
                                .iter()
                                .filter(|l| {
                                    l.starts_with("WARN") || l.contains("missing") || l.contains("invalid")
                                })
                                .cloned()
                                .collect();
                            (found.is_empty(), found)
                        }
                        Err(JobFailure::Failed(e)) => (false, vec![e.clone()]),
                        Err(JobFailure::Cancelled) => return Err(JobFailure::Cancelled),
                    };
                    let v = Verified {
                        at: now(),
                        ok,
                        findings,
                    };
                    let _ = settings::put(
                        this.0.store.pool(),
                        &format!("recovery:verify:{name}"),
                        &serde_json::to_string(&v).unwrap_or_default(),
                    )
                    .await;
                    if !ok {
                        return Err(JobFailure::Failed(format!(
                            "verify found: {}",
                            v.findings.join(" / ")
                        )));
                    }
                }
                result?;
                this.refresh(&member).await;
                Ok(format!("pgbackrest {command}: done"))
            })
        })
        .await
    }

    /// Refresh what judging needs (archiving, catalog, drills) for one database.
    async fn refresh(&self, m: &Arc<Member>) {
        let facts = Self::facts_of(m).await;
        let info = match Self::stanza_of(m, facts.as_ref().ok()) {
            Ok(s) => s.info().await.ok(),
            Err(_) => None,
        };
        // A catalog that cannot be read now does not forget the backups it had.
        let info = match info {
            Some(info) => info,
            None => {
                let kept = self.pitr_facts(&m.entry).and_then(|f| f.newest_physical);
                let mut info = Info::default();
                if let Some(at) = kept {
                    info.backups
                        .push(crate::engine::pitr::pgbackrest::PhysicalBackup {
                            label: String::new(),
                            kind: String::new(),
                            prior: None,
                            started_at: at,
                            finished_at: at,
                            bytes: 0,
                            repo_bytes: 0,
                            wal_start: String::new(),
                            wal_stop: String::new(),
                            lsn_start: String::new(),
                            lsn_stop: String::new(),
                            error: false,
                        });
                }
                info
            }
        };
        let restores = rows::list(self.0.store.pool(), m.entry.name.as_str(), 50)
            .await
            .unwrap_or_default();
        self.remember(m, &facts, &info, &restores);
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
            let mut ticks: u64 = 0;
            loop {
                this.sweep_interrupted().await;
                this.discard_expired().await;
                for m in this.0.fleet.members() {
                    if m.entry.pitr.stanza.is_none() {
                        continue;
                    }
                    this.refresh(&m).await;
                    if ticks.is_multiple_of(4) {
                        this.record_files(&m).await;
                    }
                    if let Err(e) = this.run_schedules(&m).await {
                        tracing::warn!(database = %m.entry.name, error = %e, "scheduled recovery work failed to start");
                    }
                }
                ticks += 1;
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

/// Archiving as judged for the RPO: behind (since the last archived
/// segment) when finished segments wait; else working, with unarchived
/// WAL since the last archived segment when the segment being written
/// holds more than its page header.
fn archiving_state(f: &Facts) -> ArchivingState {
    let a = archiving_of(&Ok(f.clone()));
    if !a.ok {
        return ArchivingState::Broken(a.message);
    }
    let size = f.wal_segment_size.max(1024 * 1024);
    // A backup history file ("….00000028.backup") names its segment first.
    let number = |w: &Option<String>| {
        w.as_deref()
            .and_then(|w| segment_parts(w.get(..24)?, size))
            .map(|(_, n)| n)
    };
    let done = number(&f.last_archived_wal);
    let writing = number(&f.current_wal);
    match (done, writing, f.last_archived_at) {
        (Some(done), Some(now_at), Some(since)) if now_at > done + 1 => ArchivingState::Behind { since },
        (Some(_), Some(_), Some(since)) => ArchivingState::Working {
            unarchived_since: f
                .current_offset
                .is_some_and(|o| o > WAL_PAGE_HEADER)
                .then_some(since),
            archive_timeout_s: f.archive_timeout_s,
        },
        _ => ArchivingState::Working {
            unarchived_since: None,
            archive_timeout_s: f.archive_timeout_s,
        },
    }
}

/// The long page header at the start of every WAL segment
/// (SizeOfXLogLongPHD): an offset past it means WAL was written there.
const WAL_PAGE_HEADER: i64 = 40;

/// Archiving as the page shows it.
fn archiving_of(facts: &Result<Facts, String>) -> Archiving {
    let f = match facts {
        Ok(f) => f,
        Err(e) => {
            return Archiving {
                message: format!("cannot read the server's archiver: {e}"),
                ..Archiving::default()
            };
        }
    };
    let base = Archiving {
        last_archived_at: f.last_archived_at,
        last_archived_wal: f.last_archived_wal.clone(),
        archive_mode: f.archive_mode.clone(),
        archive_command: f.archive_command.clone(),
        failed_count: f.failed_count,
        ..Archiving::default()
    };
    if !f.archiving_on() {
        return Archiving {
            message: format!(
                "WAL archiving is off (archive_mode={}{}): point-in-time recovery cannot reach past the last backup",
                f.archive_mode,
                if f.archive_command.trim().is_empty() {
                    ", no archive_command"
                } else {
                    ""
                }
            ),
            ..base
        };
    }
    if let Some(at) = f.last_failed_at {
        return Archiving {
            failing: true,
            message: format!(
                "WAL archiving is failing: {} could not be archived ({} ago, {} failures so far); check archive_command and pgBackRest's log",
                f.last_failed_wal.clone().unwrap_or_else(|| "a segment".into()),
                crate::format::fmt_age(f.now - at),
                f.failed_count
            ),
            ..base
        };
    }
    match (&f.last_archived_wal, f.last_archived_at) {
        (Some(wal), Some(at)) => Archiving {
            ok: true,
            message: format!(
                "archiving works: {wal} archived {} ago",
                crate::format::fmt_age(f.now - at)
            ),
            ..base
        },
        _ => Archiving {
            message: "no WAL archived yet: run check to archive one".into(),
            ..base
        },
    }
}

/// From the oldest good backup's end to the newest archived WAL (or the
/// newest backup's end, when nothing was archived after it).
fn window_of(info: &Info, archiving: &Archiving) -> Option<Window> {
    let good: Vec<_> = info.backups.iter().filter(|b| !b.error).collect();
    let from = good.iter().map(|b| b.finished_at).min()?;
    let newest = good.iter().map(|b| b.finished_at).max().unwrap_or(from);
    let to = archiving.last_archived_at.unwrap_or(newest).max(newest);
    Some(Window { from, to })
}
