//! Delivering one claimed notification: each channel once, a failed channel retried
//! with backoff up to a limit, then the notification's final state.
//!
//! Per channel, `channel_status` holds `{status, attempts, sentAt | error, retryAt}` with
//! status `sent`, `failed`, `retry` or `sending`. A channel that is `sent` or `failed` is
//! never sent again. Email is sent with an idempotency key derived from the notification,
//! so resending it after a crash cannot produce a second email. WhatsApp has no such key:
//! it is marked `sending` (committed) before the call, and a later run that finds it still
//! `sending` knows a run died mid-send and fails it rather than risk a duplicate.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;
use tokio::time::{Interval, MissedTickBehavior};

use super::Notifications;
use super::providers::{Attachment, SendError};
use super::queries::{self, Claimed, OrderFacts, Outcome, User};
use super::{content, webpush};
use crate::http::Transient;
use crate::storage::StorageError;

/// At most `per_second` calls a second (0: unlimited), shared by concurrent sends.
pub struct RateLimit(Option<Mutex<Interval>>);

impl RateLimit {
    pub fn new(per_second: u32) -> RateLimit {
        RateLimit((per_second > 0).then(|| {
            let mut i = tokio::time::interval(std::time::Duration::from_secs(1) / per_second);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            Mutex::new(i)
        }))
    }

    pub async fn wait(&self) {
        if let Some(interval) = &self.0 {
            interval.lock().await.tick().await;
        }
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Channels not to send, with the reason: everything for a notification older than
/// `max_age`; and the original's rules: everything for
/// `order_expired`/`payment_failed` once the event has ended; the email of an
/// `order_expired` for an order older than an hour (offline payments can stay pending for
/// days, and such a late email confuses more than it helps).
pub fn skips(
    n: &Claimed,
    facts: Option<&OrderFacts>,
    now: DateTime<Utc>,
    max_age: TimeDelta,
) -> Vec<(String, String)> {
    if now - n.created_at > max_age {
        let why = format!(
            "skipped: created {} hours ago, too late to send",
            (now - n.created_at).num_hours()
        );
        return n
            .channels
            .iter()
            .map(|c| (c.clone(), why.clone()))
            .collect();
    }
    let Some(f) = facts else { return Vec::new() };
    if f.event_end_date < now {
        return n
            .channels
            .iter()
            .map(|c| (c.clone(), "skipped: the event has ended".to_string()))
            .collect();
    }
    if n.kind == "order_expired" && now - f.order_created_at > TimeDelta::minutes(60) {
        return vec![(
            "email".to_string(),
            "skipped: the order is more than an hour old".to_string(),
        )];
    }
    Vec::new()
}

impl Notifications {
    pub(super) async fn deliver(
        &self,
        n: &Claimed,
        user: Option<&User>,
        skip: &[(String, String)],
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Outcome {
        let mut state: Map<String, Value> = match &n.channel_status {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let metadata = n.metadata.clone().unwrap_or(Value::Null);
        let invalid = self.content.validate(&n.kind, &metadata).err();
        for channel in &n.channels {
            let previous = state.get(channel).cloned().unwrap_or(Value::Null);
            let attempts = previous["attempts"].as_u64().unwrap_or(0) as u32;
            let skipped = skip
                .iter()
                .find(|(c, _)| c == channel)
                .map(|(_, why)| why.clone());
            let not_yet = previous["status"] == "retry"
                && previous["retryAt"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t > now);
            let entry = match previous["status"].as_str() {
                Some("sent" | "failed") => continue,
                // Another channel made the row due; this one was asked to wait longer.
                _ if not_yet && skipped.is_none() => continue,
                _ if skipped.is_some() => failed(attempts, skipped.unwrap_or_default()),
                Some("sending") => failed(
                    attempts,
                    "a run stopped while sending this; not sent again to avoid a duplicate".into(),
                ),
                _ => match &invalid {
                    Some(reason) => failed(attempts, reason.clone()),
                    None => {
                        let attempts = attempts + 1;
                        match self
                            .send(n, channel, user, &metadata, lease_until, attempts)
                            .await
                        {
                            Ok(provider_id) => json!({
                                "status": "sent", "attempts": attempts, "sentAt": iso(Utc::now()),
                                "providerId": provider_id,
                            }),
                            Err(SendError::Permanent(reason)) => failed(attempts, reason),
                            Err(e) => {
                                let (message, after) = (e.to_string(), e.retry_after());
                                if attempts >= self.settings.max_attempts {
                                    failed(
                                        attempts,
                                        format!("gave up after {attempts} attempts: {message}"),
                                    )
                                } else {
                                    let backoff =
                                        self.settings.backoff.next_attempt_at(now, attempts);
                                    // Capped at a day: a provider's wait beyond that is not
                                    // believable, and Resend keeps idempotency keys 24 h.
                                    let asked = after
                                        .map(|a| a.min(std::time::Duration::from_secs(86_400)))
                                        .and_then(|a| TimeDelta::from_std(a).ok())
                                        .and_then(|a| now.checked_add_signed(a));
                                    let at = asked.map_or(backoff, |a| a.max(backoff));
                                    json!({"status": "retry", "attempts": attempts, "error": message, "retryAt": iso(at)})
                                }
                            }
                        }
                    }
                },
            };
            state.insert(channel.clone(), entry);
        }
        outcome(n, state)
    }

    /// One channel, once. `Ok` carries the provider's message id.
    async fn send(
        &self,
        n: &Claimed,
        channel: &str,
        user: Option<&User>,
        metadata: &Value,
        lease_until: DateTime<Utc>,
        attempt: u32,
    ) -> Result<String, SendError> {
        match channel {
            // Stored in the database already: the app shows it. Web push to the user's
            // browsers is a side effect whose failures never change this channel.
            "in_app" => {
                self.push(n, metadata).await;
                Ok(String::new())
            }
            "email" => {
                let Some(to) = user
                    .and_then(|u| u.email.as_deref())
                    .filter(|e| !e.is_empty())
                else {
                    return Err(SendError::Permanent(
                        "user not found or has no email".into(),
                    ));
                };
                let mut email = self
                    .content
                    .email(&n.kind, to, metadata, n.actions.as_ref())
                    .map_err(SendError::Permanent)?;
                email.attachments = self.attachments(metadata).await?;
                self.email_rate.wait().await;
                let sent = self
                    .resend
                    .send(&email, &format!("notification-{}-email", n.id))
                    .await?;
                self.after_email(metadata).await;
                Ok(sent)
            }
            "whatsapp" => {
                let Some(to) = user
                    .and_then(|u| u.phone_number.as_deref())
                    .filter(|p| !p.is_empty())
                else {
                    return Err(SendError::Permanent("user has no phone number".into()));
                };
                let Some(message) = content::whatsapp(&n.kind, to, metadata) else {
                    return Ok("no template for this type".into());
                };
                let sending = json!({"status": "sending", "attempts": attempt});
                if !self.mark(n, "whatsapp", lease_until, &sending).await? {
                    return Err(SendError::Transient {
                        message: "claim lost before sending".into(),
                        after: None,
                    });
                }
                self.whatsapp_rate.wait().await;
                let sent = self.whatsapp.send(&message).await;
                if let Ok(provider_id) = &sent {
                    // Recorded at once, not with the batch: the fewer moments a crash leaves
                    // this message `sending`, the fewer end failed though delivered.
                    let done = json!({
                        "status": "sent", "attempts": attempt,
                        "sentAt": iso(Utc::now()), "providerId": provider_id,
                    });
                    self.mark(n, "whatsapp", lease_until, &done).await.ok();
                }
                sent
            }
            other => Err(SendError::Permanent(format!(
                "channel {other} is not supported"
            ))),
        }
    }

    /// Web-pushes the notification to every browser the user subscribed; deletes the
    /// subscriptions the push service calls gone.
    async fn push(&self, n: &Claimed, metadata: &Value) {
        let subscriptions = match queries::subscriptions(&self.pool, n.user_id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "push subscriptions unreadable; no push");
                return;
            }
        };
        if subscriptions.is_empty() {
            return;
        }
        let (title, body) = self.content.push_text(&n.kind, metadata);
        let payload = json!({
            "title": title,
            "body": body,
            "icon": "/android-chrome-192x192.png",
            "url": n.actions.as_ref().and_then(|a| a.pointer("/0/url")).cloned(),
            "tag": n.kind,
        })
        .to_string();
        for s in subscriptions {
            match self.push.send(&s, payload.as_bytes()).await {
                Ok(()) => {}
                Err(webpush::PushError::Gone) => {
                    tracing::info!("push subscription gone; deleted");
                    queries::delete_subscription(&self.pool, &s.endpoint)
                        .await
                        .ok();
                }
                Err(webpush::PushError::Other(e)) => tracing::warn!(error = %e, "web push failed"),
            }
        }
    }

    /// The files an email carries (`metadata.attachmentRefs`, the invoice PDFs), read
    /// from storage. A file not there yet is worth retrying; a malformed reference is not.
    async fn attachments(&self, metadata: &Value) -> Result<Vec<Attachment>, SendError> {
        use base64::Engine;
        let Some(refs) = metadata.get("attachmentRefs").and_then(Value::as_array) else {
            return Ok(Vec::new());
        };
        let mut files = Vec::new();
        for r in refs {
            let (Some("storage"), Some(path)) = (r["type"].as_str(), r["storagePath"].as_str())
            else {
                return Err(SendError::Permanent(format!(
                    "attachment reference {r} is not {{type: storage, storagePath}}"
                )));
            };
            let bytes = self.storage.get(path).await.map_err(|e| match e {
                StorageError::BadKey(_) => SendError::Permanent(format!("attachment {e}")),
                other => SendError::Transient {
                    message: format!("attachment {other}"),
                    after: None,
                },
            })?;
            let filename = r["filename"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| path.rsplit('/').next().unwrap_or(path).to_string());
            files.push(Attachment {
                filename,
                content: base64::engine::general_purpose::STANDARD.encode(bytes),
            });
        }
        Ok(files)
    }

    /// The original's post-send actions, run only once the email really went out.
    async fn after_email(&self, metadata: &Value) {
        let Some(actions) = metadata.get("postSendActions").and_then(Value::as_array) else {
            return;
        };
        for a in actions {
            if a["type"] == "markInvoiceEmailSent"
                && let Some(invoice) = a["invoiceId"]
                    .as_str()
                    .and_then(|i| i.parse::<uuid::Uuid>().ok())
                && let Err(e) = queries::mark_invoice_emailed(&self.pool, invoice).await
            {
                tracing::warn!(error = %e, invoice_id = %invoice, "could not mark the invoice emailed");
            }
        }
    }

    /// Writes one channel's state now, if the claim is still ours.
    async fn mark(
        &self,
        n: &Claimed,
        channel: &str,
        lease_until: DateTime<Utc>,
        state: &Value,
    ) -> Result<bool, SendError> {
        let database = |e: sqlx::Error| SendError::Transient {
            message: format!("database: {e}"),
            after: None,
        };
        let mut conn = self.pool.acquire().await.map_err(database)?;
        queries::mark_channel(&mut conn, n.id, lease_until, channel, state)
            .await
            .map_err(database)
    }
}

fn failed(attempts: u32, reason: String) -> Value {
    json!({"status": "failed", "attempts": attempts, "error": reason})
}

/// The notification's state from its channels': pending while any channel waits for a
/// retry; then sent if any channel got through (the original's partial success), failed
/// if none did.
fn outcome(n: &Claimed, state: Map<String, Value>) -> Outcome {
    let statuses: Vec<&str> = n
        .channels
        .iter()
        .map(|c| {
            state
                .get(c)
                .and_then(|s| s["status"].as_str())
                .unwrap_or("failed")
        })
        .collect();
    let retry_at = n
        .channels
        .iter()
        .filter_map(|c| state.get(c))
        .filter(|s| s["status"] == "retry")
        .filter_map(|s| s["retryAt"].as_str())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .min();
    let (status, failed_once) = if retry_at.is_some() {
        ("pending", 0)
    } else if statuses.contains(&"sent") {
        ("sent", 0)
    } else {
        ("failed", 1)
    };
    Outcome {
        id: n.id,
        status,
        channel_status: Value::Object(state),
        next_attempt_at: retry_at,
        failed_once,
    }
}
