//! The command line: what a person or EventBridge can ask of the binary.
//!
//! Pure clap definitions, no I/O. `app` turns a parsed [`Cli`] into actions and exit
//! codes. Options that make sense in a task definition are also read from environment
//! variables (named in `--help`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use crate::cost::bill::Capacity;
use crate::cost::{OriginalRunTimes, Startup};
use crate::telemetry::LogFormat;

const AFTER_HELP: &str = "\
Exit codes:
  0  the job succeeded, or was skipped because another run of it holds the lock
  1  the job failed
  2  usage error (unknown job, bad arguments)
  3  configuration error (environment, declarations)
  4  the job timed out (its declared timeout_seconds)
  5  interrupted by SIGTERM or SIGINT
  6  the runner could not start or record the run (database unreachable, schema missing)
  7  the run lost its lock's database connection and was stopped at once

Database (the first that is set wins):
  DATABASE_URL            postgres://user:password@host:port/db
  DB_CREDENTIALS_JSON     the Secrets Manager secret (username, password, host, port, dbname)
  POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB
  DATABASE_SSLMODE        disable|prefer|require|verify-ca|verify-full (default: prefer on
                          loopback, require elsewhere); DATABASE_SSLROOTCERT: CA bundle file
  RUST_LOG                log filter (default: info)

Examples:
  run-job sync-payments                      run one job once
  run-job --schedule --only notifications    run jobs on their schedules, locally
  run-job list                               jobs, schedules, sizes, next fires
  run-job check --connect                    after a deploy: database, schema, providers
  run-job runs --since 7d                    what ran, success rates, p50/p95, late jobs
  run-job cost --compare original            next 30 days' cost per job, against the original
  run-job requeue invoices --since 24h --dry-run   failed invoice rows a requeue would take
  run-job tick light                         the light jobs that are due, in one process
  run-job next 'cron(0/15 8-18 ? * MON-FRI *)' --count 5";

/// Runs the marketplace's background jobs: once (as ECS RunTask does), or each on its
/// EventBridge schedule (locally).
#[derive(Debug, Parser)]
#[command(name = "run-job", version, after_help = AFTER_HELP, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// The job to run once, by its declared name (see `run-job list`).
    #[arg(value_name = "JOB")]
    pub job: Option<String>,

    /// Run every enabled job on its schedule until SIGTERM/SIGINT.
    #[arg(long, conflicts_with = "job")]
    pub schedule: bool,

    /// With --schedule: only these jobs (comma-separated names).
    #[arg(
        long,
        value_delimiter = ',',
        requires = "schedule",
        env = "RUN_JOB_ONLY"
    )]
    pub only: Vec<String>,

    /// What started this run; recorded in job_runs. Terraform sets `eventbridge`.
    #[arg(long, value_enum, default_value_t = Trigger::Manual, env = "RUN_JOB_TRIGGER")]
    pub trigger: Trigger,

    /// Seconds a cancelled job (timeout or signal) gets to stop cleanly before it is
    /// aborted; its final job_runs write may then be retried for as long again, and a
    /// heartbeat takes up to 5 s more. Keep twice this plus 5 s under ECS's stopTimeout
    /// (30 s by default).
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=110), env = "RUN_JOB_GRACE_SECONDS")]
    pub grace_seconds: u64,

    /// Log format: json (one object per line), pretty, or auto (pretty on a terminal).
    #[arg(long, value_enum, default_value_t = LogFormat::Auto, env = "RUN_JOB_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every job with its schedule, size, timeout and next 3 fire times (UTC).
    List,
    /// Print the next fire times of an EventBridge schedule expression.
    Next {
        /// `cron(Minutes Hours Day-of-month Month Day-of-week Year)` or `rate(N unit)`.
        expression: String,
        /// Fire times strictly after this instant (RFC 3339). Defaults to now.
        #[arg(long, value_name = "RFC3339")]
        after: Option<DateTime<Utc>>,
        /// How many fire times to print.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10000))]
        count: u32,
    },
    /// Validate the declarations, the registry and the configuration; run nothing.
    Check {
        /// Also reach what production needs: the database with these settings, the
        /// schema the jobs use (by migration), and each configured provider's host.
        #[arg(long)]
        connect: bool,
    },
    /// Run, side by side, every member of a shared-task group whose schedule fired since
    /// the previous tick (what EventBridge starts for a group; see `shares_task` in the
    /// declarations). Each member is recorded as its own run; the exit code is the worst.
    Tick {
        /// The group (`shares_task` in jobs/).
        group: String,
    },
    /// Apply the database migrations (development and tests; production never migrates
    /// implicitly).
    Migrate,
    /// The latest runs from `job_runs`, newest first, then per job: runs, success rate,
    /// p50/p95 duration over the window, and the last success's age (late when older
    /// than two schedule periods).
    Runs {
        /// Only this job.
        job: Option<String>,
        /// How far back: minutes, hours or days (`90m`, `24h`, `7d`).
        #[arg(long, default_value = "24h", value_parser = window)]
        since: chrono::TimeDelta,
        /// At most this many runs in the table.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10000))]
        limit: u32,
        /// One JSON object per line instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Give a job's failed rows a fresh start: failed `jobs` queue rows of the types it
    /// consumes (invoices), failed notifications (notifications). Prints the rows first;
    /// each goes back to `pending` now with its attempts reset (a notification keeps the
    /// channels already sent). Everything in one transaction.
    Requeue {
        /// The job whose failed rows to requeue (invoices, notifications).
        job: String,
        /// Only rows that failed within this window: minutes, hours or days (`24h`).
        #[arg(long, value_parser = window)]
        since: Option<chrono::TimeDelta>,
        /// Only these rows (repeat the flag, or separate ids with commas).
        #[arg(long = "id", value_name = "UUID", value_delimiter = ',')]
        ids: Vec<uuid::Uuid>,
        /// Every failed row, however old (without it, a requeue needs --since or --id,
        /// so months-old notices are not sent by accident).
        #[arg(long, conflicts_with_all = ["since", "ids"])]
        all: bool,
        /// List what would be requeued and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Projected cost of the next 30 days per job and in total: the declared sizes, the
    /// exact fires of each schedule, and p50/p95 run times from `job_runs` (the declared
    /// timeout, an upper bound, for a job without history or without a database).
    Cost {
        /// The region whose prices apply (from the prices file).
        #[arg(long, default_value = "sa-east-1")]
        region: String,
        /// Run times from the runs of this window: minutes, hours or days (`7d`).
        #[arg(long, default_value = "7d", value_parser = window)]
        since: chrono::TimeDelta,
        /// Fargate Spot (the Terraform's default) or on-demand.
        #[arg(long, value_enum, default_value_t = Capacity::Spot)]
        capacity: Capacity,
        /// Billed seconds before a run starts (image pull, unpack, start), per image:
        /// `slim=5,chromium=15,original=20` are the defaults; name any subset.
        #[arg(long, value_name = "IMAGE=SECONDS,...", value_parser = Startup::parse, env = "RUN_JOB_COST_STARTUP")]
        startup: Option<Startup>,
        /// Add a column: the same schedule at the original runner's sizes and image.
        #[arg(long, value_enum)]
        compare: Option<Compare>,
        /// With `--compare original`: an original rule's run time measured at the
        /// original's own size, used instead of the p50 of the run-job job doing its
        /// work (`scrape-events=48.6`; bench/run-cost measures it).
        #[arg(long, value_name = "RULE=SECONDS,...", value_parser = OriginalRunTimes::parse, requires = "compare")]
        original_run_time: Option<OriginalRunTimes>,
        /// A prices file to use instead of the one built in (pricing/aws.yaml).
        #[arg(long, value_name = "FILE")]
        prices: Option<std::path::PathBuf>,
        /// One JSON object per job, then the total, instead of a table.
        #[arg(long)]
        json: bool,
        /// The Terraform's choices behind the fixed items.
        #[command(flatten)]
        infra: crate::cost::Infra,
    },
}

/// What `cost --compare` sets beside run-job's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compare {
    /// The original runner (mathfalcon/revendiste): its task sizes and image.
    Original,
}

/// `90m`, `24h` or `7d` as a duration.
fn window(text: &str) -> Result<chrono::TimeDelta, String> {
    let bad = || format!("`{text}` is not a number of minutes, hours or days (90m, 24h, 7d)");
    let (number, unit) = text.trim().split_at(text.trim().len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| bad())?;
    let delta = match unit {
        "m" => chrono::TimeDelta::try_minutes(n),
        "h" => chrono::TimeDelta::try_hours(n),
        "d" => chrono::TimeDelta::try_days(n),
        _ => None,
    };
    delta
        .filter(|d| *d > chrono::TimeDelta::zero())
        .ok_or_else(bad)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Trigger {
    Manual,
    Eventbridge,
    Schedule,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Eventbridge => "eventbridge",
            Trigger::Schedule => "schedule",
        }
    }
}

impl Cli {
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.grace_seconds)
    }
}

/// Names that cannot be jobs because the command line gives them another meaning.
pub const RESERVED_NAMES: &[&str] = &[
    "list", "next", "check", "migrate", "runs", "cost", "requeue", "tick", "help",
];

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn subcommands_and_a_job_name_parse() {
        let cli = Cli::try_parse_from(["run-job", "sync-payments"]).unwrap();
        assert_eq!(cli.job.as_deref(), Some("sync-payments"));
        let cli = Cli::try_parse_from([
            "run-job",
            "next",
            "rate(1 day)",
            "--after",
            "2026-03-01T10:00:00Z",
            "--count",
            "3",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::Next { count: 3, .. })));
        let cli = Cli::try_parse_from(["run-job", "--schedule", "--only", "a,b"]).unwrap();
        assert_eq!(cli.only, ["a", "b"]);
        assert!(Cli::try_parse_from(["run-job", "--only", "a"]).is_err());
        assert!(Cli::try_parse_from(["run-job", "x", "--schedule"]).is_err());
    }
}
