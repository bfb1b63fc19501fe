//! Delivering one claimed notification: each channel once, a failed channel retried
//! with backoff up to a limit, then the notification's final state.
//!
//! Per channel, `channel_status` holds `{status, attempts, sentAt | error, retryAt}` with
//! status `sent`, `failed`, `retry` or `sending`. A channel that is `sent` or `failed` is
//! never sent again. Email is sent with an idempotency key derived from the notification,
//! so resending it after a crash cannot produce a second email. WhatsApp has no such key:
//! it is marked `sending` (committed) before the call, and a message left `sending` (its
//! run died, or its answer was lost) is settled by its delivery receipt, which carries
//! the notification in `biz_opaque_callback_data`: sent, undeliverable, or, with no
//! receipt after `WHATSAPP_RECEIPTS_WAIT_SECONDS`, never accepted and sent again. Without
//! receipts it is failed rather than risk a duplicate.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::{Interval, MissedTickBehavior};

use super::providers::{Attachment, SendError, WhatsAppMessage};
use super::queries::{self, Claimed, OrderFacts, Outcome, Receipt, User};
use super::state::{self, Channel, ChannelState, Channels, Delivery};
use super::webpush::Subscription;
use super::{ClaimedBatch, Notifications};
use super::{content, webpush};
use crate::failure::{Decision, Failure};
use crate::http::Transient;
use crate::storage::StorageError;

/// How long the pushes of one notification may take together: a push service that
/// hangs delays the batch by this much at most.
const PUSH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// At most `per_second` calls a second (0: unlimited), shared by concurrent sends.
pub(super) struct RateLimit(Option<Mutex<Interval>>);

impl RateLimit {
    pub(super) fn new(per_second: u32) -> RateLimit {
        RateLimit((per_second > 0).then(|| {
            let mut i = tokio::time::interval(std::time::Duration::from_secs(1) / per_second);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            Mutex::new(i)
        }))
    }

    pub(super) async fn wait(&self) {
        if let Some(interval) = &self.0 {
            interval.lock().await.tick().await;
        }
    }
}

/// Channels not to send, with the reason: everything for a notification older than
/// `max_age`; and the original's rules: everything for
/// `order_expired`/`payment_failed` once the event has ended; the email of an
/// `order_expired` for an order older than an hour (offline payments can stay pending for
/// days, and such a late email confuses more than it helps).
pub(super) fn skips(
    n: &Claimed,
    channels: &[Channel],
    facts: Option<&OrderFacts>,
    now: DateTime<Utc>,
    max_age: TimeDelta,
) -> Vec<(Channel, String)> {
    if now - n.created_at > max_age {
        let why = format!(
            "skipped: created {} hours ago, too late to send",
            (now - n.created_at).num_hours()
        );
        return channels.iter().map(|c| (*c, why.clone())).collect();
    }
    let Some(f) = facts else { return Vec::new() };
    if f.event_end_date < now {
        let why = "skipped: the event has ended";
        return channels.iter().map(|c| (*c, why.to_string())).collect();
    }
    if n.kind == "order_expired" && now - f.order_created_at > TimeDelta::minutes(60) {
        return vec![(
            Channel::Email,
            "skipped: the order is more than an hour old".to_string(),
        )];
    }
    Vec::new()
}

impl Notifications {
    /// Each channel of a claimed notification once (or not, with the reason), and the
    /// notification's outcome.
    pub(super) async fn deliver(
        &self,
        n: &Claimed,
        channels: &[Channel],
        mut states: Channels,
        skip: &[(Channel, String)],
        batch: &ClaimedBatch,
    ) -> Outcome {
        let (lease_until, now) = (batch.lease_until, batch.now);
        let user = batch.users.get(&n.user_id);
        let metadata = n.metadata.clone().unwrap_or(Value::Null);
        let invalid = self.content.validate(&n.kind, &metadata).err();
        for &channel in channels {
            let previous = states.get(&channel).cloned();
            let attempts = previous.as_ref().map_or(0, ChannelState::attempts);
            let skipped = skip
                .iter()
                .find(|(c, _)| *c == channel)
                .map(|(_, why)| why.clone());
            let not_yet =
                matches!(&previous, Some(ChannelState::Retry { retry_at, .. }) if *retry_at > now);
            // Another channel made the row due; this one was asked to wait longer.
            let wait = not_yet && skipped.is_none();
            // Why this channel is not to be sent, if it is not.
            let refused = skipped.or_else(|| invalid.clone());
            let attempt = Attempt {
                n,
                channel,
                user,
                metadata: &metadata,
                subscriptions: batch
                    .subscriptions
                    .get(&n.user_id)
                    .map_or(&[][..], Vec::as_slice),
                lease_until,
                now,
                attempts,
            };
            let entry = match previous {
                Some(state) if state.is_final() => continue,
                // A send whose outcome is unknown: the receipts say what became of it.
                Some(ChannelState::Sending { since, error, .. }) => {
                    match (
                        self.unconfirmed(n, since, error, attempts, now).await,
                        refused,
                    ) {
                        (Settled::Done(entry), _) => entry,
                        (_, Some(reason)) => ChannelState::failed(attempts, reason),
                        (Settled::Waiting(entry), None) => entry,
                        (Settled::NotSent, None) if self.settings.backoff.exhausted(attempts) => {
                            ChannelState::failed(
                                attempts,
                                format!(
                                    "gave up after {attempts} attempts, none confirmed by a receipt"
                                ),
                            )
                        }
                        (Settled::NotSent, None) => self.attempt(attempt).await,
                    }
                }
                _ if wait => continue,
                _ => match refused {
                    Some(reason) => ChannelState::failed(attempts, reason),
                    None => self.attempt(attempt).await,
                },
            };
            states.insert(channel, entry);
        }
        outcome(n.id, channels, states)
    }

    /// Sends one channel once more and says what the channel's state becomes.
    async fn attempt(&self, a: Attempt<'_>) -> ChannelState {
        let attempts = a.attempts + 1;
        let now = a.now;
        let push = match a.channel {
            Channel::InApp => self.push(a.n, a.metadata, a.subscriptions).await,
            _ => None,
        };
        match self.send(&a, attempts).await {
            Ok(provider_id) => ChannelState::Sent {
                attempts,
                sent_at: Some(self.clock.now()),
                provider_id: Some(provider_id),
                confirmed_by: None,
                push,
            },
            Err(SendError::Unknown(reason)) => match self.settings.whatsapp_receipts_wait {
                // Left `sending` (as marked before the call) until its receipt settles it.
                Some(wait) => {
                    let since = self.clock.now();
                    awaiting_receipt(attempts, since, receipt_due(since, wait), Some(reason))
                }
                None => ChannelState::failed(
                    attempts,
                    format!("{reason}; not sent again to avoid a duplicate"),
                ),
            },
            Err(e) => {
                let failure = match &e {
                    SendError::Permanent(_) => Failure::Permanent,
                    other => Failure::Transient {
                        retry_after: other.retry_after(),
                    },
                };
                match self.settings.backoff.decide(now, attempts, &failure) {
                    Decision::RetryAt(retry_at) => ChannelState::Retry {
                        attempts,
                        error: e.to_string(),
                        retry_at,
                    },
                    Decision::Fatal => ChannelState::failed(attempts, e.to_string()),
                    Decision::Exhausted => ChannelState::failed(
                        attempts,
                        format!("gave up after {attempts} attempts: {e}"),
                    ),
                }
            }
        }
    }

    /// Settles a WhatsApp message left `sending`: a run died mid-send, or the answer was
    /// lost. Its delivery receipt says sent or undeliverable. With none, it was never
    /// accepted once the send's own deadline and then the receipt wait have passed since
    /// the mark (before that, the send may still be in flight in a run whose lease ran
    /// out). Without receipts (or for a mark written before messages carried their
    /// callback data) nothing can be known, and it is failed rather than risk a duplicate.
    async fn unconfirmed(
        &self,
        n: &Claimed,
        since: Option<DateTime<Utc>>,
        error: Option<String>,
        attempts: u32,
        now: DateTime<Utc>,
    ) -> Settled {
        let (Some(wait), Some(since)) = (self.settings.whatsapp_receipts_wait, since) else {
            return Settled::Done(ChannelState::failed(
                attempts,
                "a run stopped while sending this; not sent again to avoid a duplicate".into(),
            ));
        };
        let settled_by = receipt_due(since, wait);
        let waiting = |until: DateTime<Utc>, e: Option<String>| {
            let error = e.or_else(|| error.clone());
            Settled::Waiting(awaiting_receipt(attempts, since, until, error))
        };
        match queries::whatsapp_receipt(&self.pool, &receipt_key(n.id)).await {
            Ok(Some(Receipt::Sent { message_id, at })) => Settled::Done(ChannelState::Sent {
                attempts,
                sent_at: Some(at),
                provider_id: Some(message_id),
                confirmed_by: Some("receipt".into()),
                push: None,
            }),
            Ok(Some(Receipt::Failed { error })) => Settled::Done(ChannelState::failed(
                attempts,
                format!("WhatsApp reported the message undeliverable: {error}"),
            )),
            Ok(None) if now < settled_by => waiting(settled_by, None),
            Ok(None) => Settled::NotSent,
            // Asked again later, backing off like any failing channel.
            Err(e) => waiting(
                self.settings.backoff.retry_at(now, attempts.max(1), None),
                Some(format!("receipts unreadable: {e}")),
            ),
        }
    }

    /// One channel, once (`attempt` counts this one). `Ok` carries the provider's
    /// message id.
    async fn send(&self, a: &Attempt<'_>, attempt: u32) -> Result<String, SendError> {
        match a.channel {
            // Stored in the database already: the app shows it. Web push to the user's
            // browsers is a side effect whose failures never change this channel.
            // Stored in the database already: the app shows it. Web push to the user's
            // browsers is a side effect, done by `attempt`, that never fails this channel.
            Channel::InApp => Ok(String::new()),
            Channel::Email => self.send_email(a).await,
            Channel::Sms => Err(SendError::Permanent("channel sms is not supported".into())),
            Channel::Whatsapp => self.send_whatsapp(a, attempt).await,
        }
    }

    /// Through Resend, with the notification's idempotency key: repeating it is safe.
    async fn send_email(&self, a: &Attempt<'_>) -> Result<String, SendError> {
        let n = a.n;
        let Some(to) = a
            .user
            .and_then(|u| u.email.as_deref())
            .filter(|e| !e.is_empty())
        else {
            return Err(SendError::Permanent(
                "user not found or has no email".into(),
            ));
        };
        let mut email = self
            .content
            .email(&n.kind, to, a.metadata, n.actions.as_ref())
            .map_err(SendError::Permanent)?;
        email.attachments = self.attachments(&n.kind, n.user_id, a.metadata).await?;
        self.email_rate.wait().await;
        let sent = self
            .resend
            .send(&email, &format!("notification-{}-email", n.id))
            .await?;
        self.after_email(a.metadata).await;
        Ok(sent)
    }

    /// Through the WhatsApp Cloud API, which has no idempotency key: the channel is
    /// marked `sending` (committed) before the call, so a crash mid-send is known.
    async fn send_whatsapp(&self, a: &Attempt<'_>, attempt: u32) -> Result<String, SendError> {
        let n = a.n;
        let Some(to) = a
            .user
            .and_then(|u| u.phone_number.as_deref())
            .filter(|p| !p.is_empty())
        else {
            return Err(SendError::Permanent("user has no phone number".into()));
        };
        let Some(message) = content::whatsapp(&n.kind, to, a.metadata) else {
            return Ok("no template for this type".into());
        };
        let message = WhatsAppMessage {
            callback_data: receipt_key(n.id),
            ..message
        };
        // Rate-limited before the mark, so `since` is when the request leaves.
        self.whatsapp_rate.wait().await;
        let sending = ChannelState::Sending {
            attempts: attempt,
            since: Some(self.clock.now()),
            retry_at: None,
            error: None,
        };
        if !self
            .mark(n, Channel::Whatsapp, a.lease_until, &sending)
            .await?
        {
            return Err(SendError::Transient {
                message: "claim lost before sending".into(),
                after: None,
            });
        }
        let sent = self.whatsapp.send(&message).await;
        if let Ok(provider_id) = &sent {
            // Recorded at once, not with the batch: the fewer moments a crash leaves
            // this message `sending`, the fewer end failed though delivered.
            let done = ChannelState::Sent {
                attempts: attempt,
                sent_at: Some(self.clock.now()),
                provider_id: Some(provider_id.clone()),
                confirmed_by: None,
                push: None,
            };
            self.mark(n, Channel::Whatsapp, a.lease_until, &done)
                .await
                .ok();
        }
        sent
    }

    /// Web-pushes the notification to the user's browsers (the newest few
    /// subscriptions), all at once under one deadline; deletes the subscriptions the
    /// push service calls gone. An endpoint the egress guard refuses is never
    /// contacted. Returns what did not go out, for the in-app channel's record.
    async fn push(
        &self,
        n: &Claimed,
        metadata: &Value,
        subscriptions: &[Subscription],
    ) -> Option<String> {
        if subscriptions.is_empty() {
            return None;
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
        let topic = n.id.simple().to_string();
        let all = futures::future::join_all(
            subscriptions
                .iter()
                .map(|s| self.push_one(s, payload.as_bytes(), &topic)),
        );
        let problems: Vec<String> = match tokio::time::timeout(PUSH_DEADLINE, all).await {
            Ok(results) => results.into_iter().flatten().collect(),
            Err(_) => vec![format!(
                "pushes not finished within {} s",
                PUSH_DEADLINE.as_secs()
            )],
        };
        if problems.is_empty() {
            return None;
        }
        let note = format!(
            "web push: {} of {} not delivered: {}",
            problems.len().min(subscriptions.len()),
            subscriptions.len(),
            problems.join("; ")
        );
        tracing::warn!(notification_id = %n.id, reason = %note, "web push incomplete");
        Some(note)
    }

    /// One push, if the guard admits its endpoint; what went wrong otherwise.
    async fn push_one(&self, s: &Subscription, payload: &[u8], topic: &str) -> Option<String> {
        if let Err(refused) = self.push.admits(&s.endpoint).await {
            return Some(format!("endpoint refused: {refused}"));
        }
        match self.push.send(s, payload, topic).await {
            Ok(()) => None,
            Err(webpush::PushError::Gone) => {
                tracing::info!("push subscription gone; deleted");
                queries::delete_subscription(&self.pool, &s.endpoint)
                    .await
                    .ok();
                None
            }
            Err(webpush::PushError::Other(e)) => Some(e),
        }
    }

    /// The files an email carries (`metadata.attachmentRefs`, the invoice PDFs), read
    /// from storage. A file not there yet is worth retrying; a malformed reference is not.
    ///
    /// Only an `order_invoice` notification carries files, and only its own order's
    /// invoices (`private/invoices/<orderId>/…`, where the invoices job writes them): a
    /// row naming another key cannot have this job mail out whatever the bucket holds.
    /// And only the recipient's own invoice: `buyer-invoice.pdf` to the order's buyer,
    /// `seller-<id>-invoice.pdf` to that seller.
    async fn attachments(
        &self,
        kind: &str,
        recipient: uuid::Uuid,
        metadata: &Value,
    ) -> Result<Vec<Attachment>, SendError> {
        let Some(refs) = metadata.get("attachmentRefs").and_then(Value::as_array) else {
            return Ok(Vec::new());
        };
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        if kind != "order_invoice" {
            return Err(SendError::Permanent(
                "attachments are sent with order_invoice notifications only".into(),
            ));
        }
        let Some(order) = metadata["orderId"]
            .as_str()
            .and_then(|o| o.parse::<uuid::Uuid>().ok())
        else {
            return Err(SendError::Permanent(
                "an invoice email without its orderId carries no attachment".into(),
            ));
        };
        let mut files = Vec::new();
        for r in refs {
            files.push(self.attachment(order, recipient, r).await?);
        }
        Ok(files)
    }

    /// One attachment reference of `order`'s invoice email to `recipient`, read from
    /// storage once it is shown to be the recipient's own invoice.
    async fn attachment(
        &self,
        order: uuid::Uuid,
        recipient: uuid::Uuid,
        r: &Value,
    ) -> Result<Attachment, SendError> {
        use base64::Engine;
        let prefix = format!("private/invoices/{order}/");
        let (Some("storage"), Some(path)) = (r["type"].as_str(), r["storagePath"].as_str()) else {
            return Err(SendError::Permanent(
                "an attachment reference is not {type: storage, storagePath}".into(),
            ));
        };
        let own = path
            .strip_prefix(&prefix)
            .is_some_and(|file| !file.contains('/') && file.ends_with(".pdf"));
        if !own {
            return Err(SendError::Permanent(format!(
                "an attachment is not a PDF under {prefix}"
            )));
        }
        let file = &path[prefix.len()..];
        let recipients = if file == "buyer-invoice.pdf" {
            queries::order_buyer(&self.pool, order)
                .await
                .map_err(|e| SendError::Transient {
                    message: format!("attachment: {}", crate::database::describe(&e)),
                    after: None,
                })?
                == Some(recipient)
        } else {
            file == format!("seller-{recipient}-invoice.pdf")
        };
        if !recipients {
            return Err(SendError::Permanent(format!(
                "attachment {file} is not the recipient's own invoice"
            )));
        }
        let bytes = self.storage.get(path).await.map_err(|e| match e {
            StorageError::BadKey(_) => SendError::Permanent(format!("attachment {e}")),
            other => SendError::Transient {
                message: format!("attachment {other}"),
                after: None,
            },
        })?;
        let filename = r["filename"]
            .as_str()
            .map(|f| {
                f.chars()
                    .filter(|c| !c.is_control() && !matches!(c, '/' | '\\'))
                    .take(100)
                    .collect::<String>()
            })
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| path.rsplit('/').next().unwrap_or(path).to_string());
        Ok(Attachment {
            filename,
            content: base64::engine::general_purpose::STANDARD.encode(bytes),
        })
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
                && let Err(e) =
                    queries::mark_invoice_emailed(&self.pool, invoice, self.clock.now()).await
            {
                tracing::warn!(error = %e, invoice_id = %invoice, "could not mark the invoice emailed");
            }
        }
    }

    /// Writes one channel's state now, if the claim is still ours.
    async fn mark(
        &self,
        n: &Claimed,
        channel: Channel,
        lease_until: DateTime<Utc>,
        state: &ChannelState,
    ) -> Result<bool, SendError> {
        let database = |e: sqlx::Error| SendError::Transient {
            message: format!("database: {e}"),
            after: None,
        };
        let mut conn = self.pool.acquire().await.map_err(database)?;
        queries::mark_channel(
            &mut conn,
            n.id,
            lease_until,
            channel.as_str(),
            &state.to_json(),
        )
        .await
        .map_err(database)
    }
}

/// What the receipts say of a message left `sending`.
enum Settled {
    /// Final: sent or failed.
    Done(ChannelState),
    /// Not known yet: the channel's state until it is asked again.
    Waiting(ChannelState),
    /// Never accepted: it may be sent again.
    NotSent,
}

/// What a send is while it runs, for the receipt-settling above.
struct Attempt<'a> {
    n: &'a Claimed,
    channel: Channel,
    user: Option<&'a User>,
    metadata: &'a Value,
    /// The user's browsers, for the in-app channel's web push.
    subscriptions: &'a [Subscription],
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
    /// Attempts made before this one.
    attempts: u32,
}

/// The callback data a notification's WhatsApp message carries, echoed in its receipts.
fn receipt_key(id: uuid::Uuid) -> String {
    format!("notification-{id}-whatsapp")
}

/// When a send marked at `since` has surely ended (its own deadline) and its receipt,
/// if it was accepted, has had `wait` to arrive.
fn receipt_due(since: DateTime<Utc>, wait: std::time::Duration) -> DateTime<Utc> {
    since + delta(super::PROVIDER_TIMEOUTS.request) + delta(wait)
}

/// A WhatsApp channel whose send may have been accepted, asked again at `until`.
fn awaiting_receipt(
    attempts: u32,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    error: Option<String>,
) -> ChannelState {
    ChannelState::Sending {
        attempts,
        since: Some(since),
        retry_at: Some(until),
        error,
    }
}

fn delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::days(1))
}

/// The notification's state from its channels': pending while any channel waits for a
/// retry or a receipt; then sent if any channel got through (the original's partial
/// success), failed if none did. A listed channel with no state counts as failed.
fn outcome(id: uuid::Uuid, channels: &[Channel], states: Channels) -> Outcome {
    let listed = || channels.iter().filter_map(|c| states.get(c));
    let retry_at = listed().filter_map(ChannelState::due_at).min();
    let any_sent = listed().any(|s| matches!(s, ChannelState::Sent { .. }));
    let (status, failed_once) = match (retry_at, any_sent) {
        (Some(_), _) => (Delivery::Pending, 0),
        (None, true) => (Delivery::Sent, 0),
        (None, false) => (Delivery::Failed, 1),
    };
    Outcome {
        id,
        status,
        channel_status: state::encode(&states),
        next_attempt_at: retry_at,
        failed_once,
    }
}
