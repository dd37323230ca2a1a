//! `/metrics`: the latest sample of every database and the panel's own
//! figures in the OpenMetrics text format (prometheus-client), built fresh
//! for each scrape from what is already in memory plus three small store
//! queries.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Monitor;
use crate::service::fleet::Health;
use crate::store::alerts::{self as alert_rows, AlertState};
use crate::store::jobs as job_rows;
use crate::store::metrics as samples;
use crate::store::now;

/// The content type prometheus-client's text encoding is.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;
type Gauges = Family<Labels, Gauge<f64, AtomicU64>>;

/// Gauges registered as they are first used, each with its help text.
struct Sheet {
    registry: Registry,
    families: Vec<(&'static str, Gauges)>,
}

impl Sheet {
    fn gauge(&mut self, name: &'static str, help: &str) -> Gauges {
        if let Some((_, f)) = self.families.iter().find(|(n, _)| *n == name) {
            return f.clone();
        }
        let family = Gauges::default();
        self.registry.register(name, help, family.clone());
        self.families.push((name, family.clone()));
        family
    }

    fn set(&mut self, name: &'static str, help: &str, labels: Labels, value: Option<f64>) {
        if let Some(v) = value {
            self.gauge(name, help).get_or_create(&labels).set(v);
        }
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The whole exposition.
pub async fn exposition(monitor: &Monitor) -> anyhow::Result<String> {
    let mut sheet = Sheet {
        registry: Registry::default(),
        families: Vec::new(),
    };
    let poll_errors = Family::<Labels, Counter>::default();
    sheet.registry.register(
        "custodian_poll_errors",
        "Status checks of the database that failed since the panel started",
        poll_errors.clone(),
    );
    let pool = monitor.store().pool();
    let at = now();
    for m in monitor.0.fleet.members() {
        let name = m.entry.name.to_string();
        let db = labels(&[("database", &name), ("engine", m.entry.engine.as_str())]);
        let up = match m.status().health {
            Health::Up => Some(1.0),
            Health::Down => Some(0.0),
            Health::Unknown => None,
        };
        sheet.set(
            "custodian_database_up",
            "1 if the last status check reached the database",
            db.clone(),
            up,
        );
        poll_errors.get_or_create(&db).inc_by(m.poll_errors());

        // Backups: age of the last good one, and the RPO it is held to.
        let backups = monitor.0.backups.list(&name, 100).await.unwrap_or_default();
        let last_good = backups
            .iter()
            .find(|b| b.state.is_good())
            .map(|b| (at - b.finished_at.unwrap_or(b.started_at)) as f64);
        sheet.set(
            "custodian_backup_age_seconds",
            "Seconds since the last good backup finished",
            db.clone(),
            last_good,
        );
        sheet.set(
            "custodian_backup_rpo_seconds",
            "The database's recovery point objective",
            db.clone(),
            m.entry.rpo.map(|d| d.as_secs_f64()),
        );

        // This instance's own last sample if it is fresh; else (another
        // instance holds the sampling lease) the newest stored one, if fresh.
        let fresh = 3 * monitor.settings().interval.as_secs() as i64;
        let (at, row, replicas) = match monitor.latest(&m.entry.name).filter(|l| at - l.at <= fresh) {
            Some(latest) => (
                latest.at,
                latest.row,
                latest.reading.map(|r| r.replicas).unwrap_or_default(),
            ),
            None => match samples::newest(pool, &name).await? {
                Some(row) if at - row.at <= fresh => (row.at, Some(row), Vec::new()),
                _ => continue,
            },
        };
        sheet.set(
            "custodian_sample_timestamp_seconds",
            "When the figures below were sampled (unix time)",
            db.clone(),
            Some(at as f64),
        );
        let Some(row) = row else {
            continue;
        };
        for (state, value) in [
            ("active", row.active),
            ("idle", row.idle),
            ("idle_in_transaction", row.idle_in_xact),
        ] {
            let mut l = db.clone();
            l.push(("state".into(), state.into()));
            sheet.set("custodian_sessions", "The database's sessions by state", l, value);
        }
        let figures: [(&'static str, &str, Option<f64>); 12] = [
            (
                "custodian_server_connections",
                "Client connections on the whole server",
                row.connections,
            ),
            (
                "custodian_max_connections",
                "The server's max_connections",
                row.max_connections,
            ),
            (
                "custodian_commits_per_second",
                "Commits per second over the last sample interval",
                row.commits_ps,
            ),
            (
                "custodian_rollbacks_per_second",
                "Rollbacks per second over the last sample interval",
                row.rollbacks_ps,
            ),
            (
                "custodian_cache_hit_ratio",
                "Share of block reads served from memory (0 to 1)",
                row.cache_hit,
            ),
            (
                "custodian_database_size_bytes",
                "Size of the database",
                row.size_bytes,
            ),
            (
                "custodian_longest_query_seconds",
                "Age of the oldest running query",
                Some(row.longest_query_s.unwrap_or(0.0)),
            ),
            (
                "custodian_longest_transaction_seconds",
                "Age of the oldest open transaction",
                Some(row.longest_xact_s.unwrap_or(0.0)),
            ),
            (
                "custodian_longest_idle_transaction_seconds",
                "How long the oldest idle-in-transaction session has been idle",
                Some(row.longest_idle_xact_s.unwrap_or(0.0)),
            ),
            (
                "custodian_dead_tuples",
                "Dead tuples in the database's tables",
                row.dead_tuples,
            ),
            (
                "custodian_xid_age",
                "Age of the database's oldest unfrozen transaction ID",
                row.xid_age,
            ),
            (
                "custodian_wal_archiving_failing",
                "1 if the last WAL archiving attempt failed",
                row.archive_failing,
            ),
        ];
        for (metric, help, value) in figures {
            sheet.set(metric, help, db.clone(), value);
        }
        for replica in &replicas {
            let mut l = db.clone();
            l.push(("replica".into(), replica.name.clone()));
            sheet.set(
                "custodian_replication_lag_seconds",
                "How far a replica is behind",
                l,
                Some(replica.lag_s),
            );
        }
    }

    // The panel's own footprint on each server it manages.
    for server in monitor.0.fleet.server_views() {
        let l = labels(&[
            ("server", &server.connections.server),
            ("engine", server.connections.engine.as_str()),
        ]);
        sheet.set(
            "custodian_panel_connections",
            "Connections the panel holds to the server now",
            l.clone(),
            Some(server.connections.panel_connections as f64),
        );
        sheet.set(
            "custodian_panel_connection_limit",
            "The most connections the panel holds to the server (max_connections_per_server)",
            l,
            Some(server.connections.limit as f64),
        );
    }
    for (kind, state, count) in job_rows::counts(pool).await? {
        sheet.set(
            "custodian_jobs",
            "Jobs in the panel's store by kind and state",
            labels(&[("kind", &kind), ("state", &state)]),
            Some(count as f64),
        );
    }
    for alert in alert_rows::open(pool).await? {
        sheet.set(
            "custodian_alert",
            "Open alerts: 1 firing, 0 pending",
            labels(&[("database", &alert.database_name), ("rule", alert.rule.as_str())]),
            Some(if alert.state == AlertState::Firing {
                1.0
            } else {
                0.0
            }),
        );
    }
    let mut out = String::new();
    encode(&mut out, &sheet.registry)?;
    Ok(out)
}
