//! The `jobs` queue, for the job types this job handles: `send-notification`.
//!
//! The original enqueued `send-notification {notificationId}` for notifications created
//! with deferred delivery. Here delivery is owned by the notification rows themselves
//! (claimed, retried and finished by `deliver`), so a `send-notification` job is done once
//! the job is acknowledged: the delivery loop delivers its notification row like any
//! other, on the row's own schedule. The queue keeps the original's contract: claimed with
//! `FOR UPDATE SKIP LOCKED`, `attempts` counted, a failure retried after 2^attempts
//! minutes until `max_attempts`, a `processing` row older than 15 minutes reclaimed.
//! Other job types (the invoice jobs) are never touched.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// Job types handled here.
const HANDLED: &[&str] = &["send-notification"];
/// A `processing` job older than this belongs to a run that died.
const STALE_MINUTES: i64 = 15;

#[derive(sqlx::FromRow)]
struct QueuedJob {
    id: Uuid,
    payload: Value,
    attempts: i32,
    max_attempts: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendNotification {
    notification_id: Uuid,
}

#[derive(Debug, Default)]
pub struct QueueRun {
    pub completed: u64,
    pub failed: u64,
    pub reclaimed: u64,
}

pub async fn run(pool: &PgPool, now: DateTime<Utc>, limit: i64) -> anyhow::Result<QueueRun> {
    let mut result = QueueRun::default();
    let handled: Vec<String> = HANDLED.iter().map(|s| s.to_string()).collect();
    result.reclaimed = sqlx::query(
        "UPDATE jobs SET status = 'pending', started_at = NULL
          WHERE status = 'processing' AND job_type = ANY($1) AND started_at < $2",
    )
    .bind(&handled)
    .bind(now - TimeDelta::minutes(STALE_MINUTES))
    .execute(pool)
    .await?
    .rows_affected();
    let jobs: Vec<QueuedJob> = sqlx::query_as(
        "UPDATE jobs SET status = 'processing', started_at = $1
          WHERE id IN (
                SELECT j.id FROM jobs j
                 WHERE j.status = 'pending' AND j.job_type = ANY($2) AND j.scheduled_at <= $1
                   AND j.attempts < j.max_attempts
              ORDER BY j.scheduled_at LIMIT $3
                   FOR UPDATE SKIP LOCKED)
      RETURNING id, payload, attempts, max_attempts",
    )
    .bind(now)
    .bind(&handled)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    for job in jobs {
        let outcome = match serde_json::from_value::<SendNotification>(job.payload.clone()) {
            Err(e) => Err(format!("Invalid payload: {e}")),
            Ok(p) => hand_over(pool, p.notification_id)
                .await
                .map_err(|e| format!("{e:#}")),
        };
        match outcome {
            Ok(()) => {
                sqlx::query(
                    "UPDATE jobs SET status = 'completed', completed_at = $2 WHERE id = $1",
                )
                .bind(job.id)
                .bind(now)
                .execute(pool)
                .await?;
                result.completed += 1;
            }
            Err(error) => {
                // The original's backoff: 2^attempts minutes (1, 2, 4, ...), then failed.
                let attempts = job.attempts + 1;
                let dead = attempts >= job.max_attempts;
                let retry_at = now + TimeDelta::minutes(1i64 << job.attempts.clamp(0, 20));
                sqlx::query(
                    "UPDATE jobs SET attempts = $2, error = $3, scheduled_at = $4, started_at = NULL,
                            status = CASE WHEN $5 THEN 'failed'::job_status ELSE 'pending'::job_status END
                      WHERE id = $1",
                )
                .bind(job.id)
                .bind(attempts)
                .bind(&error)
                .bind(retry_at)
                .bind(dead)
                .execute(pool)
                .await?;
                tracing::warn!(job_id = %job.id, error = %error, attempts, dead, "send-notification job failed");
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
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM notifications WHERE id = $1)")
            .bind(notification)
            .fetch_one(pool)
            .await?;
    if !exists {
        tracing::info!(notification_id = %notification, "send-notification for a missing notification: nothing to do");
    }
    Ok(())
}
