//! Jobs that exist only to exercise the runner (feature `test-jobs`, never in a release
//! image): they sleep, fail, ignore cancellation, or run side by side. Their
//! declarations live in `tests/jobs/`, out of the Terraform's sight.
//!
//! `RUN_JOB_DEMO_SLEEP_MS` (default 2000) sets how long the sleeping jobs work; test
//! code is the one place a job may read the environment itself.

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use futures::FutureExt;

use super::{Job, JobError, Registration, RunContext, Summary};

pub const SLEEP: Registration = Registration {
    name: "demo-sleep",
    build: |_| Ok(Arc::new(Sleep { stubborn: false })),
};
pub const STUBBORN: Registration = Registration {
    name: "demo-stubborn",
    build: |_| Ok(Arc::new(Sleep { stubborn: true })),
};
pub const PARALLEL: Registration = Registration {
    name: "demo-parallel",
    build: |_| Ok(Arc::new(Sleep { stubborn: false })),
};
pub const FAIL: Registration = Registration {
    name: "demo-fail",
    build: |_| Ok(Arc::new(Fail)),
};

const TICK: Duration = Duration::from_millis(100);

fn sleep_duration() -> Duration {
    let ms = std::env::var("RUN_JOB_DEMO_SLEEP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    Duration::from_millis(ms)
}

/// Works in 100 ms ticks, one "item" each, and writes a row per run so tests can see
/// it touched the database. Stops at the next tick when cancelled, unless stubborn.
struct Sleep {
    stubborn: bool,
}

impl Job for Sleep {
    fn run(
        &self,
        cx: RunContext,
    ) -> futures::future::BoxFuture<'static, Result<Summary, JobError>> {
        let stubborn = self.stubborn;
        async move {
            let ticks = (sleep_duration().as_millis() / TICK.as_millis()).max(1) as u64;
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
