//! The demo database: on the first start with an empty registry, a small
//! SQLite shop (schema, sample rows, a migrations folder with three applied
//! and two pending migrations) is created in the data directory and
//! registered as `demo`, so every page has something real to show.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::config::{Config, SecretUrl};
use crate::domain::DatabaseName;
use crate::service::Actor;
use crate::service::registry::{NewDatabase, Registry, Schedules};
use crate::store::{Store, settings};

const MARKER: &str = "demo_offered";
pub const NAME: &str = "demo";

/// (file name, contents, applied at creation?)
const MIGRATIONS: &[(&str, &str, bool)] = &[
    (
        "V1__create_customers.sql",
        include_str!("../../demo/migrations/V1__create_customers.sql"),
        true,
    ),
    (
        "V2__create_products_and_orders.sql",
        include_str!("../../demo/migrations/V2__create_products_and_orders.sql"),
        true,
    ),
    (
        "V3__index_orders_by_customer.sql",
        include_str!("../../demo/migrations/V3__index_orders_by_customer.sql"),
        true,
    ),
    (
        "V4__add_customer_phone.sql",
        include_str!("../../demo/migrations/V4__add_customer_phone.sql"),
        false,
    ),
    (
        "V5__drop_order_status.sql",
        include_str!("../../demo/migrations/V5__drop_order_status.sql"),
        false,
    ),
];
const SEED: &str = include_str!("../../demo/seed.sql");

pub use crate::engine::history::HISTORY_TABLE_SQL;

/// Create and register the demo database if this is the first start with an
/// empty registry and the demo is wanted. Runs at most once per store.
pub async fn ensure(config: &Config, store: &Store, registry: &Registry) -> anyhow::Result<()> {
    if settings::get(store.pool(), MARKER).await?.is_some() {
        return Ok(());
    }
    let empty = registry.stored_count().await? == 0 && registry.declared_count() == 0;
    if config.demo && empty {
        let dir = config.data_dir.join("demo");
        let file = create(&dir).await.context("cannot create the demo database")?;
        let new = NewDatabase {
            name: DatabaseName::parse(NAME)?,
            url: SecretUrl::new(format!("sqlite://{}", file.display())),
            migrations_dir: file.parent().map(|d| d.join("migrations").display().to_string()),
            rpo: Some(Duration::from_secs(24 * 3600)),
            rto: Some(Duration::from_secs(3600)),
            // Nightly backups, a weekly proof by restore, and a sensible keep.
            pitr: Default::default(),
            schedules: Schedules {
                backup: Some("0 3 * * *".into()),
                verify: Some("0 5 * * 0".into()),
                retention: Some("last=7 daily=7 weekly=4 monthly=6".into()),
            },
        };
        registry.add(&Actor::system(), new).await?;
        tracing::info!(path = %file.display(), "registered the demo database");
    }
    settings::put(store.pool(), MARKER, "1").await?;
    Ok(())
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Write the migration files and build the database; returns its absolute path.
async fn create(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    // In the data dir, so private like the rest of it (crate::files).
    let migrations = dir.join("migrations");
    crate::files::create_private_dir(&migrations)?;
    for (file, sql, _) in MIGRATIONS {
        crate::files::write_private(&migrations.join(file), sql.as_bytes())?;
    }
    let path = dir.canonicalize()?.join("demo.sqlite");
    if path.exists() {
        return Ok(path);
    }
    crate::files::create_private(&path)?;
    let options =
        SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?.create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let mut tx = conn.begin().await?;
    sqlx::raw_sql(HISTORY_TABLE_SQL).execute(&mut *tx).await?;
    for (file, sql, _) in MIGRATIONS.iter().filter(|m| m.2) {
        let started = std::time::Instant::now();
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        let (version, description) = file
            .trim_start_matches('V')
            .trim_end_matches(".sql")
            .split_once("__")
            .unwrap_or(("0", file));
        sqlx::query(
            "INSERT INTO custodian_schema_history \
             (version, description, checksum, applied_by, applied_at, execution_ms, success) \
             VALUES ($1, $2, $3, 'custodian (demo)', datetime('now'), $4, TRUE)",
        )
        .bind(version)
        .bind(description.replace('_', " "))
        .bind(sha256_hex(sql))
        .bind(started.elapsed().as_millis() as i64)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::raw_sql(SEED).execute(&mut *tx).await?;
    tx.commit().await?;
    conn.close().await?;
    Ok(path)
}
