//! `custodian token create`: an API token for a user, printed once (the
//! store keeps only its hash).

use clap::Subcommand;

use crate::config::Config;
use crate::domain::Username;
use crate::service::{Actor, tokens, users};
use crate::store::Store;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token for USER and print it once.
    Create {
        user: String,
        #[arg(long)]
        name: String,
    },
}

pub async fn token(config: &Config, cmd: TokenCommand) -> anyhow::Result<()> {
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
