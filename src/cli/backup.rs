//! `custodian backup run|list|verify`: the same backup jobs the panel runs,
//! run in this process; the command waits for its job and reports the end.

use clap::Subcommand;

use super::{member_named, wait_for_job};
use crate::config::Config;
use crate::format::{fmt_bytes, fmt_time};
use crate::service::{Actor, Services};

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Back up a registered database now.
    Run { name: String },
    /// List a database's backups.
    List { name: String },
    /// Verify a backup by restoring it into a scratch database.
    Verify { id: i64 },
}

pub async fn backup(config: &Config, cmd: BackupCommand) -> anyhow::Result<()> {
    let services = Services::open(config).await?;
    services.connect().await?;
    let Services { jobs, backups, .. } = &services;
    let actor = Actor::cli();
    let member = |name: &str| member_named(&services.fleet, name).map(|(_, m)| m);
    match cmd {
        BackupCommand::Run { name } => {
            let m = member(&name)?;
            let (job, id) = backups.start(&m, &actor).await?;
            eprintln!("backup #{id} of {name} (job {job})");
            wait_for_job(jobs, job).await?;
            let b = backups.get(id).await?;
            println!(
                "backup #{id}: {} {}, sha256 {}",
                b.state,
                fmt_bytes(b.bytes.unwrap_or(0)),
                b.sha256.unwrap_or_default()
            );
            println!("  {}", backups.url_of(&b.location));
        }
        BackupCommand::List { name } => {
            let m = member(&name)?;
            println!(
                "{:<6} {:<12} {:<24} {:>10} {:<10} {:<8} LOCATION",
                "ID", "STATE", "TAKEN", "SIZE", "SHA256", "VERIFIED"
            );
            for b in backups.list(m.entry.name.as_str(), 1000).await? {
                println!(
                    "{:<6} {:<12} {:<24} {:>10} {:<10} {:<8} {}",
                    b.id,
                    b.state,
                    fmt_time(b.started_at),
                    b.bytes.map(fmt_bytes).unwrap_or_default(),
                    b.sha256.as_deref().map(|s| &s[..8]).unwrap_or(""),
                    match b.verify_ok {
                        Some(true) => "ok",
                        Some(false) => "FAILED",
                        None => "-",
                    },
                    if b.state.is_good() {
                        backups.url_of(&b.location)
                    } else {
                        "-".to_string()
                    }
                );
            }
        }
        BackupCommand::Verify { id } => {
            let b = backups.get(id).await?;
            let m = member(&b.database_name)?;
            let job = backups.verify(&m, &actor, id).await?;
            eprintln!("verifying backup #{id} (job {job})");
            wait_for_job(jobs, job).await?;
            println!("backup #{id} verified: restored and row counts match");
        }
    }
    services.close().await;
    Ok(())
}
