//! `run-job tick demo`: the demo shared task (tests/jobs: demo-two every 2 minutes,
//! demo-parallel and demo-fail every 5, demo-hourly at minute 2, demo-off disabled)
//! run by ticks at chosen instants (`RUN_JOB_NOW`), against the test's database.

use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::helpers::{
    finished, json_lines, output, run_job_on, runs, send_signal, wait_for_running,
};

fn tick(pool: &PgPool, now: &str, sleep_ms: u32) -> tokio::process::Command {
    let mut cmd = run_job_on(pool);
    cmd.args(["tick", "demo"])
        .env("RUN_JOB_NOW", now)
        .env("RUN_JOB_DEMO_SLEEP_MS", sleep_ms.to_string());
    cmd
}

/// Each job's runs: (job, trigger, outcome), sorted.
async fn ran(pool: &PgPool) -> Vec<(String, String, String)> {
    let mut rows: Vec<_> = runs(pool)
        .await
        .into_iter()
        .map(|r| (r.job, r.trigger, r.outcome))
        .collect();
    rows.sort();
    rows
}

fn row(job: &str, outcome: &str) -> (String, String, String) {
    (job.into(), "tick".into(), outcome.into())
}

/// The tick's own line: each member's outcome.
fn tick_line(stderr: &str) -> serde_json::Value {
    let line = json_lines(stderr)
        .into_iter()
        .find(|v| v["fields"]["message"] == "tick finished" || v["message"] == "tick finished")
        .unwrap_or_else(|| panic!("no tick line in:\n{stderr}"));
    let fields = line.get("fields").cloned().unwrap_or(line);
    serde_json::from_str(fields["members"].as_str().unwrap()).unwrap()
}

fn outcome_of(members: &serde_json::Value, job: &str) -> String {
    members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["job"] == job)
        .map(|m| m["outcome"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{job} not in {members}"))
}

#[sqlx::test(migrations = "./migrations")]
async fn a_tick_runs_exactly_the_due_jobs_and_exits_with_a_failing_members_code(pool: PgPool) {
    // 12:06:10: demo-two (12:06), demo-parallel and demo-fail (12:05) fired in the last
    // period; demo-hourly fires at minute 2; demo-off is disabled.
    let r = output(tick(&pool, "2026-12-05T12:06:10Z", 100)).await;
    assert_eq!(r.code, Some(1), "demo-fail failed: {}", r.stderr);
    assert_eq!(
        ran(&pool).await,
        [
            row("demo-fail", "failed"),
            row("demo-parallel", "succeeded"),
            row("demo-two", "succeeded"),
        ]
    );
    let members = tick_line(&r.stderr);
    assert_eq!(outcome_of(&members, "demo-hourly"), "not_due");
    assert_eq!(outcome_of(&members, "demo-off"), "disabled");
    assert_eq!(outcome_of(&members, "demo-fail"), "failed");
    // Each member wrote its own summary line, as a run of its own does.
    let summaries = json_lines(&r.stderr)
        .into_iter()
        .filter(|v| v.get("_aws").is_some())
        .count();
    assert_eq!(summaries, 3);

    // 13:02:20: demo-hourly's fire; the 5-minute jobs catch up on 13:00.
    let r = output(tick(&pool, "2026-12-05T13:02:20Z", 100)).await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let rows = ran(&pool).await;
    assert_eq!(rows.len(), 7, "{rows:?}");
    assert!(rows.contains(&row("demo-hourly", "succeeded")), "{rows:?}");
    assert!(!rows.iter().any(|r| r.0 == "demo-off"), "{rows:?}");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_tick_after_two_missed_ticks_runs_each_late_job_once(pool: PgPool) {
    let r = output(tick(&pool, "2026-12-05T12:06:10Z", 50)).await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    // The ticks of 12:08 and 12:10 never ran.
    let r = output(tick(&pool, "2026-12-05T12:12:05Z", 50)).await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let rows = ran(&pool).await;
    for job in ["demo-two", "demo-parallel", "demo-fail"] {
        assert_eq!(
            rows.iter().filter(|r| r.0 == job).count(),
            2,
            "{job} ran once per tick: {rows:?}"
        );
    }
    let fires: Vec<String> = sqlx::query_scalar(
        "SELECT to_char(fire_at AT TIME ZONE 'UTC', 'HH24:MI') FROM schedule_fires
          WHERE job = 'demo-two' ORDER BY fire_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(fires, ["12:06", "12:12"], "the latest missed fire only");
}

#[sqlx::test(migrations = "./migrations")]
async fn two_ticks_at_once_run_each_job_once(pool: PgPool) {
    let first = tick(&pool, "2026-12-05T12:06:10Z", 500).spawn().unwrap();
    let second = tick(&pool, "2026-12-05T12:06:10Z", 500).spawn().unwrap();
    let (a, b) = (
        finished(first, Duration::from_secs(60)).await,
        finished(second, Duration::from_secs(60)).await,
    );
    // demo-parallel allows overlap: only the claim keeps it from running twice.
    assert_eq!(
        ran(&pool).await,
        [
            row("demo-fail", "failed"),
            row("demo-parallel", "succeeded"),
            row("demo-two", "succeeded"),
        ]
    );
    let mut codes = [a.code, b.code];
    codes.sort();
    assert!(
        codes == [Some(0), Some(1)] || codes == [Some(1), Some(1)],
        "{codes:?}\n{}\n{}",
        a.stderr,
        b.stderr
    );
    // Each due job ran in one tick; the other saw its claim, either while claiming
    // (`claimed_elsewhere`) or, having read the claims after they were made, as nothing
    // due since (`not_due`).
    let lines = [tick_line(&a.stderr), tick_line(&b.stderr)];
    for job in ["demo-two", "demo-parallel", "demo-fail"] {
        let seen: Vec<String> = lines.iter().map(|m| outcome_of(m, job)).collect();
        let ran = seen
            .iter()
            .filter(|o| *o == "succeeded" || *o == "failed")
            .count();
        let passed = seen
            .iter()
            .filter(|o| *o == "claimed_elsewhere" || *o == "not_due")
            .count();
        assert_eq!((ran, passed), (1, 1), "{job}: {seen:?}");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn sigterm_mid_tick_interrupts_every_member_within_the_grace(pool: PgPool) {
    // 13:02:20: demo-two and demo-hourly are due, both working for two minutes.
    let mut cmd = tick(&pool, "2026-12-05T13:02:20Z", 120_000);
    cmd.env("RUN_JOB_GRACE_SECONDS", "5");
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    wait_for_running(&pool, "demo-two", Duration::from_secs(20)).await;
    wait_for_running(&pool, "demo-hourly", Duration::from_secs(20)).await;

    let signalled = Instant::now();
    send_signal(pid, "TERM");
    let r = finished(child, Duration::from_secs(30)).await;
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "exited {:?} after SIGTERM, grace is 5 s",
        signalled.elapsed()
    );
    assert_eq!(r.code, Some(5), "{}", r.stderr);
    assert_eq!(
        ran(&pool).await,
        [
            row("demo-hourly", "interrupted"),
            row("demo-two", "interrupted"),
        ]
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn an_unknown_group_is_a_usage_error_naming_the_groups(pool: PgPool) {
    let mut cmd = run_job_on(&pool);
    cmd.args(["tick", "heavy"]);
    let r = output(cmd).await;
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.contains("no group `heavy`")
            && r.stderr.contains("demo")
            && r.stderr.contains("light"),
        "{}",
        r.stderr
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn each_member_is_billed_the_log_lines_of_its_own_run(pool: PgPool) {
    let r = output(tick(&pool, "2026-12-05T12:06:10Z", 300)).await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let lines: Vec<(String, serde_json::Value)> = r
        .stderr
        .lines()
        .map(|l| (l.to_string(), serde_json::from_str(l).unwrap()))
        .collect();
    let rows: Vec<(uuid::Uuid, String, i64)> =
        sqlx::query_as("SELECT id, job, log_bytes FROM job_runs ORDER BY job")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 3);
    for (id, job, logged) in rows {
        let id = id.to_string();
        // Its lines: those in its span, and its summary line; each an event of its
        // bytes plus 26. Not the other members' lines, logged at the same time.
        let own: usize = lines
            .iter()
            .filter(|(_, v)| v["span"]["run_id"] == id.as_str() || v["run_id"] == id.as_str())
            .map(|(l, _)| l.len() + 26)
            .sum();
        assert_eq!(logged, own as i64, "{job}");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn a_tick_dated_ahead_of_the_clock_claims_and_runs_nothing(pool: PgPool) {
    let r = output(tick(&pool, "2099-01-01T00:00:00Z", 10)).await;
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(r.stderr.contains("RUN_JOB_NOW"), "{}", r.stderr);
    assert!(ran(&pool).await.is_empty());
    let claims: i64 = sqlx::query_scalar("SELECT count(*) FROM schedule_fires")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(claims, 0);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_member_that_already_ran_for_a_fire_is_not_run_again(pool: PgPool) {
    // demo-two ran on its own (its rule, or by hand) just after its 12:06 fire.
    sqlx::query(
        "INSERT INTO job_runs (id, job, trigger, started_at, finished_at, outcome, exit_code)
         VALUES (gen_random_uuid(), 'demo-two', 'eventbridge', '2026-12-05T12:06:03Z',
                 '2026-12-05T12:06:04Z', 'succeeded', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let r = output(tick(&pool, "2026-12-05T12:06:10Z", 50)).await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let members = tick_line(&r.stderr);
    assert_eq!(outcome_of(&members, "demo-two"), "not_due");
    assert_eq!(outcome_of(&members, "demo-parallel"), "succeeded");
}
