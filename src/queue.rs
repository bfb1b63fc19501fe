//! The `jobs` table as a work queue: rows added by the jobs that leave work
//! ([`enqueue`]: sync-payments' invoice jobs), consumed by the jobs that do it: notifications
//! (`send-notification`) and invoices (`notify-order-confirmed`,
//! `notify-seller-ticket-sold`). A consumer names the job types it handles and never
//! touches the others.
//!
//! The original's contract (apps/backend/src/services/job-queue/index.ts): a
//! `processing` row older than 15 minutes belongs to a run that died and goes back to
//! `pending` (attempts unchanged); rows are claimed with `FOR UPDATE SKIP LOCKED`, so
//! runs side by side never take the same row; a failure counts an attempt and is retried
//! after 2^attempts minutes (1, 2, 4, 8, 16) until the row's `max_attempts`, then
//! `failed`. Every write after the claim is guarded by the row still being
//! `processing`, so a run whose claim was reclaimed writes nothing.
//!
//! # Claims: one shape per lease model
//! Every job that takes rows to work on takes them with `FOR UPDATE SKIP LOCKED`, so runs
//! side by side never take the same row and never wait for each other. There are two
//! lease models, and one statement shape for each:
//!
//! - **A lease written on the row** (this queue: `status = 'processing'` + `started_at`,
//!   lapsing after the stale cut-off; notifications: `lease_until`): the claim commits at
//!   once and the work happens outside any transaction, so a row outlives the run that
//!   claimed it and lapses back. Shape:
//!   `WITH c AS (SELECT id FROM t WHERE <due> ORDER BY <order>, id LIMIT n FOR UPDATE
//!   SKIP LOCKED) UPDATE t SET <lease> FROM c WHERE t.id = c.id RETURNING <row>`
//!   ([`claim`] here, `claim` in jobs/notifications/queries.rs).
//! - **A lock held for one transaction** (notification batches, pending orders in
//!   sync-payments): the row is read and changed in the transaction that locks it, so the
//!   lease is the transaction itself and ends with it, committed or rolled back. Shape:
//!   `SELECT <row> FROM t WHERE <due> ORDER BY <order> [LIMIT n] FOR UPDATE [OF t] SKIP
//!   LOCKED` inside that transaction (jobs/notifications/batches.rs,
//!   `lock_pending_orders_skip_locked` in jobs/sync_payments/queries.rs).
//!
//! Attempts are counted against a limit and the retry time decided by
//! [`crate::failure`].
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::database;
use crate::failure::{Backoff, Decision, Failure};

/// A row to add to the queue, deduplicated by its idempotency key.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct NewJob {
    pub job_type: &'static str,
    pub payload: Value,
    pub idempotency_key: String,
}

/// Adds `rows` in the caller's transaction; a key already queued (in any status) adds
/// nothing, as in the original.
pub(crate) async fn enqueue(
    conn: &mut sqlx::PgConnection,
    rows: &[NewJob],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO jobs (job_type, payload, idempotency_key, scheduled_at, created_at)
         SELECT x.job_type, x.payload, x.idempotency_key, $2, $2
           FROM jsonb_to_recordset($1) AS x(job_type text, payload jsonb, idempotency_key text)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(database::jsonb(&rows)?)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A `processing` job older than this belongs to a run that died.
const STALE: TimeDelta = TimeDelta::minutes(15);

/// A claimed row of the queue.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct QueuedJob {
    pub id: Uuid,
    pub job_type: String,
    pub payload: Value,
    /// Attempts before this one.
    pub attempts: i32,
    pub max_attempts: i32,
}

impl QueuedJob {
    /// The original's ladder, exactly: 2^attempts minutes, no jitter, the row's limit.
    pub(crate) fn backoff(&self) -> Backoff {
        Backoff {
            initial: Duration::from_secs(60),
            max: Duration::from_secs(60 << 20),
            jitter: 0.0,
            limit: Some(self.max_attempts.max(1).unsigned_abs()),
        }
    }
}

/// Returns the handled `processing` rows of dead runs to `pending`; how many.
pub(crate) async fn reclaim_stale(
    pool: &PgPool,
    now: DateTime<Utc>,
    types: &[&str],
) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "UPDATE jobs SET status = 'pending', started_at = NULL
          WHERE status = 'processing' AND job_type = ANY($1) AND started_at < $2",
    )
    .bind(types)
    .bind(now - STALE)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Claims up to `limit` due rows of the handled types, oldest schedule first.
pub(crate) async fn claim(
    pool: &PgPool,
    now: DateTime<Utc>,
    types: &[&str],
    limit: i64,
) -> sqlx::Result<Vec<QueuedJob>> {
    sqlx::query_as(
        "WITH c AS (
             SELECT id FROM jobs
              WHERE status = 'pending' AND job_type = ANY($2) AND scheduled_at <= $1
                AND attempts < max_attempts
           ORDER BY scheduled_at, id
              LIMIT $3
                FOR UPDATE SKIP LOCKED)
         UPDATE jobs j SET status = 'processing', started_at = $1
           FROM c WHERE j.id = c.id
       RETURNING j.id, j.job_type, j.payload, j.attempts, j.max_attempts",
    )
    .bind(now)
    .bind(types)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Marks a claimed row done. False if it was no longer ours (reclaimed as stale).
pub(crate) async fn complete(
    pool: &PgPool,
    job: &QueuedJob,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET status = 'completed', completed_at = $2
          WHERE id = $1 AND status = 'processing'",
    )
    .bind(job.id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Puts claimed rows back as they were before the claim (`pending`, attempts and
/// schedule unchanged): for work the run could not attempt through no fault of the row
/// (a provider refusing our credentials). How many were still ours.
pub(crate) async fn release(pool: &PgPool, jobs: &[QueuedJob]) -> sqlx::Result<u64> {
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
    Ok(sqlx::query(
        "UPDATE jobs SET status = 'pending', started_at = NULL
          WHERE id = ANY($1) AND status = 'processing'",
    )
    .bind(&ids)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Records a failed attempt: the row goes back to `pending` at its retry time, or ends
/// `failed` (a permanent failure, or the attempts used up). Returns the decision, or
/// `None` if the row was no longer ours.
pub(crate) async fn fail(
    pool: &PgPool,
    job: &QueuedJob,
    now: DateTime<Utc>,
    error: &str,
    failure: &Failure,
) -> sqlx::Result<Option<Decision>> {
    let attempts = job.attempts.saturating_add(1);
    let decision = job.backoff().decide(now, attempts.unsigned_abs(), failure);
    let (status, retry_at) = match decision {
        Decision::RetryAt(at) => ("pending", at),
        Decision::Fatal | Decision::Exhausted => ("failed", now),
    };
    let done = sqlx::query(
        "UPDATE jobs SET attempts = $2, error = $3, scheduled_at = $4, started_at = NULL,
                status = $5::job_status
          WHERE id = $1 AND status = 'processing'",
    )
    .bind(job.id)
    .bind(attempts)
    .bind(error)
    .bind(retry_at)
    .bind(status)
    .execute(pool)
    .await?;
    Ok((done.rows_affected() == 1).then_some(decision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_waits_as_the_original_did_and_stops_at_the_rows_limit() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let job = |attempts| QueuedJob {
            id: Uuid::nil(),
            job_type: "send-notification".into(),
            payload: Value::Null,
            attempts,
            max_attempts: 5,
        };
        let transient = Failure::Transient { retry_after: None };
        let waits: Vec<i64> = (0..4)
            .map(|before| {
                match job(before)
                    .backoff()
                    .decide(now, before as u32 + 1, &transient)
                {
                    Decision::RetryAt(at) => (at - now).num_minutes(),
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        assert_eq!(waits, [1, 2, 4, 8]);
        assert_eq!(
            job(4).backoff().decide(now, 5, &transient),
            Decision::Exhausted
        );
    }
}
