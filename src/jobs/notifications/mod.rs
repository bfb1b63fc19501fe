//! notifications: deliver pending notification rows by email (Resend), WhatsApp (Cloud
//! API templates) and in-app with web push, each channel once, or failed with a reason
//! after bounded retries, whatever crashes in between.
//!
//! A run merges closed debounce windows (`batches`), acknowledges the jobs queue's
//! `send-notification` rows (`queue`), then claims due notifications with a lease and
//! delivers them (`deliver`) until none is due, its deadline nears or it is cancelled;
//! their outcomes are written in small batches beside the deliveries (`outcomes`).
//! Content and its checks live in `content` and `metadata`, provider wire formats in
//! `providers` and `webpush`, SQL in `queries`. Several runs may work side by side.
//!
//! Invoice emails carry their PDFs (`metadata.attachmentRefs`, read from `storage`) and
//! run their post-send action (`markInvoiceEmailSent`) once the email went out.

mod batches;
mod content;
mod deliver;
mod outcomes;
pub mod providers;
mod queries;
mod send_jobs;
mod state;
pub mod webpush;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sqlx::PgPool;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{Endpoint, Job, JobError, Registration, Requeue, RunContext, Summary};
use crate::clock::Clock;
use crate::config::{self, Env};
use crate::failure::Backoff;
use crate::http::Timeouts;
use crate::notify::Channel;
use deliver::RateLimit;
use queries::Outcome;
use state::Delivery;

/// Every provider call's limits. `request` bounds a whole exchange: a send marked at `t`
/// is over by `t + request`, which the WhatsApp receipt wait counts from.
const PROVIDER_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(5),
    request: Duration::from_secs(15),
};

/// Types with the original's delivery rules about their order (see `deliver::skips`).
const SKIP_RULE_TYPES: &[&str] = &["order_expired", "payment_failed"];

/// What the notifications job reads from the environment.
#[derive(Clone)]
pub struct Settings {
    /// `RESEND_API_KEY`; unset: emails are logged, not sent (console provider).
    pub resend_api_key: Option<SecretString>,
    /// `RESEND_BASE_URL`. Defaults to `https://api.resend.com`.
    pub resend_base_url: String,
    /// `EMAIL_FROM`. Defaults to `noreply@revendiste.com`.
    pub email_from: String,
    /// `WHATSAPP_ACCESS_TOKEN`; unset: messages are logged, not sent.
    pub whatsapp_token: Option<SecretString>,
    /// `WHATSAPP_PHONE_NUMBER_ID`, `WHATSAPP_API_VERSION` (v21.0), `WHATSAPP_BASE_URL`
    /// (`https://graph.facebook.com`).
    pub whatsapp_phone_number_id: String,
    pub whatsapp_api_version: String,
    pub whatsapp_base_url: String,
    /// `WHATSAPP_RECEIPTS_WAIT_SECONDS`: how long a message whose send outcome is unknown
    /// (a run died mid-send, or the answer was lost) waits for its delivery receipt in
    /// `whatsapp_message_statuses` before it counts as not sent and is sent again.
    /// Unset or 0: no receipts are recorded, and such a message is failed instead (at
    /// most once).
    pub whatsapp_receipts_wait: Option<Duration>,
    /// `NOTIFICATIONS_BATCH`: rows claimed at a time. Defaults to 50.
    pub batch: i64,
    /// `NOTIFICATIONS_CONCURRENCY`: notifications delivered at once. Defaults to 10.
    pub concurrency: usize,
    /// `NOTIFICATIONS_LEASE_SECONDS`: how long a claim lasts. Defaults to 120.
    pub lease: Duration,
    /// `EMAIL_RATE_PER_SECOND` (2, as the original) and `WHATSAPP_RATE_PER_SECOND` (10);
    /// 0 lifts the limit.
    pub email_rate: u32,
    pub whatsapp_rate: u32,
    /// A failing channel's waits and attempts; `NOTIFICATIONS_MAX_ATTEMPTS` (5) is its
    /// limit.
    pub backoff: Backoff,
    /// `VAPID_PUBLIC_KEY`, `VAPID_PRIVATE_KEY` (base64url) and `VAPID_SUBJECT`
    /// (`mailto:ayuda@revendiste.com`); without the keys pushes are logged, not sent.
    pub vapid: Option<(SecretString, String, String)>,
    /// `NOTIFICATIONS_MAX_AGE_HOURS`: older pending notifications are failed, not sent
    /// (a backlog left by the original would otherwise go out days late, one-time codes
    /// included). Defaults to 48.
    pub max_age: TimeDelta,
    /// Where invoice PDFs are read from (see `storage::Storage::from_env`).
    pub storage: crate::storage::Storage,
    /// Push services accepted besides the known ones, each by its exact origin
    /// (`PUSH_SERVICE_ORIGINS`, comma-separated `scheme://host:port`): for stand-ins.
    /// Nothing else widens where web pushes may go.
    pub push_service_origins: Vec<String>,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Settings, config::Error> {
        let or = |name: &str, default: &str| env(name).unwrap_or_else(|| default.to_string());
        Ok(Settings {
            resend_api_key: env("RESEND_API_KEY").map(SecretString::from),
            resend_base_url: or("RESEND_BASE_URL", "https://api.resend.com"),
            email_from: or("EMAIL_FROM", "noreply@revendiste.com"),
            whatsapp_token: env("WHATSAPP_ACCESS_TOKEN").map(SecretString::from),
            // Only needed, and then required, when messages are really sent.
            whatsapp_phone_number_id: match env("WHATSAPP_ACCESS_TOKEN") {
                Some(_) => config::required(
                    env,
                    "WHATSAPP_PHONE_NUMBER_ID",
                    "when WHATSAPP_ACCESS_TOKEN is set",
                )?,
                None => or("WHATSAPP_PHONE_NUMBER_ID", "0"),
            },
            whatsapp_api_version: or("WHATSAPP_API_VERSION", "v21.0"),
            whatsapp_base_url: or("WHATSAPP_BASE_URL", "https://graph.facebook.com"),
            whatsapp_receipts_wait: Some(config::seconds(
                env,
                "WHATSAPP_RECEIPTS_WAIT_SECONDS",
                0,
                0..=86_400,
            )?)
            .filter(|wait| !wait.is_zero()),
            batch: config::parse(env, "NOTIFICATIONS_BATCH", 50i64, 1..=1000)?,
            concurrency: config::parse(env, "NOTIFICATIONS_CONCURRENCY", 10usize, 1..=200)?,
            lease: config::seconds(env, "NOTIFICATIONS_LEASE_SECONDS", 120, 2..=3600)?,
            email_rate: config::parse(env, "EMAIL_RATE_PER_SECOND", 2u32, 0..=1000)?,
            whatsapp_rate: config::parse(env, "WHATSAPP_RATE_PER_SECOND", 10u32, 0..=1000)?,
            // The original waited 5 min × 2^n anchored on the row's creation, and its
            // retries never ran (a failed row was never selected again). Here each
            // channel waits from its own last attempt, a minute first: a provider's blip
            // should not hold an order confirmation for five minutes.
            backoff: Backoff {
                initial: Duration::from_secs(60),
                max: Duration::from_secs(3600),
                jitter: 0.2,
                limit: Some(config::parse(
                    env,
                    "NOTIFICATIONS_MAX_ATTEMPTS",
                    5u32,
                    1..=50,
                )?),
            },
            storage: crate::storage::Storage::from_env(env)?,
            push_service_origins: env("PUSH_SERVICE_ORIGINS")
                .map(|list| {
                    list.split(',')
                        .map(|o| o.trim().trim_end_matches('/').to_string())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            max_age: TimeDelta::hours(config::parse(
                env,
                "NOTIFICATIONS_MAX_AGE_HOURS",
                48i64,
                1..=24 * 30,
            )?),
            vapid: vapid(env)?,
        })
    }
}

/// The web push keys and subject, both keys or neither; a bad key is a configuration
/// error here, not a run failure later.
fn vapid(env: &Env) -> Result<Option<(SecretString, String, String)>, config::Error> {
    match (env("VAPID_PRIVATE_KEY"), env("VAPID_PUBLIC_KEY")) {
        (Some(private), Some(public)) => {
            let subject =
                env("VAPID_SUBJECT").unwrap_or_else(|| "mailto:ayuda@revendiste.com".into());
            webpush::Vapid::new(&private, &public, &subject).map_err(|message| config::Error {
                variable: "VAPID_PRIVATE_KEY",
                message,
            })?;
            Ok(Some((SecretString::from(private), public, subject)))
        }
        (None, None) => Ok(None),
        _ => Err(config::Error {
            variable: "VAPID_PUBLIC_KEY",
            message: "VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY go together".into(),
        }),
    }
}

pub const REGISTRATION: Registration = Registration {
    name: "notifications",
    build: |deps| {
        let settings = Settings::from_env(&*deps.env)?;
        let job = Notifications::new(deps.pool.clone(), settings, deps.clock.clone())?;
        Ok(Arc::new(job) as Arc<dyn Job>)
    },
    requeue: Some(Requeue {
        queue_types: send_jobs::HANDLED,
        notifications: true,
    }),
};

/// The job.
pub struct Notifications {
    pool: PgPool,
    clock: Clock,
    settings: Settings,
    content: content::Content,
    resend: providers::Resend,
    whatsapp: providers::WhatsApp,
    email_rate: RateLimit,
    whatsapp_rate: RateLimit,
    push: webpush::WebPush,
    storage: crate::storage::Storage,
}

impl Notifications {
    pub fn new(
        pool: PgPool,
        settings: Settings,
        clock: Clock,
    ) -> anyhow::Result<Arc<Notifications>> {
        let timeouts = PROVIDER_TIMEOUTS;
        Ok(Arc::new(Notifications {
            content: content::Content::new().map_err(anyhow::Error::msg)?,
            resend: providers::Resend::new(
                &settings.resend_base_url,
                settings.resend_api_key.clone(),
                &settings.email_from,
                timeouts,
            )?,
            whatsapp: providers::WhatsApp::new(
                &settings.whatsapp_base_url,
                &settings.whatsapp_api_version,
                &settings.whatsapp_phone_number_id,
                settings.whatsapp_token.clone(),
                timeouts,
            )?,
            push: webpush::WebPush::new(
                match &settings.vapid {
                    Some((private, public, subject)) => Some(
                        webpush::Vapid::new(private.expose_secret(), public, subject)
                            .map_err(anyhow::Error::msg)?,
                    ),
                    None => None,
                },
                timeouts,
                &settings.push_service_origins,
            )?,
            storage: settings.storage.clone(),
            email_rate: RateLimit::new(settings.email_rate),
            whatsapp_rate: RateLimit::new(settings.whatsapp_rate),
            pool,
            clock,
            settings,
        }))
    }

    /// Claims and delivers until nothing is due, the run is cancelled, or its deadline
    /// is nearer than a claim's lease (a batch is only started if it can be finished).
    pub async fn run_once(&self, cx: &RunContext) -> Result<Summary, JobError> {
        // Closed batches first: their notifications go out in this same run.
        let merged =
            batches::merge_closed(&self.pool, self.clock.now(), self.settings.batch).await?;
        let queued = send_jobs::run(&self.pool, self.clock.now(), self.settings.batch).await?;
        let (record, recorded) = outcomes::channel();
        let (delivered, ()) = tokio::join!(
            self.deliver_all(cx, record),
            outcomes::write(&self.pool, &self.clock, recorded)
        );
        let Delivered {
            mut summary,
            sent,
            failed,
            retrying,
            waiting,
            claim_error,
        } = delivered;
        for (n, batch) in waiting {
            queries::release(&self.pool, &[n.id], batch.lease_until).await?;
        }
        if let Some(e) = claim_error {
            return Err(JobError {
                summary,
                error: e.into(),
            });
        }
        summary.succeeded = sent;
        summary.failed = failed + merged.failed + queued.failed;
        summary.details = details(sent, failed, retrying, &merged, &queued);
        Ok(summary)
    }

    /// Batches are claimed while the previous one's last sends are still in flight, so
    /// deliveries do not drain to nothing between batches. Each finished notification
    /// goes to `record` (written in small batches, see `outcomes`); rows claimed but not
    /// started when the run stops are handed back to be released.
    async fn deliver_all(
        &self,
        cx: &RunContext,
        record: tokio::sync::mpsc::UnboundedSender<outcomes::Finished>,
    ) -> Delivered {
        let mut d = Delivered::default();
        let cancel = &cx.cancel;
        let mut in_flight = futures::stream::FuturesUnordered::new();
        let mut claiming = None;
        let mut exhausted = false;
        loop {
            while in_flight.len() < self.settings.concurrency && !cancel.is_cancelled() {
                let Some((n, batch)) = d.waiting.pop_front() else {
                    break;
                };
                in_flight.push(self.deliver_one(n, batch));
            }
            if d.waiting.is_empty() && claiming.is_none() && !exhausted {
                let remaining = cx
                    .deadline
                    .saturating_duration_since(tokio::time::Instant::now());
                if cancel.is_cancelled() || remaining < self.settings.lease {
                    exhausted = true;
                } else {
                    claiming = Some(Box::pin(self.claim_batch()));
                }
            }
            if in_flight.is_empty() && claiming.is_none() {
                return d;
            }
            tokio::select! {
                Some(finished) = in_flight.next(), if !in_flight.is_empty() => {
                    d.summary.processed += 1;
                    match finished.0.status {
                        Delivery::Sent => d.sent += 1,
                        Delivery::Failed => d.failed += 1,
                        Delivery::Pending => d.retrying += 1,
                    }
                    // The writer outlives this loop; it is only gone if it panicked.
                    let _ = record.send(finished);
                    cx.progress.set(d.summary.processed, d.sent, d.failed);
                }
                claimed = async { claiming.as_mut().expect("guarded by the branch condition").await }, if claiming.is_some() => {
                    claiming = None;
                    match claimed {
                        Ok(Some(items)) => d.waiting.extend(items),
                        Ok(None) => exhausted = true,
                        Err(e) => {
                            d.claim_error = Some(e);
                            exhausted = true;
                        }
                    }
                }
                _ = cancel.cancelled(), if !exhausted => exhausted = true,
            }
        }
    }
}

/// What [`Notifications::deliver_all`] did, and the claims it did not start.
#[derive(Default)]
struct Delivered {
    summary: Summary,
    sent: u64,
    failed: u64,
    retrying: u64,
    waiting: std::collections::VecDeque<(queries::Claimed, Arc<ClaimedBatch>)>,
    claim_error: Option<sqlx::Error>,
}

/// The summary's job-specific counters.
fn details(
    sent: u64,
    failed: u64,
    retrying: u64,
    merged: &batches::Merged,
    queued: &send_jobs::QueueRun,
) -> serde_json::Map<String, serde_json::Value> {
    let details = json!({
        "sent": sent,
        "failed": failed,
        "retrying": retrying,
        "batches_merged": merged.processed,
        "batches_cancelled": merged.cancelled,
        "batches_failed": merged.failed,
        "batch_items_recovered": merged.orphans_moved,
        "queue_jobs_completed": queued.completed,
        "queue_jobs_failed": queued.failed,
        "queue_jobs_reclaimed": queued.reclaimed,
    });
    details.as_object().cloned().unwrap_or_default()
}

/// What a claimed batch's rows share.
struct ClaimedBatch {
    lease_until: chrono::DateTime<Utc>,
    now: chrono::DateTime<Utc>,
    users: HashMap<uuid::Uuid, queries::User>,
    facts: HashMap<uuid::Uuid, queries::OrderFacts>,
    /// The browsers of the users with an in-app channel in the batch.
    subscriptions: HashMap<uuid::Uuid, Vec<webpush::Subscription>>,
}

impl Notifications {
    /// Claims the next batch with what its delivery needs; `None` when nothing is due.
    async fn claim_batch(
        &self,
    ) -> sqlx::Result<Option<Vec<(queries::Claimed, Arc<ClaimedBatch>)>>> {
        let now = self.clock.now();
        let lease_until =
            now + TimeDelta::from_std(self.settings.lease).unwrap_or(TimeDelta::minutes(5));
        let claimed = queries::claim(&self.pool, now, lease_until, self.settings.batch).await?;
        if claimed.is_empty() {
            return Ok(None);
        }
        let user_ids: Vec<_> = claimed.iter().map(|n| n.user_id).collect();
        let users = queries::users(&self.pool, &user_ids)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        // The original's skip rules need the order's event and age.
        let about_orders: Vec<_> = claimed
            .iter()
            .filter(|n| SKIP_RULE_TYPES.contains(&n.kind.as_str()))
            .map(|n| n.id)
            .collect();
        let facts = queries::order_facts(&self.pool, &about_orders)
            .await?
            .into_iter()
            .map(|f| (f.id, f))
            .collect();
        let in_app: Vec<_> = claimed
            .iter()
            .filter(|n| n.channels.iter().any(|c| c == Channel::InApp.as_str()))
            .map(|n| n.user_id)
            .collect();
        let mut subscriptions: HashMap<_, Vec<_>> = HashMap::new();
        match queries::subscriptions(&self.pool, &in_app).await {
            Ok(rows) => {
                for (user, s) in rows {
                    subscriptions.entry(user).or_default().push(s);
                }
            }
            // Web push is a side effect of the in-app channel, never its failure.
            Err(e) => {
                tracing::warn!(error = %e, "push subscriptions unreadable; no push in this batch")
            }
        }
        let batch = Arc::new(ClaimedBatch {
            lease_until,
            now,
            users,
            facts,
            subscriptions,
        });
        Ok(Some(
            claimed
                .into_iter()
                .map(|n| (n, Arc::clone(&batch)))
                .collect(),
        ))
    }

    /// Delivers one claimed row; its outcome is written by the caller's writer. A row
    /// whose delivery state cannot be read is failed untouched, never sent: what it
    /// already sent is unknown.
    async fn deliver_one(
        &self,
        n: queries::Claimed,
        batch: Arc<ClaimedBatch>,
    ) -> outcomes::Finished {
        let outcome = match state::decode(n.id, &n.channels, n.channel_status.as_ref()) {
            Ok((channels, states)) => {
                let facts = batch.facts.get(&n.id);
                let skip = deliver::skips(&n, &channels, facts, batch.now, self.settings.max_age);
                self.deliver(&n, &channels, states, &skip, &batch).await
            }
            Err(error) => {
                tracing::error!(notification_id = %n.id, %error, "delivery state unreadable; failed, not sent");
                Outcome {
                    id: n.id,
                    status: Delivery::Failed,
                    channel_status: n.channel_status.clone().unwrap_or_else(|| json!({})),
                    next_attempt_at: None,
                    failed_once: 1,
                }
            }
        };
        (outcome, batch.lease_until)
    }
}

impl Job for Arc<Notifications> {
    fn run(&self, cx: RunContext) -> BoxFuture<'static, Result<Summary, JobError>> {
        let job = Arc::clone(self);
        async move { job.run_once(&cx).await }.boxed()
    }

    /// Only the providers with credentials: without them the channel is logged, not sent.
    /// Web push goes to each browser's own push service, so there is no one host to try.
    fn endpoints(&self) -> Vec<Endpoint> {
        let s = &self.settings;
        let mut endpoints = Vec::new();
        if s.resend_api_key.is_some() {
            endpoints.push(Endpoint {
                name: "Resend",
                url: s.resend_base_url.clone(),
            });
        }
        if s.whatsapp_token.is_some() {
            endpoints.push(Endpoint {
                name: "WhatsApp Cloud API",
                url: s.whatsapp_base_url.clone(),
            });
        }
        endpoints
    }
}
