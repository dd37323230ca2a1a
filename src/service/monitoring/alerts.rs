//! Alert states and the people's side of them. Each sample moves every
//! rule's alert along pending → firing → resolved (a pending alert whose
//! condition clears before its "for" duration is forgotten); firing and
//! resolving queue notifications unless a silence covers them. Operators
//! acknowledge and silence, admins set thresholds; all of it is audited.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use super::Monitor;
use super::rules::{self, Facts, Observed, RULES, Rule, Setting};
use crate::domain::{DatabaseName, Role};
use crate::error::{AppError, AppResult};
use crate::format::rfc3339 as fmt_time_rfc3339;
use crate::service::Actor;
use crate::service::audit::{Event, audited};
use crate::service::registry::DbEntry;
use crate::service::users::require;
use crate::store::alerts::{self as rows, AlertRow, RuleRow, SilenceRow};
use crate::store::{Store, now};

/// Every rule's settings on a database: stored rows over the defaults.
pub async fn settings(monitor: &Monitor, database: &str) -> AppResult<Vec<(&'static Rule, Setting)>> {
    let stored = rows::rules(monitor.store().pool(), database).await?;
    let s = monitor.settings();
    Ok(RULES
        .iter()
        .map(|rule| {
            let setting = stored
                .iter()
                .find(|r| r.rule == rule.key)
                .map(|r| Setting {
                    enabled: r.enabled,
                    threshold: r.threshold,
                    for_seconds: r.for_seconds,
                })
                .unwrap_or_else(|| rules::default_setting(rule, s.long_query_alert, s.verify_window));
            (rule, setting)
        })
        .collect())
}

/// Move each rule's alert on one database along, given one sample's facts.
pub async fn evaluate(monitor: &Monitor, entry: &DbEntry, facts: &Facts<'_>) -> AppResult<()> {
    let pool = monitor.store().pool();
    let name = entry.name.as_str();
    let open: HashMap<String, AlertRow> = rows::open_for(pool, name)
        .await?
        .into_iter()
        .map(|a| (a.rule.clone(), a))
        .collect();
    for (rule, setting) in settings(monitor, name).await? {
        let observed = if setting.enabled {
            rules::observe(rule, &setting, facts)
        } else {
            Observed::Clear
        };
        let at = facts.now;
        match (observed, open.get(rule.key)) {
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
                    rows::open_pending(pool, name, rule.key, &message, query.as_deref(), value, at).await?
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
                let fired_now = alert.state == "pending"
                    && at - alert.started_at >= setting.for_seconds
                    && rows::fire(pool, alert.id, at).await?;
                // Firing under a silence that has since ended: say so now.
                let unannounced = alert.state == "firing" && !alert.notified;
                if fired_now || unannounced {
                    announce_firing(monitor, alert.id).await?;
                }
            }
            (Observed::Clear, Some(alert)) => {
                if alert.state == "pending" {
                    rows::drop_pending(pool, alert.id).await?;
                } else if rows::resolve(pool, alert.id, at).await? && alert.notified {
                    enqueue(monitor, alert.id, "resolved").await?;
                }
            }
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
            if alert.state == "pending" {
                rows::drop_pending(pool, alert.id).await?;
            } else if rows::resolve(pool, alert.id, now()).await? && alert.notified {
                enqueue(monitor, alert.id, "resolved").await?;
            }
        }
    }
    Ok(())
}

/// Is this alert's database and rule silenced now?
fn silenced_by<'a>(silences: &'a [SilenceRow], database: &str, rule: &str) -> Option<&'a SilenceRow> {
    silences
        .iter()
        .find(|s| s.database_name == database && s.rule.as_deref().is_none_or(|r| r == rule))
}

/// The notification's body, fixed when the alert changes state.
pub fn payload(alert: &AlertRow, event: &str, public_url: Option<&str>) -> serde_json::Value {
    let title = rules::find(&alert.rule).map(|r| r.title).unwrap_or("");
    json!({
        "event": event,
        "alert_id": alert.id,
        "database": alert.database_name,
        "rule": alert.rule,
        "title": title,
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
    if let Some(s) = silenced_by(&silences, &alert.database_name, &alert.rule) {
        tracing::info!(alert = id, silence = s.id, "firing alert held back by a silence");
        return Ok(());
    }
    if rows::mark_notified(pool, id).await? {
        enqueue(monitor, id, "firing").await?;
    }
    Ok(())
}

/// Queue the alert's notification to every webhook. The payload and the
/// log line carry the message, never the statement behind it.
async fn enqueue(monitor: &Monitor, id: i64, event: &str) -> AppResult<()> {
    let pool = monitor.store().pool();
    let Some(alert) = rows::get(pool, id).await? else {
        return Ok(());
    };
    let body = payload(&alert, event, monitor.settings().public_url.as_deref());
    let queued = crate::store::webhooks::enqueue(pool, id, event, &body.to_string()).await?;
    tracing::info!(
        alert = id,
        event,
        webhooks = queued,
        "alert {event}: {}",
        alert.message
    );
    if queued > 0 {
        monitor.0.wake.notify_one();
    }
    Ok(())
}

/// One alert for pages and the API, with whether a silence covers it.
#[derive(Clone, Debug)]
pub struct AlertView {
    pub row: AlertRow,
    pub title: &'static str,
    pub silenced_until: Option<i64>,
}

/// Open alerts (firing first) and recent history.
pub struct Board {
    pub open: Vec<AlertView>,
    pub history: Vec<AlertView>,
    pub silences: Vec<SilenceRow>,
}

pub async fn board(store: &Store, database: Option<&str>, history: i64) -> AppResult<Board> {
    let pool = store.pool();
    let silences = rows::silences(pool, now()).await?;
    let view = |row: AlertRow| AlertView {
        title: rules::find(&row.rule).map(|r| r.title).unwrap_or("unknown rule"),
        silenced_until: silenced_by(&silences, &row.database_name, &row.rule).map(|s| s.until_at),
        row,
    };
    let open: Vec<AlertView> = rows::open(pool)
        .await?
        .into_iter()
        .filter(|a| database.is_none_or(|d| a.database_name == d))
        .map(view)
        .collect();
    let history = if history > 0 {
        rows::recent(pool, database, history)
            .await?
            .into_iter()
            .map(view)
            .collect()
    } else {
        Vec::new()
    };
    let silences = silences
        .into_iter()
        .filter(|s| database.is_none_or(|d| s.database_name == d))
        .collect();
    Ok(Board {
        open,
        history,
        silences,
    })
}

/// Firing alerts per database, for the overview.
pub async fn firing_counts(store: &Store) -> AppResult<HashMap<String, usize>> {
    let mut counts = HashMap::new();
    for a in rows::open(store.pool()).await? {
        if a.state == "firing" {
            *counts.entry(a.database_name).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// Acknowledge an open alert: someone is on it (operator).
pub async fn acknowledge(store: &Store, actor: &Actor, id: i64) -> AppResult<AlertRow> {
    let target = format!("alert:{id}");
    let alert = rows::get(store.pool(), id).await?;
    let event = Event {
        action: crate::domain::AuditAction::AlertAck,
        target: &target,
        database: alert.as_ref().map(|a| a.database_name.as_str()),
        detail: alert.as_ref().map(|a| a.message.as_str()).unwrap_or(""),
    };
    audited(store, actor, event, async {
        require(actor, Role::Operator)?;
        let Some(alert) = alert.clone() else {
            return Err(AppError::not_found(format!("no alert {id}")));
        };
        if !rows::ack(store.pool(), id, &actor.name).await? {
            return Err(AppError::conflict(
                "the alert is resolved: nothing to acknowledge",
            ));
        }
        Ok(alert)
    })
    .await
}

/// The longest a silence may last.
pub const MAX_SILENCE: Duration = Duration::from_secs(30 * 86_400);

/// Hold back notifications for a database (one rule, or all) for a while
/// (operator). Alerts still show; they are marked silenced.
pub async fn silence(
    store: &Store,
    actor: &Actor,
    database: &DatabaseName,
    rule: Option<&str>,
    length: Duration,
    reason: &str,
) -> AppResult<i64> {
    let target = format!("database:{database}");
    let detail = format!(
        "{} for {}{}",
        rule.unwrap_or("all rules"),
        crate::format::fmt_duration(length),
        if reason.is_empty() {
            String::new()
        } else {
            format!(": {reason}")
        }
    );
    let event = Event {
        action: crate::domain::AuditAction::AlertSilence,
        target: &target,
        database: Some(database.as_str()),
        detail: &detail,
    };
    audited(store, actor, event, async {
        require(actor, Role::Operator)?;
        if let Some(rule) = rule
            && rules::find(rule).is_none()
        {
            return Err(AppError::invalid(format!("no alert rule named {rule:?}")));
        }
        if length < Duration::from_secs(60) || length > MAX_SILENCE {
            return Err(AppError::invalid("a silence lasts between a minute and 30 days"));
        }
        if reason.chars().count() > 500 {
            return Err(AppError::invalid("the reason is longer than 500 characters"));
        }
        let until = now() + length.as_secs() as i64;
        Ok(rows::add_silence(store.pool(), database.as_str(), rule, until, reason, &actor.name).await?)
    })
    .await
}

/// End a silence early (operator).
pub async fn unsilence(store: &Store, actor: &Actor, id: i64) -> AppResult<()> {
    let target = format!("silence:{id}");
    let event = Event {
        action: crate::domain::AuditAction::AlertUnsilence,
        target: &target,
        database: None,
        detail: "",
    };
    audited(store, actor, event, async {
        require(actor, Role::Operator)?;
        match rows::end_silence(store.pool(), id).await? {
            Some(_) => Ok(()),
            None => Err(AppError::not_found(format!("no silence {id} in force"))),
        }
    })
    .await
}

/// Change a rule's settings on a database (admin).
pub async fn set_rule(
    store: &Store,
    actor: &Actor,
    database: &DatabaseName,
    rule: &str,
    setting: Setting,
) -> AppResult<()> {
    let target = format!("database:{database}");
    let detail = format!(
        "rule {rule}: {}, threshold {}, for {} s",
        if setting.enabled { "on" } else { "off" },
        setting
            .threshold
            .map(|t| t.to_string())
            .unwrap_or_else(|| "-".into()),
        setting.for_seconds
    );
    let event = Event {
        action: crate::domain::AuditAction::AlertRule,
        target: &target,
        database: Some(database.as_str()),
        detail: &detail,
    };
    audited(store, actor, event, async {
        require(actor, Role::Admin)?;
        let Some(def) = rules::find(rule) else {
            return Err(AppError::invalid(format!("no alert rule named {rule:?}")));
        };
        let threshold = match (def.unit, setting.threshold) {
            (rules::Unit::None, _) => None,
            (_, Some(t)) if t.is_finite() && t >= 0.0 => Some(t),
            (_, Some(_)) => return Err(AppError::invalid("the threshold must be a number, zero or more")),
            (_, None) => return Err(AppError::invalid(format!("{} needs a threshold", def.title))),
        };
        if !(0..=7 * 86_400).contains(&setting.for_seconds) {
            return Err(AppError::invalid("\"for\" must be between 0 seconds and 7 days"));
        }
        let row = RuleRow {
            database_name: database.to_string(),
            rule: def.key.to_string(),
            enabled: setting.enabled,
            threshold,
            for_seconds: setting.for_seconds,
        };
        rows::put_rule(store.pool(), &row).await?;
        Ok(())
    })
    .await
}
