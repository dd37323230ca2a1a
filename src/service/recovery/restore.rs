//! Restores to a moment into a new server, drills, and discarding: the
//! target checked against the window, the backup set picked by the panel,
//! `pgbackrest restore` into a new directory under `restore_dir`, the
//! server started with the original's own `pg_ctl` on a free port and
//! waited for until promoted, what it reached read from its log, the RTO
//! measured, and the server registered as a new database (a drill proves
//! it instead and discards it).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::{Recovery, Window};
use crate::config::SecretUrl;
use crate::domain::{AuditAction, DatabaseName, JobKind, RestoreState, Role};
use crate::engine::pitr::cluster::{self, Restored};
use crate::engine::pitr::pgbackrest::{PhysicalBackup, Stanza};
use crate::engine::pitr::server_program;
use crate::error::{AppError, AppResult};
use crate::format::fmt_time;
use crate::service::Actor;
use crate::service::audit::{Event, audited};
use crate::service::fleet::Member;
use crate::service::jobs::{JobCtx, JobFailure, JobSpec};
use crate::service::registry::{NewDatabase, PitrSettings, Schedules};
use crate::service::users::require;
use crate::store::now;
use crate::store::recovery::{self as rows, Ended, NewRestore, RestoreRow};

/// Where to recover to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Microseconds since the epoch: everything committed up to then.
    Time(i64),
    /// Everything before this transaction (it is left out).
    Xid(i64),
    /// The end of the archive.
    Latest,
}

/// "2026-12-06 21:43:14.411051+00", as pgBackRest passes it to PostgreSQL.
fn pg_time(us: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]+00"
    );
    t.format(&f).unwrap_or_default()
}

/// RFC 3339 with microseconds.
pub fn rfc3339_us(us: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.format(&f).unwrap_or_default()
}

fn window_text(w: &Window) -> String {
    format!(
        "the restorable window is {} – {} (UTC)",
        fmt_time(w.from),
        fmt_time(w.to)
    )
}

/// The backup to restore from: the newest consistent before the target.
fn pick(backups: &[PhysicalBackup], at_us: Option<i64>) -> Option<&PhysicalBackup> {
    let good = backups.iter().filter(|b| !b.error);
    match at_us {
        Some(us) => good
            .filter(|b| b.finished_at * 1_000_000 < us)
            .max_by_key(|b| b.finished_at),
        None => good.max_by_key(|b| b.finished_at),
    }
}

/// The restored server's URL: the original's user, password and database
/// on 127.0.0.1:port, without the original's host or TLS settings.
fn local_url(url: &SecretUrl, port: u16) -> AppResult<SecretUrl> {
    let mut u =
        url::Url::parse(url.expose()).map_err(|_| AppError::invalid("the database's URL does not parse"))?;
    u.set_host(Some("127.0.0.1"))
        .map_err(|_| AppError::invalid("cannot point the URL at the restored server"))?;
    u.set_port(Some(port))
        .map_err(|_| AppError::invalid("cannot point the URL at the restored server"))?;
    let keep: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| {
            !matches!(
                k.as_ref(),
                "host" | "hostaddr" | "port" | "sslmode" | "sslrootcert" | "sslcert" | "sslkey"
            )
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    u.set_query(None);
    if !keep.is_empty() {
        u.query_pairs_mut().extend_pairs(keep);
    }
    Ok(SecretUrl::new(u.to_string()))
}

/// `<name>-pitr-<yyyymmddhhmmss>` (or `-drill-`), within the name limit.
fn new_name(base: &DatabaseName, what: &str) -> String {
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let suffix = format!("-{what}-{stamp}");
    let room = DatabaseName::MAX_LEN.saturating_sub(suffix.len());
    let head: String = base.as_str().chars().take(room).collect();
    format!("{head}{suffix}")
}

/// Create `dir` if need be (others may pass through it, not list it),
/// and check that `user` can reach (search) every directory down to it.
pub(super) fn prepare_dir(dir: &std::path::Path, user: Option<&str>) -> AppResult<()> {
    use std::os::unix::fs::PermissionsExt;
    if !dir.is_absolute() {
        return Err(AppError::invalid(format!(
            "restore_dir {} must be an absolute path",
            dir.display()
        )));
    }
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .map_err(|e| AppError::invalid(format!("cannot create restore_dir {}: {e}", dir.display())))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711));
    }
    let Some(user) = user else { return Ok(()) };
    let mut p = PathBuf::new();
    for part in dir.components() {
        p.push(part);
        if let Ok(meta) = std::fs::metadata(&p) {
            let mode = meta.permissions().mode();
            let owner = crate::engine::pitr::pgbackrest::owner_of(&p);
            if mode & 0o001 == 0 && owner.as_deref() != Some(user) {
                return Err(AppError::invalid(format!(
                    "the restore directory {} cannot be reached by the OS user {user} ({} is closed to it): \
                     set restore_dir to a directory {user} can reach",
                    dir.display(),
                    p.display()
                )));
            }
        }
    }
    Ok(())
}

impl Recovery {
    /// Restore `m` to `target` into a new server (admin; `confirm` is the
    /// database's name). Returns (job id, restore id).
    pub async fn restore(
        &self,
        m: &Arc<Member>,
        actor: &Actor,
        target: Target,
        confirm: &str,
    ) -> AppResult<(i64, i64)> {
        let name = m.entry.name.to_string();
        let what = match target {
            Target::Time(us) => format!("time {}", rfc3339_us(us)),
            Target::Xid(x) => format!("before transaction {x}"),
            Target::Latest => "latest".into(),
        };
        let key = format!("database:{name}");
        let detail = format!("point-in-time restore to {what}");
        let event = Event {
            action: AuditAction::RecoveryRestore,
            target: &key,
            database: Some(&name),
            detail: &detail,
        };
        audited(&self.0.store, actor, event, async {
            require(actor, Role::Admin)?;
            if confirm.trim() != name {
                return Err(AppError::invalid(format!(
                    "type the database's name, {name}, to restore it into a new server"
                )));
            }
            self.start_restore(m, actor, target, false).await
        })
        .await
    }

    /// A drill: restore to a random point inside the window, prove, discard.
    pub async fn drill(&self, m: &Arc<Member>, actor: &Actor) -> AppResult<(i64, i64)> {
        require(actor, Role::Operator)?;
        let status = self.status(m).await?;
        let w = status.window.ok_or_else(|| {
            AppError::conflict(format!("{} has no physical backup to drill from", m.entry.name))
        })?;
        let span_us = ((w.to - w.from).max(0) as u64) * 1_000_000;
        let at = w.from * 1_000_000 + 1_000_000 + (rand::random::<u64>() % span_us.max(1)) as i64;
        let target = if at >= w.to * 1_000_000 {
            Target::Latest
        } else {
            Target::Time(at)
        };
        self.start_restore(m, actor, target, true).await
    }

    async fn start_restore(
        &self,
        m: &Arc<Member>,
        actor: &Actor,
        target: Target,
        drill: bool,
    ) -> AppResult<(i64, i64)> {
        m.reachable()?;
        let url = m.url().map_err(AppError::invalid)?;
        let status = self.status(m).await?;
        let facts = status.facts.clone().map_err(AppError::invalid)?;
        let window = status.window.ok_or_else(|| {
            AppError::conflict(format!(
                "{} has no physical backup in stanza {}: take one first",
                m.entry.name, status.stanza
            ))
        })?;
        // The target's time: given, or the transaction's commit from the timeline.
        let at_us = match target {
            Target::Time(us) => Some(us),
            Target::Xid(x) => self.0.segments.commit_time(&status.stanza, x),
            Target::Latest => None,
        };
        if let Target::Time(us) = target {
            if us < window.from * 1_000_000 {
                return Err(AppError::invalid(format!(
                    "{} is before the oldest backup's consistency point: {}",
                    rfc3339_us(us),
                    window_text(&window)
                )));
            }
            if us > (window.to + 1) * 1_000_000 {
                return Err(AppError::invalid(format!(
                    "{} is after the newest archived WAL: {}",
                    rfc3339_us(us),
                    window_text(&window)
                )));
            }
        }
        if let Target::Xid(x) = target
            && (x <= 2 || x > u32::MAX as i64)
        {
            return Err(AppError::invalid(format!("{x} is not a transaction id")));
        }
        let backup = match target {
            // Unknown commit time: the oldest backup replays through any xid after it.
            Target::Xid(_) if at_us.is_none() => status
                .info
                .backups
                .iter()
                .filter(|b| !b.error)
                .min_by_key(|b| b.finished_at),
            _ => pick(&status.info.backups, at_us),
        }
        .cloned()
        .ok_or_else(|| {
            AppError::invalid(format!(
                "no backup is consistent before the target: {}",
                window_text(&window)
            ))
        })?;
        let stanza = Self::stanza_of(m, Some(&facts))?;
        let pg_ctl = server_program(facts.major, "pg_ctl").map_err(AppError::from)?;
        let new_db = new_name(&m.entry.name, if drill { "drill" } else { "pitr" });
        DatabaseName::parse(&new_db)?;
        let dir = self.restore_dir().to_path_buf();
        let home = dir.join(&new_db);
        cluster::check_path(&home).map_err(AppError::from)?;
        prepare_dir(&dir, stanza.run_as.as_deref())?;
        let id = rows::insert(
            self.0.store.pool(),
            &NewRestore {
                database: m.entry.name.as_str(),
                drill,
                requested_by: &actor.name,
                target_us: match target {
                    Target::Time(us) => Some(us),
                    _ => None,
                },
                target_xid: match target {
                    Target::Xid(x) => Some(x),
                    _ => None,
                },
                backup_label: &backup.label,
                new_database: &new_db,
                dir: &home.display().to_string(),
                os_user: stanza.run_as.as_deref().unwrap_or(""),
                pg_bin: &pg_ctl.display().to_string(),
            },
        )
        .await?;
        let spec = JobSpec {
            kind: if drill {
                JobKind::Drill
            } else {
                JobKind::PitrRestore
            },
            database: Some(m.entry.name.to_string()),
            target: format!("restore #{id}: backup {} → {new_db}", backup.label),
            tables: vec![format!("restore:{id}")],
        };
        let task = RestoreTask {
            recovery: self.clone(),
            member: m.clone(),
            id,
            stanza,
            backup,
            target,
            url,
            drill,
            new_db,
            server: Restored {
                home,
                port: 0,
                pg_ctl,
                run_as: None,
            },
        };
        let job = self
            .submit(actor, spec, move |ctx| Box::pin(task.run(ctx)))
            .await?;
        rows::set_job(self.0.store.pool(), id, job).await?;
        Ok((job, id))
    }

    /// Stop a restored server, delete its directory and unregister it
    /// (admin), as a job.
    pub async fn discard(&self, actor: &Actor, id: i64) -> AppResult<i64> {
        let key = format!("restore:{id}");
        let row = self.get_restore(id).await;
        let database = row.as_ref().ok().map(|r| r.database_name.clone());
        let event = Event {
            action: AuditAction::RecoveryDiscard,
            target: &key,
            database: database.as_deref(),
            detail: "",
        };
        audited(&self.0.store, actor, event, async {
            require(actor, Role::Admin)?;
            let row = row?;
            if row.state != RestoreState::Ready {
                return Err(AppError::conflict(format!(
                    "restore {id} is {}: only a ready restored server can be discarded",
                    row.state
                )));
            }
            self.discard_job(actor, row).await
        })
        .await
    }

    async fn discard_job(&self, actor: &Actor, row: RestoreRow) -> AppResult<i64> {
        let spec = JobSpec {
            kind: JobKind::Discard,
            database: Some(row.database_name.clone()),
            target: format!("restore #{}: {}", row.id, row.new_database),
            tables: vec![format!("restore:{}", row.id)],
        };
        let this = self.clone();
        self.submit(actor, spec, move |ctx| {
            Box::pin(async move {
                ctx.progress(Some(0.1), "stopping the restored server");
                this.remove_restored(&row)
                    .await
                    .map_err(|e| JobFailure::Failed(e.to_string()))?;
                Ok(format!("discarded {} (restore #{})", row.new_database, row.id))
            })
        })
        .await
    }

    fn server_of(row: &RestoreRow) -> Restored {
        Restored {
            home: PathBuf::from(&row.dir),
            port: row.port.unwrap_or(0) as u16,
            pg_ctl: PathBuf::from(&row.pg_bin),
            run_as: (!row.os_user.is_empty()).then(|| row.os_user.clone()),
        }
    }

    /// Unregister, stop, delete, and mark discarded.
    async fn remove_restored(&self, row: &RestoreRow) -> AppResult<()> {
        if let Ok(name) = DatabaseName::parse(&row.new_database) {
            let system = Actor::system();
            match self.0.registry.remove(&system, &name).await {
                Ok(()) | Err(AppError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            self.0.fleet.refresh(&self.0.registry).await;
        }
        if !row.dir.is_empty() && row.dir.starts_with(&self.restore_dir().display().to_string()) {
            Self::server_of(row).remove().await.map_err(AppError::from)?;
        }
        rows::discarded(self.0.store.pool(), row.id).await?;
        Ok(())
    }

    /// Restores left 'restoring' by a panel that died: interrupted, their
    /// half-written directories removed.
    pub(super) async fn sweep_interrupted(&self) {
        let Ok(restoring) = rows::in_state(self.0.store.pool(), RestoreState::Restoring).await else {
            return;
        };
        for row in restoring {
            let active = match row.job_id {
                Some(job) => self
                    .0
                    .jobs
                    .get(job)
                    .await
                    .map(|j| j.state.is_active())
                    .unwrap_or(false),
                None => now() - row.created_at < 60,
            };
            if active {
                continue;
            }
            if !row.dir.is_empty() && row.dir.starts_with(&self.restore_dir().display().to_string()) {
                let server = Self::server_of(&row);
                server.stop().await;
                if let Err(e) = cluster::remove_dir(&server.home).await {
                    tracing::warn!(restore = row.id, error = %e, "cannot remove an interrupted restore's directory");
                    continue;
                }
            }
            let _ = rows::end(
                self.0.store.pool(),
                row.id,
                &Ended {
                    state: RestoreState::Interrupted,
                    reached: "",
                    rto_ms: None,
                    proof: "",
                    error: Some("the panel stopped during this restore; its directory was removed"),
                },
            )
            .await;
        }
    }

    /// Restored servers older than `restore_keep` are discarded by the panel.
    pub(super) async fn discard_expired(&self) {
        let Ok(ready) = rows::in_state(self.0.store.pool(), RestoreState::Ready).await else {
            return;
        };
        let keep = self.0.config.restore_keep.as_secs() as i64;
        for row in ready {
            if now() - row.finished_at.unwrap_or(row.created_at) > keep
                && let Err(e) = self.discard_job(&Actor::system(), row).await
            {
                tracing::warn!(error = %e, "cannot discard an expired restored server");
            }
        }
    }
}

/// How a restore ended well: the RTO is measured at the promotion
/// (restore, replay and promote), before registration or proofs.
struct RestoreDone {
    summary: String,
    state: RestoreState,
    reached: String,
    proof: String,
    rto_ms: i64,
}

struct RestoreTask {
    recovery: Recovery,
    member: Arc<Member>,
    id: i64,
    stanza: Stanza,
    backup: PhysicalBackup,
    target: Target,
    url: SecretUrl,
    drill: bool,
    new_db: String,
    server: Restored,
}

impl RestoreTask {
    async fn run(mut self, ctx: JobCtx) -> Result<String, JobFailure> {
        let started = Instant::now();
        self.server.run_as = self.stanza.run_as.clone();
        let result = self.restore_and_start(&ctx, started).await;
        let store = self.recovery.0.store.clone();
        match result {
            Ok(RestoreDone {
                summary,
                state: ended_state,
                reached,
                proof,
                rto_ms,
            }) => {
                let _ = rows::end(
                    store.pool(),
                    self.id,
                    &Ended {
                        state: ended_state,
                        reached: &reached,
                        rto_ms: Some(rto_ms),
                        proof: &proof,
                        error: None,
                    },
                )
                .await;
                if self.drill {
                    let _ = rows::discarded(store.pool(), self.id).await;
                }
                self.recovery.refresh(&self.member).await;
                Ok(format!("{summary}; RTO {:.1}s", rto_ms as f64 / 1000.0))
            }
            Err((failure, rto_ms, proof)) => {
                // Nothing half-done stays: the server stopped, its directory gone.
                let _ = self.server.remove().await;
                let message = match &failure {
                    JobFailure::Cancelled => "cancelled".to_string(),
                    JobFailure::Failed(e) => e.clone(),
                };
                let _ = rows::end(
                    store.pool(),
                    self.id,
                    &Ended {
                        state: RestoreState::Failed,
                        reached: "",
                        rto_ms,
                        proof: &proof,
                        error: Some(&message),
                    },
                )
                .await;
                if self.drill {
                    let _ = rows::discarded(store.pool(), self.id).await;
                }
                self.recovery.refresh(&self.member).await;
                Err(failure)
            }
        }
    }

    /// Restore, start, and register (or prove, for a drill). On failure:
    /// the failure, the RTO if the server came up, and the proof so far.
    async fn restore_and_start(
        &mut self,
        ctx: &JobCtx,
        started: Instant,
    ) -> Result<RestoreDone, (JobFailure, Option<i64>, String)> {
        let fail = |e: String| (JobFailure::Failed(e), None, String::new());
        let data = self.server.data();
        // A new directory, owned by whoever runs the server.
        tokio::fs::create_dir_all(&data)
            .await
            .map_err(|e| fail(format!("cannot create {}: {e}", data.display())))?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.server.home, std::fs::Permissions::from_mode(0o755));
            let _ = std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700));
        }
        if let Some(user) = &self.server.run_as {
            let ok = tokio::process::Command::new("chown")
                .arg("-R")
                .arg(user)
                .arg(&self.server.home)
                .status()
                .await
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(fail(format!(
                    "cannot give {} to {user}",
                    self.server.home.display()
                )));
            }
        }
        let mut args = vec![
            format!("--pg1-path={}", data.display()),
            format!("--set={}", self.backup.label),
            "--archive-mode=off".to_string(),
            format!(
                "--tablespace-map-all={}",
                self.server.home.join("tablespaces").display()
            ),
            "--log-level-console=detail".to_string(),
        ];
        match self.target {
            Target::Time(us) => {
                args.push("--type=time".into());
                args.push(format!("--target={}", pg_time(us)));
                args.push("--target-action=promote".into());
            }
            Target::Xid(x) => {
                args.push("--type=xid".into());
                args.push(format!("--target={x}"));
                args.push("--target-exclusive".into());
                args.push("--target-action=promote".into());
            }
            Target::Latest => args.push("--type=default".into()),
        }
        ctx.log(&format!(
            "restoring backup {} into {}",
            self.backup.label,
            data.display()
        ))
        .await;
        super::run::run(
            self.stanza.command("restore", &args),
            "pgbackrest restore",
            ctx,
            (0.0, 0.6),
        )
        .await
        .map_err(|e| (e, None, String::new()))?;
        let restored_in = started.elapsed();
        self.server.complete_config().map_err(|e| fail(e.to_string()))?;
        self.server.port = cluster::free_port().map_err(|e| fail(e.to_string()))?;
        let _ = rows::set_port(self.recovery.0.store.pool(), self.id, self.server.port as i64).await;
        ctx.progress(Some(0.65), "replaying WAL to the target");
        ctx.log(&format!(
            "starting the restored server on port {}",
            self.server.port
        ))
        .await;
        let start = self.server.start();
        tokio::select! {
            r = start => r.map_err(|e| fail(e.to_string()))?,
            _ = ctx.cancelled() => return Err((JobFailure::Cancelled, None, String::new())),
        }
        let rto_ms = started.elapsed().as_millis() as i64;
        let reached = self.server.reached();
        let reached_text = reached.as_ref().map(|r| r.at.clone()).unwrap_or_default();
        ctx.log(&format!(
            "promoted after {:.1}s (restore {:.1}s, replay and promote {:.1}s); reached: {}",
            rto_ms as f64 / 1000.0,
            restored_in.as_secs_f64(),
            rto_ms as f64 / 1000.0 - restored_in.as_secs_f64(),
            reached
                .as_ref()
                .map(|r| r.detail.as_str())
                .unwrap_or("(not in the log)")
        ))
        .await;
        let url = local_url(&self.url, self.server.port).map_err(|e| fail(e.to_string()))?;
        if self.drill {
            ctx.progress(Some(0.85), "proving the restored data");
            let proof = self.prove(&url).await;
            let _ = self.server.remove().await;
            return match proof {
                Ok(text) => Ok(RestoreDone {
                    summary: format!("drill passed: {text}"),
                    state: RestoreState::Passed,
                    reached: reached_text,
                    proof: text,
                    rto_ms,
                }),
                Err(e) => Err((JobFailure::Failed(format!("drill failed: {e}")), Some(rto_ms), e)),
            };
        }
        ctx.progress(Some(0.9), "registering the restored server");
        let name = DatabaseName::parse(&self.new_db).map_err(|e| fail(e.to_string()))?;
        let new = NewDatabase {
            name,
            url,
            migrations_dir: None,
            rpo: None,
            rto: None,
            schedules: Schedules::default(),
            pitr: PitrSettings::default(),
        };
        self.recovery
            .0
            .registry
            .add(&Actor::system(), new)
            .await
            .map_err(|e| fail(format!("the server is up but cannot be registered: {e}")))?;
        self.recovery.0.fleet.refresh(&self.recovery.0.registry).await;
        Ok(RestoreDone {
            summary: format!("restored into {} on port {}", self.new_db, self.server.port),
            state: RestoreState::Ready,
            reached: reached_text,
            proof: String::new(),
            rto_ms,
        })
    }

    /// Row counts of every table, and the proof query must answer true.
    async fn prove(&self, url: &SecretUrl) -> Result<String, String> {
        let db = crate::engine::connect(url, self.recovery.0.fleet.servers()).map_err(|e| e.to_string())?;
        let counts = db
            .dumps()
            .counts(url)
            .await
            .map_err(|e| format!("counting rows: {e}"));
        let proof = match &self.member.entry.pitr.proof_sql {
            // One scalar, as text: `SELECT (<proof>)::text` also keeps it to one statement.
            Some(sql) => match db
                .text_rows(&format!("SELECT ({})::text", sql.trim().trim_end_matches(';')))
                .await
            {
                Ok(rows) => {
                    let first = rows.first().and_then(|r| r.first().cloned().flatten());
                    match first.as_deref() {
                        Some("t") | Some("true") | Some("1") => Ok(true),
                        other => Err(format!(
                            "the proof query returned {} instead of true",
                            other.unwrap_or("nothing")
                        )),
                    }
                }
                Err(e) => Err(format!("the proof query failed: {e}")),
            },
            None => Ok(false),
        };
        db.close().await;
        let counts = counts?;
        let rows: i64 = counts.values().sum();
        let proved = proof?;
        Ok(format!(
            "{} tables, {rows} rows{}",
            counts.len(),
            if proved { ", proof query true" } else { "" }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_urls() {
        assert_eq!(pg_time(1_796_593_394_411_050), "2026-12-06 21:43:14.411050+00");
        assert_eq!(rfc3339_us(1_796_593_394_411_050), "2026-12-06T21:43:14.411050Z");
        let u = local_url(
            &SecretUrl::new("postgres://app:pw@db.example:5432/orders?sslmode=require&application_name=x"),
            6543,
        )
        .unwrap();
        assert_eq!(
            u.expose(),
            "postgres://app:pw@127.0.0.1:6543/orders?application_name=x"
        );
    }

    #[test]
    fn the_backup_is_the_newest_consistent_before_the_target() {
        let b = |label: &str, at: i64| PhysicalBackup {
            label: label.into(),
            kind: "full".into(),
            prior: None,
            started_at: at - 5,
            finished_at: at,
            bytes: 0,
            repo_bytes: 0,
            wal_start: String::new(),
            wal_stop: String::new(),
            lsn_start: String::new(),
            lsn_stop: String::new(),
            error: false,
        };
        let all = [b("a", 100), b("b", 200), b("c", 300)];
        assert_eq!(pick(&all, Some(250_000_000)).unwrap().label, "b");
        assert_eq!(pick(&all, Some(200_000_000)).unwrap().label, "a");
        assert!(pick(&all, Some(50_000_000)).is_none());
        assert_eq!(pick(&all, None).unwrap().label, "c");
    }
}
