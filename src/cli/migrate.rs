//! `custodian migrate …`: lint files (needs no store: a CI gate), show a
//! database's status, submit files, set how many approvals it needs, and
//! apply what is approved, through the same service rules as the panel.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::{member_named, wait_for_job};
use crate::config::Config;
use crate::domain::DatabaseName;
use crate::engine::EngineKind;
use crate::lint::Severity;
use crate::service::migrations::{self, requests};
use crate::service::{Actor, Services};
use crate::store::Store;

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
    /// the database, request and apply every pending migration. A blocked
    /// live gate refuses unless --override-gate gives a reason (audited).
    Apply {
        name: String,
        /// Apply although the live gate says blocked, for this reason.
        #[arg(long, value_name = "REASON")]
        override_gate: Option<String>,
    },
    /// The live gate for NAME's pending migrations: the lock each statement
    /// takes, the table's size, the sessions in the way, and a verdict (go,
    /// wait, blocked). Exits 0 on go, 1 on wait or blocked.
    Gate {
        name: String,
        /// Output format: text or json.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
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

fn parse_engine(s: &str) -> Result<EngineKind, String> {
    s.parse()
}

/// Every `migrate` command but `lint`, which runs before any configuration
/// is loaded (see [`lint`]).
pub async fn migrate(config: &Config, cmd: MigrateCommand) -> anyhow::Result<()> {
    match cmd {
        MigrateCommand::Status { name, format } => status(config, &name, format == "json").await,
        MigrateCommand::Apply { name, override_gate } => apply(config, &name, override_gate).await,
        MigrateCommand::Gate { name, format } => gate(config, &name, format == "json").await,
        MigrateCommand::Submit { name, files } => submit(config, &name, &files).await,
        MigrateCommand::Approvals { name, count } => approvals(config, &name, count).await,
        MigrateCommand::Lint { .. } => unreachable!("migrate lint runs before the configuration is loaded"),
    }
}

/// `migrate lint`: findings per file, then a count. Exit 0 when clean or
/// only warnings, 1 on any error-level finding, 2 when a file is unreadable.
pub fn lint(files: &[PathBuf], engine: EngineKind, server_version: Option<&str>, json: bool) -> ExitCode {
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
    let errors = all.clone().filter(|f| f.severity == Severity::Error).count();
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
async fn status(config: &Config, name: &str, json: bool) -> anyhow::Result<()> {
    let services = Services::open(config).await?;
    services.connect().await?;
    let (name, member) = member_named(&services.fleet, name)?;
    let status = migrations::status_now(&member).await;
    services.close().await;
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
        print_findings(&p.findings, "      ");
    }
    for d in &status.drift {
        println!("DRIFT: {}", d.message);
    }
    for problem in &status.problems {
        println!("problem: {problem}");
    }
    Ok(())
}

/// `migrate gate NAME`: the live gate for the pending migrations.
async fn gate(config: &Config, name: &str, json: bool) -> anyhow::Result<()> {
    let services = Services::open(config).await?;
    services.connect().await?;
    let (name, member) = member_named(&services.fleet, name)?;
    let status = migrations::status_now(&member).await?;
    let scripts: Vec<(String, String)> = status
        .pending
        .iter()
        .map(|p| (p.version.clone(), p.sql.clone()))
        .collect();
    let gate = migrations::gate::of_scripts(&member, &scripts, config.gate_max_xact_age).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&gate)?);
    } else {
        println!("{name}: {:?}", gate.verdict);
        for why in &gate.reasons {
            println!("  {why}");
        }
        for s in &gate.statements {
            println!(
                "  {} line {}: {} on {}{}",
                s.migration,
                s.line,
                s.lock,
                s.table,
                s.table_bytes
                    .map(|b| format!(" ({})", crate::format::fmt_bytes(b)))
                    .unwrap_or_default()
            );
        }
    }
    if gate.verdict != migrations::gate::Verdict::Go {
        anyhow::bail!("the live gate says {:?}", gate.verdict);
    }
    Ok(())
}

/// `migrate apply NAME`: which request runs is the service's rule
/// ([`requests::apply_next`]); nothing unapproved runs.
async fn apply(config: &Config, name: &str, override_gate: Option<String>) -> anyhow::Result<()> {
    let services = Services::open(config).await?;
    services.connect().await?;
    let (name, member) = member_named(&services.fleet, name)?;
    let Services { jobs, store, .. } = &services;
    let check = requests::GateCheck {
        max_xact_age: config.gate_max_xact_age,
        lock_retries: config.lock_retries,
        override_reason: override_gate,
    };
    let Some(started) = requests::apply_next(jobs, store, &member, &Actor::cli(), &check).await? else {
        println!("{name}: nothing pending");
        return Ok(());
    };
    let (id, job) = (started.request, started.job);
    eprintln!("applying request {id} to {name} (job {job})");
    let waited = wait_for_job(jobs, job).await;
    for line in jobs.get(job).await?.log.lines() {
        println!("{line}");
    }
    services.close().await;
    waited
}

/// `migrate approvals NAME COUNT` (store only: no key or connection needed).
async fn approvals(config: &Config, name: &str, count: i64) -> anyhow::Result<()> {
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
async fn submit(config: &Config, name: &str, files: &[PathBuf]) -> anyhow::Result<()> {
    let services = Services::open(config).await?;
    services.connect().await?;
    let (_, member) = member_named(&services.fleet, name)?;
    for path in files {
        let sql = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| anyhow::anyhow!("{} is not a file", path.display()))?;
        let done = migrations::submit(&services.store, &member, &Actor::cli(), &file_name, &sql).await?;
        let what = if done.created {
            "submitted"
        } else {
            "already there"
        };
        println!("{file_name}: {what}, sha256 {}", done.checksum);
        print_findings(&done.findings, "    ");
    }
    services.close().await;
    Ok(())
}

/// Lint findings, one line each, under what they are about.
fn print_findings(findings: &[crate::lint::Finding], indent: &str) {
    for f in findings {
        println!(
            "{indent}line {}: {}[{}]: {}",
            f.line,
            f.severity.as_str(),
            f.rule,
            f.message
        );
    }
}
