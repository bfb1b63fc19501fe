//! Runs of real jobs as real processes: overlap, signals, timeouts, failures, history.

use std::time::{Duration, Instant};

use futures::future::join_all;
use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test(migrations = "./migrations")]
async fn five_copies_started_at_once_run_once_and_skip_four(pool: PgPool) {
    let children: Vec<_> = (0..5)
        .map(|_| {
            let mut cmd = run_job_on(&pool);
            cmd.arg("demo-sleep").env("RUN_JOB_DEMO_SLEEP_MS", "3000");
            output(cmd)
        })
        .collect();
    let ran = join_all(children).await;

    for r in &ran {
        assert_eq!(r.code, Some(0), "a skip exits 0 too:\n{}", r.stderr);
    }
    let outcomes: Vec<String> = ran
        .iter()
        .map(|r| summary(&r.stderr)["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| *o == "succeeded").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| *o == "skipped").count(),
        4,
        "{outcomes:?}"
    );
    let skipper = ran
        .iter()
        .find(|r| summary(&r.stderr)["outcome"] == "skipped")
        .unwrap();
    assert!(
        skipper
            .stderr
            .contains("another run of this job holds its lock")
    );

    let rows = runs(&pool).await;
    assert_eq!(rows.len(), 5);
    let succeeded: Vec<_> = rows.iter().filter(|r| r.outcome == "succeeded").collect();
    assert_eq!(succeeded.len(), 1);
    assert_eq!(succeeded[0].items_processed, 30);
    assert_eq!(rows.iter().filter(|r| r.outcome == "skipped").count(), 4);
    assert!(rows.iter().all(|r| r.job == "demo-sleep"
        && r.finished
        && r.exit_code == Some(0)
        && r.trigger == "manual"));
}

#[sqlx::test(migrations = "./migrations")]
async fn jobs_that_allow_overlap_run_side_by_side(pool: PgPool) {
    let children: Vec<_> = (0..3)
        .map(|_| {
            let mut cmd = run_job_on(&pool);
            cmd.arg("demo-parallel")
                .env("RUN_JOB_DEMO_SLEEP_MS", "1500");
            output(cmd)
        })
        .collect();
    for r in join_all(children).await {
        assert_eq!(r.code, Some(0), "{}", r.stderr);
    }
    let rows = runs(&pool).await;
    assert_eq!(rows.iter().filter(|r| r.outcome == "succeeded").count(), 3);
}

#[sqlx::test(migrations = "./migrations")]
async fn sigterm_interrupts_the_job_and_closes_its_run_within_the_grace(pool: PgPool) {
    let mut cmd = run_job_on(&pool);
    cmd.args(["demo-sleep", "--grace-seconds", "10"])
        .env("RUN_JOB_DEMO_SLEEP_MS", "120000");
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    wait_for_running(&pool, "demo-sleep", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    send_signal(pid, "TERM");
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("exited")
        .unwrap();
    let took = signalled.elapsed();

    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after SIGTERM, grace is 10 s"
    );
    assert_eq!(out.status.code(), Some(5), "interrupted exit code");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let s = summary(&stderr);
    assert_eq!(s["outcome"], "interrupted");
    assert_eq!(s["exit_code"], 5);
    let rows = runs(&pool).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.outcome, "interrupted");
    assert!(row.finished, "run row closed");
    assert_eq!(row.exit_code, Some(5));
    assert!(
        row.items_processed >= 1,
        "work done before the signal is counted"
    );
    assert!(
        row.error
            .as_deref()
            .unwrap()
            .contains("interrupted by a signal")
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_job_past_its_timeout_is_cancelled_then_aborted(pool: PgPool) {
    // demo-stubborn declares timeout_seconds: 2 and ignores cancellation.
    let mut cmd = run_job_on(&pool);
    cmd.args(["demo-stubborn", "--grace-seconds", "1"])
        .env("RUN_JOB_DEMO_SLEEP_MS", "60000");
    let started = Instant::now();
    let r = output(cmd).await;
    let took = started.elapsed();

    assert_eq!(r.code, Some(4), "timed-out exit code:\n{}", r.stderr);
    assert!(
        took >= Duration::from_secs(3),
        "timeout 2 s + grace 1 s, took {took:?}"
    );
    assert!(
        took < Duration::from_secs(15),
        "aborted promptly, took {took:?}"
    );
    let rows = runs(&pool).await;
    assert_eq!(rows[0].outcome, "timed_out");
    assert!(
        rows[0]
            .error
            .as_deref()
            .unwrap()
            .contains("timed out after 2 s; did not stop within 1 s and was aborted")
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_failed_job_exits_1_with_its_counts_and_reason(pool: PgPool) {
    let mut cmd = run_job_on(&pool);
    cmd.arg("demo-fail");
    let r = output(cmd).await;
    assert_eq!(r.code, Some(1));
    let s = summary(&r.stderr);
    assert_eq!(s["outcome"], "failed");
    assert_eq!(s["level"], "ERROR");
    assert_eq!(s["items_processed"], 3);
    assert_eq!(s["items_failed"], 1);
    assert_eq!(s["error"], "demo failure: the provider answered 500");
    // CloudWatch Embedded Metric Format: the metrics it declares are top-level numbers.
    let emf = &s["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(emf["Namespace"], "RunJob");
    assert_eq!(emf["Dimensions"][0][0], "job");
    for metric in emf["Metrics"].as_array().unwrap() {
        let name = metric["Name"].as_str().unwrap();
        assert!(s[name].is_number(), "metric {name} has a numeric value");
    }
    assert!(s["_aws"]["Timestamp"].is_i64());
    assert_eq!(s["Failed"], 1);

    let rows = runs(&pool).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].outcome.as_str(),
            rows[0].items_processed,
            rows[0].items_succeeded,
            rows[0].items_failed
        ),
        ("failed", 3, 2, 1)
    );
    assert_eq!(
        rows[0].error.as_deref(),
        Some("demo failure: the provider answered 500")
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_run_killed_outright_is_closed_as_abandoned_by_the_next(pool: PgPool) {
    let mut cmd = run_job_on(&pool);
    cmd.arg("demo-sleep").env("RUN_JOB_DEMO_SLEEP_MS", "120000");
    let mut child = cmd.spawn().unwrap();
    wait_for_running(&pool, "demo-sleep", Duration::from_secs(20)).await;
    send_signal(child.id().unwrap(), "KILL");
    child.wait().await.unwrap();

    // The lock went with the connection: the next run is not skipped.
    let mut cmd = run_job_on(&pool);
    cmd.arg("demo-sleep").env("RUN_JOB_DEMO_SLEEP_MS", "200");
    let r = output(cmd).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let rows = runs(&pool).await;
    let outcomes: Vec<_> = rows.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["abandoned", "succeeded"]);
    assert!(rows[0].finished);
}

#[sqlx::test(migrations = "./migrations")]
async fn every_log_line_is_json_with_job_and_run_id_and_no_secret(pool: PgPool) {
    // Trust auth accepts any password, so a real one can travel the whole path.
    let url = url_for(&pool).replacen("postgres@", "postgres:Sup3r-Secret-Pw@", 1);
    let mut cmd = run_job();
    cmd.arg("demo-sleep")
        .env("DATABASE_URL", &url)
        .env("RUN_JOB_DEMO_SLEEP_MS", "200")
        .env("RUN_JOB_TRIGGER", "eventbridge");
    let r = output(cmd).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!r.stderr.contains("Sup3r-Secret-Pw") && !r.stdout.contains("Sup3r-Secret-Pw"));
    assert!(!r.stderr.contains('\u{1b}'), "no ANSI escapes in JSON logs");
    let lines = json_lines(&r.stderr);
    assert!(lines.len() >= 3, "{}", r.stderr);
    let run_id = summary(&r.stderr)["run_id"].as_str().unwrap().to_string();
    for line in &lines {
        let (job, id) = match line.get("span") {
            Some(span) => (&span["job"], &span["run_id"]),
            None => (&line["job"], &line["run_id"]),
        };
        assert_eq!(job, "demo-sleep", "{line}");
        assert_eq!(id.as_str(), Some(run_id.as_str()), "{line}");
    }
    assert_eq!(runs(&pool).await[0].trigger, "eventbridge");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_database_without_the_schema_exits_6_naming_the_table(pool: PgPool) {
    sqlx::query("DROP TABLE job_runs")
        .execute(&pool)
        .await
        .unwrap();
    let mut cmd = run_job_on(&pool);
    cmd.arg("demo-fail");
    let r = output(cmd).await;
    assert_eq!(r.code, Some(6));
    assert!(r.stderr.contains("job_runs"), "{}", r.stderr);
    assert!(r.stderr.contains("run-job migrate"), "{}", r.stderr);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_run_whose_row_cannot_be_closed_still_reports_its_outcome(pool: PgPool) {
    let mut cmd = run_job_on(&pool);
    cmd.arg("demo-sleep").env("RUN_JOB_DEMO_SLEEP_MS", "1500");
    let child = cmd.spawn().unwrap();
    wait_for_running(&pool, "demo-sleep", Duration::from_secs(20)).await;
    // From now on no row may become `succeeded`: closing this run's row fails.
    sqlx::query(
        "ALTER TABLE job_runs ADD CONSTRAINT no_success CHECK (outcome <> 'succeeded') NOT VALID",
    )
    .execute(&pool)
    .await
    .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("exited")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "the job succeeded:\n{stderr}");
    assert_eq!(summary(&stderr)["outcome"], "succeeded");
    assert!(
        stderr.contains("could not close this run's job_runs row"),
        "{stderr}"
    );
    assert_eq!(
        runs(&pool).await[0].outcome,
        "running",
        "left for the next run to close"
    );
}
