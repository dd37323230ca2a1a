//! The command line. `serve` (the default) runs the panel; `user`, `token`,
//! `db`, `backup`, `migrate` and `check` each live in their own file here.
//! Every command works on the same store as the server through the same
//! services ([`Services`](crate::service::Services) wires them for both);
//! CLI actions are audited as `cli:<os user>`. Exit codes: 0 success, 1 a
//! failed command (and `migrate lint` with an error-level finding), 2 an
//! invalid configuration, a usage error (clap) or an unreadable lint input.

mod backup;
mod check;
mod db;
mod migrate;
mod recovery;
mod token;
mod user;

pub use backup::BackupCommand;
pub use db::DbCommand;
pub use migrate::MigrateCommand;
pub use recovery::RecoveryCommand;
pub use token::TokenCommand;
pub use user::UserCommand;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides};
use crate::domain::DatabaseName;
use crate::service::fleet::{Fleet, Member};
use crate::service::jobs::Jobs;

#[derive(Parser, Debug)]
#[command(
    name = "custodian",
    version,
    about = "A web control panel for database administration"
)]
pub struct Cli {
    /// Configuration file (default: ./custodian.toml if it exists).
    #[arg(long, global = true, env = "CUSTODIAN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: the default SQLite store lives here.
    #[arg(long, global = true, env = "CUSTODIAN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the web panel (the default command).
    Serve(ServeArgs),
    /// Manage panel users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the registry of managed databases.
    #[command(subcommand)]
    Db(DbCommand),
    /// Take, list and verify backups (runs the job here and waits for it).
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Point-in-time recovery on pgBackRest (runs the job here and waits for it).
    #[command(subcommand)]
    Recovery(RecoveryCommand),
    /// Schema migrations.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Validate the configuration and print what would be used.
    Check,
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, env = "CUSTODIAN_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Do not create the demo database on first start.
    #[arg(long)]
    pub no_demo: bool,
}

pub fn main() -> ExitCode {
    // Before anything is created: the store, the key, backups and what the
    // SQLite driver and dump tools write are private whatever the umask.
    crate::files::private_umask();
    let cli = Cli::parse();
    // Linting files needs no store or configuration: CI runs it anywhere.
    if let Some(Command::Migrate(MigrateCommand::Lint {
        files,
        engine,
        server_version,
        format,
    })) = &cli.command
    {
        return migrate::lint(files, *engine, server_version.as_deref(), format == "json");
    }
    let (listen, no_demo) = match &cli.command {
        Some(Command::Serve(args)) => (args.listen, args.no_demo),
        _ => (None, false),
    };
    let overrides = Overrides {
        config_file: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
        listen,
        no_demo,
    };
    let loaded = match Config::load(&overrides) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&loaded.config.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None | Some(Command::Serve(_)) => crate::server::run(loaded.config).await,
            Some(Command::Check) => check::check(&loaded).await,
            Some(Command::User(cmd)) => user::user(&loaded.config, cmd).await,
            Some(Command::Token(cmd)) => token::token(&loaded.config, cmd).await,
            Some(Command::Db(cmd)) => db::db(&loaded.config, cmd).await,
            Some(Command::Backup(cmd)) => backup::backup(&loaded.config, cmd).await,
            Some(Command::Migrate(cmd)) => migrate::migrate(&loaded.config, cmd).await,
            Some(Command::Recovery(cmd)) => recovery::recovery(&loaded.config, cmd).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Wait for a job started in this process and report how it ended.
async fn wait_for_job(jobs: &Jobs, id: i64) -> anyhow::Result<()> {
    let mut last_phase = String::new();
    loop {
        let job = jobs.get(id).await?;
        if job.phase != last_phase && !job.phase.is_empty() {
            eprintln!("  {}", job.phase);
            last_phase = job.phase.clone();
        }
        match job.state {
            s if s.is_active() => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            crate::domain::JobState::Succeeded => return Ok(()),
            other => bail!("job {id} {other}: {}", job.error.unwrap_or_default()),
        }
    }
}

/// A registered database by the name given on the command line.
fn member_named(fleet: &Fleet, raw: &str) -> anyhow::Result<(DatabaseName, Arc<Member>)> {
    let name = DatabaseName::parse(raw)?;
    let member = fleet
        .get(&name)
        .ok_or_else(|| anyhow::anyhow!("no database named {name}"))?;
    Ok((name, member))
}
