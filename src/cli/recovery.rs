//! `custodian recovery status|backup|timeline|restore|discard`:
//! point-in-time recovery on pgBackRest, the same jobs the panel runs, run
//! in this process; commands that start a job wait for it.

use clap::Subcommand;

use super::{member_named, wait_for_job};
use crate::config::Config;
use crate::domain::JobKind;
use crate::format::{fmt_bytes, fmt_time};
use crate::service::recovery::{BackupType, Target, parse_time, rfc3339_us};
use crate::service::{Actor, Services};

#[derive(Subcommand, Debug)]
pub enum RecoveryCommand {
    /// The stanza's backups, the restorable window, archiving and restores.
    Status { name: String },
    /// Take a physical backup now.
    Backup {
        name: String,
        #[arg(long = "type", default_value = "full", value_parser = ["full", "diff", "incr"])]
        kind: String,
    },
    /// What happened in the archived WAL: drops, truncates, DDL, big deletes and updates.
    Timeline {
        name: String,
        /// RFC 3339, e.g. 2026-12-06T14:00:00Z (default: the window's start).
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339 (default: the newest archived WAL).
        #[arg(long)]
        to: Option<String>,
    },
    /// Restore into a new server: to a time, to just before a transaction, or the latest.
    Restore {
        name: String,
        #[arg(long, conflicts_with_all = ["xid", "latest"])]
        time: Option<String>,
        #[arg(long, conflicts_with = "latest")]
        xid: Option<i64>,
        #[arg(long)]
        latest: bool,
    },
    /// Stop a restored server, delete its directory and unregister it.
    Discard { id: i64 },
}

pub async fn recovery(config: &Config, cmd: RecoveryCommand) -> anyhow::Result<()> {
    let services = Services::open(config).await?;
    services.connect().await?;
    let Services { jobs, recovery, .. } = &services;
    let actor = Actor::cli();
    match cmd {
        RecoveryCommand::Status { name } => {
            let (_, m) = member_named(&services.fleet, &name)?;
            let s = recovery.status(&m).await?;
            println!("stanza     {}", s.stanza);
            println!("archiving  {}", s.archiving.message);
            match s.window {
                Some(w) => println!("window     {} – {}", fmt_time(w.from), fmt_time(w.to)),
                None => println!("window     none: no physical backup yet"),
            }
            if let Some(e) = &s.info_error {
                println!("catalog    {e}");
            }
            println!();
            println!(
                "{:<36} {:<5} {:<20} {:>10} {:>10} PRIOR",
                "LABEL", "TYPE", "FINISHED", "SIZE", "REPO"
            );
            for b in &s.info.backups {
                println!(
                    "{:<36} {:<5} {:<20} {:>10} {:>10} {}",
                    b.label,
                    b.kind,
                    fmt_time(b.finished_at),
                    fmt_bytes(b.bytes),
                    fmt_bytes(b.repo_bytes),
                    b.prior.as_deref().unwrap_or("-")
                );
            }
            if !s.restores.is_empty() {
                println!();
                println!(
                    "{:<5} {:<11} {:<6} {:<36} {:>8} REACHED",
                    "ID", "STATE", "DRILL", "DATABASE", "RTO"
                );
                for r in &s.restores {
                    println!(
                        "{:<5} {:<11} {:<6} {:<36} {:>8} {}",
                        r.id,
                        r.state,
                        if r.drill { "yes" } else { "no" },
                        r.new_database,
                        r.rto_ms
                            .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                            .unwrap_or_default(),
                        r.reached
                    );
                }
            }
        }
        RecoveryCommand::Backup { name, kind } => {
            let (_, m) = member_named(&services.fleet, &name)?;
            let job = recovery
                .backup(&m, &actor, BackupType::parse(&kind)?, true)
                .await?;
            eprintln!("{kind} backup of {name} (job {job})");
            wait_for_job(jobs, job).await?;
            println!("{}", jobs.get(job).await?.phase);
            // Retention (pgBackRest's expire) is a job the backup started in
            // this process: wait for it too, or it dies with the process.
            for j in jobs.list(Some(&name), None, 20).await? {
                if j.kind != JobKind::Expire || j.id < job {
                    continue;
                }
                match wait_for_job(jobs, j.id).await {
                    Ok(()) => println!("expire job {}: {}", j.id, jobs.get(j.id).await?.phase),
                    Err(e) => eprintln!("warning: the backup is taken, but pgBackRest's expire failed: {e}"),
                }
            }
        }
        RecoveryCommand::Timeline { name, from, to } => {
            let (_, m) = member_named(&services.fleet, &name)?;
            let from = from.map(|t| parse_time("--from", &t)).transpose()?;
            let to = to.map(|t| parse_time("--to", &t)).transpose()?;
            let t = recovery.timeline(&m, from, to).await?;
            println!(
                "{:<28} {:>10} {:<9} {:>9} RELATION",
                "COMMITTED (UTC)", "XID", "KIND", "ROWS"
            );
            for e in &t.events {
                println!(
                    "{:<28} {:>10} {:<9} {:>9} {}",
                    e.at,
                    e.xid,
                    e.kind,
                    e.rows.map(|r| r.to_string()).unwrap_or_default(),
                    e.relation.as_deref().unwrap_or("-")
                );
            }
            if t.truncated {
                eprintln!(
                    "(stopped at the WAL budget after {} segments: narrow --from/--to to see further)",
                    t.segments
                );
            }
            for seg in &t.missing {
                eprintln!("warning: WAL segment {seg} is missing from the archive (a gap)");
            }
        }
        RecoveryCommand::Restore {
            name,
            time,
            xid,
            latest,
        } => {
            let (_, m) = member_named(&services.fleet, &name)?;
            if time.is_none() && xid.is_none() && !latest {
                anyhow::bail!("say where to: --time T, --xid N or --latest");
            }
            let target = Target::of(time.as_deref(), xid)?;
            let (job, id) = recovery.restore(&m, &actor, target, &name).await?;
            eprintln!("restore #{id} of {name} (job {job})");
            wait_for_job(jobs, job).await?;
            let r = recovery.get_restore(id).await?;
            println!(
                "restore #{id}: {} on 127.0.0.1:{}, reached {}, RTO {:.1}s",
                r.new_database,
                r.port.unwrap_or(0),
                if r.reached.is_empty() {
                    "?".to_string()
                } else {
                    r.reached.clone()
                },
                r.rto_ms.unwrap_or(0) as f64 / 1000.0
            );
            if let Some(us) = r.target_us {
                println!("  target {}", rfc3339_us(us));
            }
        }
        RecoveryCommand::Discard { id } => {
            let job = recovery.discard(&actor, id).await?;
            eprintln!("discarding restore #{id} (job {job})");
            wait_for_job(jobs, job).await?;
            println!("restore #{id} discarded");
        }
    }
    services.close().await;
    Ok(())
}
