//! `run-job cost`: what each job will cost over the next 30 days, and in all.
//!
//! From the declaration: the task size, architecture and image; from the schedule
//! evaluator: the exact number of fires in the next 30 days (no averages: a weekday
//! schedule fires 22 or 21 times, not 30 × 5/7); from `job_runs`: the p50 and p95 run
//! time and the bytes a run logs, over `--since`. A job with no finished run in the
//! window, or every job when there is no database, is costed at its declared timeout,
//! an upper bound, and marked so. The prices come from the prices file ([`prices`]), the
//! arithmetic from [`bill`]. `--compare original` adds the original runner's cost of the
//! same schedule at its sizes.

pub mod bill;
pub mod prices;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use sqlx::PgPool;

use crate::declarations::{Image, JobDeclaration};
use bill::{Capacity, Month, Task};
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
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (image, secs) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not IMAGE=SECONDS"))?;
            let secs: f64 = secs
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("`{secs}` in `{part}` is not a number of seconds"))?;
            match image.trim() {
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

/// What to project.
pub struct Query<'a> {
    pub region: &'a str,
    pub since: TimeDelta,
    pub capacity: Capacity,
    pub startup: Startup,
    pub compare_original: bool,
    pub json: bool,
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

/// One job's projection.
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
    pub original: Option<Month>,
}

/// Projects every declared job over the 30 days from `now`.
pub fn project<'a>(
    declarations: &'a [JobDeclaration],
    history: &BTreeMap<String, History>,
    book: &PriceBook,
    region: &Region,
    q: &Query<'_>,
    now: DateTime<Utc>,
) -> Vec<Line<'a>> {
    let until = now + TimeDelta::days(30);
    declarations
        .iter()
        .map(|d| {
            let fires = if d.enabled {
                bill::fires_between(&d.schedule, now, until)
            } else {
                0
            };
            let h = history.get(&d.name);
            let timeout = d.timeout.as_secs_f64();
            let (p50_s, p95_s) = h.map_or((timeout, timeout), |h| (h.p50_s, h.p95_s));
            let log_bytes = h.and_then(|h| h.log_bytes).unwrap_or(DEFAULT_LOG_BYTES);
            let ours = Task {
                size: d.size,
                architecture: d.architecture,
                startup_seconds: q.startup.of(d.image),
            };
            let at = |task: &Task, secs: f64| {
                bill::month(task, fires, secs, log_bytes, region, q.capacity)
            };
            let original = q.compare_original.then(|| {
                let (size, architecture) = book.original.task(&d.name);
                let task = Task {
                    size,
                    architecture,
                    startup_seconds: q.startup.original,
                };
                at(&task, p50_s)
            });
            Line {
                declaration: d,
                fires,
                measured_runs: h.map(|h| h.runs),
                p50_s,
                p95_s,
                log_bytes,
                at_p50: at(&ours, p50_s),
                at_p95: at(&ours, p95_s),
                original,
            }
        })
        .collect()
}

/// Prints the projection: a table, or one JSON object per job and one for the total.
pub fn print(lines: &[Line<'_>], region: &Region, q: &Query<'_>, now: DateTime<Utc>) {
    if q.json {
        for l in lines {
            println!("{}", line_json(l));
        }
        println!("{}", total_json(lines, q));
        return;
    }
    print_header(region, q, now);
    let w = lines
        .iter()
        .map(|l| l.declaration.name.len())
        .max()
        .unwrap_or(0)
        .max(5);
    println!(
        "{:<w$} {:<22} {:>6} {:>9} {:>9} {:>7} {:>9} {:>7} {:>6} {:>10} {:>10}{}",
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
        if q.compare_original {
            "   ORIGINAL"
        } else {
            ""
        },
    );
    for l in lines {
        let d = l.declaration;
        let bound = if l.measured_runs.is_none() { "≤" } else { "" };
        let m = &l.at_p50;
        println!(
            "{:<w$} {:<22} {:>6} {:>9} {:>9} {:>6}s {:>9} {:>7} {:>6} {:>10} {:>10}{}",
            d.name,
            task_label(d),
            if d.enabled {
                l.fires.to_string()
            } else {
                "off".into()
            },
            format!("{bound}{}", seconds(l.p50_s)),
            format!("{bound}{}", seconds(l.p95_s)),
            m.billed_seconds_per_run,
            dollars(m.compute),
            dollars(m.public_ipv4),
            dollars(m.logs),
            dollars(m.total),
            dollars(l.at_p95.total),
            l.original
                .map(|o| format!(" {:>10}", dollars(o.total)))
                .unwrap_or_default(),
        );
    }
    let sum = |f: &dyn Fn(&Line<'_>) -> f64| lines.iter().map(f).sum::<f64>();
    let fires: u64 = lines.iter().map(|l| l.fires).sum();
    println!(
        "{:<w$} {:<22} {:>6} {:>9} {:>9} {:>7} {:>9} {:>7} {:>6} {:>10} {:>10}{}",
        "TOTAL",
        "",
        fires,
        "",
        "",
        "",
        dollars(sum(&|l| l.at_p50.compute)),
        dollars(sum(&|l| l.at_p50.public_ipv4)),
        dollars(sum(&|l| l.at_p50.logs)),
        dollars(sum(&|l| l.at_p50.total)),
        dollars(sum(&|l| l.at_p95.total)),
        if q.compare_original {
            format!(
                " {:>10}",
                dollars(sum(&|l| l.original.map_or(0.0, |o| o.total)))
            )
        } else {
            String::new()
        },
    );
    if lines.iter().any(|l| l.measured_runs.is_none()) {
        println!(
            "≤: no finished run in the window; the declared timeout is used, so that job's figures are an upper bound."
        );
    }
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
            "ORIGINAL: the same fires and run times at the original's sizes (0.25 vCPU / 0.5 GB arm64; scraping 2 vCPU / 4 GB x86_64) and image."
        );
    }
    println!();
}

fn task_label(d: &JobDeclaration) -> String {
    format!(
        "{} vCPU {} GB {}",
        f64::from(d.size.cpu) / 1024.0,
        f64::from(d.size.memory) / 1024.0,
        match d.architecture {
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
        "fires": l.fires, "runs_measured": l.measured_runs,
        "run_time_source": if l.measured_runs.is_some() { "job_runs" } else { "timeout (upper bound)" },
        "p50_s": l.p50_s, "p95_s": l.p95_s, "log_bytes_per_run": l.log_bytes,
        "at_p50": l.at_p50, "at_p95": l.at_p95, "original": l.original,
    })
}

fn total_json(lines: &[Line<'_>], q: &Query<'_>) -> serde_json::Value {
    let sum = |f: &dyn Fn(&Line<'_>) -> f64| lines.iter().map(f).sum::<f64>();
    json!({
        "kind": "total", "region": q.region, "capacity": q.capacity.name(),
        "fires": lines.iter().map(|l| l.fires).sum::<u64>(),
        "total_p50": sum(&|l| l.at_p50.total), "total_p95": sum(&|l| l.at_p95.total),
        "original": q.compare_original.then(|| sum(&|l| l.original.map_or(0.0, |o| o.total))),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_round_before_they_split() {
        assert_eq!(super::seconds(4.7), "4.7 s");
        assert_eq!(super::seconds(119.6), "2m00s");
        assert_eq!(super::seconds(600.0), "10m00s");
    }
}
