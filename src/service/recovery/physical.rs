//! Physical backups on pgBackRest as jobs: full, diff and incr with live
//! progress, pgBackRest's own retention (`expire`) after each, and
//! stanza-create, check and verify. One backup or expire of a stanza at
//! a time, whichever of the databases sharing it asks.

use std::sync::Arc;

use super::Recovery;
use super::run;
use crate::domain::{JobKind, Role};
use crate::engine::pitr::pgbackrest::Stanza;
use crate::error::{AppError, AppResult};
use crate::service::Actor;
use crate::service::fleet::Member;
use crate::service::jobs::{GLOBAL_CLAIM, JobFailure, JobSpec};
use crate::service::users::require;
use crate::store::{now, settings};

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

/// The last `pgbackrest verify`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verified {
    pub at: i64,
    pub ok: bool,
    /// Its WARN and ERROR lines (gaps in the archive, damaged files).
    pub findings: Vec<String>,
}

/// A job claim on a stanza, held across the databases that share it
/// (one backup or expire of a stanza at a time, whichever database asks).
fn stanza_claim(stanza: &Stanza, what: &str) -> String {
    format!("{GLOBAL_CLAIM}pgbackrest-{what}:{}", super::stanza_id(stanza))
}

impl Recovery {
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
        self.record_files(m, None).await;
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
            tables: vec![stanza_claim(stanza, "backup")],
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
}
