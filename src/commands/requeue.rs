//! `run-job requeue`: an operator's way back for work a job gave up on.
//!
//! A job that leaves failed rows says where they are in its registration
//! ([`crate::jobs::Requeue`]): rows of the `jobs` queue of the types it consumes
//! (invoices), and failed `notifications` (the notifications job). Requeuing lists the
//! rows it will touch first, then, unless `--dry-run`, gives each a fresh start in one
//! transaction: a queue row `pending` now with its attempts back to 0 (the next run
//! claims it as a new one; FEU's `id_externo` makes a retried invoice the same
//! document); a notification `pending` now with its failed in-app and email channels
//! cleared. A failed WhatsApp channel is kept failed: its send may have been delivered
//! without a receipt saying so (the notifications job gives up on it rather than risk a
//! duplicate, and Meta has no idempotency key), so requeuing never sends it again. Sent
//! channels are kept. Rows that stopped being `failed` between the listing and the
//! update are left alone.

use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::wiring::{connect, eprint_jobs, shutdown_on_signal};
use crate::declarations::JobDeclaration;
use crate::exit::Exit;
use crate::jobs::{self, Requeue};
use crate::notify::Channel;
use crate::{clock, database};

/// `run-job requeue`: the rows first, then what was done.
pub(crate) async fn run(
    declarations: &[JobDeclaration],
    job: &str,
    filter: &Filter,
    all: bool,
    dry_run: bool,
) -> Exit {
    if !dry_run && !all && filter.since.is_none() && filter.ids.is_empty() {
        eprintln!(
            "run-job: name the rows to requeue: --since <window>, --id <uuid>, or --all \
             (--dry-run lists them all first)."
        );
        return Exit::Usage;
    }
    let Some(registration) = jobs::find(job).filter(|_| declarations.iter().any(|d| d.name == job))
    else {
        eprintln!("run-job: unknown job `{job}`.");
        eprint_jobs(declarations);
        return Exit::Usage;
    };
    let Some(what) = registration.requeue else {
        eprintln!(
            "run-job: `{job}` leaves no failed rows to requeue: its next run tries again by itself."
        );
        return Exit::Usage;
    };
    let shutdown = shutdown_on_signal();
    let (pool, _) = match connect("run-job:requeue", &shutdown).await {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let done = requeue(&pool, &what, filter, clock::wall(), dry_run).await;
    database::close(pool).await;
    match done {
        Ok(outcome) if outcome.rows.is_empty() => {
            println!("No failed rows of `{job}` match.");
            Exit::Success
        }
        Ok(outcome) => {
            print!("{}", render(&outcome.rows));
            if dry_run {
                println!(
                    "Dry run: {} row(s) would be requeued; nothing changed.",
                    outcome.rows.len()
                );
            } else {
                println!(
                    "Requeued {} of {} row(s); the next `{job}` run takes them.",
                    outcome.requeued,
                    outcome.rows.len()
                );
            }
            Exit::Success
        }
        Err(e) => {
            eprintln!("run-job: cannot requeue `{job}`'s rows: {e}");
            Exit::Runner
        }
    }
}

/// Which failed rows to requeue.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    /// Only rows that failed within this window before now.
    pub since: Option<TimeDelta>,
    /// Only these rows (queue row or notification ids).
    pub ids: Vec<Uuid>,
}

/// One failed row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub(crate) struct FailedRow {
    /// `jobs` or `notifications`.
    pub table: String,
    pub id: Uuid,
    /// The queue row's job type, or the notification's type.
    pub kind: String,
    pub attempts: i32,
    pub failed_at: DateTime<Utc>,
    pub error: Option<String>,
}

/// What a requeue found, and how many rows it put back (0 on a dry run).
#[derive(Debug)]
pub(crate) struct Outcome {
    pub rows: Vec<FailedRow>,
    pub requeued: u64,
}

/// Lists the failed rows `what` describes that match `filter`, and requeues them
/// unless `dry_run`, all in one transaction.
pub(crate) async fn requeue(
    pool: &PgPool,
    what: &Requeue,
    filter: &Filter,
    now: DateTime<Utc>,
    dry_run: bool,
) -> sqlx::Result<Outcome> {
    let mut tx = pool.begin().await?;
    let rows = failed_rows(&mut tx, what, filter, now).await?;
    if dry_run || rows.is_empty() {
        tx.rollback().await?;
        return Ok(Outcome { rows, requeued: 0 });
    }
    let of = |table: &str| -> Vec<Uuid> {
        rows.iter()
            .filter(|r| r.table == table)
            .map(|r| r.id)
            .collect()
    };
    let jobs = sqlx::query(
        "UPDATE jobs SET status = 'pending', attempts = 0, scheduled_at = $2, started_at = NULL,
                completed_at = NULL
          WHERE id = ANY($1) AND status = 'failed'",
    )
    .bind(of("jobs"))
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // Failed in-app and email channels are cleared; every other channel's state is kept
    // (see the module's comment on WhatsApp).
    let notifications = sqlx::query(
        "UPDATE notifications n
            SET status = 'pending', retry_count = 0, next_attempt_at = $2, lease_until = NULL,
                updated_at = $2,
                channel_status = (SELECT COALESCE(jsonb_object_agg(c.key, c.value), '{}')
                                    FROM jsonb_each(COALESCE(n.channel_status, '{}')) AS c
                                   WHERE c.value->>'status' IS DISTINCT FROM 'failed'
                                      OR NOT (c.key = ANY($3)))
          WHERE n.id = ANY($1) AND n.status = 'failed'",
    )
    .bind(of("notifications"))
    .bind(now)
    .bind([Channel::InApp.as_str(), Channel::Email.as_str()])
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Outcome {
        rows,
        requeued: jobs + notifications,
    })
}

/// The failed rows that match, locked, oldest failure first. Failed queue rows carry
/// their failure time in scheduled_at (the queue stamps it when it gives up);
/// notifications in updated_at.
async fn failed_rows(
    tx: &mut sqlx::PgConnection,
    what: &Requeue,
    filter: &Filter,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<FailedRow>> {
    let since = filter.since.map(|w| now - w);
    let ids = (!filter.ids.is_empty()).then_some(filter.ids.as_slice());
    let mut rows: Vec<FailedRow> = sqlx::query_as(
        "SELECT 'jobs' AS table, id, job_type AS kind, attempts, scheduled_at AS failed_at, error
           FROM jobs
          WHERE status = 'failed' AND job_type = ANY($1)
            AND ($2::timestamptz IS NULL OR scheduled_at >= $2)
            AND ($3::uuid[] IS NULL OR id = ANY($3))
            FOR UPDATE",
    )
    .bind(what.queue_types)
    .bind(since)
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    if what.notifications {
        rows.extend(
            sqlx::query_as::<_, FailedRow>(
                "SELECT 'notifications' AS table, n.id, n.type::text AS kind,
                        n.retry_count AS attempts, n.updated_at AS failed_at,
                        (SELECT string_agg(c.key || ': ' || COALESCE(c.value->>'error', 'failed'),
                                           '; ' ORDER BY c.key)
                           FROM jsonb_each(COALESCE(n.channel_status, '{}')) AS c
                          WHERE c.value->>'status' = 'failed') AS error
                   FROM notifications n
                  WHERE n.status = 'failed' AND n.deleted_at IS NULL
                    AND ($1::timestamptz IS NULL OR n.updated_at >= $1)
                    AND ($2::uuid[] IS NULL OR n.id = ANY($2))
                    FOR UPDATE OF n",
            )
            .bind(since)
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?,
        );
    }
    rows.sort_by_key(|r| (r.failed_at, r.id));
    Ok(rows)
}

/// The table printed before anything changes: one line per row, errors cut short and
/// stripped of control characters (a provider's message must not drive the terminal).
pub(crate) fn render(rows: &[FailedRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<13}  {:<36}  {:<26}  {:>8}  {:<20}  error",
        "table", "id", "kind", "attempts", "failed at"
    );
    for r in rows {
        let error: String = r
            .error
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(100)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let _ = writeln!(
            out,
            "{:<13}  {:<36}  {:<26}  {:>8}  {:<20}  {}",
            r.table,
            r.id,
            r.kind,
            r.attempts,
            r.failed_at.format("%Y-%m-%d %H:%M:%S"),
            error
        );
    }
    out
}
