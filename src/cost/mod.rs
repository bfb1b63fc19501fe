//! `run-job cost`: what each job will cost over the next 30 days, and in all.
//!
//! From the declaration: the task size, architecture and image; from the schedule
//! evaluator: the exact number of fires in the next 30 days (no averages: a weekday
//! schedule fires 22 or 21 times, not 30 × 5/7); from `job_runs`: the p50 and p95 run
//! time and the bytes a run logs, over `--since`. A job with no finished run in the
//! window, or every job when there is no database, is costed at its declared timeout,
//! an upper bound, and marked so. The prices come from the prices file ([`prices`]), the
//! arithmetic from [`bill`]. `--compare original` adds the original runner's cost of the
//! same schedule at its sizes. Below the jobs, the fixed items of what the Terraform
//! creates ([`Infra`]: its choices as flags; the alarms, hours and bytes derived from the
//! declarations as the Terraform derives them), and the whole month's total.

pub mod bill;
pub mod prices;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use serde_json::json;
use sqlx::PgPool;

use crate::declarations::{Image, JobDeclaration};
use crate::groups::Group;
use bill::{Capacity, Fixed, FixedItem, InsightsHours, Month, Task};
use prices::{PriceBook, Region};

/// Bytes a run is assumed to log when it has no measured history: the median of the
/// six production jobs' runs against the stand-ins (5 to 10 lines of about 300 bytes,
/// and the summary line of about 900). A run's log bill is a small fraction of a cent,
/// so an estimate does not move a total.
pub const DEFAULT_LOG_BYTES: f64 = 3_000.0;

/// Seconds from the start of the image pull to the run starting, per image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Startup {
    pub slim: f64,
    pub chromium: f64,
    pub original: f64,
}

impl Default for Startup {
    /// `slim` is 47 MB compressed, `chromium` 317 MB compressed and 816 MB unpacked
    /// (BENCHMARKS.md); ECR in the same region serves a task at roughly 50-100 MB/s,
    /// and unpacking costs about as much again. The original's one image carried
    /// Node.js, its node_modules and Chromium, for every job.
    fn default() -> Self {
        Startup {
            slim: 5.0,
            chromium: 15.0,
            original: 20.0,
        }
    }
}

impl Startup {
    /// `slim=5,chromium=15,original=20`, any subset.
    pub fn parse(text: &str) -> Result<Startup, String> {
        let mut s = Startup::default();
        for (image, secs) in seconds_by_name(text, "IMAGE")? {
            match image.as_str() {
                "slim" => s.slim = secs,
                "chromium" => s.chromium = secs,
                "original" => s.original = secs,
                other => {
                    return Err(format!(
                        "unknown image `{other}`; expected slim, chromium or original"
                    ));
                }
            }
        }
        Ok(s)
    }

    fn of(&self, image: Image) -> f64 {
        match image {
            Image::Slim => self.slim,
            Image::Chromium => self.chromium,
        }
    }
}

/// Run times of the original's rules measured at the original's own size
/// (`--original-run-time scrape-events=48.6`), for a rule whose task differs from the
/// run-job job doing its work: costed at that job's run time, measured at run-job's
/// smaller size, it would be billed for run-job's slowness.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OriginalRunTimes(pub BTreeMap<String, f64>);

impl OriginalRunTimes {
    /// `RULE=SECONDS,...`; the rules are checked against the prices file later.
    pub fn parse(text: &str) -> Result<OriginalRunTimes, String> {
        Ok(OriginalRunTimes(
            seconds_by_name(text, "RULE")?.into_iter().collect(),
        ))
    }

    /// The first rule named that the prices file's original does not have.
    pub fn unknown<'a>(&'a self, book: &PriceBook) -> Option<&'a str> {
        self.0
            .keys()
            .find(|rule| !book.original.jobs.contains_key(*rule))
            .map(String::as_str)
    }
}

/// `NAME=SECONDS,...` as pairs, each a finite number of seconds, not negative; `what`
/// names the left side in the message for a part without `=`.
fn seconds_by_name(text: &str, what: &str) -> Result<Vec<(String, f64)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (name, secs) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not {what}=SECONDS"))?;
            let secs: f64 = secs
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("`{secs}` in `{part}` is not a number of seconds"))?;
            Ok((name.trim().to_owned(), secs))
        })
        .collect()
}

/// Bytes of image a task pulls, compressed, per image (docs/deploying.md, "The images"):
/// what a NAT gateway processes per run when no S3 gateway endpoint carries ECR's layers.
pub const PULL_BYTES_SLIM: f64 = 47e6;
pub const PULL_BYTES_CHROMIUM: f64 = 269e6;

/// The Terraform's choices that put fixed items on the bill, as `run-job cost` flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Infra {
    /// Container Insights is on (the Terraform's `container_insights = "enabled"`):
    /// its metrics are billed as CloudWatch custom metrics.
    #[arg(long)]
    pub container_insights: bool,
    /// The tasks leave through a NAT gateway (`network.nat_gateway`, which takes their
    /// public IPs away): its hours, its address, and the image layers it carries.
    #[arg(long)]
    pub nat: bool,
    /// Interface VPC endpoints (`network.vpc_endpoints` creates 5: ecr.api, ecr.dkr,
    /// logs, secretsmanager, ssm); with them the S3 gateway endpoint carries the image
    /// layers instead of the NAT gateway.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub endpoints: u32,
    /// Zones the endpoints are in (the created VPC has 2).
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=6))]
    pub zones: u32,
    /// The tasks run without a public IPv4 address (`network.assign_public_ip = false`,
    /// e.g. private subnets behind the marketplace's own NAT, which is not costed here).
    #[arg(long)]
    pub no_public_ip: bool,
    /// Days the log groups keep the logs (the Terraform's `log_retention_days`).
    #[arg(long, default_value_t = 7, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3653))]
    pub log_retention_days: u32,
    /// The account's free alarms (10 a month) still unused by others: these come off.
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=10))]
    pub free_alarms: u32,
    /// The account's free dashboards (3) still unused by others.
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=3))]
    pub free_dashboards: u32,
}

/// What to project.
pub struct Query<'a> {
    pub region: &'a str,
    pub since: TimeDelta,
    pub capacity: Capacity,
    pub startup: Startup,
    pub compare_original: bool,
    pub original_run_times: OriginalRunTimes,
    pub json: bool,
    pub infra: Infra,
}

/// A job's measured runs over the window.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct History {
    pub job: String,
    pub runs: i64,
    pub p50_s: f64,
    pub p95_s: f64,
    pub log_bytes: Option<f64>,
}

/// Finished runs since `from`, per job. Skipped runs count: each was a task that
/// started, found the lock taken and stopped, and was billed its minute. Abandoned
/// rows do not: their end is when the next run noticed, not when the task stopped.
pub async fn history(
    pool: &PgPool,
    from: DateTime<Utc>,
) -> sqlx::Result<BTreeMap<String, History>> {
    let rows: Vec<History> = sqlx::query_as(
        "SELECT job, count(*) AS runs,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))::float8 AS p50_s,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))::float8 AS p95_s,
                avg(log_bytes)::float8 AS log_bytes
           FROM job_runs
          WHERE started_at >= $1 AND finished_at IS NOT NULL
            AND outcome NOT IN ('running', 'abandoned')
       GROUP BY job",
    )
    .bind(from)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|h| (h.job.clone(), h)).collect())
}

/// One job's projection. A member of a shared task ([`crate::groups`]) is not billed a
/// task of its own: its `at_*` carry only what its runs log, and its group's
/// [`GroupLine`] the task.
#[derive(Debug)]
pub struct Line<'a> {
    pub declaration: &'a JobDeclaration,
    pub fires: u64,
    /// Measured runs behind p50/p95; `None` when they are the declared timeout.
    pub measured_runs: Option<i64>,
    pub p50_s: f64,
    pub p95_s: f64,
    pub log_bytes: f64,
    pub at_p50: Month,
    pub at_p95: Month,
    /// The shared task that runs it, if any.
    pub group: Option<String>,
}

/// One shared task's projection: a tick is a task, billed start-up plus the longest
/// member's run (p50 or p95), at least a minute, at the group's derived size.
#[derive(Debug)]
pub struct GroupLine {
    pub group: Group,
    /// Ticks of its schedule in the 30 days (each starts a task, due members or not).
    pub ticks: u64,
    /// The clock hours (Unix hours) those ticks fall in, for Container Insights.
    pub tick_hours: BTreeSet<i64>,
    pub p50_s: f64,
    pub p95_s: f64,
    /// Whether every member's run time was measured.
    pub measured: bool,
    pub at_p50: Month,
    pub at_p95: Month,
}

/// One of the original's own scheduled jobs (`--compare original`).
#[derive(Debug)]
pub struct OriginalLine {
    pub name: String,
    pub schedule: String,
    pub runs_like: String,
    pub size: crate::declarations::Size,
    pub architecture: crate::declarations::Architecture,
    pub fires: u64,
    pub run_s: f64,
    /// Whether `run_s` was measured at the original's own size (given), rather than the
    /// `runs_like` job's p50.
    pub run_s_given: bool,
    pub month: Month,
}

/// Everything `cost` prints.
#[derive(Debug)]
pub struct Projection<'a> {
    pub lines: Vec<Line<'a>>,
    pub groups: Vec<GroupLine>,
    /// The original at its own schedules, when asked for.
    pub original: Option<Vec<OriginalLine>>,
}

impl Projection<'_> {
    /// The month's job bill (tasks and logs) at p50 and at p95.
    pub fn jobs_total(&self) -> (f64, f64) {
        let p50 = self.lines.iter().map(|l| l.at_p50.total).sum::<f64>()
            + self.groups.iter().map(|g| g.at_p50.total).sum::<f64>();
        let p95 = self.lines.iter().map(|l| l.at_p95.total).sum::<f64>()
            + self.groups.iter().map(|g| g.at_p95.total).sum::<f64>();
        (p50, p95)
    }

    /// Tasks started in the 30 days: a job's fires, or a group's ticks.
    pub fn tasks(&self) -> u64 {
        self.lines
            .iter()
            .filter(|l| l.group.is_none())
            .map(|l| l.fires)
            .sum::<u64>()
            + self.groups.iter().map(|g| g.ticks).sum::<u64>()
    }

    /// The original's month and its tasks, when compared.
    pub fn original_total(&self) -> Option<(f64, u64)> {
        self.original.as_ref().map(|o| {
            (
                o.iter().map(|l| l.month.total).sum(),
                o.iter().map(|l| l.fires).sum(),
            )
        })
    }
}

/// Projects every declared job, and every shared task, over the 30 days from `now`.
pub fn project<'a>(
    declarations: &'a [JobDeclaration],
    history: &BTreeMap<String, History>,
    book: &PriceBook,
    region: &Region,
    q: &Query<'_>,
    now: DateTime<Utc>,
) -> Projection<'a> {
    // Whole seconds, as fires and ticks are.
    let now = now.with_nanosecond(0).unwrap_or(now);
    let p = Projector {
        declarations,
        history,
        region,
        q,
        now,
        until: now + TimeDelta::days(30),
    };
    let groups = crate::groups::derive(declarations).unwrap_or_default();
    let lines = declarations.iter().map(|d| p.job(d, &groups)).collect();
    let groups = groups.into_iter().map(|g| p.group(g)).collect();
    let original = q.compare_original.then(|| p.original(book));
    Projection {
        lines,
        groups,
        original,
    }
}

/// What every line of a projection is computed from.
struct Projector<'a, 'q> {
    declarations: &'a [JobDeclaration],
    history: &'q BTreeMap<String, History>,
    region: &'q Region,
    q: &'q Query<'q>,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
}

impl<'a> Projector<'a, '_> {
    /// A month of `fires` runs of `task`, each `secs` long and logging `log_bytes`.
    fn at(&self, task: &Task, fires: u64, secs: f64, log_bytes: f64) -> Month {
        let m = bill::month(task, fires, secs, log_bytes, self.region, self.q.capacity);
        if self.q.infra.nat || self.q.infra.no_public_ip {
            // No public IP: the address is not billed (a NAT gateway's is, among the
            // fixed items).
            Month {
                public_ipv4: 0.0,
                total: m.compute + m.logs,
                ..m
            }
        } else {
            m
        }
    }

    /// A job's p50 and p95 run time from its history, or its timeout for both.
    fn run_times(&self, name: &str, timeout: f64) -> (f64, f64) {
        self.history
            .get(name)
            .map_or((timeout, timeout), |h| (h.p50_s, h.p95_s))
    }

    fn job(&self, d: &'a JobDeclaration, groups: &[crate::groups::Group]) -> Line<'a> {
        let fires = if d.enabled {
            bill::fires_between(&d.schedule, self.now, self.until)
        } else {
            0
        };
        let h = self.history.get(&d.name);
        let (p50_s, p95_s) = self.run_times(&d.name, d.timeout.as_secs_f64());
        let log_bytes = h.and_then(|h| h.log_bytes).unwrap_or(DEFAULT_LOG_BYTES);
        let group = d
            .shares_task
            .clone()
            .filter(|g| groups.iter().any(|x| &x.name == g));
        let ours = Task {
            size: d.size,
            architecture: d.architecture,
            startup_seconds: self.q.startup.of(d.image),
        };
        let month = |secs| {
            let m = self.at(&ours, fires, secs, log_bytes);
            if group.is_some() { logs_only(m) } else { m }
        };
        Line {
            declaration: d,
            fires,
            measured_runs: h.map(|h| h.runs),
            p50_s,
            p95_s,
            log_bytes,
            at_p50: month(p50_s),
            at_p95: month(p95_s),
            group,
        }
    }

    fn group(&self, g: crate::groups::Group) -> GroupLine {
        let members: Vec<&JobDeclaration> = self
            .declarations
            .iter()
            .filter(|d| d.enabled && g.members.contains(&d.name))
            .collect();
        // EventBridge starts the group's task at every tick of its schedule while any
        // member is enabled, whether or not a member is due at it.
        let instants = if g.enabled {
            tick_instants(&g, self.now, self.until)
        } else {
            BTreeSet::new()
        };
        let ticks = instants.len() as u64;
        let tick_hours = instants.iter().map(|t| t.div_euclid(3600)).collect();
        let longest = |pick: fn((f64, f64)) -> f64| {
            members
                .iter()
                .map(|d| pick(self.run_times(&d.name, d.timeout.as_secs_f64())))
                .fold(0.0, f64::max)
        };
        let (p50_s, p95_s) = (longest(|t| t.0), longest(|t| t.1));
        let task = Task {
            size: g.size,
            architecture: g.architecture,
            startup_seconds: self.q.startup.of(g.image),
        };
        GroupLine {
            tick_hours,
            measured: members.iter().all(|d| self.history.contains_key(&d.name)),
            ticks,
            p50_s,
            p95_s,
            at_p50: self.at(&task, ticks, p50_s, 0.0),
            at_p95: self.at(&task, ticks, p95_s, 0.0),
            group: g,
        }
    }

    /// The original's own rules, each run as long as the run-job job doing its work.
    fn original(&self, book: &PriceBook) -> Vec<OriginalLine> {
        book.original
            .jobs
            .iter()
            .filter_map(|(name, o)| {
                let schedule = crate::schedule::Schedule::parse(&o.schedule).ok()?;
                let fires = bill::fires_between(&schedule, self.now, self.until);
                let timeout = self
                    .declarations
                    .iter()
                    .find(|d| d.name == o.runs_like)
                    .map_or(600.0, |d| d.timeout.as_secs_f64());
                let given = self.q.original_run_times.0.get(name).copied();
                let run_s = given.unwrap_or_else(|| self.run_times(&o.runs_like, timeout).0);
                let log_bytes = self
                    .history
                    .get(&o.runs_like)
                    .and_then(|h| h.log_bytes)
                    .unwrap_or(DEFAULT_LOG_BYTES);
                let (size, architecture) = book.original.task(o);
                let task = Task {
                    size,
                    architecture,
                    startup_seconds: self.q.startup.original,
                };
                Some(OriginalLine {
                    name: name.clone(),
                    schedule: o.schedule.clone(),
                    runs_like: o.runs_like.clone(),
                    size,
                    architecture,
                    fires,
                    run_s,
                    run_s_given: given.is_some(),
                    month: self.at(&task, fires, run_s, log_bytes),
                })
            })
            .collect()
    }
}

/// A member's month: its logs; its group's line carries the task.
fn logs_only(m: Month) -> Month {
    Month {
        billed_seconds_per_run: 0.0,
        task_hours: 0.0,
        compute: 0.0,
        public_ipv4: 0.0,
        total: m.logs,
        ..m
    }
}

/// The instants in `[from, until)` at which the group's schedule starts its task.
pub fn tick_instants(group: &Group, from: DateTime<Utc>, until: DateTime<Utc>) -> BTreeSet<i64> {
    group
        .schedule()
        .iter_after(from - TimeDelta::seconds(1))
        .skip_while(|t| *t < from)
        .take_while(|t| *t < until)
        .map(|t| t.timestamp())
        .collect()
}

/// Whether the Terraform gives a job a missed-run alarm (schedule.tf, monitoring.tf):
/// enabled; a rate, or a cron firing every day or on weekdays with month `*` (no
/// day-of-month, `L`, `W` or `#`); and a window, max(2 × the longest gap between fires,
/// 600 s), of at most 7 days.
pub fn has_missed_run_alarm(d: &JobDeclaration, now: DateTime<Utc>) -> bool {
    if !d.enabled {
        return false;
    }
    if !d.schedule.repeats_weekly() {
        return false;
    }
    // Two weeks of fires hold every gap of a daily or weekday cycle.
    let fires: Vec<_> = d
        .schedule
        .iter_after(now)
        .take_while(|t| *t < now + TimeDelta::days(15))
        .collect();
    let Some(gap) = fires.windows(2).map(|w| w[1] - w[0]).max() else {
        return false;
    };
    (gap * 2).max(TimeDelta::seconds(600)) <= TimeDelta::days(7)
}

/// The fixed items' inputs: the flags, and what the declarations imply over the 30 days
/// from `now` (alarms, the hours tasks run for Container Insights, log bytes, image
/// layers through a NAT gateway). A shared task is one task family and pulls its image
/// once a tick; its members' alarms and logs stay theirs.
pub fn fixed_inputs(p: &Projection<'_>, infra: &Infra, now: DateTime<Utc>) -> Fixed {
    // Whole seconds, as fires are: a window from 00:00:00.004 would touch 721 clock hours.
    let now = now.with_nanosecond(0).unwrap_or(now);
    let until = now + TimeDelta::days(30);
    let solo = || p.lines.iter().filter(|l| l.group.is_none());
    let alarms = p
        .lines
        .iter()
        .filter(|l| has_missed_run_alarm(l.declaration, now))
        .count() as u32
        + 1;
    let container_insights = infra.container_insights.then(|| {
        // Custom metrics are billed for the hours they receive data: a family's hours
        // are those a run of it starts in; the cluster's, those any run starts in.
        let mut cluster = BTreeSet::new();
        let mut family_hours = 0u64;
        for l in solo().filter(|l| l.fires > 0) {
            let hours: BTreeSet<i64> = l
                .declaration
                .schedule
                .iter_after(now - TimeDelta::seconds(1))
                .skip_while(|t| *t < now)
                .take_while(|t| *t < until)
                .map(|t| t.timestamp().div_euclid(3600))
                .collect();
            family_hours += hours.len() as u64;
            cluster.extend(hours);
        }
        for g in &p.groups {
            family_hours += g.tick_hours.len() as u64;
            cluster.extend(g.tick_hours.iter().copied());
        }
        InsightsHours {
            cluster_hours: cluster.len() as u64,
            family_hours,
        }
    });
    let gib = f64::from(1u32 << 30);
    let logged: f64 = p.lines.iter().map(|l| l.fires as f64 * l.log_bytes).sum();
    let layers = |image| match image {
        Image::Slim => PULL_BYTES_SLIM,
        Image::Chromium => PULL_BYTES_CHROMIUM,
    };
    let pulled: f64 = solo()
        .map(|l| l.fires as f64 * layers(l.declaration.image))
        .sum::<f64>()
        + p.groups
            .iter()
            .map(|g| g.ticks as f64 * layers(g.group.image))
            .sum::<f64>();
    Fixed {
        alarms,
        free_alarms: infra.free_alarms,
        free_dashboards: infra.free_dashboards,
        container_insights,
        log_gb_per_day: logged / gib / 30.0,
        log_retention_days: infra.log_retention_days,
        nat_gateways: u32::from(infra.nat),
        // With endpoints, the S3 gateway endpoint carries ECR's layers.
        nat_gb: if infra.endpoints > 0 {
            0.0
        } else {
            pulled / gib
        },
        endpoints: infra.endpoints,
        zones: infra.zones,
    }
}

/// Prints the projection: a table, or one JSON object per job, group, original job and
/// fixed item, and one for the total.
pub fn print(
    p: &Projection<'_>,
    book: &PriceBook,
    region: &Region,
    q: &Query<'_>,
    now: DateTime<Utc>,
) {
    let fixed = bill::fixed_items(
        &fixed_inputs(p, &q.infra, now),
        region,
        &book.container_insights,
    );
    let fixed = &fixed[..];
    if q.json {
        for l in &p.lines {
            println!("{}", line_json(l));
        }
        for g in &p.groups {
            println!("{}", group_json(g));
        }
        for o in p.original.iter().flatten() {
            println!("{}", original_json(o));
        }
        for f in fixed {
            println!("{}", json!({ "kind": "fixed", "item": f }));
        }
        println!("{}", total_json(p, fixed, q));
        return;
    }
    print_header(region, q, now);
    print_jobs(p);
    let (p50, p95) = p.jobs_total();
    print_fixed(fixed, p50, p95);
    if let (Some(original), Some(theirs)) = (&p.original, p.original_total()) {
        print_original(original, theirs, (p50, p.tasks()), fixed_sum(fixed));
    }
}

fn fixed_sum(fixed: &[FixedItem]) -> f64 {
    fixed.iter().map(|f| f.month).sum()
}

/// The table of jobs and shared tasks, and their total.
fn print_jobs(p: &Projection<'_>) {
    let w = p
        .lines
        .iter()
        .map(|l| l.declaration.name.len())
        .chain(p.groups.iter().map(|g| g.group.name.len() + 5))
        .max()
        .unwrap_or(0)
        .max(5);
    let header = [
        "JOB",
        "TASK",
        "FIRES",
        "P50",
        "P95",
        "BILLED",
        "COMPUTE",
        "IPV4",
        "LOGS",
        "MONTH P50",
        "MONTH P95",
    ];
    print_row(w, &header.map(String::from));
    for l in &p.lines {
        print_row(w, &job_cells(l));
    }
    for g in &p.groups {
        print_row(w, &group_cells(g));
    }
    print_row(w, &total_cells(p));
    if !p.groups.is_empty() {
        println!(
            "tick <group>: one task per tick runs the group's due members (shares_task); a tick is billed start-up + its longest member's run, at least 60 s."
        );
    }
    if p.lines.iter().any(|l| l.measured_runs.is_none()) {
        println!(
            "≤: no finished run in the window; the declared timeout is used, so that job's figures are an upper bound."
        );
    }
}

fn print_row(w: usize, c: &[String; 11]) {
    println!(
        "{:<w$} {:<22} {:>6} {:>9} {:>9} {:>7} {:>9} {:>7} {:>6} {:>10} {:>10}",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10]
    );
}

fn job_cells(l: &Line<'_>) -> [String; 11] {
    let d = l.declaration;
    let bound = if l.measured_runs.is_none() { "≤" } else { "" };
    let m = &l.at_p50;
    let shared = l.group.as_ref().map(|g| format!("in tick {g}"));
    [
        d.name.clone(),
        shared
            .clone()
            .unwrap_or_else(|| size_label(d.size, d.architecture)),
        if d.enabled {
            l.fires.to_string()
        } else {
            "off".into()
        },
        format!("{bound}{}", seconds(l.p50_s)),
        format!("{bound}{}", seconds(l.p95_s)),
        if shared.is_some() {
            "-".into()
        } else {
            format!("{}s", m.billed_seconds_per_run)
        },
        dollars(m.compute),
        dollars(m.public_ipv4),
        dollars(m.logs),
        dollars(m.total),
        dollars(l.at_p95.total),
    ]
}

fn group_cells(g: &GroupLine) -> [String; 11] {
    let bound = if g.measured { "" } else { "≤" };
    let m = &g.at_p50;
    [
        format!("tick {}", g.group.name),
        size_label(g.group.size, g.group.architecture),
        g.ticks.to_string(),
        format!("{bound}{}", seconds(g.p50_s)),
        format!("{bound}{}", seconds(g.p95_s)),
        format!("{}s", m.billed_seconds_per_run),
        dollars(m.compute),
        dollars(m.public_ipv4),
        dollars(m.logs),
        dollars(m.total),
        dollars(g.at_p95.total),
    ]
}

fn total_cells(p: &Projection<'_>) -> [String; 11] {
    let sum = |f: &dyn Fn(&Month) -> f64| {
        p.lines.iter().map(|l| f(&l.at_p50)).sum::<f64>()
            + p.groups.iter().map(|g| f(&g.at_p50)).sum::<f64>()
    };
    let (p50, p95) = p.jobs_total();
    [
        "TOTAL".into(),
        format!("{} tasks", p.tasks()),
        p.lines.iter().map(|l| l.fires).sum::<u64>().to_string(),
        String::new(),
        String::new(),
        String::new(),
        dollars(sum(&|m| m.compute)),
        dollars(sum(&|m| m.public_ipv4)),
        dollars(sum(&|m| m.logs)),
        dollars(p50),
        dollars(p95),
    ]
}

/// The original at its own schedules, and the ratio of what the tasks cost on each side
/// (compute, public IPv4, log ingestion). The fixed items are monitoring the original
/// did not have (its alarms and dashboard are not counted here), so they stay outside
/// the ratio and are said beside it.
fn print_original(
    original: &[OriginalLine],
    (theirs, tasks): (f64, u64),
    (ours, our_tasks): (f64, u64),
    fixed: f64,
) {
    println!();
    println!(
        "ORIGINAL at its own schedules (its six EventBridge rules, each a task; run times of the run-job job doing the work, or measured at the rule's own size where given):"
    );
    let w = original.iter().map(|o| o.name.len()).max().unwrap_or(0);
    for o in original {
        let run_time = if o.run_s_given {
            format!("{} run, measured at its size", seconds(o.run_s))
        } else {
            format!("runs like {}", o.runs_like)
        };
        println!(
            "  {:<w$}  {:<22} {:<22} {:>6} fires  {:>7}s billed  {:>8}  ({run_time})",
            o.name,
            o.schedule,
            size_label(o.size, o.architecture),
            o.fires,
            o.month.billed_seconds_per_run,
            dollars(o.month.total),
        );
    }
    println!("  {:<w$}  {tasks} tasks, {}", "ORIGINAL", dollars(theirs));
    if theirs > 0.0 {
        println!(
            "run-job / original: {} / {} = {:.2}× at p50 ({our_tasks} tasks against {tasks}); run-job's fixed items, {} more, are monitoring the original did not have.",
            dollars(ours),
            dollars(theirs),
            ours / theirs,
            dollars(fixed),
        );
    }
}

/// The fixed items, their sum, and the month's whole bill.
fn print_fixed(fixed: &[FixedItem], jobs_p50: f64, jobs_p95: f64) {
    println!();
    println!("Fixed items (what the Terraform creates, whatever the runs):");
    let w = fixed.iter().map(|f| f.item.len()).max().unwrap_or(0);
    let q = fixed
        .iter()
        .map(|f| f.quantity.chars().count())
        .max()
        .unwrap_or(0);
    for f in fixed {
        println!(
            "  {:<w$}  {:<q$}  {:>8}  at {} (read {}; {})",
            f.item,
            f.quantity,
            dollars(f.month),
            f.price,
            f.read,
            f.source
        );
    }
    let fixed_sum: f64 = fixed.iter().map(|f| f.month).sum();
    println!("  {:<w$}  {:<q$}  {:>8}", "FIXED", "", dollars(fixed_sum));
    println!();
    println!(
        "MONTH: jobs {} + fixed {} = {} at p50 run times; {} + {} = {} at p95.",
        dollars(jobs_p50),
        dollars(fixed_sum),
        dollars(jobs_p50 + fixed_sum),
        dollars(jobs_p95),
        dollars(fixed_sum),
        dollars(jobs_p95 + fixed_sum),
    );
    println!(
        "Not projected: data transfer out, ECR storage, Secrets Manager and KMS calls, SNS deliveries, the dead-letter queue's requests (cents at most)."
    );
}

fn print_header(region: &Region, q: &Query<'_>, now: DateTime<Utc>) {
    let discount = match q.capacity {
        Capacity::Spot => format!(
            " ({:.1} % off on-demand)",
            region.spot_discount.value * 100.0
        ),
        Capacity::OnDemand => String::new(),
    };
    println!(
        "{}, {}{discount}: the 30 days of fires from {} UTC; run times: p50/p95 of job_runs since {} UTC.",
        q.region,
        q.capacity.name(),
        now.format("%Y-%m-%d %H:%M"),
        (now - q.since).format("%Y-%m-%d %H:%M"),
    );
    println!(
        "Billed per run: start-up (slim {} s, chromium {} s{}) + run time, rounded up to the second, at least 60 s. Prices: Fargate read {}.",
        q.startup.slim,
        q.startup.chromium,
        if q.compare_original {
            format!(", original {} s", q.startup.original)
        } else {
            String::new()
        },
        region.fargate.read,
    );
    if q.compare_original {
        println!(
            "ORIGINAL: its own six scheduled jobs at their production schedules and sizes (0.25 vCPU / 0.5 GB arm64; scraping 2 vCPU / 4 GB x86_64), one image, each fire a task."
        );
    }
    println!();
}

fn size_label(
    size: crate::declarations::Size,
    architecture: crate::declarations::Architecture,
) -> String {
    format!(
        "{} vCPU {} GB {}",
        f64::from(size.cpu) / 1024.0,
        f64::from(size.memory) / 1024.0,
        match architecture {
            crate::declarations::Architecture::Arm64 => "arm",
            crate::declarations::Architecture::X86_64 => "x86",
        }
    )
}

fn seconds(s: f64) -> String {
    if s < 59.95 {
        format!("{s:.1} s")
    } else {
        let whole = s.round() as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

fn dollars(v: f64) -> String {
    format!("${v:.2}")
}

fn line_json(l: &Line<'_>) -> serde_json::Value {
    let d = l.declaration;
    json!({
        "kind": "job", "job": d.name, "enabled": d.enabled,
        "cpu": d.size.cpu, "memory": d.size.memory, "architecture": d.architecture.to_string(),
        "shares_task": l.group,
        "fires": l.fires, "runs_measured": l.measured_runs,
        "run_time_source": if l.measured_runs.is_some() { "job_runs" } else { "timeout (upper bound)" },
        "p50_s": l.p50_s, "p95_s": l.p95_s, "log_bytes_per_run": l.log_bytes,
        "at_p50": l.at_p50, "at_p95": l.at_p95,
    })
}

fn group_json(g: &GroupLine) -> serde_json::Value {
    json!({
        "kind": "group", "group": g.group.name, "members": g.group.members,
        "cpu": g.group.size.cpu, "memory": g.group.size.memory,
        "architecture": g.group.architecture.to_string(),
        "period_minutes": g.group.period_minutes, "schedule": g.group.schedule_expression(),
        "ticks": g.ticks, "p50_s": g.p50_s, "p95_s": g.p95_s,
        "run_time_source": if g.measured { "job_runs" } else { "timeout (upper bound)" },
        "at_p50": g.at_p50, "at_p95": g.at_p95,
    })
}

fn original_json(o: &OriginalLine) -> serde_json::Value {
    json!({
        "kind": "original", "job": o.name, "schedule": o.schedule, "runs_like": o.runs_like,
        "cpu": o.size.cpu, "memory": o.size.memory, "architecture": o.architecture.to_string(),
        "fires": o.fires, "run_s": o.run_s, "run_s_given": o.run_s_given, "month": o.month,
    })
}

fn total_json(p: &Projection<'_>, fixed: &[FixedItem], q: &Query<'_>) -> serde_json::Value {
    let fixed_sum = fixed_sum(fixed);
    let (p50, p95) = p.jobs_total();
    let (original, original_tasks) = p.original_total().unzip();
    json!({
        "kind": "total", "region": q.region, "capacity": q.capacity.name(),
        "fires": p.lines.iter().map(|l| l.fires).sum::<u64>(),
        "tasks": p.tasks(),
        "total_p50": p50, "total_p95": p95,
        "fixed": fixed_sum,
        "month_p50": p50 + fixed_sum,
        "month_p95": p95 + fixed_sum,
        "original": original,
        "original_tasks": original_tasks,
        "ratio_p50": original.filter(|o| *o > 0.0).map(|o| p50 / o),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(schedule: &str, enabled: bool) -> JobDeclaration {
        let text = format!(
            "name: fixture\ndescription: Fixture.\nschedule: {schedule}\nsize: {{cpu: 256, memory: 512}}\narchitecture: arm64\ntimeout_seconds: 60\noverlap: forbid\nenabled: {enabled}\n"
        );
        JobDeclaration::parse("fixture.yaml", &text).unwrap()
    }

    #[test]
    fn alarms_are_counted_as_the_terraform_creates_them() {
        // The cases of terraform/tests/test_module.py (MISSED_RUN, UNSUPPORTED).
        let now: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        for (schedule, alarm) in [
            ("cron(0/5 * * * ? *)", true),
            ("cron(0 * * * ? *)", true),
            ("rate(1 day)", true),
            ("cron(0 9 ? * MON-FRI *)", true), // Friday to Monday: 3 days, window 6
            ("cron(20-2/40 22-2 ? * fri-mon *)", true),
            ("rate(4 days)", false), // window 8 days: over CloudWatch's 7
            ("rate(7 days)", false),
            ("cron(0 3 ? * SUN *)", false),
            ("cron(0 12 1 * ? *)", false), // a day of the month
            ("cron(0 3 ? * 6L *)", false),
        ] {
            assert_eq!(
                has_missed_run_alarm(&job(schedule, true), now),
                alarm,
                "{schedule}"
            );
        }
        assert!(!has_missed_run_alarm(
            &job("cron(0/5 * * * ? *)", false),
            now
        ));
    }

    #[test]
    fn durations_round_before_they_split() {
        assert_eq!(super::seconds(4.7), "4.7 s");
        assert_eq!(super::seconds(119.6), "2m00s");
        assert_eq!(super::seconds(600.0), "10m00s");
    }
}

#[cfg(test)]
mod tick_tests {
    use super::*;

    fn job(name: &str, schedule: &str) -> JobDeclaration {
        crate::declarations::sharing_fixture(name, schedule, "")
    }

    #[test]
    fn the_group_is_billed_every_tick_of_its_schedule() {
        let jobs = [
            job("two", "cron(0/2 * * * ? *)"),
            job("five", "cron(0/5 * * * ? *)"),
        ];
        let g = crate::groups::derive(&jobs).unwrap().remove(0);
        let now: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        assert_eq!(tick_instants(&g, now, now + TimeDelta::days(1)).len(), 720);
        // With only the 5-minute job left the tick still comes every 2 minutes: the
        // period is the members' (disabled ones too), and each tick is a task.
        let mut off = jobs.clone();
        off[0].enabled = false;
        let g = crate::groups::derive(&off).unwrap().remove(0);
        assert_eq!(tick_instants(&g, now, now + TimeDelta::hours(1)).len(), 30);
    }
}
