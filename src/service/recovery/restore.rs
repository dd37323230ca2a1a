//! Restores to a moment into a new server, and drills: the target
//! checked against the window, the backup set picked by the panel, and a
//! restore row and job started ([`super::task`] does the work).

use std::path::PathBuf;
use std::sync::Arc;

use super::task::RestoreTask;
use super::{Recovery, Window};
use crate::domain::{AuditAction, DatabaseName, JobKind, Role};
use crate::engine::pitr::cluster::{self, Restored};
use crate::engine::pitr::pgbackrest::PhysicalBackup;
use crate::engine::pitr::server_program;
use crate::error::{AppError, AppResult};
use crate::format::fmt_time;
use crate::service::Actor;
use crate::service::audit::{Event, audited};
use crate::service::fleet::Member;
use crate::service::jobs::JobSpec;
use crate::service::users::require;
use crate::store::recovery::{self as rows, NewRestore};

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
        let status = self.status_fresh(m).await?;
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
        let status = self.status_fresh(m).await?;
        let facts = status.facts.clone().map_err(AppError::invalid)?;
        let window = status.window.ok_or_else(|| {
            AppError::conflict(format!(
                "{} has no physical backup in stanza {}: take one first",
                m.entry.name, status.stanza
            ))
        })?;
        let stanza = Self::stanza_of(m, Some(&facts))?;
        // The target's time: given, or the transaction's commit from the timeline.
        let at_us = match target {
            Target::Time(us) => Some(us),
            Target::Xid(x) => self.0.segments.commit_time(&super::stanza_id(&stanza), x),
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
            prepared: false,
        };
        let job = self
            .submit(actor, spec, move |ctx| Box::pin(task.run(ctx)))
            .await?;
        rows::set_job(self.0.store.pool(), id, job).await?;
        Ok((job, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
