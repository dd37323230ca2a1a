//! Webhook notifications: the admin's list of webhooks (URLs sealed like
//! database URLs: a Slack URL is a secret), and the worker that sends the
//! queue. A failed delivery is retried after `webhook_retry`, doubling each
//! time, `webhook_attempts` times in all; each attempt is claimed in the
//! store first (for longer than a send may take) and its outcome recorded
//! only against that attempt, so two panel instances never send one twice.

use std::time::Duration;

use serde_json::{Value, json};

use super::Monitor;
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::service::Actor;
use crate::service::audit::{Event, audited};
use crate::service::users::require;
use crate::store::webhooks::{self as rows, AlertEvent, DeliveryRow, DeliveryState, WebhookRow};
use crate::store::{ConflictOnUnique, now};

/// How long one delivery may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The two payload shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The alert as JSON (see `alerts::payload`).
    Json,
    /// `{"text": …}`, which Slack (and Mattermost, Rocket.Chat) incoming
    /// webhooks accept.
    Slack,
}

impl Format {
    pub fn parse(s: &str) -> AppResult<Format> {
        match s {
            "json" => Ok(Format::Json),
            "slack" => Ok(Format::Slack),
            _ => Err(AppError::invalid("format must be json or slack")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Slack => "slack",
        }
    }
}

fn seal_context(name: &str) -> String {
    format!("webhook:{name}")
}

/// A webhook as pages show it: the URL's host only.
#[derive(Clone, Debug)]
pub struct WebhookView {
    pub id: i64,
    pub name: String,
    pub host: String,
    pub format: String,
    pub created_by: String,
}

pub async fn webhooks(monitor: &Monitor) -> AppResult<Vec<WebhookView>> {
    let rows = rows::webhooks(monitor.store().pool()).await?;
    Ok(rows
        .into_iter()
        .map(|w| {
            let host = monitor
                .0
                .secrets
                .open(&seal_context(&w.name), &w.url_sealed)
                .ok()
                .and_then(|u| url::Url::parse(&u).ok())
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| "(cannot be opened with this key)".into());
            WebhookView {
                id: w.id,
                name: w.name,
                host,
                format: w.format,
                created_by: w.created_by,
            }
        })
        .collect())
}

/// Add a webhook (admin).
pub async fn add_webhook(
    monitor: &Monitor,
    actor: &Actor,
    name: &str,
    url: &str,
    format: &str,
) -> AppResult<i64> {
    let name = name.trim();
    let target = format!("webhook:{name}");
    let event = Event {
        action: crate::domain::AuditAction::WebhookCreate,
        target: &target,
        database: None,
        detail: format,
    };
    let store = monitor.store();
    audited(store, actor, event, async {
        require(actor, Role::Admin)?;
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(AppError::invalid("a webhook needs a name of 1 to 64 characters"));
        }
        let format = Format::parse(format)?;
        let parsed =
            url::Url::parse(url.trim()).map_err(|_| AppError::invalid("the webhook URL is not a URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(AppError::invalid(
                "the webhook URL must start with http:// or https://",
            ));
        }
        let sealed = monitor.0.secrets.seal(&seal_context(name), parsed.as_str());
        rows::add_webhook(store.pool(), name, &sealed, format.as_str(), &actor.name)
            .await
            .conflict_on_unique(|| format!("a webhook named {name} exists"))
    })
    .await
}

/// Remove a webhook and its queued deliveries (admin).
pub async fn remove_webhook(monitor: &Monitor, actor: &Actor, id: i64) -> AppResult<()> {
    let target = format!("webhook:{id}");
    let event = Event {
        action: crate::domain::AuditAction::WebhookDelete,
        target: &target,
        database: None,
        detail: "",
    };
    let store = monitor.store();
    audited(store, actor, event, async {
        require(actor, Role::Admin)?;
        match rows::delete_webhook(store.pool(), id).await? {
            Some(_) => Ok(()),
            None => Err(AppError::not_found(format!("no webhook {id}"))),
        }
    })
    .await
}

/// A delivery as pages show it.
#[derive(Clone, Debug)]
pub struct DeliveryView {
    pub row: DeliveryRow,
    pub webhook: String,
}

pub async fn deliveries(monitor: &Monitor, limit: i64) -> AppResult<Vec<DeliveryView>> {
    Ok(rows::deliveries(monitor.store().pool(), limit)
        .await?
        .into_iter()
        .map(|(row, webhook)| DeliveryView { row, webhook })
        .collect())
}

/// Slack reads `&`, `<` and `>` in text as markup: escape them.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Slack-style body of a notification.
pub fn slack_body(payload: &Value) -> Value {
    let s = |k: &str| slack_escape(payload.get(k).and_then(Value::as_str).unwrap_or(""));
    let firing = payload.get("event").and_then(Value::as_str) == Some(AlertEvent::Firing.as_str());
    let mut text = format!(
        "{} *{}* on *{}*: {}",
        if firing {
            ":rotating_light: FIRING"
        } else {
            ":white_check_mark: RESOLVED"
        },
        s("title"),
        s("database"),
        s("message")
    );
    if let Some(url) = payload.get("url").and_then(Value::as_str) {
        text.push_str(&format!(" <{url}|open alerts>"));
    }
    json!({ "text": text })
}

impl Monitor {
    /// Send what is due, then wait for more (woken when something is queued).
    pub(super) async fn deliver_loop(self) {
        loop {
            if let Err(e) = self.deliver_due().await {
                tracing::warn!(error = %e, "webhook deliveries failed to run");
            }
            tokio::select! {
                _ = self.0.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn deliver_due(&self) -> AppResult<()> {
        let pool = self.store().pool();
        let at = now();
        let due = rows::due(pool, at, 50).await?;
        if due.is_empty() {
            return Ok(());
        }
        let hooks = rows::webhooks(pool).await?;
        // Claimed one by one, sent all at once: a receiver that hangs until
        // the timeout holds up none of the others.
        let mut sending = tokio::task::JoinSet::new();
        for d in due {
            // The claim outlasts a send, so no other instance takes it meanwhile.
            let hold = TIMEOUT.as_secs() as i64 + 5;
            match rows::claim(pool, d.id, at + hold, at).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim a webhook delivery");
                    continue;
                }
            }
            let Some(hook) = hooks.iter().find(|h| h.id == d.webhook_id).cloned() else {
                continue;
            };
            let me = self.clone();
            sending.spawn(async move {
                let outcome = me.send(&hook, &d).await;
                (hook, d, outcome)
            });
        }
        while let Some(done) = sending.join_next().await {
            let Ok((hook, d, outcome)) = done else {
                continue;
            };
            let attempt = d.attempts + 1;
            // The wait before the next attempt doubles with each failure.
            let backoff = self.0.settings.webhook_retry.as_secs() as i64 * (1i64 << d.attempts.clamp(0, 20));
            let next_at = now() + backoff;
            let recorded = match outcome {
                Ok(()) => rows::attempted(pool, d.id, attempt, DeliveryState::Delivered, None, next_at).await,
                Err(why) => {
                    let state = if attempt >= self.0.settings.webhook_attempts as i64 {
                        DeliveryState::Failed
                    } else {
                        DeliveryState::Pending
                    };
                    tracing::warn!(webhook = %hook.name, attempt, error = %why, "webhook delivery failed");
                    rows::attempted(pool, d.id, attempt, state, Some(&why), next_at).await
                }
            };
            if let Err(e) = recorded {
                tracing::warn!(error = %e, "cannot record a webhook delivery");
            }
        }
        Ok(())
    }

    /// One attempt. Errors never carry the URL (it holds the secret).
    async fn send(&self, hook: &WebhookRow, d: &DeliveryRow) -> Result<(), String> {
        let url = self
            .0
            .secrets
            .open(&seal_context(&hook.name), &hook.url_sealed)
            .map_err(|_| "the webhook URL cannot be opened with this panel's key".to_string())?;
        let payload: Value = serde_json::from_str(&d.payload).map_err(|e| format!("bad payload: {e}"))?;
        let body = match Format::parse(&hook.format) {
            Ok(Format::Slack) => slack_body(&payload),
            _ => payload,
        };
        let http = self.0.http.as_ref().map_err(Clone::clone)?;
        let response = http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered HTTP {}", status.as_u16()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_text_escapes_what_slack_reads_as_markup() {
        let body = slack_body(&json!({
            "event": "firing",
            "title": "Query running longer than",
            "database": "orders",
            "message": "pid 7: SELECT a < b & c > d",
            "url": "https://custodian.example/alerts",
        }));
        let text = body["text"].as_str().unwrap();
        assert!(
            text.starts_with(":rotating_light: FIRING *Query running longer than* on *orders*"),
            "{text}"
        );
        assert!(text.contains("SELECT a &lt; b &amp; c &gt; d"), "{text}");
        assert!(
            text.ends_with("<https://custodian.example/alerts|open alerts>"),
            "{text}"
        );
        let resolved =
            slack_body(&json!({"event": "resolved", "title": "t", "database": "d", "message": "m"}));
        assert!(
            resolved["text"]
                .as_str()
                .unwrap()
                .starts_with(":white_check_mark: RESOLVED")
        );
    }
}
