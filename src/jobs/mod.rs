//! The jobs, and the one small trait through which the runner knows them.
//!
//! A job is a type implementing [`Job`], built from the shared [`Deps`] by its entry in
//! [`REGISTRY`], the only list of jobs in the crate. The runner hands a job a
//! [`RunContext`] (database pool, cancellation token, deadline, progress) and gets back a
//! [`Summary`]; it never looks inside. A job never reaches into the runner: it has no
//! access to locks, run history or signals other than its cancellation token.
//!
//! Adding a job: a declaration `jobs/<name>.yaml`, a module here, and one line in
//! [`REGISTRY`]. A test fails when a declaration has no registry entry or the reverse.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub mod check_payout_hold_periods;
#[cfg(feature = "test-jobs")]
pub mod demo;
pub mod invoices;
pub mod notifications;
pub mod notify_upload_availability;
pub mod scraping;
pub mod sync_payments;

/// What a job receives for one run.
#[derive(Clone)]
pub struct RunContext {
    pub pool: PgPool,
    /// Cancelled when the run times out or the process is asked to stop. A job checks
    /// it between items, finishes or releases what is in flight, and returns.
    pub cancel: CancellationToken,
    /// When the declared timeout expires.
    pub deadline: Instant,
    /// Where the job counts items as it finishes them, so that a run stopped before it
    /// returns (aborted after the grace, or cut off when its lock is lost) still records
    /// what it had done. The [`Summary`] the job returns is the final word.
    pub progress: Progress,
}

/// Items done so far in a run, shared between the job and the runner.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    processed: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
}

impl Progress {
    /// The run's totals so far: `processed` items examined, of which `succeeded` and
    /// `failed`. Called as items finish, with running totals (not increments).
    pub fn set(&self, processed: u64, succeeded: u64, failed: u64) {
        self.0.processed.store(processed, Ordering::Relaxed);
        self.0.succeeded.store(succeeded, Ordering::Relaxed);
        self.0.failed.store(failed, Ordering::Relaxed);
    }

    /// The counts so far, as a summary without details.
    pub fn snapshot(&self) -> Summary {
        Summary {
            processed: self.0.processed.load(Ordering::Relaxed),
            succeeded: self.0.succeeded.load(Ordering::Relaxed),
            failed: self.0.failed.load(Ordering::Relaxed),
            details: Map::new(),
        }
    }
}

/// What a run did, in counts. `details` holds job-specific counters for the summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub processed: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub details: Map<String, Value>,
}

/// A failed run: the reason, and what it had done before failing.
#[derive(Debug)]
pub struct JobError {
    pub summary: Summary,
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for JobError {
    fn from(error: E) -> Self {
        JobError {
            summary: Summary::default(),
            error: error.into(),
        }
    }
}

/// One job. `run` is called once per run; the future must be `'static` so the runner
/// can supervise it (time it out, abort it) on its own task.
pub trait Job: Send + Sync {
    fn run(&self, cx: RunContext) -> BoxFuture<'static, Result<Summary, JobError>>;

    /// The outside services this job, as configured, will call: what
    /// `run-job check --connect` tries to reach after a deploy.
    fn endpoints(&self) -> Vec<Endpoint> {
        Vec::new()
    }
}

/// An outside service a job calls, by a name a person recognises and its base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub name: &'static str,
    pub url: String,
}

/// The shared dependencies jobs are built from. Built once per process by the runner.
/// A job reads its own settings through `env`, never from the process directly, and
/// the time through `clock`, never from the system.
#[derive(Clone)]
pub struct Deps {
    pub pool: PgPool,
    pub env: Arc<crate::config::Env>,
    pub clock: crate::clock::Clock,
}

impl Deps {
    /// The one wiring: the pool, the environment for the jobs' own settings and the clock
    /// it names (`RUN_JOB_NOW` replays a run at another instant). The binary builds its
    /// dependencies here with the process environment, the tests with their own.
    pub fn from_env(
        pool: PgPool,
        env: Arc<crate::config::Env>,
    ) -> Result<Deps, crate::config::Error> {
        let clock = crate::clock::Clock::from_env(&*env)?;
        Ok(Deps { pool, env, clock })
    }

    /// These dependencies as one job sees them: its environment holds the variables
    /// `reads` lists and nothing else, which is also all its task receives in production
    /// (terraform/main.tf passes each task its declaration's list). A read of anything
    /// else is answered "unset" and logged, so a job cannot come to depend on a variable
    /// that its deployment would not have.
    pub fn scoped(&self, job: &str, reads: &crate::declarations::Reads) -> Deps {
        let env = self.env.clone();
        let allowed: Vec<String> = reads.all().map(str::to_string).collect();
        let job = job.to_string();
        Deps {
            pool: self.pool.clone(),
            env: Arc::new(move |name: &str| {
                if allowed.iter().any(|a| a == name) {
                    env(name)
                } else {
                    tracing::warn!(job = %job, variable = name, "the job read a variable its declaration does not list; it is treated as unset");
                    None
                }
            }),
            clock: self.clock.clone(),
        }
    }
}

/// A registry entry: the declared name, how to build the job, and where it leaves the
/// work it gave up on.
pub struct Registration {
    pub name: &'static str,
    pub build: fn(&Deps) -> anyhow::Result<Arc<dyn Job>>,
    /// Where `run-job requeue <name>` finds this job's failed rows; `None` for a job
    /// that leaves none (its next run simply tries again).
    pub requeue: Option<Requeue>,
}

/// The failed rows a job leaves, for `run-job requeue` (`commands::requeue`).
#[derive(Debug, Clone, Copy)]
pub struct Requeue {
    /// Types of the `jobs` queue rows it consumes.
    pub queue_types: &'static [&'static str],
    /// Whether failed `notifications` rows are its.
    pub notifications: bool,
}

/// Every job this binary can run.
pub const REGISTRY: &[Registration] = &[
    check_payout_hold_periods::REGISTRATION,
    invoices::REGISTRATION,
    notifications::REGISTRATION,
    notify_upload_availability::REGISTRATION,
    scraping::REGISTRATION,
    sync_payments::REGISTRATION,
    #[cfg(feature = "test-jobs")]
    demo::SLEEP,
    #[cfg(feature = "test-jobs")]
    demo::FAIL,
    #[cfg(feature = "test-jobs")]
    demo::STUBBORN,
    #[cfg(feature = "test-jobs")]
    demo::PARALLEL,
    #[cfg(feature = "test-jobs")]
    demo::TWO,
    #[cfg(feature = "test-jobs")]
    demo::HOURLY,
    #[cfg(feature = "test-jobs")]
    demo::OFF,
];

pub fn find(name: &str) -> Option<&'static Registration> {
    REGISTRY.iter().find(|r| r.name == name)
}
