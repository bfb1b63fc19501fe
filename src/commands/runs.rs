//! `run-job runs`: what ran, from `job_runs`. The latest runs, newest first, then per
//! job over the window: runs, success rate, p50 and p95 duration, and the age of the
//! last success against the job's schedule (late when older than two periods, or when
//! there was none). Colour only on a terminal; `--json` prints one object per line
//! (`"kind": "run"`, then `"kind": "job"`).

use std::io::IsTerminal;

use chrono::{DateTime, TimeDelta, Utc};
use nu_ansi_term::Color;
use serde_json::json;
use sqlx::PgPool;

use super::wiring::{connect, eprint_jobs, shutdown_on_signal};
use crate::declarations::JobDeclaration;
use crate::exit::Exit;
use crate::{clock, database};

/// `run-job runs`.
pub(crate) async fn run(declarations: &[JobDeclaration], q: &Query<'_>) -> Exit {
    if let Some(job) = q.job
        && !declarations.iter().any(|d| d.name == job)
    {
        eprintln!("run-job: unknown job `{job}`.");
        eprint_jobs(declarations);
        return Exit::Usage;
    }
    let shutdown = shutdown_on_signal();
    let (pool, _) = match connect("run-job:runs", &shutdown).await {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let shown = show(&pool, declarations, q, clock::wall()).await;
    database::close(pool).await;
    match shown {
        Ok(()) => Exit::Success,
        Err(e) => {
            eprintln!("run-job: cannot read job_runs: {e}");
            Exit::Runner
        }
    }
}

/// One row of the table.
#[derive(Debug, sqlx::FromRow)]
struct RunRow {
    job: String,
    trigger: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    outcome: String,
    exit_code: Option<i32>,
    items_processed: i64,
    items_failed: i64,
    error: Option<String>,
}

/// One job's figures over the window.
#[derive(Debug, sqlx::FromRow)]
struct JobRow {
    job: String,
    runs: i64,
    succeeded: i64,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    last_success: Option<DateTime<Utc>>,
}

/// What to show.
pub(crate) struct Query<'a> {
    pub job: Option<&'a str>,
    pub since: TimeDelta,
    pub limit: u32,
    pub json: bool,
}

async fn show(
    pool: &PgPool,
    declarations: &[JobDeclaration],
    q: &Query<'_>,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let from = now - q.since;
    let runs: Vec<RunRow> = sqlx::query_as(
        "SELECT job, trigger, started_at, finished_at, outcome::text AS outcome, exit_code,
                items_processed, items_failed, error
           FROM job_runs
          WHERE started_at >= $1 AND ($2::text IS NULL OR job = $2)
       ORDER BY started_at DESC, id DESC
          LIMIT $3",
    )
    .bind(from)
    .bind(q.job)
    .bind(i64::from(q.limit))
    .fetch_all(pool)
    .await?;
    let jobs: Vec<JobRow> = sqlx::query_as(
        "SELECT job, count(*) AS runs, count(*) FILTER (WHERE outcome = 'succeeded') AS succeeded,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at) * 1000)
                    FILTER (WHERE finished_at IS NOT NULL AND outcome <> 'skipped') AS p50_ms,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at) * 1000)
                    FILTER (WHERE finished_at IS NOT NULL AND outcome <> 'skipped') AS p95_ms,
                (SELECT max(s.finished_at) FROM job_runs s
                  WHERE s.job = r.job AND s.outcome = 'succeeded') AS last_success
           FROM job_runs r
          WHERE started_at >= $1 AND ($2::text IS NULL OR job = $2)
       GROUP BY job ORDER BY job",
    )
    .bind(from)
    .bind(q.job)
    .fetch_all(pool)
    .await?;
    let late = |j: &JobRow| is_late(j, declarations, now);
    if q.json {
        for r in &runs {
            println!("{}", run_json(r));
        }
        for j in &jobs {
            println!("{}", job_json(j, late(j), now));
        }
        return Ok(());
    }
    let colour = std::io::stdout().is_terminal();
    print_runs(&runs, colour);
    println!();
    print_jobs(&jobs, &late, now, colour);
    Ok(())
}

/// Late: no success ever, or the last one older than two of the schedule's periods
/// (its shortest gap between fires). A job no declaration names is never late.
fn is_late(j: &JobRow, declarations: &[JobDeclaration], now: DateTime<Utc>) -> bool {
    let Some(period) = declarations
        .iter()
        .find(|d| d.name == j.job)
        .and_then(|d| d.schedule.shortest_gap(now, 50))
    else {
        return false;
    };
    j.last_success.is_none_or(|t| now - t > period * 2)
}

fn duration(r: &RunRow) -> Option<TimeDelta> {
    r.finished_at.map(|f| f - r.started_at)
}

fn first_line(error: Option<&str>) -> String {
    let line = error.and_then(|e| e.lines().next()).unwrap_or("");
    let mut short: String = line.chars().take(60).collect();
    if line.chars().count() > 60 {
        short.push('…');
    }
    short
}

fn run_json(r: &RunRow) -> serde_json::Value {
    json!({
        "kind": "run", "job": r.job, "trigger": r.trigger, "started_at": r.started_at,
        "duration_ms": duration(r).map(|d| d.num_milliseconds()), "outcome": r.outcome,
        "exit_code": r.exit_code, "items_processed": r.items_processed,
        "items_failed": r.items_failed, "error": first_line(r.error.as_deref()),
    })
}

fn job_json(j: &JobRow, late: bool, now: DateTime<Utc>) -> serde_json::Value {
    json!({
        "kind": "job", "job": j.job, "runs": j.runs, "succeeded": j.succeeded,
        "success_rate": rate(j), "p50_ms": j.p50_ms.map(|v| v.round()),
        "p95_ms": j.p95_ms.map(|v| v.round()),
        "last_success_age_s": j.last_success.map(|t| (now - t).num_seconds()), "late": late,
    })
}

fn rate(j: &JobRow) -> f64 {
    if j.runs == 0 {
        return 0.0;
    }
    (j.succeeded as f64 / j.runs as f64 * 1000.0).round() / 10.0
}

/// `1.2 s`, `3 min 5 s`, `2 h 10 min`.
fn human(d: TimeDelta) -> String {
    let ms = d.num_milliseconds();
    if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000)
    } else {
        format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000)
    }
}

fn paint(text: String, outcome: &str, colour: bool) -> String {
    if !colour {
        return text;
    }
    let c = match outcome {
        "succeeded" => Color::Green,
        "skipped" | "running" => Color::Yellow,
        _ => Color::Red,
    };
    c.paint(text).to_string()
}

fn print_runs(runs: &[RunRow], colour: bool) {
    println!(
        "{:<26} {:<11} {:<19} {:>10} {:<11} {:>4} {:>11} ERROR",
        "JOB", "TRIGGER", "START (UTC)", "DURATION", "OUTCOME", "EXIT", "ITEMS/FAIL"
    );
    for r in runs {
        let outcome = paint(format!("{:<11}", r.outcome), &r.outcome, colour);
        println!(
            "{:<26} {:<11} {:<19} {:>10} {} {:>4} {:>11} {}",
            r.job,
            r.trigger,
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            duration(r).map(human).unwrap_or_else(|| "-".into()),
            outcome,
            r.exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            format!("{}/{}", r.items_processed, r.items_failed),
            first_line(r.error.as_deref()),
        );
    }
}

fn print_jobs(jobs: &[JobRow], late: &dyn Fn(&JobRow) -> bool, now: DateTime<Utc>, colour: bool) {
    println!(
        "{:<26} {:>5} {:>8} {:>10} {:>10}  LAST SUCCESS",
        "JOB", "RUNS", "SUCCESS", "P50", "P95"
    );
    for j in jobs {
        let ms = |v: Option<f64>| {
            v.map(|v| human(TimeDelta::milliseconds(v.round() as i64)))
                .unwrap_or_else(|| "-".into())
        };
        let last = match j.last_success {
            Some(t) => format!("{} ago", human(now - t)),
            None => "never".into(),
        };
        let last = if late(j) {
            paint(format!("{last} (late)"), "failed", colour)
        } else {
            last
        };
        println!(
            "{:<26} {:>5} {:>7.1}% {:>10} {:>10}  {}",
            j.job,
            j.runs,
            rate(j),
            ms(j.p50_ms),
            ms(j.p95_ms),
            last
        );
    }
}
