//! `notify-upload-availability`: reminds sellers to upload their tickets' documents.
//!
//! Every hour, each seller's listing whose event is near and whose tickets (sold or
//! still listed) lack a document is due for at most one reminder, by the milestone
//! rule ([`milestones`]). The reminder is a `document_reminder` notification row for the
//! notifications job to deliver (in-app, email, WhatsApp), recorded in
//! `document_reminders` in the same transaction, so a milestone's reminder is sent once
//! per listing whatever runs overlap or retry.
//!
//! Where it differs from the original (apps/backend/src/cronjobs/
//! notify-upload-availability.ts): the original deduplicated by looking for an earlier
//! reminder within ±1 of the milestone, which let a 3 h reminder suppress the 2 h one,
//! and two overlapping runs could both send; here the milestone is matched exactly and a
//! primary key decides. Reminders the original sent before the cutover are honoured.
//! The event's time zone comes from its venue's country as stored (`Uruguay`,
//! `Argentina`) or as a code (`UY`, `AR`); the original expected codes only, so every
//! event fell back to Montevideo.

mod milestones;
mod queries;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::json;
use sqlx::PgPool;

use crate::clock::Clock;
use crate::config::{self, Env};
use crate::jobs::{Job, JobError, Registration, RunContext, Summary};
use crate::notify::metadata::{Count, DocumentReminder};
use crate::notify::{Channel, Metadata, Notification, action, iso, label, time_zone};
use queries::{Listing, Reminded};

pub use milestones::{MILESTONES, due};

pub const REGISTRATION: Registration = Registration {
    name: "notify-upload-availability",
    build: |deps| {
        let settings = Settings::from_env(&*deps.env)?;
        let job = UploadReminders::new(deps.pool.clone(), settings, deps.clock.clone());
        Ok(Arc::new(job) as Arc<dyn Job>)
    },
    requeue: None,
};

/// What the job reads from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `APP_BASE_URL`, for the upload link. Defaults to `https://revendiste.com`.
    pub app_base_url: String,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Settings, config::Error> {
        Ok(Settings {
            app_base_url: config::app_base_url(env),
        })
    }
}

/// The job.
#[derive(Clone)]
pub struct UploadReminders {
    pool: PgPool,
    clock: Clock,
    settings: Settings,
}

/// What a run did.
#[derive(Debug, Default)]
struct Counts {
    listings: u64,
    sent: u64,
    already_sent: u64,
    sent_by_original: u64,
    not_due: u64,
    failed: u64,
}

impl UploadReminders {
    pub fn new(pool: PgPool, settings: Settings, clock: Clock) -> UploadReminders {
        UploadReminders {
            pool,
            clock,
            settings,
        }
    }

    /// One pass over the listings near their event. A listing whose reminder cannot be
    /// written is counted failed and the others go on; the run then fails (exit 1).
    pub async fn run_once(&self, cx: &RunContext) -> Result<Summary, JobError> {
        let now = self.clock.now();
        let listings = queries::listings(&self.pool, now).await?;
        let mut counts = Counts {
            listings: listings.len() as u64,
            ..Counts::default()
        };
        for listing in &listings {
            if cx.cancel.is_cancelled() {
                break;
            }
            self.remind(listing, now, &mut counts).await;
            let s = counts.summary();
            cx.progress.set(s.processed, s.succeeded, s.failed);
        }
        let summary = counts.summary();
        if counts.failed > 0 {
            return Err(JobError {
                error: anyhow::anyhow!("{} reminder(s) could not be written", counts.failed),
                summary,
            });
        }
        Ok(summary)
    }

    async fn remind(&self, listing: &Listing, now: DateTime<Utc>, counts: &mut Counts) {
        let hours = (listing.event_start_date - now).num_milliseconds() as f64 / 3_600_000.0;
        let window = milestones::qr_hours(listing.qr_availability_timing.as_deref());
        let Some(milestone) = due(hours, window) else {
            counts.not_due += 1;
            return;
        };
        let notification = self.reminder(listing, milestone);
        match queries::remind(&self.pool, listing, milestone, &notification, now).await {
            Ok(Reminded::Sent) => {
                tracing::info!(listing_id = %listing.listing_id, milestone, "document reminder queued");
                counts.sent += 1;
            }
            Ok(Reminded::AlreadySent) => counts.already_sent += 1,
            Ok(Reminded::SentByTheOriginal) => counts.sent_by_original += 1,
            Err(e) => {
                tracing::error!(listing_id = %listing.listing_id, milestone, error = %e, "document reminder not written");
                counts.failed += 1;
            }
        }
    }

    /// The original's `document_reminder`: in-app, email and WhatsApp, with the link to
    /// the listing's upload page.
    fn reminder(&self, listing: &Listing, milestone: u32) -> Notification {
        Notification {
            user_id: listing.seller_user_id,
            channels: vec![Channel::InApp, Channel::Email, Channel::Whatsapp],
            actions: Some(action(
                "upload_documents",
                label::UPLOAD_DOCUMENTS,
                format!(
                    "{}/cuenta/subir-entradas?subirPublicacion={}",
                    self.settings.app_base_url, listing.listing_id
                ),
            )),
            metadata: Metadata::DocumentReminder(DocumentReminder {
                listing_id: listing.listing_id,
                event_name: listing.event_name.clone(),
                event_start_date: iso(listing.event_start_date),
                event_timezone: Some(time_zone(listing.venue_country.as_deref()).to_string()),
                ticket_count: Count(listing.tickets_without_document),
                hours_until_event: milestone,
            }),
        }
    }
}

impl Counts {
    fn summary(&self) -> Summary {
        let details = json!({
            "listings": self.listings,
            "reminders_sent": self.sent,
            "already_sent": self.already_sent,
            "sent_by_original": self.sent_by_original,
            "not_due": self.not_due,
            "failed": self.failed,
        });
        Summary {
            processed: self.sent
                + self.already_sent
                + self.sent_by_original
                + self.not_due
                + self.failed,
            succeeded: self.sent + self.already_sent + self.sent_by_original + self.not_due,
            failed: self.failed,
            details: details.as_object().cloned().unwrap_or_default(),
        }
    }
}

impl Job for UploadReminders {
    fn run(&self, cx: RunContext) -> BoxFuture<'static, Result<Summary, JobError>> {
        let job = self.clone();
        async move { job.run_once(&cx).await }.boxed()
    }
}
