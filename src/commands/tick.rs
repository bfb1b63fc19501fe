//! `run-job tick <group>`: one task runs, side by side, every member of a shared-task
//! group ([`crate::groups`]) whose schedule fired since the previous tick. Each member
//! runs as `run-job <name>` would (`run::run_once`): its own lock, its own `job_runs`
//! row (trigger `tick`), timeout, cancellation, heartbeat and summary line, so metrics,
//! alarms and `run-job runs` see jobs, not ticks. The process exits with the worst
//! member's code and writes one line for the tick.
//!
//! Which members are due (the catch-up rule): a member's fires in (since, now], where
//! `since` is what ran last: the latest fire a tick claimed for that job or its latest
//! run's start in `job_runs`, whichever is later ([`claimed`]); for a job with neither,
//! now − one tick period; never further back than [`CATCH_UP`]. The latest of
//! those fires is claimed (`schedule_fires`, one row per job and fire, insert or
//! nothing) and the job runs once, however many fires missed ticks left behind. A fire
//! another tick claimed is not run again, whether that tick runs at the same moment or
//! repeats later. The claim comes before the run: a tick killed between the two loses
//! that fire (the member's next fire runs it) rather than running it twice.
//!
//! Disabled members are never due. SIGTERM cancels every running member, each of which
//! gets the grace as a single run does.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use sqlx::postgres::PgConnectOptions;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::once::{HeartbeatSetting, heartbeat_for, run_heartbeat};
use super::wiring::{build_job, connect, deps, shutdown_on_signal};
use crate::cli::Cli;
use crate::declarations::JobDeclaration;
use crate::exit::Exit;
use crate::groups::Group;
use crate::jobs::{Deps, Job};
use crate::run::{self, RunRequest};
use crate::schedule::Schedule;
use crate::{clock, config, database, telemetry};

/// How far back a tick looks for a member's missed fire: a job whose tick has not run
/// for longer starts again from its next fire within this window.
pub(crate) const CATCH_UP: TimeDelta = TimeDelta::days(1);

/// How long a claim is kept; older ones are deleted by the ticks.
const KEEP_CLAIMS: TimeDelta = TimeDelta::days(7);

/// The trigger recorded in `job_runs` for a member's run.
pub(crate) const TRIGGER: &str = "tick";

/// A member due at this tick, for this fire.
#[derive(Debug, Clone)]
pub(crate) struct Due<'a> {
    pub job: &'a JobDeclaration,
    pub fire: DateTime<Utc>,
}

/// The latest fire of `schedule` in (since, now].
pub(crate) fn latest_fire(
    schedule: &Schedule,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    schedule.iter_after(since).take_while(|t| *t <= now).last()
}

/// The members due at `now`, given each job's latest claimed fire.
pub(crate) fn due<'a>(
    group: &Group,
    members: &'a [JobDeclaration],
    claimed: &BTreeMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<Due<'a>> {
    let oldest = now - CATCH_UP;
    members
        .iter()
        .filter(|d| d.enabled && d.shares_task.as_deref() == Some(group.name.as_str()))
        .filter_map(|d| {
            let since = claimed
                .get(&d.name)
                .map_or(now - group.period(), |last| *last)
                .max(oldest);
            latest_fire(&d.schedule, since, now).map(|fire| Due { job: d, fire })
        })
        .collect()
}

/// What ran last, for each of `jobs` that has run: the later of its latest claimed
/// fire and its latest run's start (`job_runs`, any trigger: a job that ran on its own
/// rule, or by hand, before joining the group is not run again for a fire it already
/// served). Neither may be later than `now`: a claim dated ahead (a replay that went
/// wrong) would hold the window shut, and a replayed tick (`RUN_JOB_NOW` in the past)
/// must not see runs from after its instant.
pub(crate) async fn claimed(
    pool: &PgPool,
    jobs: &[String],
    now: DateTime<Utc>,
) -> sqlx::Result<BTreeMap<String, DateTime<Utc>>> {
    let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT job, max(at) FROM (
             SELECT job, fire_at AS at FROM schedule_fires
              WHERE job = ANY($1) AND fire_at <= now() AND fire_at <= $2
             UNION ALL
             SELECT job, started_at FROM job_runs
              WHERE job = ANY($1) AND started_at <= $2 AND started_at > $2 - interval '1 day'
         ) last GROUP BY job",
    )
    .bind(jobs)
    .bind(now)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Claims `fire` of `job` for the run `run_id`; false when another tick has it.
pub(crate) async fn claim(
    pool: &PgPool,
    job: &str,
    fire: DateTime<Utc>,
    run_id: Uuid,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO schedule_fires (job, fire_at, run_id) VALUES ($1, $2, $3)
         ON CONFLICT (job, fire_at) DO NOTHING",
    )
    .bind(job)
    .bind(fire)
    .bind(run_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes the group's claims older than a week (the catch-up never looks that far).
pub(crate) async fn prune(pool: &PgPool, jobs: &[String], now: DateTime<Utc>) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM schedule_fires WHERE job = ANY($1) AND fire_at < $2")
        .bind(jobs)
        .bind(now - KEEP_CLAIMS)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// The code a tick exits with: its worst member's. A runner that could not do its part
/// ranks above a configuration error, which ranks above a lost lock, a timeout, a
/// failure and an interruption, in that order; success and a skip are 0.
pub(crate) fn worst(exits: impl IntoIterator<Item = Exit>) -> Exit {
    let rank = |e: &Exit| match e {
        Exit::Success => 0,
        Exit::Interrupted => 1,
        Exit::Failed => 2,
        Exit::TimedOut => 3,
        Exit::LockLost => 4,
        Exit::Usage => 5,
        Exit::Config => 6,
        Exit::Runner => 7,
    };
    exits.into_iter().max_by_key(rank).unwrap_or(Exit::Success)
}

/// What the tick line reports for one member.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct MemberOutcome {
    pub job: String,
    /// The fire it ran for (RFC 3339), if due.
    pub fire: Option<DateTime<Utc>>,
    /// `succeeded`, `failed`... as in `job_runs`; `not_due`, `disabled`,
    /// `claimed_elsewhere`, or `not_started` (it could not be set up).
    pub outcome: String,
    #[serde(rename = "exit_code", serialize_with = "exit_code")]
    pub exit: Exit,
}

fn exit_code<S: serde::Serializer>(exit: &Exit, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u8(exit.code())
}

/// `run-job tick <group>`: the rule is this module's. Members are claimed, built and
/// run here, each inside its own run span, all at once.
pub(crate) async fn run(cli: &Cli, declarations: &[JobDeclaration], name: &str) -> Exit {
    let groups = crate::groups::derive(declarations).unwrap_or_default();
    let Some(group) = groups.iter().find(|g| g.name == name) else {
        let known: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        eprintln!(
            "run-job: no group `{name}` (shares_task in jobs/); groups: {}",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
        return Exit::Usage;
    };
    let shutdown = shutdown_on_signal();
    let (pool, options) = match connect(&format!("run-job:tick-{name}"), &shutdown).await {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let exit = match deps(pool.clone()) {
        Ok(deps) => {
            let tick = Tick {
                cli,
                pool: &pool,
                options: &options,
                shutdown: &shutdown,
            };
            tick.run(group, declarations, &deps).await
        }
        Err(exit) => exit,
    };
    database::close(pool).await;
    exit
}

/// What a tick's members share: the command line, the pool and the shutdown token.
struct Tick<'a> {
    cli: &'a Cli,
    pool: &'a PgPool,
    options: &'a PgConnectOptions,
    shutdown: &'a CancellationToken,
}

impl Tick<'_> {
    async fn run(&self, group: &Group, declarations: &[JobDeclaration], deps: &Deps) -> Exit {
        let now = deps.clock.now();
        // A tick claims the fires it runs: one dated ahead of the real clock would make
        // the real tick at that instant skip it.
        if now > clock::wall() + chrono::TimeDelta::minutes(1) {
            eprintln!(
                "run-job: RUN_JOB_NOW ({now}) is ahead of the clock; a tick would claim fires that have not happened"
            );
            return Exit::Config;
        }
        let claimed = match claimed(self.pool, &group.members, now).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!(
                    "run-job: cannot read the tick's claims: {} (has `run-job migrate` been applied to this database?)",
                    database::describe(&e)
                );
                return Exit::Runner;
            }
        };
        let due = due(group, declarations, &claimed, now);
        let (mut outcomes, runs) = self.start(&due, deps).await;
        let ran = futures::future::join_all(
            runs.into_iter()
                .map(|(d, run_id, built)| self.member_run(d, run_id, built)),
        )
        .await;
        outcomes.extend(ran);
        for d in declarations
            .iter()
            .filter(|d| group.members.contains(&d.name))
        {
            if !outcomes.iter().any(|o| o.job == d.name) {
                let why = if d.enabled { "not_due" } else { "disabled" };
                outcomes.push(member(d, None, why, Exit::Success));
            }
        }
        outcomes.sort_by(|a, b| a.job.cmp(&b.job));
        if let Err(e) = prune(self.pool, &group.members, now).await {
            tracing::warn!(error = %database::describe(&e), "could not delete old tick claims");
        }
        let exit = worst(outcomes.iter().map(|o| o.exit));
        tracing::info!(
            tick = %group.name,
            at = %now,
            ran = outcomes
                .iter()
                .filter(|o| o.fire.is_some() && !matches!(o.outcome.as_str(), "claimed_elsewhere" | "not_started"))
                .count(),
            members = %serde_json::to_string(&outcomes).unwrap_or_default(),
            exit_code = exit.code(),
            "tick finished"
        );
        exit
    }

    /// Builds and claims each due member: the ones to run, and the outcomes of those
    /// that will not. A member is set up before its fire is claimed, so one that cannot
    /// be built keeps its fire for a tick that can; nothing is claimed after SIGTERM.
    async fn start<'d>(
        &self,
        due: &[Due<'d>],
        deps: &Deps,
    ) -> (Vec<MemberOutcome>, Vec<(Due<'d>, Uuid, Arc<dyn Job>)>) {
        let mut outcomes = Vec::new();
        let mut runs = Vec::new();
        for d in due {
            let run_id = Uuid::now_v7();
            let job = d.job;
            let built = match build_job(job, deps) {
                Ok(built) => built,
                Err(exit) => {
                    let why = "the job could not be set up (see stderr)";
                    member_not_started(job, run_id, exit, why).await;
                    outcomes.push(member(job, Some(d.fire), "not_started", exit));
                    continue;
                }
            };
            if self.shutdown.is_cancelled() {
                outcomes.push(member(job, Some(d.fire), "not_started", Exit::Interrupted));
                continue;
            }
            match claim(self.pool, &job.name, d.fire, run_id).await {
                Ok(true) => runs.push((d.clone(), run_id, built)),
                Ok(false) => {
                    let outcome = member(job, Some(d.fire), "claimed_elsewhere", Exit::Success);
                    outcomes.push(outcome);
                }
                Err(e) => {
                    tracing::error!(job = %job.name, error = %database::describe(&e), "cannot claim the fire");
                    let why = "its fire could not be claimed";
                    member_not_started(job, run_id, Exit::Runner, why).await;
                    outcomes.push(member(job, Some(d.fire), "not_started", Exit::Runner));
                }
            }
        }
        (outcomes, runs)
    }

    /// One member's run, as `run-job <name>` would run it, in its own span.
    async fn member_run(&self, d: Due<'_>, run_id: Uuid, built: Arc<dyn Job>) -> MemberOutcome {
        let span = run::span(&d.job.name, run_id);
        async move {
            let heartbeat = run_heartbeat(d.job);
            let request = RunRequest {
                declaration: d.job,
                run_id,
                trigger: TRIGGER,
                pool: self.pool,
                connect_options: self.options,
                shutdown: self.shutdown,
                grace: self.cli.grace(),
                host: config::process_env("HOSTNAME"),
                json_logs: telemetry::is_json(self.cli.log_format),
                logs: run::LogScope::Run,
                heartbeat: heartbeat.as_ref(),
            };
            match run::run_once(request, built).await {
                Ok(report) => {
                    let (outcome, exit) = (report.outcome.as_str(), report.outcome.exit());
                    member(d.job, Some(d.fire), outcome, exit)
                }
                Err(e) => {
                    tracing::error!(error = %e, "the run could not start or be recorded");
                    member(d.job, Some(d.fire), "not_started", Exit::Runner)
                }
            }
        }
        .instrument(span)
        .await
    }
}

/// A member that will not run this tick says so where a run of its own would: its
/// heartbeat's failure ping, if it declares one.
async fn member_not_started(job: &JobDeclaration, run_id: Uuid, exit: Exit, why: &str) {
    if let HeartbeatSetting::Ready(h) = heartbeat_for(job) {
        h.runner_failed(None, &job.name, run_id, exit, why).await;
    }
}

fn member(
    job: &JobDeclaration,
    fire: Option<chrono::DateTime<Utc>>,
    outcome: &str,
    exit: Exit,
) -> MemberOutcome {
    MemberOutcome {
        job: job.name.clone(),
        fire,
        outcome: outcome.to_string(),
        exit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declarations::JobDeclaration;

    fn job(name: &str, schedule: &str, enabled: bool) -> JobDeclaration {
        let mut d = crate::declarations::sharing_fixture(name, schedule, "");
        d.enabled = enabled;
        d
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn names(due: &[Due<'_>]) -> Vec<(String, String)> {
        due.iter()
            .map(|d| (d.job.name.clone(), d.fire.format("%H:%M").to_string()))
            .collect()
    }

    #[test]
    fn a_tick_runs_what_fired_since_each_jobs_last_claim_once() {
        let members = [
            job("every-2", "cron(0/2 * * * ? *)", true),
            job("every-5", "cron(0/5 * * * ? *)", true),
            job("hourly", "cron(0 * * * ? *)", true),
            job("off", "cron(0/2 * * * ? *)", false),
        ];
        let group = crate::groups::derive(&members).unwrap().remove(0);
        let none = BTreeMap::new();
        // First tick, 10 s late: the fires of the last period.
        let first = due(&group, &members, &none, at("2026-12-05T12:06:10Z"));
        assert_eq!(
            names(&first),
            [
                ("every-2".into(), "12:06".into()),
                ("every-5".into(), "12:05".into())
            ]
        );
        // Two ticks missed: each late job once, for its latest fire.
        let claimed: BTreeMap<String, DateTime<Utc>> = first
            .iter()
            .map(|d| (d.job.name.clone(), d.fire))
            .chain([("hourly".to_string(), at("2026-12-05T12:00:00Z"))])
            .collect();
        let later = due(&group, &members, &claimed, at("2026-12-05T12:12:04Z"));
        assert_eq!(
            names(&later),
            [
                ("every-2".into(), "12:12".into()),
                ("every-5".into(), "12:10".into())
            ]
        );
        // The hour: the hourly job too.
        let hour = due(&group, &members, &claimed, at("2026-12-05T13:00:30Z"));
        assert_eq!(hour.len(), 3, "{:?}", names(&hour));
        // After days without ticks, each job's latest fire only.
        let stale: BTreeMap<String, DateTime<Utc>> =
            [("hourly".to_string(), at("2026-12-01T00:00:00Z"))].into();
        let back = due(&group, &members, &stale, at("2026-12-05T12:01:00Z"));
        assert_eq!(names(&back)[2], ("hourly".into(), "12:00".into()));
    }

    #[test]
    fn a_fire_older_than_the_catch_up_window_is_not_run() {
        let members = [
            job("every-2", "cron(0/2 * * * ? *)", true),
            job("weekdays", "cron(0 9 ? * MON-FRI *)", true),
        ];
        let group = crate::groups::derive(&members).unwrap().remove(0);
        // Last run Thursday 09:00; Friday's fire was missed and it is now Sunday noon:
        // Friday is more than a day back, so the job waits for Monday.
        let claimed: BTreeMap<String, DateTime<Utc>> =
            [("weekdays".to_string(), at("2026-12-03T09:00:00Z"))].into();
        let sunday = due(&group, &members, &claimed, at("2026-12-06T12:00:00Z"));
        assert_eq!(names(&sunday), [("every-2".into(), "12:00".into())]);
        // Saturday morning, within the day: Friday's fire runs.
        let saturday = due(&group, &members, &claimed, at("2026-12-05T08:00:00Z"));
        assert!(names(&saturday).contains(&("weekdays".into(), "09:00".into())));
    }

    #[test]
    fn the_worst_member_decides_the_exit() {
        assert_eq!(
            worst([Exit::Success, Exit::Failed, Exit::Interrupted]),
            Exit::Failed
        );
        assert_eq!(worst([Exit::TimedOut, Exit::Runner]), Exit::Runner);
        assert_eq!(worst([]), Exit::Success);
    }
}
