//! The registry of managed databases: the ones added in the panel or with the
//! CLI (stored, URL sealed with the panel's key) and the ones declared in
//! custodian.toml (read-only here). Changes are admin work and audited; the
//! URL's password never leaves this module except to connect.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{DeclaredDatabase, SecretUrl};
use crate::domain::{DatabaseName, Role};
use crate::engine::{self, EngineKind, ServerStatus, Servers};
use crate::error::{AppError, AppResult};
use crate::secrets::Secrets;
use crate::service::Actor;
use crate::service::audit::{Event, audited};
use crate::service::users::require;
use crate::store::registry::{self as rows, DatabaseFields, DatabaseRow};
use crate::store::{ConflictOnUnique, Store, settings};

mod entry;

pub use entry::{
    DbEntry, PhysicalRun, PitrSettings, Plan, Scheduled, Schedules, Source, parse_physical_schedule,
};

/// An entry with what the fleet needs to connect to it.
pub struct Connection {
    pub entry: DbEntry,
    /// The URL, or why there is none (an unset environment variable, a
    /// value the key cannot open).
    pub url: Result<SecretUrl, String>,
    /// Changes whenever the URL may have changed, so pools are replaced.
    pub fingerprint: String,
}

/// A new database to register.
#[derive(Debug)]
pub struct NewDatabase {
    pub name: DatabaseName,
    pub url: SecretUrl,
    pub migrations_dir: Option<String>,
    pub rpo: Option<Duration>,
    pub rto: Option<Duration>,
    pub schedules: Schedules,
    pub pitr: PitrSettings,
}

/// Changes to a registered database; `url: None` keeps the stored one.
#[derive(Debug)]
pub struct Changes {
    pub url: Option<SecretUrl>,
    pub migrations_dir: Option<String>,
    pub rpo: Option<Duration>,
    pub rto: Option<Duration>,
    pub schedules: Schedules,
    pub pitr: PitrSettings,
}

/// The settings a stored row carries besides its name and URL.
struct Settings<'a> {
    migrations_dir: Option<&'a str>,
    rpo: Option<Duration>,
    rto: Option<Duration>,
    schedules: &'a Schedules,
    pitr: &'a PitrSettings,
}

#[derive(Clone, Debug)]
pub struct Registry {
    store: Store,
    secrets: Secrets,
    declared: Arc<Vec<DeclaredDatabase>>,
}

/// Settings key of the registry's version: a fresh random value written
/// after every change (add, edit, remove, from any panel or the CLI), so a
/// panel can tell with one small read whether its fleet is behind.
const VERSION: &str = "registry_version";

/// Settings key of a value sealed with the key in use, to tell a wrong key
/// at start-up instead of failing on every URL later.
const KEY_CHECK: &str = "secret_key_check";
const KEY_CHECK_TEXT: &str = "custodian secret key check";

impl Registry {
    pub fn new(store: Store, secrets: Secrets, declared: Vec<DeclaredDatabase>) -> Self {
        Registry {
            store,
            secrets,
            declared: Arc::new(declared),
        }
    }

    /// Fail with a clear message if the key cannot open what the store holds.
    pub async fn verify_key(&self) -> anyhow::Result<()> {
        match settings::get(self.store.pool(), KEY_CHECK).await? {
            Some(sealed) => {
                if self.secrets.open(KEY_CHECK, &sealed).ok().as_deref() != Some(KEY_CHECK_TEXT) {
                    anyhow::bail!(
                        "the secret key ({}) is not the one this store's connection URLs were \
                         encrypted with; set CUSTODIAN_SECRET_KEY (or restore the key file) to the original key",
                        self.secrets.source
                    );
                }
            }
            None => {
                let sealed = self.secrets.seal(KEY_CHECK, KEY_CHECK_TEXT);
                settings::put(self.store.pool(), KEY_CHECK, &sealed).await?;
            }
        }
        Ok(())
    }

    fn declared_entry(d: &DeclaredDatabase) -> Option<(DbEntry, Result<SecretUrl, String>)> {
        let name = DatabaseName::parse(&d.name).ok()?;
        let url = match (&d.url, &d.url_env) {
            (Some(url), _) => Ok(url.clone()),
            (None, Some(var)) => std::env::var(var)
                .map(SecretUrl::new)
                .map_err(|_| format!("environment variable {var} is not set")),
            (None, None) => Err("no url or url_env".to_string()),
        };
        let engine = url.as_ref().ok().map(engine::engine_of);
        let entry = DbEntry {
            name,
            // An unusable URL still needs an engine to show; the error says why.
            engine: match &engine {
                Some(Ok(kind)) => *kind,
                _ => EngineKind::Postgres,
            },
            url_redacted: match &url {
                Ok(u) => u.redacted(),
                Err(_) => format!("${}", d.url_env.clone().unwrap_or_default()),
            },
            migrations_dir: d.migrations_dir.as_ref().map(|p| p.display().to_string()),
            rpo: d.rpo,
            rto: d.rto,
            schedules: Schedules {
                backup: d.backup_schedule.clone(),
                verify: d.verify_schedule.clone(),
                retention: d.retention.clone(),
            },
            pitr: PitrSettings {
                stanza: d.pgbackrest_stanza.clone(),
                config: d.pgbackrest_config.as_ref().map(|p| p.display().to_string()),
                schedule: d.pgbackrest_schedule.clone(),
                drill_schedule: d.recovery_drill_schedule.clone(),
                proof_sql: d.recovery_proof_sql.clone(),
            },
            plan: Plan::default(),
            source: Source::Config,
        }
        .planned();
        let url = match (url, engine) {
            (Ok(_), Some(Err(e))) => Err(e.to_string()),
            (url, _) => url,
        };
        Some((entry, url))
    }

    fn stored_entry(row: &DatabaseRow) -> AppResult<DbEntry> {
        Ok(DbEntry {
            name: DatabaseName::parse(&row.name)?,
            engine: row
                .engine
                .parse::<EngineKind>()
                .map_err(|e| AppError::Internal(anyhow::anyhow!("registry row {}: {e}", row.name)))?,
            url_redacted: row.url_redacted.clone(),
            migrations_dir: row.migrations_dir.clone(),
            rpo: row.rpo_seconds.map(|s| Duration::from_secs(s.max(0) as u64)),
            rto: row.rto_seconds.map(|s| Duration::from_secs(s.max(0) as u64)),
            schedules: Schedules {
                backup: row.backup_schedule.clone(),
                verify: row.verify_schedule.clone(),
                retention: row.retention.clone(),
            },
            pitr: PitrSettings {
                stanza: row.pgbackrest_stanza.clone(),
                config: row.pgbackrest_config.clone(),
                schedule: row.pgbackrest_schedule.clone(),
                drill_schedule: row.recovery_drill_schedule.clone(),
                proof_sql: row.recovery_proof_sql.clone(),
            },
            plan: Plan::default(),
            source: Source::Panel,
        }
        .planned())
    }

    fn is_declared(&self, name: &DatabaseName) -> bool {
        self.declared.iter().any(|d| d.name == name.as_str())
    }

    /// The registry's version: equal values mean no change in between
    /// ("" before the first change).
    pub async fn version(&self) -> AppResult<String> {
        Ok(settings::get(self.store.pool(), VERSION)
            .await?
            .unwrap_or_default())
    }

    /// Record that the registry changed. A change that is stored but not
    /// recorded still reaches other panels with their next poll.
    async fn changed(&self) {
        let version = uuid::Uuid::new_v4().simple().to_string();
        if let Err(e) = settings::put(self.store.pool(), VERSION, &version).await {
            tracing::warn!(error = %e, "cannot record a registry change");
        }
    }

    /// Every registered database, by name.
    pub async fn list(&self) -> AppResult<Vec<DbEntry>> {
        Ok(self.connections().await?.into_iter().map(|c| c.entry).collect())
    }

    pub async fn get(&self, name: &DatabaseName) -> AppResult<DbEntry> {
        self.list()
            .await?
            .into_iter()
            .find(|e| &e.name == name)
            .ok_or_else(|| AppError::not_found(format!("no database named {name}")))
    }

    /// Every database with its URL, for the fleet's pools.
    pub async fn connections(&self) -> AppResult<Vec<Connection>> {
        let mut all = Vec::new();
        for d in self.declared.iter() {
            if let Some((entry, url)) = Self::declared_entry(d) {
                let fingerprint = match &url {
                    Ok(u) => crate::service::tokens::secret_digest(u.expose()),
                    Err(e) => e.clone(),
                };
                all.push(Connection {
                    entry,
                    url,
                    fingerprint,
                });
            }
        }
        for row in rows::list(self.store.pool()).await? {
            let Ok(entry) = Self::stored_entry(&row) else {
                continue;
            };
            if self.is_declared(&entry.name) {
                continue;
            }
            let url = self
                .secrets
                .open(&row.name, &row.url_sealed)
                .map(SecretUrl::new)
                .map_err(|e| e.to_string());
            all.push(Connection {
                entry,
                url,
                fingerprint: row.url_sealed,
            });
        }
        all.sort_by(|a, b| a.entry.name.cmp(&b.entry.name));
        Ok(all)
    }

    fn fields<'a>(
        name: &'a DatabaseName,
        engine: EngineKind,
        sealed: &'a str,
        redacted: &'a str,
        settings: Settings<'a>,
    ) -> DatabaseFields<'a> {
        DatabaseFields {
            name: name.as_str(),
            engine: engine.as_str(),
            url_sealed: sealed,
            url_redacted: redacted,
            migrations_dir: settings.migrations_dir,
            rpo_seconds: settings.rpo.map(|d| d.as_secs() as i64),
            rto_seconds: settings.rto.map(|d| d.as_secs() as i64),
            backup_schedule: settings.schedules.backup.as_deref(),
            verify_schedule: settings.schedules.verify.as_deref(),
            retention: settings.schedules.retention.as_deref(),
            pgbackrest_stanza: settings.pitr.stanza.as_deref(),
            pgbackrest_config: settings.pitr.config.as_deref(),
            pgbackrest_schedule: settings.pitr.schedule.as_deref(),
            recovery_drill_schedule: settings.pitr.drill_schedule.as_deref(),
            recovery_proof_sql: settings.pitr.proof_sql.as_deref(),
        }
    }

    pub async fn add(&self, actor: &Actor, new: NewDatabase) -> AppResult<DbEntry> {
        let target = format!("database:{}", new.name);
        let redacted = new.url.redacted();
        let detail = format!("url {redacted}");
        let event = Event {
            action: crate::domain::AuditAction::DbCreate,
            target: &target,
            database: Some(new.name.as_str()),
            detail: &detail,
        };
        audited(&self.store, actor, event, async {
            require(actor, Role::Admin)?;
            let engine = engine::validate_url(new.url.expose())?;
            check_folder(new.migrations_dir.as_deref())?;
            if self.is_declared(&new.name) {
                return Err(AppError::conflict(format!(
                    "{} is declared in the configuration file",
                    new.name
                )));
            }
            let sealed = self.secrets.seal(new.name.as_str(), new.url.expose());
            let schedules = new.schedules.clone().checked()?;
            let pitr = new.pitr.clone().checked(engine)?;
            let settings = Settings {
                migrations_dir: new.migrations_dir.as_deref(),
                rpo: new.rpo,
                rto: new.rto,
                schedules: &schedules,
                pitr: &pitr,
            };
            let fields = Self::fields(&new.name, engine, &sealed, &redacted, settings);
            rows::insert(self.store.pool(), &fields)
                .await
                .conflict_on_unique(|| format!("a database named {} already exists", new.name))?;
            self.changed().await;
            self.get(&new.name).await
        })
        .await
    }

    fn read_only(name: &DatabaseName) -> AppError {
        AppError::conflict(format!(
            "{name} is declared in the configuration file: change it there"
        ))
    }

    pub async fn update(&self, actor: &Actor, name: &DatabaseName, changes: Changes) -> AppResult<DbEntry> {
        let target = format!("database:{name}");
        let detail = match &changes.url {
            Some(url) => format!("url {}", url.redacted()),
            None => "settings".to_string(),
        };
        let event = Event {
            action: crate::domain::AuditAction::DbUpdate,
            target: &target,
            database: Some(name.as_str()),
            detail: &detail,
        };
        audited(&self.store, actor, event, async {
            require(actor, Role::Admin)?;
            if self.is_declared(name) {
                return Err(Self::read_only(name));
            }
            check_folder(changes.migrations_dir.as_deref())?;
            let row = rows::by_name(self.store.pool(), name.as_str())
                .await?
                .ok_or_else(|| AppError::not_found(format!("no database named {name}")))?;
            let (engine, sealed, redacted) = match &changes.url {
                Some(url) => (
                    engine::validate_url(url.expose())?,
                    self.secrets.seal(name.as_str(), url.expose()),
                    url.redacted(),
                ),
                None => (
                    Self::stored_entry(&row)?.engine,
                    row.url_sealed.clone(),
                    row.url_redacted.clone(),
                ),
            };
            let schedules = changes.schedules.clone().checked()?;
            let pitr = changes.pitr.clone().checked(engine)?;
            let settings = Settings {
                migrations_dir: changes.migrations_dir.as_deref(),
                rpo: changes.rpo,
                rto: changes.rto,
                schedules: &schedules,
                pitr: &pitr,
            };
            let fields = Self::fields(name, engine, &sealed, &redacted, settings);
            if rows::update(self.store.pool(), &fields).await? == 0 {
                return Err(AppError::not_found(format!("no database named {name}")));
            }
            self.changed().await;
            self.get(name).await
        })
        .await
    }

    /// Forget a database: it leaves the registry, and what the panel kept
    /// about it (backups, jobs, requests, alerts) stays as a removed
    /// database's until pruned. Nothing on the database itself changes.
    pub async fn remove(&self, actor: &Actor, name: &DatabaseName) -> AppResult<()> {
        let target = format!("database:{name}");
        let event = Event {
            action: crate::domain::AuditAction::DbDelete,
            target: &target,
            database: Some(name.as_str()),
            detail: "",
        };
        audited(&self.store, actor, event, async {
            require(actor, Role::Admin)?;
            if self.is_declared(name) {
                return Err(Self::read_only(name));
            }
            // Its history moves to a key no registration can take, so a
            // database registered later under this name starts clean.
            let key = format!("{name}~{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            if !rows::remove_and_retire(self.store.pool(), name.as_str(), &key, crate::store::now()).await? {
                return Err(AppError::not_found(format!("no database named {name}")));
            }
            self.changed().await;
            Ok(())
        })
        .await
    }

    /// How many databases are stored (not counting declared ones).
    pub async fn stored_count(&self) -> AppResult<i64> {
        Ok(rows::count(self.store.pool()).await?)
    }

    pub fn declared_count(&self) -> usize {
        self.declared.len()
    }
}

/// A migrations folder must be a directory the panel can read.
fn check_folder(dir: Option<&str>) -> AppResult<()> {
    match dir {
        Some(d) if !std::path::Path::new(d).is_dir() => Err(AppError::invalid(format!(
            "migrations folder {d} does not exist or is not a directory"
        ))),
        _ => Ok(()),
    }
}

/// What "Test connection" found: the engine's name and the server's status.
#[derive(Clone, Debug)]
pub struct Tested {
    /// The engine's label ("PostgreSQL", "MySQL/MariaDB", "SQLite").
    pub engine: &'static str,
    pub status: ServerStatus,
}

/// Connect to `url` once, read its status, and close: the "Test connection"
/// button. The connection comes out of the server's budget in `servers`.
/// The error is the driver's, in plain words.
pub async fn test_url(url: &SecretUrl, servers: &Servers) -> AppResult<Result<Tested, String>> {
    let db = engine::connect(url, servers)?;
    let limit = engine::CONNECT_TIMEOUT + engine::STATEMENT_TIMEOUT;
    let engine = db.kind().label();
    let result = match tokio::time::timeout(limit, db.status()).await {
        Ok(Ok(status)) => Ok(Tested { engine, status }),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} seconds", limit.as_secs())),
    };
    db.close().await;
    Ok(result)
}

impl Registry {
    /// "Test connection" with the URL stored for `name` (editing with the
    /// URL left blank): only that one URL is opened. `NotFound` when no
    /// database has that name; `Invalid` when its URL cannot be opened.
    pub async fn test_stored(
        &self,
        name: &DatabaseName,
        servers: &Servers,
    ) -> AppResult<Result<Tested, String>> {
        let missing = || AppError::not_found(format!("no database named {name}"));
        let url = match self.declared.iter().find(|d| d.name == name.as_str()) {
            Some(d) => Self::declared_entry(d).ok_or_else(missing)?.1,
            None => {
                let row = rows::by_name(self.store.pool(), name.as_str())
                    .await?
                    .ok_or_else(missing)?;
                self.secrets
                    .open(&row.name, &row.url_sealed)
                    .map(SecretUrl::new)
                    .map_err(|e| e.to_string())
            }
        };
        test_url(&url.map_err(AppError::invalid)?, servers).await
    }
}
