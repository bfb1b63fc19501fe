//! Running one job once: lock, record, supervise, summarise.
//!
//! [`run_once`] is the single path every run takes, whether EventBridge started the
//! process, a person typed `run-job <name>`, or the local scheduler fired. It takes the
//! job's advisory lock ([`lock`]; unless its declaration allows overlap), records the run
//! in `job_runs` ([`history`]), runs the job ([`supervise`]: it ends when the job returns,
//! its timeout expires, `shutdown` is cancelled, or the lock is lost), closes the row
//! (retried for up to the grace) and writes the summary line ([`summary`]) in every case.
//!
//! It does not parse arguments, read the environment or install signal handlers:
//! `shutdown` is passed in, and only `app` listens for signals. Nothing in this folder
//! depends on the command line or on the jobs beyond the `Job` trait.

mod heartbeat;
mod history;
mod lock;
mod report;
mod summary;
mod supervise;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use heartbeat::Heartbeat;
pub use history::finish;
/// The first key of every run lock (`pg_advisory_lock(NAMESPACE, hashtext(job))`).
pub use lock::NAMESPACE as LOCK_NAMESPACE;
pub use report::{Outcome, RunReport};

use crate::declarations::{JobDeclaration, Overlap};
use crate::jobs::{Job, Summary};
use crate::{clock, telemetry};

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
    /// The summary line as a JSON object with CloudWatch's metric block (logs off a
    /// terminal), or as a readable line.
    pub json_logs: bool,
    /// Which lines the run is billed: the whole process's (a task that runs one job),
    /// or only those logged inside its span (one of several jobs in one process).
    pub logs: LogScope,
    /// Where the run checks in, if its declaration names a URL and the environment
    /// holds one.
    pub heartbeat: Option<&'a Heartbeat>,
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
        let mut report = RunReport {
            run_id: self.run_id,
            job: self.declaration.name.clone(),
            trigger: self.trigger.to_string(),
            started_at,
            finished_at: clock::wall(),
            outcome,
            summary,
            error,
            host: self.host.clone(),
            log_bytes: match self.logs {
                LogScope::Process => telemetry::logged(),
                LogScope::Run => telemetry::run_logged(),
            },
        };
        report.log_bytes += summary::billable_bytes(&report, self.json_logs);
        report
    }
}

/// The span every line of a run is logged in. Callers run [`run_once`] inside it, with
/// whatever else belongs to the run (connecting, building the job), so that every line
/// carries the job and the run id, and counts in the run's logged bytes.
pub fn span(job: &str, run_id: Uuid) -> tracing::Span {
    let span = tracing::info_span!("run", job = %job, run_id = %run_id);
    telemetry::count_run_logs(&span);
    span
}

/// Which logged lines a run's `log_bytes` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogScope {
    /// Everything the process logged: the task runs this job alone.
    Process,
    /// The lines logged inside the run's span: other jobs share the process.
    Run,
}

/// Runs the job once and writes its summary line. See the module docs for the
/// sequence. Call it inside [`span`]. The heartbeat's last ping comes after the summary
/// line, so a monitor that hangs never delays what CloudWatch's metrics come from.
pub async fn run_once(req: RunRequest<'_>, job: Arc<dyn Job>) -> Result<RunReport, RunnerError> {
    let (result, started) = locked(&req, job).await;
    if let Ok(report) = &result {
        summary::emit(report, req.json_logs);
    }
    if let Some(h) = req.heartbeat {
        let (job, run_id) = (&req.declaration.name, req.run_id);
        match &result {
            // A skipped run pings nothing: the run holding the lock checks in.
            Ok(report) if report.outcome == Outcome::Skipped => {}
            Ok(report) => h.finish(started, report).await,
            Err(e) => {
                h.runner_failed(
                    started,
                    job,
                    run_id,
                    crate::exit::Exit::Runner,
                    &e.to_string(),
                )
                .await;
            }
        }
    }
    result
}

/// Takes the lock when the declaration asks for it, then supervises the job; with the
/// start ping, if one went out.
async fn locked(
    req: &RunRequest<'_>,
    job: Arc<dyn Job>,
) -> (Result<RunReport, RunnerError>, Option<heartbeat::Started>) {
    let decl = req.declaration;
    let started_at = clock::wall();
    let lock = match decl.overlap {
        Overlap::Allow => None,
        Overlap::Forbid => match lock::try_acquire(req.connect_options, &decl.name).await {
            Err(e) => return (Err(RunnerError::Lock(e)), None),
            Ok(Some(lock)) => {
                tracing::info!("lock taken: no other run of this job is in progress");
                Some(lock)
            }
            Ok(None) => {
                tracing::info!("skipped: another run of this job holds its lock");
                let report = req.report(started_at, Outcome::Skipped, Summary::default(), None);
                let written = history::finish(req.pool, &report).await;
                return (written.map(|()| report).map_err(RunnerError::History), None);
            }
        },
    };
    let started = req.heartbeat.map(|h| h.start(&decl.name, req.run_id));
    let result = supervise::supervise(req, job, lock.as_ref(), started_at).await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    (result, started)
}
