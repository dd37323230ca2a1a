//! The command line: `serve` (the default), `user …`, `token create`,
//! `check`. Every command works on the same store as the server and calls the
//! same services; CLI actions are audited as `cli:<os user>`.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides, SecretUrl};
use crate::domain::{DatabaseName, Password, RecoveryTarget, Role, Username};
use crate::engine::EngineKind;
use crate::secrets::Secrets;
use crate::service::registry::{NewDatabase, Registry, Schedules, Source, test_connection};
use crate::service::users::{self, NewUser};
use crate::service::{Actor, tokens};
use crate::store::Store;

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
    /// Schema migrations.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Validate the configuration and print what would be used.
    Check,
}

#[derive(Subcommand, Debug)]
pub enum MigrateCommand {
    /// Applied, pending (with lint findings) and drift for a registered database.
    Status {
        name: String,
        /// Output format: text or json.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Apply NAME's approved request (the oldest open one with its
    /// approvals), here, waiting for the job; with approvals set to 0 for
    /// the database, request and apply every pending migration.
    Apply { name: String },
    /// Submit migration files (e.g. from CI) into NAME's migrations
    /// directory; each is linted, none overwrites a different file.
    Submit {
        name: String,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Set how many approvals a request for NAME needs (0 for development).
    Approvals { name: String, count: i64 },
    /// Lint migration files for statements that lock or break production.
    /// Exits 1 when any finding is an error, 2 when a file cannot be read.
    Lint {
        /// SQL files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Engine the migrations are for: postgres, mysql or sqlite.
        #[arg(long, default_value = "postgres", value_parser = parse_engine)]
        engine: EngineKind,
        /// Server version the migrations will run on, e.g. 15.4 (PostgreSQL).
        #[arg(long, value_name = "VERSION")]
        server_version: Option<String>,
        /// Output format: text or json.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
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

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user.
    Add {
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// May approve migrations.
        #[arg(long)]
        approver: bool,
        /// Read the password from standard input instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Set a user's password; their sessions in the panel end.
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
        /// Revoke the user's API tokens as well.
        #[arg(long)]
        revoke_tokens: bool,
    },
    /// Disable a user: their sessions and API tokens stop working.
    Disable { name: String },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token for USER and print it once.
    Create {
        user: String,
        #[arg(long)]
        name: String,
    },
}

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
        rpo: Option<std::time::Duration>,
        /// Recovery time objective, e.g. 4h (at most ten years).
        #[arg(long, value_parser = parse_rto)]
        rto: Option<std::time::Duration>,
    },
    /// List registered databases (URLs shown without passwords).
    List,
    /// Remove a database from the registry (the database itself is untouched).
    Remove { name: String },
}

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Back up a registered database now.
    Run { name: String },
    /// List a database's backups.
    List { name: String },
    /// Verify a backup by restoring it into a scratch database.
    Verify { id: i64 },
}

fn parse_engine(s: &str) -> Result<EngineKind, String> {
    match s {
        "postgres" | "postgresql" => Ok(EngineKind::Postgres),
        "mysql" | "mariadb" => Ok(EngineKind::Mysql),
        "sqlite" => Ok(EngineKind::Sqlite),
        other => Err(format!("unknown engine {other:?}: use postgres, mysql or sqlite")),
    }
}

fn parse_target(what: &str, s: &str) -> Result<std::time::Duration, String> {
    match RecoveryTarget::parse(what, s) {
        Ok(Some(target)) => Ok(target.duration()),
        Ok(None) => Err(format!("{what} must be a duration like 24h, 30m or 7d")),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_rpo(s: &str) -> Result<std::time::Duration, String> {
    parse_target("RPO", s)
}

fn parse_rto(s: &str) -> Result<std::time::Duration, String> {
    parse_target("RTO", s)
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse::<Role>().map_err(|e| e.to_string())
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
        return migrate_lint(files, *engine, server_version.as_deref(), format == "json");
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
            Some(Command::Check) => check(&loaded).await,
            Some(Command::User(cmd)) => user(&loaded.config, cmd).await,
            Some(Command::Token(cmd)) => token(&loaded.config, cmd).await,
            Some(Command::Db(cmd)) => db(&loaded.config, cmd).await,
            Some(Command::Backup(cmd)) => backup(&loaded.config, cmd).await,
            Some(Command::Migrate(MigrateCommand::Status { name, format })) => {
                migrate_status(&loaded.config, &name, format == "json").await
            }
            Some(Command::Migrate(MigrateCommand::Apply { name })) => {
                migrate_apply(&loaded.config, &name).await
            }
            Some(Command::Migrate(MigrateCommand::Submit { name, files })) => {
                migrate_submit(&loaded.config, &name, &files).await
            }
            Some(Command::Migrate(MigrateCommand::Approvals { name, count })) => {
                migrate_approvals(&loaded.config, &name, count).await
            }
            Some(Command::Migrate(MigrateCommand::Lint { .. })) => unreachable!("handled above"),
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

async fn check(loaded: &crate::config::Loaded) -> anyhow::Result<()> {
    let c = &loaded.config;
    match &loaded.file {
        Some(f) => println!("config file:      {}", f.display()),
        None => println!("config file:      (none; defaults and CUSTODIAN_* variables)"),
    }
    println!("listen:           {}", c.listen);
    println!("data dir:         {}", c.data_dir.display());
    println!("store:            {}", c.store_url());
    println!("public url:       {}", c.public_base(c.listen));
    println!("secure cookies:   {}", c.secure_cookies);
    println!("trust proxy hdrs: {}", c.trust_proxy_headers);
    println!(
        "session timeouts: idle {}, absolute {}",
        humantime::format_duration(c.session_idle_timeout),
        humantime::format_duration(c.session_absolute_timeout)
    );
    println!(
        "http limits:      header timeout {}, {} connections",
        humantime::format_duration(c.header_timeout),
        c.max_connections
    );
    let store = Store::open(&c.store_url()).await?;
    let users = users::count(&store).await?;
    println!("store check:      ok ({users} users)");
    store.close().await;
    Ok(())
}

/// A password from stdin (first line) or an interactive prompt, twice.
fn read_password(from_stdin: bool) -> anyhow::Result<Password> {
    let raw = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    };
    Ok(Password::new(raw)?)
}

async fn user(config: &Config, cmd: UserCommand) -> anyhow::Result<()> {
    let store = Store::open(&config.store_url()).await?;
    let actor = Actor::cli();
    match cmd {
        UserCommand::Add {
            name,
            role,
            approver,
            password_stdin,
        } => {
            let name = Username::parse(&name)?;
            let password = read_password(password_stdin)?;
            let new = NewUser {
                name,
                password,
                role,
                can_approve: approver,
            };
            let user = users::create(&store, &actor, new).await?;
            println!(
                "created {} ({}{})",
                user.name,
                user.role,
                if user.can_approve { ", approver" } else { "" }
            );
        }
        UserCommand::List => {
            println!("{:<24} {:<9} {:<9} {:<9}", "NAME", "ROLE", "APPROVER", "STATE");
            for u in users::list(&store).await? {
                println!(
                    "{:<24} {:<9} {:<9} {:<9}",
                    u.name,
                    u.role,
                    if u.can_approve { "yes" } else { "no" },
                    if u.disabled { "disabled" } else { "active" }
                );
            }
        }
        UserCommand::Passwd {
            name,
            password_stdin,
            revoke_tokens,
        } => {
            let name = Username::parse(&name)?;
            users::by_name(&store, &name).await?;
            let password = read_password(password_stdin)?;
            let changed = users::reset_password(&store, &actor, &name, &password, revoke_tokens).await?;
            println!("password changed for {name}; their sessions have been signed out");
            if revoke_tokens {
                let n = changed.tokens_revoked;
                println!("{n} API token{} revoked", if n == 1 { "" } else { "s" });
            }
        }
        UserCommand::Disable { name } => {
            let name = Username::parse(&name)?;
            let user = users::set_disabled(&store, &actor, &name, true).await?;
            println!("disabled {}", user.name);
        }
    }
    store.close().await;
    Ok(())
}

async fn token(config: &Config, cmd: TokenCommand) -> anyhow::Result<()> {
    let store = Store::open(&config.store_url()).await?;
    let actor = Actor::cli();
    match cmd {
        TokenCommand::Create { user, name } => {
            let owner = users::by_name(&store, &Username::parse(&user)?).await?;
            let created = tokens::create(&store, &actor, &owner, &name).await?;
            eprintln!(
                "API token {:?} for {} (shown once; store it now):",
                created.token.name, owner.name
            );
            println!("{}", created.secret);
        }
    }
    store.close().await;
    Ok(())
}

async fn db(config: &Config, cmd: DbCommand) -> anyhow::Result<()> {
    let store = Store::open(&config.store_url()).await?;
    let registry = Registry::new(store.clone(), Secrets::load(config)?, config.databases.clone());
    registry.verify_key().await?;
    let actor = Actor::cli();
    match cmd {
        DbCommand::Add {
            name,
            url,
            migrations_dir,
            rpo,
            rto,
        } => {
            let new = NewDatabase {
                name: DatabaseName::parse(&name)?,
                url: SecretUrl::new(url.trim()),
                migrations_dir: migrations_dir.map(|d| d.display().to_string()),
                rpo,
                rto,
                schedules: Schedules::default(),
            };
            let entry = registry.add(&actor, new).await?;
            println!("added {} ({}, {})", entry.name, entry.engine, entry.url_redacted);
            let servers = crate::engine::Servers::new(config.max_connections_per_server);
            match test_connection(&SecretUrl::new(url.trim()), &servers).await? {
                Ok(status) => println!("connected: version {}", status.version),
                Err(e) => eprintln!("warning: cannot connect yet: {e}"),
            }
        }
        DbCommand::List => {
            println!(
                "{:<20} {:<14} {:<8} {:<6} {:<6} URL",
                "NAME", "ENGINE", "FROM", "RPO", "RTO"
            );
            let dur = |d: Option<std::time::Duration>| {
                d.map(crate::format::fmt_duration).unwrap_or_else(|| "-".into())
            };
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
    store.close().await;
    Ok(())
}

/// Wait for a job started in this process and report how it ended.
async fn wait_for_job(jobs: &crate::service::jobs::Jobs, id: i64) -> anyhow::Result<()> {
    let mut last_phase = String::new();
    loop {
        let job = jobs.get(id).await?;
        if job.phase != last_phase && !job.phase.is_empty() {
            eprintln!("  {}", job.phase);
            last_phase = job.phase.clone();
        }
        match job.state.as_str() {
            "queued" | "running" => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            "succeeded" => return Ok(()),
            other => bail!("job {id} {other}: {}", job.error.unwrap_or_default()),
        }
    }
}

async fn backup(config: &Config, cmd: BackupCommand) -> anyhow::Result<()> {
    let (store, fleet) = open_fleet(config).await?;
    let jobs = crate::service::jobs::Jobs::new(store.clone(), config.max_jobs_per_database);
    let backups = crate::service::backup::Backups::new(
        store.clone(),
        jobs.clone(),
        config.backup_dir(),
        config.data_dir.join("tmp"),
        config.backup_parallel_jobs,
    );
    let actor = Actor::cli();
    let member = |name: &str| member_named(&fleet, name).map(|(_, m)| m);
    match cmd {
        BackupCommand::Run { name } => {
            let m = member(&name)?;
            let (job, id) = backups.start(&m, &actor).await?;
            eprintln!("backup #{id} of {name} (job {job})");
            wait_for_job(&jobs, job).await?;
            let b = backups.get(id).await?;
            println!(
                "backup #{id}: {} {}, sha256 {}",
                b.state,
                crate::format::fmt_bytes(b.bytes.unwrap_or(0)),
                b.sha256.unwrap_or_default()
            );
        }
        BackupCommand::List { name } => {
            let m = member(&name)?;
            println!(
                "{:<6} {:<12} {:<24} {:>10} {:<10} VERIFIED",
                "ID", "STATE", "TAKEN", "SIZE", "SHA256"
            );
            for b in backups.list(m.entry.name.as_str(), 1000).await? {
                println!(
                    "{:<6} {:<12} {:<24} {:>10} {:<10} {}",
                    b.id,
                    b.state,
                    crate::format::fmt_time(b.started_at),
                    b.bytes.map(crate::format::fmt_bytes).unwrap_or_default(),
                    b.sha256.as_deref().map(|s| &s[..8]).unwrap_or(""),
                    match b.verify_ok {
                        Some(true) => "ok",
                        Some(false) => "FAILED",
                        None => "-",
                    }
                );
            }
        }
        BackupCommand::Verify { id } => {
            let b = backups.get(id).await?;
            let m = member(&b.database_name)?;
            let job = backups.verify(&m, &actor, id).await?;
            eprintln!("verifying backup #{id} (job {job})");
            wait_for_job(&jobs, job).await?;
            println!("backup #{id} verified: restored and row counts match");
        }
    }
    fleet.close().await;
    store.close().await;
    Ok(())
}

/// `migrate lint`: findings per file, then a count. Exit 0 when clean or
/// only warnings, 1 on any error-level finding, 2 when a file is unreadable.
fn migrate_lint(files: &[PathBuf], engine: EngineKind, server_version: Option<&str>, json: bool) -> ExitCode {
    let mut results = Vec::new();
    for path in files {
        match std::fs::read_to_string(path) {
            Ok(sql) => results.push((path, crate::lint::lint(engine, &sql, server_version))),
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    let all = results.iter().flat_map(|(_, f)| f.iter());
    let errors = all
        .clone()
        .filter(|f| f.severity == crate::lint::Severity::Error)
        .count();
    let warnings = all.count() - errors;
    if json {
        let files: Vec<_> = results
            .iter()
            .map(|(path, findings)| serde_json::json!({"path": path.display().to_string(), "findings": findings}))
            .collect();
        let out = serde_json::json!({"files": files, "errors": errors, "warnings": warnings});
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        for (path, findings) in &results {
            for f in findings {
                println!(
                    "{}:{}: {}[{}]: {}",
                    path.display(),
                    f.line,
                    f.severity.as_str(),
                    f.rule,
                    f.message
                );
                println!("    {}", f.statement);
                if !f.why.is_empty() {
                    println!("    why: {}", f.why);
                }
                if !f.fix.is_empty() {
                    println!("    instead: {}", f.fix);
                }
            }
        }
        println!(
            "{} file(s): {errors} error(s), {warnings} warning(s)",
            results.len()
        );
    }
    if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `migrate status NAME`.
async fn migrate_status(config: &Config, name: &str, json: bool) -> anyhow::Result<()> {
    let (_, fleet) = open_fleet(config).await?;
    let (name, member) = member_named(&fleet, name)?;
    let status = crate::service::migrations::status_now(&member).await;
    fleet.close().await;
    let status = status?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    println!(
        "{name}: migrations from {}",
        status.migrations_dir.as_deref().unwrap_or("(no directory set)")
    );
    println!("applied ({}):", status.applied.len());
    for a in &status.applied {
        println!(
            "  {:<16} {:<32} {:<10} {} {} {}{}",
            a.version,
            a.description,
            a.tool,
            a.applied_by.as_deref().unwrap_or("-"),
            a.applied_at.as_deref().unwrap_or("-"),
            a.execution_ms.map(|ms| format!("{ms} ms")).unwrap_or_default(),
            if a.success { "" } else { " FAILED" }
        );
    }
    println!("pending ({}):", status.pending.len());
    for p in &status.pending {
        println!("  {:<16} {:<32} {}", p.version, p.description, p.file);
        for f in &p.findings {
            println!(
                "      line {}: {}[{}]: {}",
                f.line,
                f.severity.as_str(),
                f.rule,
                f.message
            );
        }
    }
    for d in &status.drift {
        println!("DRIFT: {}", d.message);
    }
    for problem in &status.problems {
        println!("problem: {problem}");
    }
    Ok(())
}

/// `migrate apply NAME`: approvals are respected; nothing unapproved runs.
async fn migrate_apply(config: &Config, name: &str) -> anyhow::Result<()> {
    use crate::service::migrations::requests;
    let (store, fleet) = open_fleet(config).await?;
    let jobs = crate::service::jobs::Jobs::new(store.clone(), config.max_jobs_per_database);
    let (name, member) = member_named(&fleet, name)?;
    let actor = Actor::cli();
    let open = requests::list(&store, name.as_str()).await?;
    let ready = open
        .iter()
        .rev()
        .find(|r| r.state == "open" && r.approvals >= r.approvals_required);
    let id = match ready {
        Some(r) => r.id,
        None => {
            let needed = requests::settings(&store, name.as_str())
                .await?
                .approvals_required;
            if needed > 0 {
                bail!(
                    "{name} has no approved request to apply: request one (panel or POST .../migrations/requests) and have an approver approve it"
                );
            }
            let status = crate::service::migrations::status_now(&member).await?;
            if status.pending.is_empty() {
                println!("{name}: nothing pending");
                return Ok(());
            }
            let versions: Vec<String> = status.pending.iter().map(|p| p.version.clone()).collect();
            requests::request(&store, &member, &actor, &versions).await?
        }
    };
    let job = requests::apply(&jobs, &store, &member, &actor, id).await?;
    eprintln!("applying request {id} to {name} (job {job})");
    let waited = wait_for_job(&jobs, job).await;
    for line in jobs.get(job).await?.log.lines() {
        println!("{line}");
    }
    fleet.close().await;
    waited
}

async fn migrate_approvals(config: &Config, name: &str, count: i64) -> anyhow::Result<()> {
    use crate::service::migrations::requests;
    let store = Store::open(&config.store_url()).await?;
    let name = DatabaseName::parse(name)?;
    let current = requests::settings(&store, name.as_str()).await?;
    let new = requests::Settings {
        approvals_required: count,
        ..current
    };
    requests::set_settings(&store, &Actor::cli(), name.as_str(), new).await?;
    println!("{name}: {count} approval(s) needed");
    Ok(())
}

/// `migrate submit NAME FILE...`.
async fn migrate_submit(config: &Config, name: &str, files: &[PathBuf]) -> anyhow::Result<()> {
    let (store, fleet) = open_fleet(config).await?;
    let (_, member) = member_named(&fleet, name)?;
    for path in files {
        let sql = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| anyhow::anyhow!("{} is not a file", path.display()))?;
        let done =
            crate::service::migrations::submit(&store, &member, &Actor::cli(), &file_name, &sql).await?;
        let what = if done.created {
            "submitted"
        } else {
            "already there"
        };
        println!("{file_name}: {what}, sha256 {}", done.checksum);
        for f in &done.findings {
            println!(
                "    line {}: {}[{}]: {}",
                f.line,
                f.severity.as_str(),
                f.rule,
                f.message
            );
        }
    }
    fleet.close().await;
    Ok(())
}

/// The store and a fleet connected to every registered database, as the
/// server has them, for commands that work on managed databases.
async fn open_fleet(config: &Config) -> anyhow::Result<(Store, crate::service::fleet::Fleet)> {
    let store = Store::open(&config.store_url()).await?;
    let registry = Registry::new(store.clone(), Secrets::load(config)?, config.databases.clone());
    registry.verify_key().await?;
    let fleet = crate::service::fleet::Fleet::new(config.max_connections_per_server);
    fleet.sync(registry.connections().await?).await;
    Ok((store, fleet))
}

/// A registered database by the name given on the command line.
fn member_named(
    fleet: &crate::service::fleet::Fleet,
    raw: &str,
) -> anyhow::Result<(DatabaseName, std::sync::Arc<crate::service::fleet::Member>)> {
    let name = DatabaseName::parse(raw)?;
    let member = fleet
        .get(&name)
        .ok_or_else(|| anyhow::anyhow!("no database named {name}"))?;
    Ok((name, member))
}
