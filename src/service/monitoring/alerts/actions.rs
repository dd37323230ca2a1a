//! What people do to alerts: operators acknowledge and silence, admins
//! set a rule's threshold on a database. Each is one audited action.

use std::time::Duration;

use crate::domain::{DatabaseName, Role};
use crate::error::{AppError, AppResult};
use crate::service::Actor;
use crate::service::audit::{Event, audited};
use crate::service::monitoring::rules::{self, RuleKey, Setting, Unit};
use crate::service::users::require;
use crate::store::alerts::{self as rows, AlertRow, RuleRow};
use crate::store::{Store, now};

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
        let rule = rule
            .map(|name| {
                name.parse::<RuleKey>()
                    .map_err(|_| AppError::invalid(format!("no alert rule named {name:?}")))
            })
            .transpose()?;
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
        if rows::end_silence(store.pool(), id).await? {
            Ok(())
        } else {
            Err(AppError::not_found(format!("no silence {id} in force")))
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
        let Ok(key) = rule.parse::<RuleKey>() else {
            return Err(AppError::invalid(format!("no alert rule named {rule:?}")));
        };
        let def = rules::rule(key);
        let threshold = match (def.unit(), setting.threshold) {
            (Unit::None, _) => None,
            (_, Some(t)) if t.is_finite() && t >= 0.0 => Some(t),
            (_, Some(_)) => return Err(AppError::invalid("the threshold must be a number, zero or more")),
            (_, None) => return Err(AppError::invalid(format!("{} needs a threshold", def.title()))),
        };
        if !(0..=7 * 86_400).contains(&setting.for_seconds) {
            return Err(AppError::invalid("\"for\" must be between 0 seconds and 7 days"));
        }
        let row = RuleRow {
            database_name: database.to_string(),
            rule: key,
            enabled: setting.enabled,
            threshold,
            for_seconds: setting.for_seconds,
        };
        rows::put_rule(store.pool(), &row).await?;
        Ok(())
    })
    .await
}
