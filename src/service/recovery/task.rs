//! A restore's job: `pgbackrest restore` into a new directory under
//! `restore_dir`, the server started with the original's own `pg_ctl` on
//! a free port and waited for until promoted, what it reached read from
//! its log, the RTO measured, and the server registered as a new
//! database (a drill proves it instead and discards it).

use std::sync::Arc;
use std::time::Instant;

use super::Recovery;
use super::restore::Target;
use crate::config::SecretUrl;
use crate::domain::{DatabaseName, RestoreState};
use crate::engine::pitr::cluster::{self, Restored};
use crate::engine::pitr::pgbackrest::{PhysicalBackup, Stanza};
use crate::error::{AppError, AppResult};
use crate::service::Actor;
use crate::service::fleet::Member;
use crate::service::jobs::{JobCtx, JobFailure};
use crate::service::registry::{NewDatabase, PitrSettings, Schedules};
use crate::store::recovery::{self as rows, Ended};

/// "2026-12-06 21:43:14.411051+00", as pgBackRest passes it to PostgreSQL.
fn pg_time(us: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]+00"
    );
    t.format(&f).unwrap_or_default()
}

/// The restored server's URL: the original's user, password and database
/// through its socket in `socket_dir` (a directory only its OS user and
/// the panel reach: no one else can take its port and be asked for the
/// password), without the original's host or TLS settings.
fn local_url(url: &SecretUrl, port: u16, socket_dir: &std::path::Path) -> AppResult<SecretUrl> {
    let mut u =
        url::Url::parse(url.expose()).map_err(|_| AppError::invalid("the database's URL does not parse"))?;
    u.set_host(Some("127.0.0.1"))
        .map_err(|_| AppError::invalid("cannot point the URL at the restored server"))?;
    u.set_port(Some(port))
        .map_err(|_| AppError::invalid("cannot point the URL at the restored server"))?;
    let keep: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| {
            !matches!(
                k.as_ref(),
                "host" | "hostaddr" | "port" | "sslmode" | "sslrootcert" | "sslcert" | "sslkey"
            )
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    u.set_query(None);
    u.query_pairs_mut()
        .append_pair("host", &socket_dir.display().to_string())
        .extend_pairs(keep);
    Ok(SecretUrl::new(u.to_string()))
}

/// How a restore ended well: the RTO is measured at the promotion
/// (restore, replay and promote), before registration or proofs.
struct RestoreDone {
    summary: String,
    state: RestoreState,
    reached: String,
    proof: String,
    rto_ms: i64,
}

pub(super) struct RestoreTask {
    pub(super) recovery: Recovery,
    pub(super) member: Arc<Member>,
    pub(super) id: i64,
    pub(super) stanza: Stanza,
    pub(super) backup: PhysicalBackup,
    pub(super) target: Target,
    pub(super) url: SecretUrl,
    pub(super) drill: bool,
    pub(super) new_db: String,
    pub(super) server: Restored,
    /// Its home was made by this task (so a failure removes it; a home
    /// that was there is another restore's).
    pub(super) prepared: bool,
}

impl RestoreTask {
    pub(super) async fn run(mut self, ctx: JobCtx) -> Result<String, JobFailure> {
        let started = Instant::now();
        self.server.run_as = self.stanza.run_as.clone();
        let result = self.restore_and_start(&ctx, started).await;
        let store = self.recovery.0.store.clone();
        match result {
            Ok(RestoreDone {
                summary,
                state: ended_state,
                reached,
                proof,
                rto_ms,
            }) => {
                let _ = rows::end(
                    store.pool(),
                    self.id,
                    &Ended {
                        state: ended_state,
                        reached: &reached,
                        rto_ms: Some(rto_ms),
                        proof: &proof,
                        error: None,
                    },
                )
                .await;
                if self.drill {
                    let _ = rows::discarded(store.pool(), self.id).await;
                }
                self.recovery.refresh(&self.member).await;
                Ok(format!("{summary}; RTO {:.1}s", rto_ms as f64 / 1000.0))
            }
            Err((failure, rto_ms, proof)) => {
                // Nothing half-done stays: the server stopped, its directory gone.
                if self.prepared {
                    let _ = self.server.remove().await;
                }
                let message = match &failure {
                    JobFailure::Cancelled => "cancelled".to_string(),
                    JobFailure::Failed(e) => e.clone(),
                };
                let _ = rows::end(
                    store.pool(),
                    self.id,
                    &Ended {
                        state: RestoreState::Failed,
                        reached: "",
                        rto_ms,
                        proof: &proof,
                        error: Some(&message),
                    },
                )
                .await;
                if self.drill {
                    let _ = rows::discarded(store.pool(), self.id).await;
                }
                self.recovery.refresh(&self.member).await;
                Err(failure)
            }
        }
    }

    /// Restore, start, and register (or prove, for a drill). On failure:
    /// the failure, the RTO if the server came up, and the proof so far.
    async fn restore_and_start(
        &mut self,
        ctx: &JobCtx,
        started: Instant,
    ) -> Result<RestoreDone, (JobFailure, Option<i64>, String)> {
        let fail = |e: String| (JobFailure::Failed(e), None, String::new());
        let data = self.server.data();
        // A new home, never one that is there already (another restore's).
        self.server.prepare().map_err(|e| fail(e.to_string()))?;
        self.prepared = true;
        let mut args = vec![
            format!("--pg1-path={}", data.display()),
            format!("--set={}", self.backup.label),
            "--archive-mode=off".to_string(),
            format!("--tablespace-map-all={}", self.server.tablespaces().display()),
            "--log-level-console=detail".to_string(),
        ];
        match self.target {
            Target::Time(us) => {
                args.push("--type=time".into());
                args.push(format!("--target={}", pg_time(us)));
                args.push("--target-action=promote".into());
            }
            Target::Xid(x) => {
                args.push("--type=xid".into());
                args.push(format!("--target={x}"));
                args.push("--target-exclusive".into());
                args.push("--target-action=promote".into());
            }
            Target::Latest => args.push("--type=default".into()),
        }
        ctx.log(&format!(
            "restoring backup {} into {}",
            self.backup.label,
            data.display()
        ))
        .await;
        super::run::run(
            self.stanza.command("restore", &args),
            "pgbackrest restore",
            ctx,
            (0.0, 0.6),
        )
        .await
        .map_err(|e| (e, None, String::new()))?;
        let restored_in = started.elapsed();
        self.server.port = cluster::free_port().map_err(|e| fail(e.to_string()))?;
        let _ = rows::set_port(self.recovery.0.store.pool(), self.id, self.server.port as i64).await;
        ctx.progress(Some(0.65), "replaying WAL to the target");
        ctx.log(&format!(
            "starting the restored server on port {}",
            self.server.port
        ))
        .await;
        let start = self.server.start();
        tokio::select! {
            r = start => r.map_err(|e| fail(e.to_string()))?,
            _ = ctx.cancelled() => return Err((JobFailure::Cancelled, None, String::new())),
        }
        let rto_ms = started.elapsed().as_millis() as i64;
        let reached = self.server.reached();
        let reached_text = reached.as_ref().map(|r| r.at.clone()).unwrap_or_default();
        ctx.log(&format!(
            "promoted after {:.1}s (restore {:.1}s, replay and promote {:.1}s); reached: {}",
            rto_ms as f64 / 1000.0,
            restored_in.as_secs_f64(),
            rto_ms as f64 / 1000.0 - restored_in.as_secs_f64(),
            reached
                .as_ref()
                .map(|r| r.detail.as_str())
                .unwrap_or("(not in the log)")
        ))
        .await;
        let url = local_url(&self.url, self.server.port, &self.server.socket_dir())
            .map_err(|e| fail(e.to_string()))?;
        if self.drill {
            ctx.progress(Some(0.85), "proving the restored data");
            let proof = self.prove(&url).await;
            let _ = self.server.remove().await;
            return match proof {
                Ok(text) => Ok(RestoreDone {
                    summary: format!("drill passed: {text}"),
                    state: RestoreState::Passed,
                    reached: reached_text,
                    proof: text,
                    rto_ms,
                }),
                Err(e) => Err((JobFailure::Failed(format!("drill failed: {e}")), Some(rto_ms), e)),
            };
        }
        ctx.progress(Some(0.9), "registering the restored server");
        let name = DatabaseName::parse(&self.new_db).map_err(|e| fail(e.to_string()))?;
        let new = NewDatabase {
            name,
            url,
            migrations_dir: None,
            rpo: None,
            rto: None,
            schedules: Schedules::default(),
            pitr: PitrSettings::default(),
        };
        self.recovery
            .0
            .registry
            .add(&Actor::system(), new)
            .await
            .map_err(|e| fail(format!("the server is up but cannot be registered: {e}")))?;
        self.recovery.0.fleet.refresh(&self.recovery.0.registry).await;
        Ok(RestoreDone {
            summary: format!("restored into {} on port {}", self.new_db, self.server.port),
            state: RestoreState::Ready,
            reached: reached_text,
            proof: String::new(),
            rto_ms,
        })
    }

    /// Row counts of every table, and the proof query must answer true.
    async fn prove(&self, url: &SecretUrl) -> Result<String, String> {
        let db = crate::engine::connect(url, self.recovery.0.fleet.servers()).map_err(|e| e.to_string())?;
        let counts = db
            .dumps()
            .counts(url)
            .await
            .map_err(|e| format!("counting rows: {e}"));
        let proof = match &self.member.entry.pitr.proof_sql {
            // One scalar, as text: `SELECT (<proof>)::text` also keeps it to one statement.
            Some(sql) => match db
                .text_rows(&format!("SELECT ({})::text", sql.trim().trim_end_matches(';')))
                .await
            {
                Ok(rows) => {
                    let first = rows.first().and_then(|r| r.first().cloned().flatten());
                    match first.as_deref() {
                        Some("t") | Some("true") | Some("1") => Ok(true),
                        // What it returned, cut short: viewers read it.
                        other => Err(format!(
                            "the proof query returned {} instead of true",
                            other
                                .map(|v| format!("{:?}", v.chars().take(60).collect::<String>()))
                                .unwrap_or_else(|| "nothing".into())
                        )),
                    }
                }
                Err(e) => Err(format!("the proof query failed: {e}")),
            },
            None => Ok(false),
        };
        db.close().await;
        let counts = counts?;
        let rows: i64 = counts.values().sum();
        let proved = proof?;
        Ok(format!(
            "{} tables, {rows} rows{}",
            counts.len(),
            if proved { ", proof query true" } else { "" }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::recovery::rfc3339_us;

    #[test]
    fn times_and_urls() {
        assert_eq!(pg_time(1_796_593_394_411_050), "2026-12-06 21:43:14.411050+00");
        assert_eq!(rfc3339_us(1_796_593_394_411_050), "2026-12-06T21:43:14.411050Z");
        let u = local_url(
            &SecretUrl::new("postgres://app:pw@db.example:5432/orders?sslmode=require&application_name=x"),
            6543,
            std::path::Path::new("/srv/restores/orders-pitr-1/run"),
        )
        .unwrap();
        assert_eq!(
            u.expose(),
            "postgres://app:pw@127.0.0.1:6543/orders?host=%2Fsrv%2Frestores%2Forders-pitr-1%2Frun&application_name=x"
        );
    }
}
