//! `custodian user …`: panel users. Works on the store alone (no secret key
//! needed), so an admin can always be created or unlocked from the host.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::config::Config;
use crate::domain::{Password, Role, Username};
use crate::service::Actor;
use crate::service::users::{self, NewUser};
use crate::store::Store;

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

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse::<Role>().map_err(|e| e.to_string())
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

pub async fn user(config: &Config, cmd: UserCommand) -> anyhow::Result<()> {
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
