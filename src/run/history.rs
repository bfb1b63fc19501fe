//! Run history: the `job_runs` table, one row per run (skips included).
//!
//! The runner writes a row when a run starts and closes it when the run ends, whatever
//! the outcome. A process killed outright (SIGKILL, OOM) leaves its row `running`; the
//! next run of that job, once it holds the job's lock and so knows no other run is
//! alive, closes such rows as `abandoned`. A run that lost its lock may still be
//! stopping at that moment; its own final write then replaces the guess.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::report::RunReport;
use crate::database;

/// Inserts the row of a run that is starting.
pub(super) async fn start(
    pool: &PgPool,
    run_id: Uuid,
    job: &str,
    trigger: &str,
    started_at: DateTime<Utc>,
    host: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO job_runs (id, job, trigger, started_at, outcome, host)
         VALUES ($1, $2, $3, $4, 'running', $5)",
    )
    .bind(run_id)
    .bind(job)
    .bind(trigger)
    .bind(started_at)
    .bind(host)
    .execute(pool)
    .await?;
    Ok(())
}

/// Writes the final state of a run: closes a `running` row, or inserts a whole row
/// (a skipped run never had one). A row another run closed as `abandoned` is that run's
/// guess, made while this one was still stopping (after losing its lock); the run's own
/// report replaces it. A row already final is left alone, so a retried write is harmless.
pub async fn finish(pool: &PgPool, report: &RunReport) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO job_runs (id, job, trigger, started_at, finished_at, outcome, exit_code,
                               items_processed, items_succeeded, items_failed, error, details, host,
                               log_bytes)
         VALUES ($1, $2, $3, $4, $5, $6::job_run_outcome, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (id) DO UPDATE SET
             finished_at = EXCLUDED.finished_at,
             outcome = EXCLUDED.outcome,
             exit_code = EXCLUDED.exit_code,
             items_processed = EXCLUDED.items_processed,
             items_succeeded = EXCLUDED.items_succeeded,
             items_failed = EXCLUDED.items_failed,
             error = EXCLUDED.error,
             details = EXCLUDED.details,
             log_bytes = EXCLUDED.log_bytes
         WHERE job_runs.outcome IN ('running', 'abandoned')",
    )
    .bind(report.run_id)
    .bind(&report.job)
    .bind(&report.trigger)
    .bind(report.started_at)
    .bind(report.finished_at)
    .bind(report.outcome.as_str())
    .bind(i32::from(report.exit_code()))
    .bind(count(report.summary.processed))
    .bind(count(report.summary.succeeded))
    .bind(count(report.summary.failed))
    .bind(report.error.as_deref().map(database::storable))
    .bind(database::jsonb(&report.summary.details)?)
    .bind(&report.host)
    .bind(count(report.log_bytes))
    .execute(pool)
    .await?;
    Ok(())
}

/// Closes the rows of runs of `job` that died without closing them. Only call while
/// holding the job's lock.
pub(super) async fn close_abandoned(pool: &PgPool, job: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE job_runs
            SET outcome = 'abandoned', finished_at = now(),
                error = 'the process ended without closing its run (killed or crashed)'
          WHERE job = $1 AND outcome = 'running'",
    )
    .bind(job)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Writes the run's final row, retrying for up to `within` (the grace a cancelled job
/// gets: the database may be failing over just as the run ends). A refusal that would repeat (a
/// constraint, a missing table) is not retried. If the row still cannot be written,
/// what the run did is not lost: the summary line carries it and the exit code says it;
/// the row stays `running` until the next run of the job closes it as abandoned.
pub(super) async fn close(pool: &PgPool, report: &RunReport, within: Duration) {
    let retried = database::retry(
        "closing this run's job_runs row",
        None,
        |e: &sqlx::Error| !database::is_permanent(e),
        || finish(pool, report),
    );
    let failure = match tokio::time::timeout(within, retried).await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => database::describe(&e),
        Err(_) => format!("the database did not take it within {} s", within.as_secs()),
    };
    tracing::error!(error = %failure, "could not close this run's job_runs row");
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
