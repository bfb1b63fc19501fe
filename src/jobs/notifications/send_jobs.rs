//! The `jobs` queue's `send-notification` rows, consumed here.
//!
//! The original enqueued `send-notification {notificationId}` for notifications created
//! with deferred delivery. Here delivery is owned by the notification rows themselves
//! (claimed, retried and finished by `deliver`), so a `send-notification` job is done once
//! the job is acknowledged: the delivery loop delivers its notification row like any
//! other, on the row's own schedule. Claiming, reclaiming and the attempts ladder are the
//! shared queue's ([`crate::queue`]); other job types (the invoice jobs) are never touched.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::queries;
use crate::failure::{Decision, Failure};
use crate::queue;

/// Job types handled here.
pub(super) const HANDLED: &[&str] = &["send-notification"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendNotification {
    notification_id: Uuid,
}

#[derive(Debug, Default)]
pub(super) struct QueueRun {
    pub completed: u64,
    pub failed: u64,
    pub reclaimed: u64,
}

pub(super) async fn run(pool: &PgPool, now: DateTime<Utc>, limit: i64) -> anyhow::Result<QueueRun> {
    let mut result = QueueRun {
        reclaimed: queue::reclaim_stale(pool, now, HANDLED).await?,
        ..QueueRun::default()
    };
    for job in queue::claim(pool, now, HANDLED, limit).await? {
        let outcome = match serde_json::from_value::<SendNotification>(job.payload.clone()) {
            Err(e) => Err(format!("Invalid payload: {e}")),
            Ok(p) => hand_over(pool, p.notification_id)
                .await
                .map_err(|e| format!("{e:#}")),
        };
        match outcome {
            Ok(()) => {
                if queue::complete(pool, &job, now).await? {
                    result.completed += 1;
                }
            }
            Err(error) => {
                // As the original: even a payload that does not parse is tried again
                // until the row's attempts run out.
                let failure = Failure::Transient { retry_after: None };
                let decision = queue::fail(pool, &job, now, &error, &failure).await?;
                let dead = !matches!(decision, Some(Decision::RetryAt(_)));
                tracing::warn!(job_id = %job.id, job_type = %job.job_type, error = %error, attempts = job.attempts + 1, dead, "queue job failed");
                result.failed += 1;
            }
        }
    }
    Ok(result)
}

/// Acknowledges the job: its notification row is delivered (claimed, retried, finished)
/// by the delivery loop on its own schedule, backoff included; a missing notification
/// completes the job, as in the original.
async fn hand_over(pool: &PgPool, notification: Uuid) -> anyhow::Result<()> {
    let exists = queries::notification_exists(pool, notification).await?;
    if !exists {
        tracing::info!(notification_id = %notification, "send-notification for a missing notification: nothing to do");
    }
    Ok(())
}
