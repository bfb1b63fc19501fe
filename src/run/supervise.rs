//! The run's middle: the job on its own task, raced against its timeout, a signal and
//! the loss of its lock; then how it ended ([`judge`]).
//!
//! On a timeout or a signal the job's token is cancelled and it gets the grace to stop
//! before it is aborted; on a lost lock it is aborted at once, since another run may
//! already hold the lock. A job that never returned its own summary is credited with
//! the items it had counted in [`Progress`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::report::{Outcome, RunReport};
use super::{RunRequest, RunnerError, history, lock};
use crate::jobs::{Job, JobError, Progress, RunContext, Summary};

pub(super) async fn supervise(
    req: &RunRequest<'_>,
    job: Arc<dyn Job>,
    lock: Option<&lock::RunLock>,
    started_at: DateTime<Utc>,
) -> Result<RunReport, RunnerError> {
    record_start(req, lock.is_some(), started_at).await?;
    let decl = req.declaration;
    let cancel = CancellationToken::new();
    let progress = Progress::default();
    // The run id and job name reach the job's log lines through the run's span.
    let cx = RunContext {
        pool: req.pool.clone(),
        cancel: cancel.clone(),
        deadline: tokio::time::Instant::now() + decl.timeout,
        progress: progress.clone(),
    };
    // The job's own task stays inside this run's span, so its lines carry job and run id.
    let mut handle = tokio::spawn(job.run(cx).in_current_span());
    let lock_lost = async {
        match lock {
            Some(lock) => lock.lost().await,
            None => std::future::pending().await,
        }
    };

    // The job's result, or why the runner stopped it early.
    let ending: Result<_, (Outcome, String)> = tokio::select! {
        joined = &mut handle => Ok(joined),
        _ = tokio::time::sleep(decl.timeout) => {
            Err((Outcome::TimedOut, format!("timed out after {} s", decl.timeout.as_secs())))
        }
        _ = req.shutdown.cancelled() => {
            Err((Outcome::Interrupted, "interrupted by a signal".to_string()))
        }
        _ = lock_lost => {
            Err((Outcome::LockLost, "lost the run lock's database connection".to_string()))
        }
    };
    let (joined, stopped) = match ending {
        Ok(joined) => (joined, None),
        // Another run may hold the lock already: every moment this one goes on is overlap,
        // so it gets no grace. Its open transactions roll back when their connections drop.
        Err((Outcome::LockLost, why)) => {
            handle.abort();
            let joined = (&mut handle).await;
            tracing::error!(
                "{why}: the job was stopped at once so that it cannot overlap another run"
            );
            let why = format!("{why}; stopped at once, another run may have taken over");
            (joined, Some((Outcome::LockLost, why)))
        }
        Err((outcome, mut why)) => {
            tracing::warn!(grace_s = req.grace.as_secs(), "{why}: cancelling the job");
            cancel.cancel();
            let joined = match tokio::time::timeout(req.grace, &mut handle).await {
                Ok(joined) => joined,
                Err(_) => {
                    handle.abort();
                    tracing::error!("the job did not stop within the grace period: aborted");
                    why.push_str(&format!(
                        "; did not stop within {} s and was aborted",
                        req.grace.as_secs()
                    ));
                    (&mut handle).await
                }
            };
            (joined, Some((outcome, why)))
        }
    };

    let (outcome, summary, error) = judge(joined, stopped, &progress);
    let report = req.report(started_at, outcome, summary, error);
    history::close(req.pool, &report, req.grace).await;
    Ok(report)
}

/// Closes the rows of runs that died (only a lock holder knows they did) and records
/// this one as running.
async fn record_start(
    req: &RunRequest<'_>,
    holds_lock: bool,
    started_at: DateTime<Utc>,
) -> Result<(), RunnerError> {
    let decl = req.declaration;
    if holds_lock {
        let abandoned = history::close_abandoned(req.pool, &decl.name)
            .await
            .map_err(RunnerError::History)?;
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "closed runs of this job that died without finishing"
            );
        }
    }
    history::start(
        req.pool,
        req.run_id,
        &decl.name,
        req.trigger,
        started_at,
        req.host.as_deref(),
    )
    .await
    .map_err(RunnerError::History)?;
    tracing::info!(
        trigger = req.trigger,
        timeout_s = decl.timeout.as_secs(),
        "run started"
    );
    Ok(())
}

/// Decides the outcome from the job's result and whether the runner stopped it. A job
/// that never returned (aborted), or failed without saying what it had done (an error
/// passed up with `?`), is credited with the items it had counted.
fn judge(
    joined: Result<Result<Summary, JobError>, JoinError>,
    stopped: Option<(Outcome, String)>,
    progress: &Progress,
) -> (Outcome, Summary, Option<String>) {
    let (summary, job_error) = match joined {
        Ok(Ok(summary)) => (summary, None),
        Ok(Err(e)) if e.summary == Summary::default() => {
            (progress.snapshot(), Some(format!("{:#}", e.error)))
        }
        Ok(Err(e)) => (e.summary, Some(format!("{:#}", e.error))),
        Err(e) if e.is_panic() => (progress.snapshot(), Some(panic_message(e))),
        Err(_) => (progress.snapshot(), None),
    };
    match (stopped, job_error) {
        (Some((outcome, why)), _) => (outcome, summary, Some(why)),
        (None, Some(error)) => (Outcome::Failed, summary, Some(error)),
        (None, None) => (Outcome::Succeeded, summary, None),
    }
}

fn panic_message(e: JoinError) -> String {
    let payload = e.into_panic();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    format!("the job panicked: {text}")
}
