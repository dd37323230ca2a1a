//! Alert states and the people's side of them. Each sample moves every
//! rule's alert along pending → firing → resolved (a pending alert whose
//! condition clears before its "for" duration is forgotten); firing and
//! resolving queue notifications unless a silence covers them. Here: that
//! state machine and the notifications it queues; `board` reads alerts for
//! pages and the API; `actions` holds what people do (operators acknowledge
//! and silence, admins set thresholds), all of it audited.

mod actions;
mod board;

use std::collections::HashMap;

use serde_json::json;

pub use self::actions::{MAX_SILENCE, acknowledge, set_rule, silence, unsilence};
pub use self::board::{AlertView, Board, board, firing_counts};
use super::Monitor;
use super::rules::{self, Facts, Info, Observed, Rule, RuleKey, Setting};
use crate::error::AppResult;
use crate::format::rfc3339 as fmt_time_rfc3339;
use crate::service::registry::DbEntry;
use crate::store::alerts::{self as rows, AlertEvent, AlertRow, AlertState, SilenceRow};
use crate::store::now;

/// Every rule's settings on a database (stored rows over the defaults),
/// as pages list them.
pub async fn settings(monitor: &Monitor, database: &str) -> AppResult<Vec<(Info, Setting)>> {
    Ok(settings_of(monitor, database)
        .await?
        .into_iter()
        .map(|(rule, setting)| (Info::of(rule), setting))
        .collect())
}

async fn settings_of(monitor: &Monitor, database: &str) -> AppResult<Vec<(&'static dyn Rule, Setting)>> {
    let stored = rows::rules(monitor.store().pool(), database).await?;
    Ok(rules::all()
        .map(|rule| {
            let setting = stored
                .iter()
                .find(|r| r.rule == rule.key())
                .map(|r| Setting {
                    enabled: r.enabled,
                    threshold: r.threshold,
                    for_seconds: r.for_seconds,
                })
                .unwrap_or_else(|| rules::default_setting(rule, monitor.settings()));
            (rule, setting)
        })
        .collect())
}

/// Move each rule's alert on one database along, given one sample's facts.
pub async fn evaluate(monitor: &Monitor, entry: &DbEntry, facts: &Facts<'_>) -> AppResult<()> {
    let pool = monitor.store().pool();
    let name = entry.name.as_str();
    let open: HashMap<RuleKey, AlertRow> = rows::open_for(pool, name)
        .await?
        .into_iter()
        .map(|a| (a.rule, a))
        .collect();
    for (rule, setting) in settings_of(monitor, name).await? {
        let key = rule.key();
        let observed = if setting.enabled {
            rule.observe(&setting, facts)
        } else {
            Observed::Clear
        };
        let at = facts.now;
        match (observed, open.get(&key)) {
            (Observed::Unknown, _) | (Observed::Clear, None) => {}
            (
                Observed::Breach {
                    value,
                    message,
                    query,
                },
                None,
            ) => {
                if let Some(id) =
                    rows::open_pending(pool, name, key, &message, query.as_deref(), value, at).await?
                    && setting.for_seconds <= 0
                    && rows::fire(pool, id, at).await?
                {
                    announce_firing(monitor, id).await?;
                }
            }
            (
                Observed::Breach {
                    value,
                    message,
                    query,
                },
                Some(alert),
            ) => {
                rows::touch(pool, alert.id, &message, query.as_deref(), value, at).await?;
                let fired_now = alert.state == AlertState::Pending
                    && at - alert.started_at >= setting.for_seconds
                    && rows::fire(pool, alert.id, at).await?;
                // Firing under a silence that has since ended: say so now.
                let unannounced = alert.state == AlertState::Firing && !alert.notified;
                if fired_now || unannounced {
                    announce_firing(monitor, alert.id).await?;
                }
            }
            (Observed::Clear, Some(alert)) => end(monitor, alert, at).await?,
        }
    }
    Ok(())
}

/// Alerts of databases no longer registered end, with a "resolved" where
/// a "firing" went out, so no receiver keeps an incident open.
pub async fn close_orphans(monitor: &Monitor, known: &[String]) -> AppResult<()> {
    let pool = monitor.store().pool();
    for alert in rows::open(pool).await? {
        if !known.contains(&alert.database_name) {
            end(monitor, &alert, now()).await?;
        }
    }
    Ok(())
}

/// An open alert's condition is over: a pending one is forgotten, a firing
/// one resolved (with a "resolved" where its "firing" went out).
async fn end(monitor: &Monitor, alert: &AlertRow, at: i64) -> AppResult<()> {
    let pool = monitor.store().pool();
    match alert.state {
        AlertState::Pending => rows::drop_pending(pool, alert.id).await?,
        AlertState::Firing | AlertState::Resolved => {
            if rows::resolve(pool, alert.id, at).await? && alert.notified {
                enqueue(monitor, alert.id, AlertEvent::Resolved).await?;
            }
        }
    }
    Ok(())
}

/// Is this alert's database and rule silenced now?
fn silenced_by<'a>(silences: &'a [SilenceRow], database: &str, rule: RuleKey) -> Option<&'a SilenceRow> {
    silences
        .iter()
        .find(|s| s.database_name == database && s.rule.is_none_or(|r| r == rule))
}

/// The notification's body, fixed when the alert changes state.
pub fn payload(alert: &AlertRow, event: AlertEvent, public_url: Option<&str>) -> serde_json::Value {
    json!({
        "event": event,
        "alert_id": alert.id,
        "database": alert.database_name,
        "rule": alert.rule,
        "title": rules::rule(alert.rule).title(),
        "message": alert.message,
        "value": alert.value,
        "started_at": fmt_time_rfc3339(alert.started_at),
        "fired_at": alert.fired_at.map(fmt_time_rfc3339),
        "resolved_at": alert.resolved_at.map(fmt_time_rfc3339),
        "url": public_url.map(|u| format!("{}/alerts", u.trim_end_matches('/'))),
    })
}

/// Announce a firing alert unless a silence covers it; once only (the
/// mark is a conditional update). Its "resolved" follows only if this went out.
async fn announce_firing(monitor: &Monitor, id: i64) -> AppResult<()> {
    let pool = monitor.store().pool();
    let Some(alert) = rows::get(pool, id).await? else {
        return Ok(());
    };
    let silences = rows::silences(pool, now()).await?;
    if let Some(s) = silenced_by(&silences, &alert.database_name, alert.rule) {
        tracing::info!(alert = id, silence = s.id, "firing alert held back by a silence");
        return Ok(());
    }
    if rows::mark_notified(pool, id).await? {
        enqueue(monitor, id, AlertEvent::Firing).await?;
    }
    Ok(())
}

/// Queue the alert's notification to every webhook. The payload and the
/// log line carry the message, never the statement behind it.
async fn enqueue(monitor: &Monitor, id: i64, event: AlertEvent) -> AppResult<()> {
    let pool = monitor.store().pool();
    let Some(alert) = rows::get(pool, id).await? else {
        return Ok(());
    };
    let body = payload(&alert, event, monitor.settings().public_url.as_deref());
    let queued = crate::store::webhooks::enqueue(pool, id, event, &body.to_string()).await?;
    tracing::info!(
        alert = id,
        event = %event,
        webhooks = queued,
        "alert {event}: {}",
        alert.message
    );
    if queued > 0 {
        monitor.0.wake.notify_one();
    }
    Ok(())
}
