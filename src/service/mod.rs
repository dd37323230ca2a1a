//! The service layer: the rules of each area. HTML handlers, JSON handlers and
//! the CLI all call these functions; none of them touch the store directly.
//! Every mutating function takes the [`Actor`] and writes its audit row.

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
pub mod registry;
pub mod setup;
pub mod throttle;
pub mod tokens;
pub mod users;

use crate::domain::Role;

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
