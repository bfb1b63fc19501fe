//! Exit codes, in one place. The README and `--help` list the same table.
//!
//! ECS shows a task's exit code, and the alerting rule matches non-zero codes, so each
//! way a run can end has its own code: a failure, a timeout and an interruption need
//! different responses from a person.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// The job succeeded, or was skipped because another run holds its lock.
    Success = 0,
    /// The job returned an error or panicked.
    Failed = 1,
    /// Bad command line: unknown job, missing name, bad arguments.
    Usage = 2,
    /// Bad configuration: environment variables, declarations, registry.
    Config = 3,
    /// The job ran past its declared timeout.
    TimedOut = 4,
    /// SIGTERM or SIGINT stopped the job.
    Interrupted = 5,
    /// The runner could not start or record the run (database unreachable, schema missing).
    Runner = 6,
    /// The run lock's database connection died mid-run; the job was stopped at once so
    /// that it cannot overlap the run that may now hold the lock.
    LockLost = 7,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}
