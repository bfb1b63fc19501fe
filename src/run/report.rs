//! What one run did: how it ended ([`Outcome`], with the one mapping to an exit code)
//! and its [`RunReport`], which the history row and the summary line are written from.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::exit::Exit;
use crate::jobs::Summary;

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
    /// What the run logged, as CloudWatch Logs bills it, its summary line included.
    pub log_bytes: u64,
}

impl RunReport {
    pub fn exit_code(&self) -> u8 {
        self.outcome.exit().code()
    }

    pub fn duration_ms(&self) -> i64 {
        (self.finished_at - self.started_at).num_milliseconds()
    }
}
