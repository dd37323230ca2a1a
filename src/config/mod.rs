//! Configuration: built-in defaults, then `custodian.toml` (or `--config FILE`),
//! then `CUSTODIAN_*` environment variables, then command-line flags. The
//! defaults need nothing installed: a SQLite store under `./custodian-data`.
//! The file format is flat (every key top-level, `[[databases]]` tables) and
//! stable. Connection URLs are [`SecretUrl`]s (`urls.rs`): redacted when shown,
//! and nothing here is `Serialize`.

mod urls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::SecretString;
use serde::Deserialize;

/// The most client connections `max_connections` may allow at once.
pub const MAX_HTTP_CONNECTIONS: usize = 100_000;

pub use urls::{SecretUrl, StoreKind};

/// The file read from the working directory when no `--config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "custodian.toml";

/// Keys that may come from `CUSTODIAN_<KEY>` environment variables. Other
/// `CUSTODIAN_*` variables (CUSTODIAN_CONFIG, the test URLs) are not config keys.
const ENV_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "store_url",
    "public_url",
    "secure_cookies",
    "trust_proxy_headers",
    "session_idle_timeout",
    "session_absolute_timeout",
    "log",
    "secret_key",
    "demo",
    "poll_interval",
    "activity_sample_ttl",
    "long_query_warn",
    "long_query_alert",
    "max_jobs_per_database",
    "max_connections_per_server",
    "verify_window",
    "backup_dir",
    "backup_parallel_jobs",
    "sample_interval",
    "samples_full_resolution",
    "samples_retention",
    "metrics_token",
    "metrics_allow",
    "webhook_retry",
    "webhook_attempts",
    "header_timeout",
    "max_connections",
    "restore_dir",
    "restore_keep",
    "timeline_min_rows",
    "timeline_wal_budget",
    "gate_max_xact_age",
    "lock_retries",
];

/// The panel's configuration. Only `Deserialize`: it holds secrets (the
/// store URL, the secret key, declared databases' URLs), so nothing can
/// write a configuration out, passwords included, by serializing it. Keys
/// missing from every layer take [`Config::default`]'s values.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Directory for the default SQLite store and, later, keys and backups.
    pub data_dir: PathBuf,
    /// The panel's own store. Unset means SQLite at `<data_dir>/custodian.db`;
    /// `postgres://…` shares one store between several panel instances.
    pub store_url: Option<SecretUrl>,
    /// How users reach the panel (e.g. `https://custodian.example.com`); used
    /// for the setup link. Unset means `http://<listen>`.
    pub public_url: Option<String>,
    /// Mark the session cookie `Secure`: set this when the panel is behind TLS.
    pub secure_cookies: bool,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy you run).
    pub trust_proxy_headers: bool,
    /// A session unused for this long ends.
    #[serde(with = "humantime_serde")]
    pub session_idle_timeout: Duration,
    /// A session ends this long after sign-in, however active.
    #[serde(with = "humantime_serde")]
    pub session_absolute_timeout: Duration,
    /// Log filter in `tracing` syntax, e.g. `info` or `custodian=debug,info`.
    pub log: String,
    /// Key that encrypts managed databases' connection URLs in the store:
    /// 32 random bytes, base64 or hex (`openssl rand -base64 32`). Unset
    /// means a key file, `<data_dir>/secret.key`, created on first start.
    /// Several panel instances on one store must share it.
    pub secret_key: Option<SecretString>,
    /// Create and register the bundled demo SQLite database when the
    /// registry is empty at first start (`serve --no-demo` turns it off).
    pub demo: bool,
    /// How often each managed database's status is checked.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How old a shared activity sample may be before a viewer's refresh
    /// takes a new one: however many people watch, a database sees at most
    /// one activity query per this interval.
    #[serde(with = "humantime_serde")]
    pub activity_sample_ttl: Duration,
    /// Queries running longer than this are marked on the activity page...
    #[serde(with = "humantime_serde")]
    pub long_query_warn: Duration,
    /// ...and longer than this, marked as a problem.
    #[serde(with = "humantime_serde")]
    pub long_query_alert: Duration,
    /// Jobs (maintenance, backups, …) that may run at once on one database.
    pub max_jobs_per_database: usize,
    /// The most connections the panel holds to one server (host:port),
    /// however many of its databases are registered: the panel is a guest.
    pub max_connections_per_server: usize,
    /// Where backups are written. Unset means `<data_dir>/backups`.
    pub backup_dir: Option<PathBuf>,
    /// PostgreSQL: above 1, dump in directory format with this many parallel
    /// jobs (pg_dump -Fd -j, packed into one tar) and restore the same way;
    /// 1 (the default) streams the custom format.
    pub backup_parallel_jobs: usize,
    /// A database's backups are only green if a verification passed within
    /// this long.
    #[serde(with = "humantime_serde")]
    pub verify_window: Duration,
    /// How often each managed database's figures are sampled for charts,
    /// alerts and `/metrics`.
    #[serde(with = "humantime_serde")]
    pub sample_interval: Duration,
    /// Samples are kept at full resolution this long, then as five-minute
    /// averages...
    #[serde(with = "humantime_serde")]
    pub samples_full_resolution: Duration,
    /// ...until they are this old.
    #[serde(with = "humantime_serde")]
    pub samples_retention: Duration,
    /// A bearer token Prometheus may present to `GET /metrics` (any user's
    /// API token works too).
    pub metrics_token: Option<SecretString>,
    /// Addresses (`10.0.0.5`, `10.0.0.0/8`) that may read `/metrics` without
    /// a token. Empty (the default): a token is always needed.
    pub metrics_allow: Vec<ipnet::IpNet>,
    /// A webhook that fails is tried again after this long, doubling each time...
    #[serde(with = "humantime_serde")]
    pub webhook_retry: Duration,
    /// ...this many times in all.
    pub webhook_attempts: u32,
    /// A client must send a request's head within this of the connection
    /// being ready for one; so an idle keep-alive connection is closed
    /// after this long too.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// HTTP connections open at once; more wait until one closes.
    pub max_connections: usize,
    /// Where point-in-time restores put their new servers' data
    /// directories (default `<data_dir>/restores`).
    pub restore_dir: Option<PathBuf>,
    /// A restored server is discarded by itself after this long.
    #[serde(with = "humantime_serde")]
    pub restore_keep: Duration,
    /// The timeline lists a DELETE or UPDATE from this many rows of one table.
    pub timeline_min_rows: i64,
    /// WAL bytes one timeline request may decode.
    pub timeline_wal_budget: u64,
    /// The live gate before a migration: a transaction open longer than
    /// this on the database makes the verdict "wait".
    #[serde(with = "humantime_serde")]
    pub gate_max_xact_age: Duration,
    /// A migration that times out waiting for a lock (lock_timeout) is
    /// rolled back and tried again this many times, with backoff.
    pub lock_retries: u32,
    /// Databases declared here rather than in the browser; read-only there.
    pub databases: Vec<DeclaredDatabase>,
}

/// A managed database declared in the configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredDatabase {
    pub name: String,
    /// Environment variable holding the connection URL (keeps the password
    /// out of the file).
    pub url_env: Option<String>,
    /// The URL itself, for URLs without secrets (e.g. `sqlite:///srv/app.db`).
    pub url: Option<SecretUrl>,
    pub migrations_dir: Option<PathBuf>,
    #[serde(default, with = "humantime_serde")]
    pub rpo: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub rto: Option<Duration>,
    /// 5-field cron line for backups, e.g. "0 3 * * *".
    #[serde(default)]
    pub backup_schedule: Option<String>,
    /// 5-field cron line for verifying the latest backup, e.g. "0 5 * * 0".
    #[serde(default)]
    pub verify_schedule: Option<String>,
    /// e.g. "last=7 daily=7 weekly=4 monthly=6".
    #[serde(default)]
    pub retention: Option<String>,
    /// pgBackRest stanza for point-in-time recovery (PostgreSQL).
    #[serde(default)]
    pub pgbackrest_stanza: Option<String>,
    /// pgBackRest config file, when not its default.
    #[serde(default)]
    pub pgbackrest_config: Option<PathBuf>,
    /// Physical backups and verify: "full 0 1 * * 0; incr 0 * * * *; verify 0 4 * * *".
    #[serde(default)]
    pub pgbackrest_schedule: Option<String>,
    /// 5-field cron line for recovery drills.
    #[serde(default)]
    pub recovery_drill_schedule: Option<String>,
    /// A query a drill's restored server must answer true to.
    #[serde(default)]
    pub recovery_proof_sql: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("custodian-data"),
            store_url: None,
            public_url: None,
            secure_cookies: false,
            trust_proxy_headers: false,
            session_idle_timeout: Duration::from_secs(60 * 60),
            session_absolute_timeout: Duration::from_secs(12 * 60 * 60),
            log: "info".into(),
            secret_key: None,
            demo: true,
            poll_interval: Duration::from_secs(15),
            activity_sample_ttl: Duration::from_secs(2),
            long_query_warn: Duration::from_secs(30),
            long_query_alert: Duration::from_secs(300),
            max_jobs_per_database: 2,
            max_connections_per_server: 4,
            verify_window: Duration::from_secs(7 * 86_400),
            backup_dir: None,
            backup_parallel_jobs: 1,
            sample_interval: Duration::from_secs(30),
            samples_full_resolution: Duration::from_secs(48 * 3600),
            samples_retention: Duration::from_secs(30 * 86_400),
            metrics_token: None,
            metrics_allow: Vec::new(),
            webhook_retry: Duration::from_secs(10),
            webhook_attempts: 8,
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
            restore_dir: None,
            restore_keep: Duration::from_secs(24 * 3600),
            timeline_min_rows: 1000,
            timeline_wal_budget: 256 * 1024 * 1024,
            gate_max_xact_age: Duration::from_secs(60),
            lock_retries: 5,
            databases: Vec::new(),
        }
    }
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    /// `serve --no-demo`: do not create the demo database.
    pub no_demo: bool,
}

/// A configuration and where it came from, for `custodian check`.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub file: Option<PathBuf>,
}

impl Config {
    /// Layer defaults, the config file, `CUSTODIAN_*` variables and flags.
    pub fn load(overrides: &Overrides) -> anyhow::Result<Loaded> {
        let file = match &overrides.config_file {
            Some(path) => {
                if !path.is_file() {
                    bail!("config file {} does not exist", path.display());
                }
                Some(path.clone())
            }
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
        };
        // Defaults come from `#[serde(default)]`, not a serialized Config.
        let mut figment = Figment::new();
        if let Some(path) = &file {
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("CUSTODIAN_").only(ENV_KEYS));
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(("data_dir", dir));
        }
        if let Some(listen) = overrides.listen {
            figment = figment.merge(("listen", listen));
        }
        if overrides.no_demo {
            figment = figment.merge(("demo", false));
        }
        let config: Config = figment.extract().context("invalid configuration")?;
        config.validate()?;
        Ok(Loaded { config, file })
    }

    fn validate(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.store_url {
            StoreKind::of(url.expose())?;
        }
        if let Some(public) = &self.public_url {
            let parsed = url::Url::parse(public).context("public_url is not a URL")?;
            if !matches!(parsed.scheme(), "http" | "https") {
                bail!("public_url must start with http:// or https://");
            }
        }
        if self.session_idle_timeout.is_zero() || self.session_absolute_timeout.is_zero() {
            bail!("session timeouts must be longer than zero");
        }
        if self.poll_interval < Duration::from_secs(1) {
            bail!("poll_interval must be at least 1s");
        }
        if self.sample_interval < Duration::from_secs(1) {
            bail!("sample_interval must be at least 1s");
        }
        if self.max_connections_per_server == 0 {
            bail!("max_connections_per_server must be at least 1");
        }
        if self.samples_full_resolution > self.samples_retention {
            bail!("samples_full_resolution must not be longer than samples_retention");
        }
        if self.webhook_attempts == 0 || self.webhook_retry < Duration::from_secs(1) {
            bail!("webhook_attempts must be at least 1 and webhook_retry at least 1s");
        }
        if self.header_timeout < Duration::from_secs(1) {
            bail!("header_timeout must be at least 1s");
        }
        let most = MAX_HTTP_CONNECTIONS;
        if !(1..=most).contains(&self.max_connections) {
            bail!("max_connections must be between 1 and {most}");
        }
        if self.long_query_warn > self.long_query_alert {
            bail!("long_query_warn must not be longer than long_query_alert");
        }
        let mut seen = std::collections::HashSet::new();
        for db in &self.databases {
            crate::domain::DatabaseName::parse(&db.name)
                .map_err(|e| anyhow::anyhow!("databases: {:?}: {e}", db.name))?;
            if !seen.insert(db.name.as_str()) {
                bail!("databases: {:?} is declared twice", db.name);
            }
            for (what, target) in [("RPO", db.rpo), ("RTO", db.rto)] {
                if let Some(d) = target {
                    crate::domain::RecoveryTarget::from_duration(what, d)
                        .map_err(|e| anyhow::anyhow!("databases: {:?}: {e}", db.name))?;
                }
            }
            if db.url.is_some() == db.url_env.is_some() {
                bail!("databases: {:?} needs exactly one of url or url_env", db.name);
            }
        }
        Ok(())
    }

    /// The store URL in effect: the configured one, or SQLite in the data dir.
    pub fn store_url(&self) -> SecretUrl {
        self.store_url.clone().unwrap_or_else(|| {
            SecretUrl::new(format!(
                "sqlite://{}",
                self.data_dir.join("custodian.db").display()
            ))
        })
    }

    /// Base URL printed in links (the setup link), given the address the
    /// server really listens on (which differs from `listen` for port 0).
    pub fn public_base(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{bound}"),
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn restore_dir(&self) -> PathBuf {
        self.restore_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("restores"))
    }

    pub fn backup_dir(&self) -> PathBuf {
        self.backup_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("backups"))
    }
}

pub use crate::files::create_private_dir;

/// Compile-time proof that no configuration can be serialized: if
/// [`SecretUrl`], [`Config`] or [`DeclaredDatabase`] were `Serialize`, the
/// `_` below would match two impls and this would not compile (the
/// `static_assertions::assert_not_impl_any` trick).
const _: fn() = || {
    trait AmbiguousIfSerialize<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfSerialize<()> for T {}
    struct IsSerialize;
    impl<T: ?Sized + serde::Serialize> AmbiguousIfSerialize<IsSerialize> for T {}
    <SecretUrl as AmbiguousIfSerialize<_>>::some_item();
    <Config as AmbiguousIfSerialize<_>>::some_item();
    <DeclaredDatabase as AmbiguousIfSerialize<_>>::some_item();
};

#[cfg(test)]
mod tests {
    use super::*;

    fn load_file(toml: &str) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("custodian.toml");
        std::fs::write(&path, toml)?;
        let overrides = Overrides {
            config_file: Some(path),
            ..Overrides::default()
        };
        Ok(Config::load(&overrides)?.config)
    }

    #[test]
    fn keys_missing_from_the_file_take_the_defaults() {
        let c = load_file(
            "poll_interval = \"5s\"\nmax_connections_per_server = 2\n\n\
             [[databases]]\nname = \"app\"\nurl = \"sqlite:///srv/app.db\"\nrpo = \"1h\"\n",
        )
        .unwrap();
        assert_eq!(c.poll_interval, Duration::from_secs(5));
        assert_eq!(c.max_connections_per_server, 2);
        assert_eq!(c.databases.len(), 1);
        assert_eq!(
            c.databases[0].url.as_ref().unwrap().expose(),
            "sqlite:///srv/app.db"
        );
        assert_eq!(c.databases[0].rpo, Some(Duration::from_secs(3600)));
        let d = Config::default();
        assert_eq!(
            (c.listen, c.session_idle_timeout, c.max_jobs_per_database, c.demo),
            (d.listen, d.session_idle_timeout, d.max_jobs_per_database, d.demo)
        );
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let err = load_file("pol_interval = \"5s\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("pol_interval"), "{err:#}");
    }
}
