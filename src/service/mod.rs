//! The service layer: the rules of each area. HTML handlers, JSON handlers and
//! the CLI all call these functions; none of them touch the store directly.
//! Every mutating function takes the [`Actor`] and writes its audit row.
//! [`Services`] wires the handles once, for `serve` and the CLI alike.

pub mod activity;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod demo;
pub mod fleet;
pub mod jobs;
pub mod maintenance;
pub mod migrations;
pub mod monitoring;
pub mod passwords;
pub mod recovery;
pub mod registry;
pub mod setup;
pub mod throttle;
pub mod tokens;
pub mod users;

use crate::config::Config;
use crate::domain::Role;
use crate::secrets::Secrets;
use crate::store::Store;

/// The service handles of one process, built the same way for `serve` and
/// for CLI commands that work on managed databases, so both see one store,
/// one registry and one connection budget per server.
pub struct Services {
    pub store: Store,
    pub secrets: Secrets,
    pub registry: registry::Registry,
    pub fleet: fleet::Fleet,
    pub jobs: jobs::Jobs,
    pub backups: backup::Backups,
    pub recovery: recovery::Recovery,
}

impl Services {
    /// Open the store (creating and migrating it), load the secret key and
    /// check it against the registry, and build the rest. The fleet starts
    /// empty ([`connect`](Self::connect) fills it) and no background task
    /// runs ([`spawn_background`](Self::spawn_background) starts them).
    pub async fn open(config: &Config) -> anyhow::Result<Services> {
        let store = Store::open(&config.store_url()).await?;
        let secrets = Secrets::load(config)?;
        let registry = registry::Registry::new(store.clone(), secrets.clone(), config.databases.clone());
        registry.verify_key().await?;
        let fleet = fleet::Fleet::new(config.max_connections_per_server);
        let jobs = jobs::Jobs::new(store.clone(), config.max_jobs_per_database);
        let backups = backup::Backups::new(
            store.clone(),
            jobs.clone(),
            config.backup_dir(),
            config.data_dir.join("tmp"),
            config.backup_parallel_jobs,
        );
        let recovery = recovery::Recovery::new(
            store.clone(),
            jobs.clone(),
            registry.clone(),
            fleet.clone(),
            recovery::RecoveryConfig {
                restore_dir: absolute(config.restore_dir()),
                restore_keep: config.restore_keep,
                timeline_min_rows: config.timeline_min_rows,
                timeline_wal_budget: config.timeline_wal_budget,
            },
        );
        Ok(Services {
            store,
            secrets,
            registry,
            fleet,
            jobs,
            backups,
            recovery,
        })
    }

    /// Give the fleet a member for every database registered now.
    pub async fn connect(&self) -> anyhow::Result<()> {
        self.fleet.sync(self.registry.connections().await?).await;
        Ok(())
    }

    /// What a serving panel runs beside its requests: the fleet's poller,
    /// the sweepers that mark dead jobs and backups interrupted, and the
    /// backup scheduler. The tasks end with the runtime.
    pub fn spawn_background(&self, poll_interval: std::time::Duration) {
        tokio::spawn(self.fleet.clone().run(self.registry.clone(), poll_interval));
        self.jobs.spawn_sweeper();
        self.backups.spawn_sweeper();
        self.backups.spawn_scheduler(self.fleet.clone(), poll_interval);
        self.recovery.spawn_background(poll_interval);
    }

    /// Close the managed databases' connections, then the store.
    pub async fn close(&self) {
        self.fleet.close().await;
        self.store.close().await;
    }
}

/// `path` made absolute against the working directory.
fn absolute(path: std::path::PathBuf) -> std::path::PathBuf {
    if path.is_absolute() {
        path
    } else {
        std::env::current_dir().map(|d| d.join(&path)).unwrap_or(path)
    }
}

/// How a request reached the panel, recorded in the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Web,
    Api,
    Cli,
    /// The panel itself (e.g. registering the demo database).
    System,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Web => "web",
            Via::Api => "api",
            Via::Cli => "cli",
            Via::System => "system",
        }
    }
}

/// Who is acting, for authorisation and the audit log.
#[derive(Clone, Debug)]
pub struct Actor {
    /// The panel user, if there is one (not for anonymous sign-in attempts
    /// or the CLI, which acts with the operating-system user's authority).
    pub user_id: Option<i64>,
    pub name: String,
    pub role: Option<Role>,
    pub via: Via,
    /// Client address for web/API; "local" for the CLI.
    pub client: String,
}

impl Actor {
    /// The CLI: whoever can run the binary against the store is trusted with
    /// it, as with any admin tool on the host. Named after the OS user.
    pub fn cli() -> Actor {
        let os_user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Actor {
            user_id: None,
            name: format!("cli:{os_user}"),
            role: Some(Role::Admin),
            via: Via::Cli,
            client: "local".into(),
        }
    }

    /// The panel acting on its own, at start-up.
    pub fn system() -> Actor {
        Actor {
            user_id: None,
            name: "custodian".into(),
            role: Some(Role::Admin),
            via: Via::System,
            client: "local".into(),
        }
    }

    /// Someone not signed in (sign-in and setup attempts).
    pub fn anonymous(via: Via, client: String) -> Actor {
        Actor {
            user_id: None,
            name: "anonymous".into(),
            role: None,
            via,
            client,
        }
    }
}
