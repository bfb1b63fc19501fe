//! `run-job cost` on a database with seeded history, its figures checked against
//! figures computed here by hand from the prices file's numbers; and the log bytes a
//! real run records, which the log line of the projection is made of.

use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::*;

const NOW: &str = "2026-12-01T00:00:00Z";

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

/// A finished run of `job` that started `ago_s` before NOW and took `secs`.
async fn seed(pool: &PgPool, job: &str, ago_s: f64, secs: f64, outcome: &str, log: Option<i64>) {
    sqlx::query(
        "INSERT INTO job_runs (id, job, trigger, started_at, finished_at, outcome, exit_code, log_bytes)
         VALUES (gen_random_uuid(), $1, 'eventbridge',
                 $2::timestamptz - make_interval(secs => $3),
                 $2::timestamptz - make_interval(secs => $3) + make_interval(secs => $4),
                 $5::job_run_outcome, 0, $6)",
    )
    .bind(job)
    .bind(NOW)
    .bind(ago_s)
    .bind(secs)
    .bind(outcome)
    .bind(log)
    .execute(pool)
    .await
    .unwrap();
}

async fn cost_json(pool: &PgPool, args: &[&str]) -> Vec<Value> {
    let mut c = run_job_on(pool);
    c.arg("cost")
        .args(args)
        .arg("--json")
        .env("RUN_JOB_NOW", NOW);
    let r = output(c).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    r.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn job<'a>(objects: &'a [Value], name: &str) -> &'a Value {
    objects.iter().find(|o| o["job"] == name).unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn cost_projects_each_job_from_its_runs_its_size_and_its_exact_fires(pool: PgPool) {
    // sync-payments: a skipped run (billed like any task), three runs; p50 of 0.5, 4,
    // 6 and 8 s is 5 s, p95 is 6 + 0.85 × 2 = 7.7 s. Logs: the mean of 2,000, 4,000
    // and 6,000 bytes (a row from before the column, NULL, does not count).
    seed(&pool, "sync-payments", 3600.0, 0.5, "skipped", Some(2000)).await;
    seed(&pool, "sync-payments", 7200.0, 4.0, "succeeded", Some(4000)).await;
    seed(&pool, "sync-payments", 9000.0, 6.0, "failed", None).await;
    seed(
        &pool,
        "sync-payments",
        10800.0,
        8.0,
        "succeeded",
        Some(6000),
    )
    .await;
    // Not counted: an abandoned row, and a run before the 7-day window.
    seed(&pool, "sync-payments", 600.0, 900.0, "abandoned", Some(1)).await;
    seed(
        &pool,
        "sync-payments",
        8.0 * 86400.0,
        1000.0,
        "succeeded",
        Some(1),
    )
    .await;
    // scraping: 300 s and 500 s: p50 400 s, p95 490 s.
    seed(&pool, "scraping", 1800.0, 300.0, "succeeded", Some(50_000)).await;
    seed(&pool, "scraping", 3600.0, 500.0, "succeeded", Some(70_000)).await;

    // The other light jobs: short runs, so every member of the shared task is measured.
    for (job, secs) in [
        ("notifications", 2.0),
        ("invoices", 1.0),
        ("notify-upload-availability", 0.5),
        ("check-payout-hold-periods", 0.5),
    ] {
        seed(&pool, job, 600.0, secs, "succeeded", Some(2000)).await;
    }

    let all = cost_json(&pool, &["--compare", "original"]).await;
    let (spot, ipv4, logs_gb) = (1.0 - 0.664, 0.005, 0.90);
    let gib = 1_073_741_824.0;
    let light_rate = 0.25 * 0.0557 + 0.5 * 0.00612;

    // sync-payments: every 5 minutes, 8,640 fires in 30 days, run by the light shared
    // task: its own line carries only what its runs log.
    let s = job(&all, "sync-payments");
    assert_eq!(s["fires"], 8640);
    assert_eq!(s["shares_task"], "light");
    assert_eq!(s["runs_measured"], 4);
    assert!(close(&s["p50_s"], 5.0) && close(&s["p95_s"], 7.7), "{s}");
    assert!(close(&s["log_bytes_per_run"], 4000.0));
    let p50 = &s["at_p50"];
    assert!(close(&p50["compute"], 0.0) && close(&p50["public_ipv4"], 0.0));
    assert!(close(&p50["logs"], 8640.0 * 4000.0 / gib * logs_gb));
    assert!(close(&p50["total"], p50["logs"].as_f64().unwrap()));

    // The light shared task: a tick every 2 minutes (notifications and invoices are due
    // at each), 21,600 in 30 days; its longest member's p95 (7.7 s) + 5 s of start-up
    // is billed as the one-minute minimum: 360 task-hours of 0.25 vCPU / 0.5 GB arm64.
    let light = all
        .iter()
        .find(|o| o["kind"] == "group" && o["group"] == "light")
        .unwrap();
    assert_eq!(light["ticks"], 21600);
    assert_eq!(light["schedule"], "cron(0/2 * * * ? *)");
    assert_eq!(
        (light["cpu"].as_u64(), light["memory"].as_u64()),
        (Some(256), Some(512))
    );
    assert_eq!(light["run_time_source"], "job_runs");
    assert!(close(&light["p95_s"], 7.7), "{light}");
    let t = &light["at_p95"];
    assert_eq!(t["billed_seconds_per_run"], 60.0);
    assert!(close(&t["task_hours"], 360.0));
    assert!(close(&t["compute"], 360.0 * light_rate * spot), "{t}");
    assert!(close(&t["public_ipv4"], 360.0 * ipv4));

    // scraping does not share: every 30 minutes, 1,440 fires; 15 s of start-up + 400 s,
    // at its declared 0.25 vCPU / 1 GB arm64.
    let sc = job(&all, "scraping");
    assert_eq!(sc["fires"], 1440);
    assert_eq!(sc["shares_task"], Value::Null);
    assert!(
        close(&sc["p50_s"], 400.0) && close(&sc["p95_s"], 490.0),
        "{sc}"
    );
    let hours = 1440.0 * 415.0 / 3600.0;
    assert!(close(
        &sc["at_p50"]["compute"],
        hours * (0.25 * 0.0557 + 1.0 * 0.00612) * spot
    ));
    let hours95 = 1440.0 * 505.0 / 3600.0;
    assert!(close(&sc["at_p95"]["task_hours"], hours95));

    // The original at its own six schedules, at the run time of the run-job job doing
    // the work. scrape-events: 2 vCPU / 4 GB on x86_64, 20 s of start-up + 400 s.
    let original = |name: &str| {
        all.iter()
            .find(|o| o["kind"] == "original" && o["job"] == name)
            .unwrap_or_else(|| panic!("no original {name}"))
    };
    let o = &original("scrape-events")["month"];
    let ohours = 1440.0 * 420.0 / 3600.0;
    assert!(
        close(&o["compute"], ohours * (2.0 * 0.0696 + 4.0 * 0.0076) * spot),
        "{o}"
    );
    assert!(close(&o["public_ipv4"], ohours * ipv4));
    // process-pending-jobs: every 2 minutes, each a task of its own, billed a minute.
    let jobs = original("process-pending-jobs");
    assert_eq!(
        (jobs["fires"].as_u64(), jobs["runs_like"].as_str()),
        (Some(21600), Some("invoices"))
    );
    assert!(close(&jobs["month"]["compute"], 360.0 * light_rate * spot));
    assert_eq!(original("process-pending-notifications")["fires"], 8640);
    assert_eq!(all.iter().filter(|o| o["kind"] == "original").count(), 6);

    // A job without history is costed at its timeout, and says so; so is its shared
    // task (the demo group of the test build: demo-hourly has no run).
    let n = job(&all, "demo-hourly");
    assert_eq!(n["fires"], 720);
    assert_eq!(n["runs_measured"], Value::Null);
    assert_eq!(n["run_time_source"], "timeout (upper bound)");
    assert!(close(&n["p50_s"], 30.0));
    let demo = all
        .iter()
        .find(|o| o["kind"] == "group" && o["group"] == "demo")
        .unwrap();
    assert_eq!(demo["run_time_source"], "timeout (upper bound)");

    let total = all.iter().find(|o| o["kind"] == "total").unwrap();
    let billed = |o: &&Value| o["kind"] == "job" || o["kind"] == "group";
    let sum: f64 = all
        .iter()
        .filter(billed)
        .map(|j| j["at_p50"]["total"].as_f64().unwrap())
        .sum();
    assert!(close(&total["total_p50"], sum));
    let theirs: f64 = all
        .iter()
        .filter(|o| o["kind"] == "original")
        .map(|o| o["month"]["total"].as_f64().unwrap())
        .sum();
    assert!(close(&total["original"], theirs));
    assert!(close(&total["ratio_p50"], sum / theirs));
    assert_eq!(total["original_tasks"], 41_760);

    // On demand in us-east-1: the other region's prices, no discount.
    let us = cost_json(&pool, &["--region", "us-east-1", "--capacity", "on-demand"]).await;
    let s = job(&us, "sync-payments");
    assert!(close(&s["at_p50"]["logs"], 8640.0 * 4000.0 / gib * 0.50));
    let light = us.iter().find(|o| o["kind"] == "group").unwrap();
    assert!(close(
        &light["at_p95"]["compute"],
        360.0 * (0.25 * 0.03238 + 0.5 * 0.00356)
    ));
    assert!(
        !us.iter().any(|o| o["kind"] == "original"),
        "no comparison unless asked"
    );

    // The table: the bound marked, a total, what was assumed.
    let mut c = run_job_on(&pool);
    c.args(["cost", "--compare", "original"])
        .env("RUN_JOB_NOW", NOW);
    let r = output(c).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("sa-east-1, FARGATE_SPOT (66.4 % off on-demand)"),
        "{}",
        r.stdout
    );
    let row = |name: &str| {
        r.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .to_string()
    };
    assert!(row("sync-payments").contains("5.0 s") && !row("sync-payments").contains('≤'));
    assert!(
        row("sync-payments").contains("in tick light"),
        "{}",
        r.stdout
    );
    assert!(row("demo-hourly").contains("≤30.0 s"), "{}", r.stdout);
    assert!(row("tick light").contains("21600"), "{}", r.stdout);
    assert!(
        row("TOTAL").contains('$') && r.stdout.contains("ORIGINAL at its own schedules"),
        "{}",
        r.stdout
    );
    assert!(row("run-job / original:").contains('×'), "{}", r.stdout);
}

/// The original's scrape-events ran at 2 vCPU: `--original-run-time` costs it at a run
/// time measured at that size, not at scraping's, measured at run-job's smaller one.
#[sqlx::test(migrations = "./migrations")]
async fn an_original_rule_can_be_costed_at_a_run_time_measured_at_its_own_size(pool: PgPool) {
    seed(&pool, "scraping", 1800.0, 90.0, "succeeded", Some(50_000)).await;
    seed(&pool, "invoices", 600.0, 1.0, "succeeded", Some(2000)).await;
    let spot = 1.0 - 0.664;
    let rate = 2.0 * 0.0696 + 4.0 * 0.0076;
    let scrape = |objects: &[Value]| {
        objects
            .iter()
            .find(|o| o["kind"] == "original" && o["job"] == "scrape-events")
            .cloned()
            .unwrap()
    };

    let runs_like = scrape(&cost_json(&pool, &["--compare", "original"]).await);
    assert!(close(&runs_like["run_s"], 90.0), "{runs_like}");
    assert_eq!(runs_like["run_s_given"], false);

    let all = cost_json(
        &pool,
        &[
            "--compare",
            "original",
            "--original-run-time",
            "scrape-events=45.5",
        ],
    )
    .await;
    let given = scrape(&all);
    assert!(close(&given["run_s"], 45.5), "{given}");
    assert_eq!(given["run_s_given"], true);
    // 20 s of start-up + 45.5 s, rounded up to the second: 66 s a fire, 1,440 fires.
    assert_eq!(given["month"]["billed_seconds_per_run"], 66.0);
    let hours = 1440.0 * 66.0 / 3600.0;
    assert!(
        close(&given["month"]["compute"], hours * rate * spot),
        "{given}"
    );
    // Only the rule named changes; run-job's own scraping keeps its measured 90 s.
    let jobs = all
        .iter()
        .find(|o| o["kind"] == "original" && o["job"] == "process-pending-jobs")
        .unwrap();
    assert_eq!(jobs["run_s_given"], false);
    assert!(close(&job(&all, "scraping")["p50_s"], 90.0));

    let mut c = run_job_on(&pool);
    c.args([
        "cost",
        "--compare",
        "original",
        "--original-run-time",
        "scrape-events=45.5",
    ])
    .env("RUN_JOB_NOW", NOW);
    let r = output(c).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let line = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("scrape-events"))
        .unwrap_or_default();
    assert!(
        line.contains("(45.5 s run, measured at its size)"),
        "{}",
        r.stdout
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn cost_without_a_database_bounds_every_job_by_its_timeout(_pool: PgPool) {
    let mut c = run_job();
    c.args(["cost", "--json"])
        .env("RUN_JOB_NOW", NOW)
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none");
    let r = output(c).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains("every job is costed at its timeout"),
        "{}",
        r.stderr
    );
    let jobs: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|o| o["kind"] == "job")
        .collect();
    assert!(jobs.len() >= 6);
    assert!(
        jobs.iter()
            .all(|j| j["run_time_source"] == "timeout (upper bound)")
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn cost_names_a_bad_region_startup_or_prices_file(pool: PgPool) {
    for (args, says) in [
        (
            vec!["--region", "mars-north-1"],
            "no prices for region `mars-north-1`",
        ),
        (
            vec!["--startup", "slim=fast"],
            "`fast` in `slim=fast` is not a number of seconds",
        ),
        (vec!["--startup", "alpine=3"], "unknown image `alpine`"),
        (
            vec!["--prices", "/nonexistent/prices.yaml"],
            "cannot read /nonexistent/prices.yaml",
        ),
        (
            vec!["--compare", "original", "--original-run-time", "scrape=40"],
            "names `scrape`, which is not one of the original's rules (check-payout-hold-periods,",
        ),
        (
            vec![
                "--compare",
                "original",
                "--original-run-time",
                "scrape-events=-1",
            ],
            "`-1` in `scrape-events=-1` is not a number of seconds",
        ),
        (
            vec!["--original-run-time", "scrape-events=40"],
            "--compare <COMPARE>",
        ),
    ] {
        let mut c = run_job_on(&pool);
        c.arg("cost").args(&args);
        let r = output(c).await;
        assert!(
            matches!(r.code, Some(2) | Some(3)),
            "{args:?}: {}",
            r.stderr
        );
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn a_run_records_the_bytes_it_logged_as_cloudwatch_counts_them(pool: PgPool) {
    let mut c = run_job_on(&pool);
    c.arg("demo-sleep").env("RUN_JOB_DEMO_SLEEP_MS", "100");
    let r = output(c).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // Every line of this process's stderr is an event: its bytes plus 26.
    let expected: usize = r.stderr.lines().map(|l| l.len() + 26).sum();
    let logged: Option<i64> = sqlx::query_scalar("SELECT log_bytes FROM job_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(logged, Some(expected as i64), "{}", r.stderr);
}

fn fixed(objects: &[Value], item: &str) -> f64 {
    objects
        .iter()
        .find(|o| o["kind"] == "fixed" && o["item"]["item"] == item)
        .unwrap_or_else(|| panic!("no fixed item {item}"))["item"]["month"]
        .as_f64()
        .unwrap()
}

fn total(objects: &[Value]) -> &Value {
    objects.iter().find(|o| o["kind"] == "total").unwrap()
}

/// The fixed items add up, and the month's total is the jobs' plus theirs.
fn check_sums(all: &[Value]) {
    let items: f64 = all
        .iter()
        .filter(|o| o["kind"] == "fixed")
        .map(|o| o["item"]["month"].as_f64().unwrap())
        .sum();
    let t = total(all);
    assert!(close(&t["fixed"], items), "{t}");
    assert!(close(
        &t["month_p50"],
        t["total_p50"].as_f64().unwrap() + items
    ));
    assert!(close(
        &t["month_p95"],
        t["total_p95"].as_f64().unwrap() + items
    ));
}

#[sqlx::test(migrations = "./migrations")]
async fn cost_adds_the_fixed_items_the_terraform_creates(pool: PgPool) {
    // No history: every run logs the assumed 3,000 bytes. The six production jobs fire
    // 54,720 times in the 30 days, scraping 1,440 of them from the Chromium image; the
    // test build adds the demo jobs (tests/jobs/): three every 5 minutes (3 × 8,640),
    // one every minute (43,200), one every 2 minutes (21,600), one hourly (720) and one
    // disabled: 146,160 fires. Tasks: the five light jobs share one, ticking every 2
    // minutes (21,600), and so do the demo group's (21,600); demo-sleep and
    // demo-stubborn each start their own (51,840); scraping 1,440.
    let gib = 1_073_741_824.0;
    let off = cost_json(&pool, &[]).await;
    let fires: f64 = off
        .iter()
        .filter(|o| o["kind"] == "job")
        .map(|o| o["fires"].as_f64().unwrap())
        .sum();
    assert_eq!(fires, 146_160.0);
    assert_eq!(total(&off)["tasks"], 21_600 + 21_600 + 51_840 + 1_440);
    // Alarms stay per job, shared task or not: 12 enabled jobs with a window within 7
    // days and the dead-letter alarm, at $0.10; the dashboard at $3 (no free ones).
    assert!((fixed(&off, "CloudWatch alarms") - 1.30).abs() < 1e-9);
    assert!((fixed(&off, "CloudWatch dashboard") - 3.00).abs() < 1e-9);
    // Logs kept 7 days: 146,160 × 3,000 B a month, × 7 days × $0.03.
    let stored = 146_160.0 * 3_000.0 / gib / 30.0 * 7.0;
    assert!((fixed(&off, "Log storage") - stored * 0.03).abs() < 1e-9);
    assert_eq!(fixed(&off, "Container Insights"), 0.0);
    assert_eq!(fixed(&off, "NAT gateway"), 0.0);
    assert_eq!(fixed(&off, "NAT data processed"), 0.0);
    assert_eq!(fixed(&off, "VPC interface endpoints"), 0.0);
    check_sums(&off);
    assert!(
        (total(&off)["fixed"].as_f64().unwrap() - (4.30 + stored * 0.03)).abs() < 1e-9,
        "{}",
        total(&off)
    );

    // Container Insights on: five task families (scraping, demo-sleep, demo-stubborn
    // and the two shared tasks) each run in every one of the 720 hours, so 10 cluster
    // metrics × 720 h + 8 per family × 3,600 family-hours = 36,000 metric-hours =
    // 49.32 metric-months × $0.30 = $14.79.
    let on = cost_json(&pool, &["--container-insights"]).await;
    let insights = 36_000.0 / 730.0 * 0.30;
    assert!(
        (fixed(&on, "Container Insights") - insights).abs() < 1e-9,
        "{}",
        fixed(&on, "Container Insights")
    );
    assert!(
        (total(&on)["fixed"].as_f64().unwrap() - total(&off)["fixed"].as_f64().unwrap() - insights)
            .abs()
            < 1e-9
    );
    check_sums(&on);

    // A NAT gateway: 720 h × ($0.093 + $0.005 for its address) = $70.56, and every
    // task's image layers through it: 95,040 slim pulls of 47 MB (a shared task pulls
    // once a tick) and 1,440 Chromium pulls of 269 MB, × $0.093. The tasks hold no
    // public IP any more.
    let nat = cost_json(&pool, &["--nat"]).await;
    let layers = (95_040.0 * 47e6 + 1_440.0 * 269e6) / gib;
    assert!((fixed(&nat, "NAT gateway") - 720.0 * 0.098).abs() < 1e-9);
    assert!((fixed(&nat, "NAT data processed") - layers * 0.093).abs() < 1e-6);
    let billed = |o: &&Value| o["kind"] == "job" || o["kind"] == "group";
    let jobs = nat.iter().filter(billed);
    assert!(jobs.clone().all(|j| j["at_p50"]["public_ipv4"] == 0.0));
    let ipv4_before: f64 = off
        .iter()
        .filter(billed)
        .map(|j| j["at_p50"]["public_ipv4"].as_f64().unwrap())
        .sum();
    assert!(
        (total(&off)["total_p50"].as_f64().unwrap()
            - total(&nat)["total_p50"].as_f64().unwrap()
            - ipv4_before)
            .abs()
            < 1e-9
    );
    check_sums(&nat);

    // With the five interface endpoints in two zones: 7,200 endpoint-hours × $0.015,
    // and the S3 gateway endpoint carries the layers: no NAT data.
    let both = cost_json(&pool, &["--nat", "--endpoints", "5"]).await;
    assert!((fixed(&both, "VPC interface endpoints") - 108.0).abs() < 1e-9);
    assert_eq!(fixed(&both, "NAT data processed"), 0.0);
    check_sums(&both);

    // Longer retention, free alarms and dashboards left in the account.
    let kept = cost_json(
        &pool,
        &[
            "--log-retention-days",
            "30",
            "--free-alarms",
            "10",
            "--free-dashboards",
            "3",
        ],
    )
    .await;
    assert!((fixed(&kept, "Log storage") - stored / 7.0 * 30.0 * 0.03).abs() < 1e-9);
    // 13 alarms, 10 of them free: three billed.
    assert!((fixed(&kept, "CloudWatch alarms") - 0.30).abs() < 1e-9);
    assert_eq!(fixed(&kept, "CloudWatch dashboard"), 0.0);

    // The table lists each item with its price and source, then the whole month.
    let mut c = run_job_on(&pool);
    c.args(["cost", "--container-insights"])
        .env("RUN_JOB_NOW", NOW);
    let r = output(c).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let line = |item: &str| {
        r.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(item))
            .unwrap_or_else(|| panic!("no line {item}: {}", r.stdout))
            .to_string()
    };
    assert!(
        line("Container Insights").contains("$14.79"),
        "{}",
        r.stdout
    );
    assert!(line("CloudWatch alarms").contains("aws.amazon.com/cloudwatch/pricing"));
    assert!(line("FIXED").contains('$'));
    assert!(r.stdout.contains("MONTH: jobs $"), "{}", r.stdout);
}
