//! `custodian db add|list|remove`: the registry of managed databases. URLs
//! are sealed with the secret key, so these open the full [`Services`]
//! (which checks the key against the store) but connect to nothing, except
//! `add`, which tries the new database once.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use crate::config::{Config, SecretUrl};
use crate::domain::{DatabaseName, RecoveryTarget};
use crate::service::registry::{NewDatabase, PitrSettings, Schedules, Source, test_url};
use crate::service::{Actor, Services};

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Register a database (postgres://, mysql://, mariadb:// or sqlite:// URL).
    Add {
        name: String,
        #[arg(long)]
        url: String,
        #[arg(long, value_name = "DIR")]
        migrations_dir: Option<PathBuf>,
        /// Recovery point objective, e.g. 24h (at most ten years).
        #[arg(long, value_parser = parse_rpo)]
        rpo: Option<Duration>,
        /// Recovery time objective, e.g. 4h (at most ten years).
        #[arg(long, value_parser = parse_rto)]
        rto: Option<Duration>,
        /// pgBackRest stanza: physical backups and point-in-time recovery (PostgreSQL).
        #[arg(long, value_name = "STANZA")]
        pgbackrest_stanza: Option<String>,
        /// pgBackRest config file, when not its default.
        #[arg(long, value_name = "FILE")]
        pgbackrest_config: Option<PathBuf>,
        /// Physical backups and verify, e.g. "full 0 1 * * 0; incr 0 * * * *; verify 0 4 * * *".
        #[arg(long, value_name = "SCHEDULE")]
        pgbackrest_schedule: Option<String>,
        /// 5-field cron line for recovery drills.
        #[arg(long, value_name = "CRON")]
        recovery_drill_schedule: Option<String>,
        /// A query a drill's restored server must answer true to.
        #[arg(long, value_name = "SQL")]
        recovery_proof_sql: Option<String>,
    },
    /// List registered databases (URLs shown without passwords).
    List,
    /// Remove a database from the registry (the database itself is untouched).
    Remove { name: String },
}

fn parse_target(what: &str, s: &str) -> Result<Duration, String> {
    match RecoveryTarget::parse(what, s) {
        Ok(Some(target)) => Ok(target.duration()),
        Ok(None) => Err(format!("{what} must be a duration like 24h, 30m or 7d")),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_rpo(s: &str) -> Result<Duration, String> {
    parse_target("RPO", s)
}

fn parse_rto(s: &str) -> Result<Duration, String> {
    parse_target("RTO", s)
}

pub async fn db(config: &Config, cmd: DbCommand) -> anyhow::Result<()> {
    let services = Services::open(config).await?;
    let registry = &services.registry;
    let actor = Actor::cli();
    match cmd {
        DbCommand::Add {
            name,
            url,
            migrations_dir,
            rpo,
            rto,
            pgbackrest_stanza,
            pgbackrest_config,
            pgbackrest_schedule,
            recovery_drill_schedule,
            recovery_proof_sql,
        } => {
            let new = NewDatabase {
                name: DatabaseName::parse(&name)?,
                url: SecretUrl::new(url.trim()),
                migrations_dir: migrations_dir.map(|d| d.display().to_string()),
                rpo,
                rto,
                schedules: Schedules::default(),
                pitr: PitrSettings {
                    stanza: pgbackrest_stanza,
                    config: pgbackrest_config.map(|p| p.display().to_string()),
                    schedule: pgbackrest_schedule,
                    drill_schedule: recovery_drill_schedule,
                    proof_sql: recovery_proof_sql,
                },
            };
            let entry = registry.add(&actor, new).await?;
            println!("added {} ({}, {})", entry.name, entry.engine, entry.url_redacted);
            let servers = crate::engine::Servers::new(config.max_connections_per_server);
            match test_url(&SecretUrl::new(url.trim()), &servers).await? {
                Ok(tested) => println!("connected: version {}", tested.status.version),
                Err(e) => eprintln!("warning: cannot connect yet: {e}"),
            }
        }
        DbCommand::List => {
            println!(
                "{:<20} {:<14} {:<8} {:<6} {:<6} URL",
                "NAME", "ENGINE", "FROM", "RPO", "RTO"
            );
            let dur = |d: Option<Duration>| d.map(crate::format::fmt_duration).unwrap_or_else(|| "-".into());
            for e in registry.list().await? {
                println!(
                    "{:<20} {:<14} {:<8} {:<6} {:<6} {}",
                    e.name,
                    e.engine.label(),
                    if e.source == Source::Config {
                        "config"
                    } else {
                        "panel"
                    },
                    dur(e.rpo),
                    dur(e.rto),
                    e.url_redacted
                );
            }
        }
        DbCommand::Remove { name } => {
            let name = DatabaseName::parse(&name)?;
            registry.remove(&actor, &name).await?;
            println!("removed {name} from the registry");
        }
    }
    services.close().await;
    Ok(())
}
