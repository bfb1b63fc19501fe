//! Running one job once: lock, record, supervise, summarise.
//!
//! [`run_once`] is the single path every run takes, whether EventBridge started the
//! process, a person typed `run-job <name>`, or the local scheduler fired. It takes the
//! job's advisory lock (unless its declaration allows overlap), records the run in
//! `job_runs`, runs the job on its own task, and ends it one of four ways: the job
//! returns; the declared timeout expires; `shutdown` is cancelled (a signal); or the
//! lock's connection dies. On a timeout or a signal the job's token is cancelled and it
//! gets `grace` to stop before it is aborted; on a lost lock it is aborted at once, since
//! another run may already hold the lock. The run row is closed (retried for up to
//! `grace`) and the summary written in every case, with the items the job had counted
//! in [`Progress`] when it never returned its own summary.
//!
//! It does not parse arguments, read the environment or install signal handlers:
//! `shutdown` is passed in, and only `app` listens for signals.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::declarations::{JobDeclaration, Overlap};
use crate::exit::Exit;
use crate::jobs::{Job, JobError, Progress, RunContext, Summary};
use crate::{database, lock, runs};

/// How a run ended. Mirrors the `job_run_outcome` enum of the `job_runs` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    TimedOut,
    Interrupted,
    /// The run lock's connection died mid-run, so another run could start: this one
    /// was stopped at once, without a grace period.
    LockLost,
    /// Another run of the job held the lock; nothing ran.
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed_out",
            Outcome::Interrupted => "interrupted",
            Outcome::LockLost => "lock_lost",
            Outcome::Skipped => "skipped",
        }
    }

    pub fn is_failure(self) -> bool {
        !matches!(self, Outcome::Succeeded | Outcome::Skipped)
    }

    /// The one mapping from how a run ended to the process's exit code.
    pub fn exit(self) -> Exit {
        match self {
            Outcome::Succeeded | Outcome::Skipped => Exit::Success,
            Outcome::Failed => Exit::Failed,
            Outcome::TimedOut => Exit::TimedOut,
            Outcome::Interrupted => Exit::Interrupted,
            Outcome::LockLost => Exit::LockLost,
        }
    }
}

/// What happened in one run; written to `job_runs` and to the summary log line.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: Uuid,
    pub job: String,
    pub trigger: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: Outcome,
    pub summary: Summary,
    pub error: Option<String>,
    /// Where it ran (the container's host name), for finding its logs.
    pub host: Option<String>,
}

impl RunReport {
    pub fn exit_code(&self) -> u8 {
        self.outcome.exit().code()
    }

    pub fn duration_ms(&self) -> i64 {
        (self.finished_at - self.started_at).num_milliseconds()
    }
}

/// The runner could not do its own part (the job itself may never have started).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("could not take the run lock: {0}")]
    Lock(#[source] sqlx::Error),
    #[error("could not record the run in job_runs: {0}")]
    History(#[source] sqlx::Error),
}

/// Everything a run needs besides the job.
pub struct RunRequest<'a> {
    pub declaration: &'a JobDeclaration,
    pub run_id: Uuid,
    pub trigger: &'a str,
    pub pool: &'a PgPool,
    /// For the lock's dedicated connection.
    pub connect_options: &'a PgConnectOptions,
    /// Cancelled when the process must stop.
    pub shutdown: &'a CancellationToken,
    /// How long a cancelled job gets before it is aborted.
    pub grace: Duration,
    /// Where this process runs, recorded with the run.
    pub host: Option<String>,
}

impl RunRequest<'_> {
    /// The report of this run, finished now.
    fn report(
        &self,
        started_at: DateTime<Utc>,
        outcome: Outcome,
        summary: Summary,
        error: Option<String>,
    ) -> RunReport {
        RunReport {
            run_id: self.run_id,
            job: self.declaration.name.clone(),
            trigger: self.trigger.to_string(),
            started_at,
            finished_at: Utc::now(),
            outcome,
            summary,
            error,
            host: self.host.clone(),
        }
    }
}

/// The span every line of a run is logged in; callers enter it around [`run_once`] and
/// whatever else belongs to the run (connecting, the summary line).
pub fn span(job: &str, run_id: Uuid) -> tracing::Span {
    tracing::info_span!("run", job = %job, run_id = %run_id)
}

/// Runs the job once. See the module docs for the sequence. Call it inside [`span`].
pub async fn run_once(req: RunRequest<'_>, job: Arc<dyn Job>) -> Result<RunReport, RunnerError> {
    let decl = req.declaration;
    let started_at = Utc::now();
    let lock = match decl.overlap {
        Overlap::Allow => None,
        Overlap::Forbid => {
            match lock::try_acquire(req.connect_options, &decl.name)
                .await
                .map_err(RunnerError::Lock)?
            {
                Some(lock) => {
                    tracing::info!("lock taken: no other run of this job is in progress");
                    Some(lock)
                }
                None => {
                    tracing::info!("skipped: another run of this job holds its lock");
                    let report = req.report(started_at, Outcome::Skipped, Summary::default(), None);
                    runs::finish(req.pool, &report)
                        .await
                        .map_err(RunnerError::History)?;
                    return Ok(report);
                }
            }
        }
    };
    let result = supervise(&req, job, lock.as_ref(), started_at).await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    result
}

async fn supervise(
    req: &RunRequest<'_>,
    job: Arc<dyn Job>,
    lock: Option<&lock::RunLock>,
    started_at: DateTime<Utc>,
) -> Result<RunReport, RunnerError> {
    let decl = req.declaration;
    if lock.is_some() {
        let abandoned = runs::close_abandoned(req.pool, &decl.name)
            .await
            .map_err(RunnerError::History)?;
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "closed runs of this job that died without finishing"
            );
        }
    }
    runs::start(
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

    let cancel = CancellationToken::new();
    let progress = Progress::default();
    let cx = RunContext {
        run_id: req.run_id,
        job: decl.name.clone(),
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
    close_run(req, &report).await;
    Ok(report)
}

/// Writes the run's final row, retrying for as long as a cancelled job gets to stop (the
/// database may be failing over just as the run ends). A refusal that would repeat (a
/// constraint, a missing table) is not retried. If the row still cannot be written,
/// what the run did is not lost: the summary line carries it and the exit code says it;
/// the row stays `running` until the next run of the job closes it as abandoned.
async fn close_run(req: &RunRequest<'_>, report: &RunReport) {
    let write = || runs::finish(req.pool, report);
    let retried = write
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(2))
                .without_max_times()
                .with_jitter(),
        )
        .when(|e| !is_permanent(e))
        .notify(|e, wait| {
            tracing::warn!(
                error = %database::describe(e),
                retry_in_ms = wait.as_millis() as u64,
                "could not close this run's job_runs row; retrying"
            );
        });
    let failure = match tokio::time::timeout(req.grace, retried).await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => database::describe(&e),
        Err(_) => format!(
            "the database did not take it within {} s",
            req.grace.as_secs()
        ),
    };
    tracing::error!(error = %failure, "could not close this run's job_runs row");
}

/// Errors that the same statement would meet again: bad data, a broken constraint, a
/// missing table or column, a refused privilege (SQLSTATE classes 22, 23 and 42).
fn is_permanent(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    db.code().is_some_and(|code| {
        ["22", "23", "42"]
            .iter()
            .any(|class| code.starts_with(class))
    })
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
