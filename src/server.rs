//! `custodian serve`: open the services (the same [`Services`] the CLI
//! opens), add what only a serving panel has (sessions, the setup token, the
//! demo database, background tasks, monitoring, the router), print the
//! first-run setup link, serve until SIGTERM or Ctrl-C, then write what is
//! held in memory and close. The accept loop and its limits on slow and idle
//! clients are in [`http`].

mod http;

pub use http::{Limits, serve};

use std::io::Write;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tower_sessions::session_store::ExpiredDeletion;

use crate::config::Config;
use crate::service::monitoring::{self, Monitor};
use crate::service::{Services, demo, setup};
use crate::web::{self, AppState};

/// A panel ready to serve: its state, its router, and the setup token if
/// there are no users yet.
pub struct Prepared {
    pub state: AppState,
    pub app: Router,
    pub setup_token: Option<String>,
}

/// Open the services (creating and migrating the store), register the demo
/// database on a first start, start the background work, and build the
/// application.
pub async fn prepare(config: Config) -> anyhow::Result<Prepared> {
    let services = Services::open(&config).await?;
    // Files an older version (or another umask) left readable to others.
    crate::files::tighten_panel_files(&config.data_dir, &config.backup_dir());
    let (store, secrets, registry) = (&services.store, &services.secrets, &services.registry);
    let (fleet, backups) = (&services.fleet, &services.backups);
    let sessions = store
        .session_backend()
        .await
        .context("cannot prepare the session table")?;
    let setup_token = setup::prepare(store).await?;
    demo::ensure(&config, store, registry).await?;

    // The fleet knows every database before the first request; the poller
    // checks them all at once, then every poll_interval. Jobs left running
    // by a panel that died are swept to interrupted.
    services.connect().await?;
    services.spawn_background(config.poll_interval);

    // Expired sessions are deleted hourly; the task ends with the runtime.
    let cleaner = sessions.clone();
    tokio::spawn(async move {
        if let Err(e) = cleaner
            .continuously_delete_expired(tokio::time::Duration::from_secs(3600))
            .await
        {
            tracing::warn!(error = %e, "expired-session cleanup stopped");
        }
    });

    // Samples, alert rules and webhook deliveries.
    let monitor = Monitor::new(
        store.clone(),
        fleet.clone(),
        backups.clone(),
        secrets.clone(),
        monitoring::Settings::of(&config),
    );
    monitor.spawn();

    let state = AppState::new(config, &services, monitor);
    let app = web::router(state.clone(), sessions);
    Ok(Prepared {
        state,
        app,
        setup_token,
    })
}

/// `custodian serve`: run in the foreground until a signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let prepared = prepare(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    tracing::info!(
        address = %local,
        store = %prepared.state.config.store_url(),
        "custodian is listening on http://{local}"
    );
    if let Some(token) = &prepared.setup_token {
        let base = prepared.state.config.public_base(local);
        // Not println!: a closed stdout must not bring the server down.
        let _ = writeln!(
            std::io::stdout(),
            "\n  No users yet. Create the first admin here (the link works once):\n  {base}/setup?token={token}\n"
        );
    }
    let limits = Limits::of(&prepared.state.config);
    serve(listener, prepared.app, limits, shutdown_signal()).await?;
    // Refused sign-ins counted in memory are written before the store closes.
    if let Err(e) = prepared
        .state
        .throttle
        .flush_due(&prepared.state.store, i64::MAX)
        .await
    {
        tracing::warn!(error = ?e, "could not write the sign-in refusal counts");
    }
    prepared.state.fleet.close().await;
    prepared.state.store.close().await;
    tracing::info!("custodian stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing open requests");
}
