//! `run-job --schedule`: every selected job on its schedule, in one process, until a
//! signal.
//!
//! The schedule's tokio-cron-scheduler form comes from `schedule::local`; each fire
//! goes through `run::run_once`, so locks, history, timeouts and summaries are the
//! same as in production (a fire that finds the previous run still going skips, exactly
//! as a second ECS task would). On shutdown it stops firing, lets running jobs finish
//! or cancels them through the same token, waits for them, and returns.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio_cron_scheduler::{Job as CronJob, JobScheduler};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use uuid::Uuid;

use super::wiring::{build_job, connect, deps, eprint_jobs, shutdown_on_signal};
use crate::cli::Cli;
use crate::declarations::JobDeclaration;
use crate::exit::Exit;
use crate::jobs::Job;
use crate::run::{self, RunRequest};
use crate::schedule::local::LocalTrigger;
use crate::{config, database, telemetry};

/// `run-job --schedule [--only <job>...]`.
pub(crate) async fn run(cli: &Cli, declarations: Vec<JobDeclaration>) -> Exit {
    let unknown: Vec<&String> = cli
        .only
        .iter()
        .filter(|n| !declarations.iter().any(|d| &d.name == *n))
        .collect();
    if !unknown.is_empty() {
        eprintln!(
            "run-job: --only names unknown job(s): {}",
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        eprint_jobs(&declarations);
        return Exit::Usage;
    }
    let selected: Vec<JobDeclaration> = declarations
        .into_iter()
        .filter(|d| {
            if cli.only.is_empty() {
                d.enabled
            } else {
                cli.only.contains(&d.name)
            }
        })
        .collect();
    if selected.is_empty() {
        eprintln!("run-job: no enabled jobs to schedule");
        return Exit::Usage;
    }
    let shutdown = shutdown_on_signal();
    let (pool, options) = match connect("run-job:scheduler", &shutdown).await {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let deps = match deps(pool.clone()) {
        Ok(deps) => deps,
        Err(exit) => return exit,
    };
    let mut jobs = Vec::new();
    for d in selected {
        match build_job(&d, &deps) {
            Ok(job) => jobs.push(Scheduled {
                declaration: Arc::new(d),
                job,
            }),
            Err(exit) => return exit,
        }
    }
    let shared = Shared {
        pool: pool.clone(),
        connect_options: Arc::new(options),
        shutdown,
        grace: cli.grace(),
        json_logs: telemetry::is_json(cli.log_format),
        host: config::process_env("HOSTNAME"),
    };
    let exit = match drive(jobs, shared).await {
        Ok(()) => Exit::Success,
        Err(e) => {
            tracing::error!(error = %e, "scheduler failed");
            Exit::Runner
        }
    };
    database::close(pool).await;
    exit
}

/// One job as the scheduler holds it.
pub(crate) struct Scheduled {
    pub declaration: Arc<JobDeclaration>,
    pub job: Arc<dyn Job>,
}

/// What every fire shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub pool: PgPool,
    pub connect_options: Arc<PgConnectOptions>,
    pub shutdown: CancellationToken,
    pub grace: Duration,
    /// Summary lines as JSON (see `run::RunRequest::json_logs`).
    pub json_logs: bool,
    pub host: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("the local scheduler failed: {0}")]
pub(crate) struct Error(String);

/// Runs until `shared.shutdown` is cancelled, then drains.
async fn drive(jobs: Vec<Scheduled>, shared: Shared) -> Result<(), Error> {
    let scheduler = JobScheduler::new()
        .await
        .map_err(|e| Error(format!("{e:?}")))?;
    let tracker = TaskTracker::new();
    for scheduled in jobs {
        let name = scheduled.declaration.name.clone();
        let fire = fire_fn(
            scheduled.declaration.clone(),
            scheduled.job,
            shared.clone(),
            tracker.clone(),
        );
        let trigger = scheduled.declaration.schedule.local_trigger();
        let cron_job = match &trigger {
            LocalTrigger::Cron(pattern) => CronJob::new_async(pattern.as_str(), fire),
            LocalTrigger::Every(period) => CronJob::new_repeated_async(*period, fire),
        }
        .map_err(|e| {
            Error(format!(
                "{name}: tokio-cron-scheduler rejected {trigger:?}: {e:?}"
            ))
        })?;
        scheduler
            .add(cron_job)
            .await
            .map_err(|e| Error(format!("{name}: {e:?}")))?;
        let next = scheduled
            .declaration
            .schedule
            .next_after(crate::clock::wall());
        tracing::info!(
            job = %name,
            schedule = %scheduled.declaration.schedule,
            local = ?trigger,
            next_fire = ?next,
            "scheduled"
        );
    }
    scheduler
        .start()
        .await
        .map_err(|e| Error(format!("{e:?}")))?;
    tracing::info!("scheduler running; SIGTERM or Ctrl-C stops it");

    shared.shutdown.cancelled().await;
    tracing::info!("stopping: no new fires; draining running jobs");
    let mut scheduler = scheduler;
    if let Err(e) = scheduler.shutdown().await {
        tracing::warn!(error = ?e, "scheduler shutdown reported an error");
    }
    tracker.close();
    // Running jobs see the same shutdown token: each gets the grace, then is aborted.
    if tokio::time::timeout(shared.grace + Duration::from_secs(5), tracker.wait())
        .await
        .is_err()
    {
        tracing::error!("some runs did not finish draining in time");
    }
    tracing::info!("scheduler stopped");
    Ok(())
}

type FireFn = Box<
    dyn FnMut(Uuid, JobScheduler) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

fn fire_fn(
    declaration: Arc<JobDeclaration>,
    job: Arc<dyn Job>,
    shared: Shared,
    tracker: TaskTracker,
) -> FireFn {
    Box::new(move |_, _| {
        let declaration = declaration.clone();
        let job = job.clone();
        let shared = shared.clone();
        let tracker = tracker.clone();
        Box::pin(async move {
            if shared.shutdown.is_cancelled() {
                return;
            }
            // Run on the tracker so shutdown can wait for it; the scheduler's own task
            // returns at once and keeps ticking.
            let run_id = Uuid::now_v7();
            let span = run::span(&declaration.name, run_id);
            let run = async move {
                let request = RunRequest {
                    declaration: &declaration,
                    run_id,
                    trigger: "schedule",
                    pool: &shared.pool,
                    connect_options: &shared.connect_options,
                    shutdown: &shared.shutdown,
                    grace: shared.grace,
                    host: shared.host.clone(),
                    json_logs: shared.json_logs,
                    logs: crate::run::LogScope::Run,
                    // Local runs do not check in: the URLs belong to production's monitors.
                    heartbeat: None,
                };
                if let Err(e) = run::run_once(request, job).await {
                    tracing::error!(job = %declaration.name, error = %e, "run could not start");
                }
                let next = declaration.schedule.next_after(crate::clock::wall());
                tracing::info!(next_fire = ?next, "next fire");
            };
            tracker.spawn(run.instrument(span));
        })
    })
}
