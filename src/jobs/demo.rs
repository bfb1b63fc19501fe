//! Jobs that exist only to exercise the runner (feature `test-jobs`, never in a release
//! image): they sleep, fail, ignore cancellation, or run side by side. Their
//! declarations live in `tests/jobs/`, out of the Terraform's sight.
//!
//! `RUN_JOB_DEMO_SLEEP_MS` (default 2000) sets how long the sleeping jobs work.

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use futures::FutureExt;

use super::{Deps, Job, JobError, Registration, RunContext, Summary};

pub const SLEEP: Registration = Registration {
    name: "demo-sleep",
    build: |deps| Ok(Arc::new(Sleep::new(deps, false))),
    requeue: None,
};
pub const STUBBORN: Registration = Registration {
    name: "demo-stubborn",
    build: |deps| Ok(Arc::new(Sleep::new(deps, true))),
    requeue: None,
};
pub const PARALLEL: Registration = Registration {
    name: "demo-parallel",
    build: |deps| Ok(Arc::new(Sleep::new(deps, false))),
    requeue: None,
};
/// Members of the demo shared task (`run-job tick demo`), with demo-parallel and
/// demo-fail: they sleep like demo-sleep.
pub const TWO: Registration = Registration {
    name: "demo-two",
    build: |deps| Ok(Arc::new(Sleep::new(deps, false))),
    requeue: None,
};
pub const HOURLY: Registration = Registration {
    name: "demo-hourly",
    build: |deps| Ok(Arc::new(Sleep::new(deps, false))),
    requeue: None,
};
pub const OFF: Registration = Registration {
    name: "demo-off",
    build: |deps| Ok(Arc::new(Sleep::new(deps, false))),
    requeue: None,
};
pub const FAIL: Registration = Registration {
    name: "demo-fail",
    build: |_| Ok(Arc::new(Fail)),
    requeue: None,
};

const TICK: Duration = Duration::from_millis(100);

/// Works in 100 ms ticks, one "item" each, and writes a row per run so tests can see
/// it touched the database. Stops at the next tick when cancelled, unless stubborn.
struct Sleep {
    stubborn: bool,
    duration: Duration,
}

impl Sleep {
    fn new(deps: &Deps, stubborn: bool) -> Sleep {
        let ms = (deps.env)("RUN_JOB_DEMO_SLEEP_MS")
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        Sleep {
            stubborn,
            duration: Duration::from_millis(ms),
        }
    }
}

impl Job for Sleep {
    fn run(
        &self,
        cx: RunContext,
    ) -> futures::future::BoxFuture<'static, Result<Summary, JobError>> {
        let stubborn = self.stubborn;
        let ticks = (self.duration.as_millis() / TICK.as_millis()).max(1) as u64;
        async move {
            let mut summary = Summary::default();
            for _ in 0..ticks {
                if cx.cancel.is_cancelled() && !stubborn {
                    summary.details.insert("stopped_early".into(), true.into());
                    return Ok(summary);
                }
                tokio::time::sleep(TICK).await;
                summary.processed += 1;
                summary.succeeded += 1;
                cx.progress
                    .set(summary.processed, summary.succeeded, summary.failed);
            }
            sqlx::query("SELECT 1").execute(&cx.pool).await?;
            Ok(summary)
        }
        .boxed()
    }
}

/// Processes three items, fails one, then fails the run.
struct Fail;

impl Job for Fail {
    fn run(
        &self,
        _cx: RunContext,
    ) -> futures::future::BoxFuture<'static, Result<Summary, JobError>> {
        async move {
            let summary = Summary {
                processed: 3,
                succeeded: 2,
                failed: 1,
                ..Summary::default()
            };
            Err(JobError {
                summary,
                error: anyhow!("demo failure: the provider answered 500"),
            })
        }
        .boxed()
    }
}
